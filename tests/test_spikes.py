from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.models import SpikeDetector


def _panel(n_units=200, n_cutoffs=30, seed=0, spike=None):
    """Per-category counts of a steady Poisson process, with an optional spike."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 0.5, n_units) / 7  # cases a day
    days = 364 + 7 * n_cutoffs
    daily = rng.poisson(rate[:, None], size=(n_units, days)).astype(float)
    if spike is not None:
        unit, day, extra = spike
        daily[unit, day : day + 7] += extra / 7
    cumulative = np.concatenate([np.zeros((n_units, 1)), daily.cumsum(axis=1)], axis=1)
    rows = []
    for k in range(n_cutoffs):
        c = 364 + 7 * k
        for u in range(n_units):
            rows.append(
                {
                    "grid_id": f"G{u}",
                    "cutoff": pd.Timestamp("2024-01-01") + pd.Timedelta(days=7 * k),
                    **{f"count_{w}d_noise": cumulative[u, c] - cumulative[u, c - w] for w in (7, 91, 364)},
                }
            )
    return pd.DataFrame(rows).set_index(["grid_id", "cutoff"])


def test_p_values_are_honest_without_spikes():
    X = _panel()
    detector = SpikeDetector(alpha=0.01, min_count=0).fit(X)
    p = detector.p_values(X)["noise"]
    assert ((p >= 0) & (p <= 1)).all()
    # Under the null, alarms at level 0.01 are at most about 1% (the tail is discrete and conservative).
    assert (p < 0.01).mean() < 0.015
    assert detector.alarms(X)["noise"].mean() < 0.015


def test_a_spike_alarms_in_its_week():
    X = _panel(spike=(5, 364 + 7 * 10, 12.0))
    alarms = SpikeDetector().fit(X).alarms(X)["noise"]
    spike = ("G5", pd.Timestamp("2024-01-01") + pd.Timedelta(days=77))  # the week after day 434
    assert alarms[spike]
    assert alarms.drop(spike).mean() < 0.002  # alpha = 1e-4


def test_needs_per_category_counts():
    with pytest.raises(ValueError, match="per-category counts"):
        SpikeDetector().fit(pd.DataFrame({"count_7d": [1.0]}))
    with pytest.raises(ValueError, match="longer than window"):
        SpikeDetector(window=91).fit(_panel(n_units=2, n_cutoffs=1))


def test_alarm_table_lists_the_alarms_one_per_row():
    X = _panel(spike=(5, 364 + 7 * 10, 12.0))
    detector = SpikeDetector().fit(X)
    table = detector.alarm_table(X)
    assert list(table.columns) == ["unit_id", "time", "category", "p_value"]
    assert len(table) == detector.alarms(X).to_numpy().sum()
    rows = set(zip(table["unit_id"], table["time"], table["category"], strict=True))
    assert ("G5", pd.Timestamp("2024-03-18"), "noise") in rows
    assert (table["p_value"] < detector.alpha).all()


def test_detects_the_simulated_waves_daily():
    """Daily surveillance of every grid and community finds most injected waves of the small
    preset within 14 days with few false alarms (bench/models.py measures more seeds)."""
    district = simulate_district("small", seed=0)
    result = backtest(
        district, [SpikeDetector()], cutoffs=["2023-04-03", "2024-12-16"], target="waves", track=False, progress=False
    )
    got = result.folds.iloc[0]
    assert got["waves"] >= 10
    assert got["wave_detection_rate"] >= 0.8
    assert got["wave_median_delay_days"] <= 7
    assert got["false_alarms_per_1000_unit_weeks"] <= 5


def test_parts_scored_with_the_whole_totals_alarm_as_the_whole():
    X = _panel(n_units=60, n_cutoffs=6, spike=(5, 364 + 7 * 3, 12.0))
    detector = SpikeDetector().fit(X)
    units = X.index.get_level_values("grid_id")
    parts = [X[units.isin([f"G{u}" for u in range(k, 60, 3)])] for k in range(3)]
    totals = sum(detector.totals(part) for part in parts)
    pd.testing.assert_frame_equal(totals, detector.totals(X), rtol=1e-12)
    together = pd.concat([detector.p_values(part, totals) for part in parts]).reindex(X.index)
    pd.testing.assert_frame_equal(together, detector.p_values(X), rtol=1e-9)
    alone = pd.concat([detector.p_values(part) for part in parts]).reindex(X.index)
    assert not np.allclose(alone, together)  # a part's own factor is not the whole's
    with pytest.raises(ValueError, match="totals lack the cutoff"):
        detector.p_values(X, totals.iloc[1:])
