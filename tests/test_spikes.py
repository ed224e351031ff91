from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.models import SpikeDetector


def _panel(n_units=200, n_cutoffs=30, seed=0, spike=None):
    """Per-category counts of a steady Poisson process, with an optional spike."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 0.5, n_units) / 7  # cases a day
    days = 364 + 7 * n_cutoffs
    daily = rng.poisson(rate[:, None], size=(n_units, days)).astype(float)
    if spike is not None:
        unit, day, extra = spike
        daily[unit, day:day + 7] += extra / 7
    cumulative = np.concatenate([np.zeros((n_units, 1)), daily.cumsum(axis=1)], axis=1)
    rows = []
    for k in range(n_cutoffs):
        c = 364 + 7 * k
        for u in range(n_units):
            rows.append({"grid_id": f"G{u}", "cutoff": pd.Timestamp("2024-01-01") + pd.Timedelta(days=7 * k),
                         **{f"count_{w}d_noise": cumulative[u, c] - cumulative[u, c - w] for w in (7, 91, 364)}})
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
    assert alarms.drop(spike).mean() < 0.002  # alpha = 0.001


def test_needs_per_category_counts():
    with pytest.raises(ValueError, match="per-category counts"):
        SpikeDetector().fit(pd.DataFrame({"count_7d": [1.0]}))
