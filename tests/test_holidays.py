from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.holidays import SPRING_FESTIVAL, days_since_last, days_until_next

# A new moon (2000-01-06 18:14 UTC) and the mean synodic month.
_NEW_MOON = pd.Timestamp("2000-01-06 18:14")
_SYNODIC_DAYS = 29.530588853


def test_spring_festival_is_a_new_moon_between_jan_21_and_feb_20():
    assert list(SPRING_FESTIVAL.year) == list(range(2000, 2041))
    assert SPRING_FESTIVAL.is_monotonic_increasing
    # Beijing midday of the festival, in days since the reference new moon.
    age = ((SPRING_FESTIVAL + pd.Timedelta(hours=4) - _NEW_MOON) / pd.Timedelta(days=1)) % _SYNODIC_DAYS
    distance = np.minimum(age, _SYNODIC_DAYS - age)
    assert (distance < 1.2).all(), SPRING_FESTIVAL[distance >= 1.2]
    day_of_year = SPRING_FESTIVAL.day_of_year
    assert ((day_of_year >= 21) & (day_of_year <= 51)).all()


def test_days_until_and_since():
    times = pd.to_datetime(["2024-01-31 23:00", "2024-02-10 00:00", "2024-02-11 08:00", "2040-12-31 00:00"])
    np.testing.assert_array_equal(days_until_next(times), [10, 0, 353, np.nan])
    np.testing.assert_array_equal(days_since_last(["1999-12-31", "2024-02-10", "2024-03-01"]), [np.nan, 0, 20])
