"""Holiday calendars: the days around which disputes peak (Spring Festival by default)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SPRING_FESTIVAL", "days_until_next", "days_since_last"]

#: Spring Festival (the first day of the first lunar month), 2000-2040.
SPRING_FESTIVAL = pd.DatetimeIndex(
    [
        "2000-02-05",
        "2001-01-24",
        "2002-02-12",
        "2003-02-01",
        "2004-01-22",
        "2005-02-09",
        "2006-01-29",
        "2007-02-18",
        "2008-02-07",
        "2009-01-26",
        "2010-02-14",
        "2011-02-03",
        "2012-01-23",
        "2013-02-10",
        "2014-01-31",
        "2015-02-19",
        "2016-02-08",
        "2017-01-28",
        "2018-02-16",
        "2019-02-05",
        "2020-01-25",
        "2021-02-12",
        "2022-02-01",
        "2023-01-22",
        "2024-02-10",
        "2025-01-29",
        "2026-02-17",
        "2027-02-06",
        "2028-01-26",
        "2029-02-13",
        "2030-02-03",
        "2031-01-23",
        "2032-02-11",
        "2033-01-31",
        "2034-02-19",
        "2035-02-08",
        "2036-01-28",
        "2037-02-15",
        "2038-02-04",
        "2039-01-24",
        "2040-02-12",
    ]
).as_unit("us")


def days_until_next(times, holidays: pd.DatetimeIndex = SPRING_FESTIVAL) -> np.ndarray:
    """Whole days from each time's date to the next holiday on or after it.

    Parameters
    ----------
    times : array-like of datetime
        The times to measure from.
    holidays : DatetimeIndex
        Sorted holiday dates; defaults to :data:`SPRING_FESTIVAL`.

    Returns
    -------
    ndarray of float
        0 on the holiday itself; NaN past the last holiday of the calendar.

    Examples
    --------
    >>> from riskmodel.holidays import days_until_next
    >>> days_until_next(["2024-02-01", "2024-02-10", "2024-02-11"]).tolist()
    [9.0, 0.0, 353.0]
    """
    days = _days(times)
    position = holidays.searchsorted(days, side="left")
    return _distance(holidays, position, days, ahead=True)


def days_since_last(times, holidays: pd.DatetimeIndex = SPRING_FESTIVAL) -> np.ndarray:
    """Whole days from the last holiday on or before each time's date.

    Parameters
    ----------
    times : array-like of datetime
        The times to measure from.
    holidays : DatetimeIndex
        Sorted holiday dates; defaults to :data:`SPRING_FESTIVAL`.

    Returns
    -------
    ndarray of float
        0 on the holiday itself; NaN before the first holiday of the calendar.

    Examples
    --------
    >>> from riskmodel.holidays import days_since_last
    >>> days_since_last(["2024-02-10", "2024-02-20"]).tolist()
    [0.0, 10.0]
    """
    days = _days(times)
    position = holidays.searchsorted(days, side="right") - 1
    return _distance(holidays, position, days, ahead=False)


def _days(times) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(times)).normalize().as_unit("us")


def _distance(holidays, position, days, *, ahead: bool) -> np.ndarray:
    inside = (position >= 0) & (position < len(holidays))
    other = holidays[np.clip(position, 0, len(holidays) - 1)]
    out = ((other - days) if ahead else (days - other)) / pd.Timedelta(days=1)
    out = np.asarray(out, dtype="float64")
    out[~inside] = np.nan
    return out
