"""The monitor on the simulator: weekly forecasts of a model trained before a new reporting
platform joins raise an alarm within 4 weeks of it, and none over the same weeks of the
unchanged simulation (false alarms per model-year over seeds: ``bench/monitoring.py``)."""

from __future__ import annotations

import pandas as pd
import pytest

from riskmodel import monitor, predict, train
from riskmodel.datasets import NewPlatform, simulate_district
from riskmodel.models import GBMCount

from .test_serving import truncate

pytestmark = pytest.mark.slow

TRAINED = pd.Timestamp("2025-01-06")  # two years of history: the simulation starts on 2023-01-01
CHANGE = pd.Timestamp("2025-03-03")
WEEKS = pd.date_range(TRAINED, CHANGE + pd.Timedelta(weeks=4), freq="W-MON")


def served(tmp_path, changes):
    district = simulate_district("small", seed=0, years=3, changes=changes)
    trained = train(truncate(district, TRAINED), model=GBMCount(), horizon=28, track=False)
    store = tmp_path / "forecasts.db"
    for as_of in WEEKS:
        predict(truncate(district, as_of), as_of=as_of, model=trained, record=store)
    return monitor(store, truncate(district, WEEKS[-1]), model=trained)


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    return served(tmp_path_factory.mktemp("changed"), [NewPlatform(start=CHANGE, factor=1.5, source="app")])


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory):
    return served(tmp_path_factory.mktemp("unchanged"), [])


def test_a_new_platform_raises_a_calibration_alarm_within_4_weeks(changed):
    raised = changed.alarms[changed.alarms["known_at"] >= CHANGE]
    assert len(raised), changed.weeks[["as_of", "observed", "expected"]]
    first = raised.iloc[0]
    assert first["known_at"] <= CHANGE + pd.Timedelta(weeks=4)
    assert first["kind"].startswith("calibration") and first["message"].startswith("more cases than forecast")


def test_the_unchanged_world_stays_silent_over_the_same_weeks(unchanged):
    assert unchanged.healthy, unchanged.alarms[["week", "kind", "message"]].to_string()
    assert len(unchanged.weeks) == len(WEEKS) - 1  # every week but the last has closed its first week
    assert unchanged.drift["feature"].nunique() > 50 and not unchanged.drift["drifted"].any()


def test_both_worlds_served_the_same_forecasts_before_the_change(changed, unchanged):
    before = changed.weeks["window_end"] <= CHANGE
    assert before.sum() >= 7
    pd.testing.assert_frame_equal(changed.weeks[before], unchanged.weeks[before])
