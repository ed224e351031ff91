from __future__ import annotations

import numpy as np
import pytest

from riskmodel.features import build_grid_panel
from riskmodel.models import GBMCount, GBMRisk, HistoricalRateBaseline, LogisticRisk, Scorecard, explain
from riskmodel.models.explain import describe_driver


@pytest.fixture(scope="module")
def panel(small_district):
    return build_grid_panel(
        small_district, cutoffs={"start": "2023-06-05", "end": "2024-06-03", "freq": "4W-MON"}, horizon=28
    )


@pytest.mark.parametrize(
    ("model", "unit", "text"),
    [
        (GBMRisk(n_estimators=40, n_jobs=1), "log-odds", r"\([+-]\d+\.\d log-odds\)"),
        (GBMCount(n_estimators=40, n_jobs=1), "log expected cases", r"\(expected cases ×\d+\.\d\d\)"),
        (LogisticRisk(), "log-odds", r"\([+-]\d+\.\d log-odds\)"),
        (Scorecard(), "points", r"\([+-]\d+\.\d points\)"),
        (HistoricalRateBaseline(), "expected cases", r"\(\+\d+\.\d expected cases\)"),
    ],
    ids=lambda m: type(m).__name__ if not isinstance(m, str) else "",
)
def test_drivers_as_data_and_text(panel, model, unit, text):
    y = panel.y_count if isinstance(model, GBMCount) else panel.y
    model.fit(panel.X, y)
    top = 1 if isinstance(model, HistoricalRateBaseline) else 3
    drivers = explain(model, panel.X, top=3)
    assert drivers.index.equals(panel.X.index)
    assert [c for c in drivers.columns if c.startswith("driver_")] == [f"driver_{k}" for k in range(1, top + 1)]
    contributions = drivers[[f"contribution_{k}" for k in range(1, top + 1)]].to_numpy()
    assert (np.diff(contributions, axis=1) <= 0).all()  # strongest first
    assert drivers["text"].str.count(";").eq(top - 1).all()
    assert (drivers["unit"] == unit).all() and drivers["text"].str.count(text).eq(top).all()  # each with its unit
    if isinstance(model, GBMCount):  # the factor on the expected count is the exponential of the log contribution
        first = drivers["text"].iloc[0].split("; ")[0]
        assert first.endswith(f"(expected cases ×{np.exp(drivers['contribution_1'].iloc[0]):.2f})")
    # The busiest unit's first driver speaks of its cases.
    busiest = panel.X["count_364d"].to_numpy().argmax()
    assert "case" in drivers["text"].iloc[busiest]


def test_driver_words():
    assert describe_driver("count_28d_neighbour_noise", 14.0) == "14 neighbour noise cases in 28 days"
    assert describe_driver("nbr_count_7d", 2.25) == "neighbours on average: 2.2 cases in 7 days"
    assert describe_driver("attr_rented_share", 0.42) == "rented share 0.42"
    assert describe_driver("month", 7.0) == "month 7"
