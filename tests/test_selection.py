"""The champion chosen by evidence: paired fold differences, noise, simplicity, the baseline floor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from riskmodel.evaluation.selection import (
    choose_from_folds,
    complexity,
    newey_west_se,
    overlap_lag,
    paired,
    paired_difference,
)


def reference_se(d, lag):
    """Newey-West written out term by term, as in the textbook."""
    d = np.asarray(d, float)
    n, e = len(d), d - np.mean(d)
    gamma = [sum(e[t] * e[t - k] for t in range(k, n)) / n for k in range(lag + 1)]
    return math.sqrt((gamma[0] + 2 * sum((1 - k / (lag + 1)) * gamma[k] for k in range(1, lag + 1))) / n)


def test_newey_west_matches_the_textbook_and_grows_with_positive_correlation():
    d = np.array([0.01, 0.02, 0.025, 0.03, 0.01, -0.01, -0.005, 0.0, 0.02, 0.03])
    for lag in (0, 1, 3):
        assert newey_west_se(d, lag) == pytest.approx(reference_se(d, lag))
    assert newey_west_se(d, 0) == pytest.approx(np.std(d) / math.sqrt(len(d)))
    assert newey_west_se(d, 3) > newey_west_se(d, 0)  # smooth differences: overlapping folds
    assert newey_west_se([0.1], 0) == math.inf


def test_overlap_lag_counts_the_folds_sharing_label_days():
    weekly = pd.date_range("2024-01-01", periods=10, freq="7D")
    assert overlap_lag(weekly, pd.Timedelta(days=7)) == 0
    assert overlap_lag(weekly, pd.Timedelta(days=28)) == 3
    monthly = pd.date_range("2022-07-01", periods=5, freq="MS")
    assert overlap_lag(monthly, pd.DateOffset(months=1)) == 0


def test_paired_interval_is_the_t_interval_without_overlap():
    d = [0.02, 0.01, 0.03, 0.02, 0.04]
    out = paired(d, lag=0)
    half = stats.t.ppf(0.975, 4) * np.std(d) / math.sqrt(5)
    assert (out["low"], out["high"]) == pytest.approx((np.mean(d) - half, np.mean(d) + half))
    single = paired([0.5], lag=0)
    assert single["low"] == -math.inf and single["high"] == math.inf


def test_complexity_order():
    names = ["TimeWeightedRateBaseline", "Scorecard", "LogisticRisk", "GBMRisk", "GBMCount", "EnsembleCount", "New"]
    assert [complexity(n) for n in names] == [0, 1, 2, 3, 4, 5, 6]


def test_a_clearly_better_learned_model_is_chosen():
    rng = np.random.default_rng(0)
    base = 0.20 + rng.normal(0, 0.02, 20)
    table = pd.DataFrame({"HistoricalRateBaseline": base, "GBMCount": base + 0.03 + rng.normal(0, 0.003, 20)})
    choice = choose_from_folds(table)
    assert choice.chosen == "GBMCount"
    assert choice.versus_best_baseline["model"] == "HistoricalRateBaseline"
    assert 0.028 < choice.versus_best_baseline["mean"] < 0.032 and choice.versus_best_baseline["low"] > 0
    assert choice.versus_runner_up == choice.versus_best_baseline
    assert choice.differences["vs_best_baseline"].to_numpy() == pytest.approx(
        table["GBMCount"] - table["HistoricalRateBaseline"]
    )
    assert "best mean" in choice.reason


def test_within_noise_the_simpler_model_wins():
    rng = np.random.default_rng(1)
    base = 0.20 + rng.normal(0, 0.02, 12)
    table = pd.DataFrame(
        {"GBMCount": base + 0.002 + rng.normal(0, 0.01, 12), "HistoricalRateBaseline": base, "Scorecard": base - 0.001}
    )
    choice = choose_from_folds(table)
    assert table.mean().idxmax() == "GBMCount"
    assert choice.chosen == "HistoricalRateBaseline"
    assert choice.versus_runner_up["model"] == "GBMCount"
    assert choice.versus_runner_up["low"] < 0 < choice.versus_runner_up["high"]
    assert choice.reason.startswith("HistoricalRateBaseline")
    assert "no model beats it by more than noise" in choice.reason


def test_a_weaker_noisy_baseline_never_displaces_a_learned_model_that_beats_the_best_one():
    # The historical rate is noisy, so it is within noise of the leader; the last period is
    # the best baseline and GBMCount beats it on every fold: GBMCount, not a weaker baseline.
    rng = np.random.default_rng(3)
    base = 0.16 + rng.normal(0, 0.02, 12)
    table = pd.DataFrame(
        {
            "GBMCount": base + 0.045 + rng.normal(0, 0.005, 12),
            "LastPeriodBaseline": base,
            "HistoricalRateBaseline": base - 0.03 + rng.normal(0, 0.06, 12),
        }
    )
    choice = choose_from_folds(table)
    assert choice.versus_best_baseline["model"] == "LastPeriodBaseline"
    assert choice.leaderboard.loc["HistoricalRateBaseline", "vs_baseline_high"] > 0  # within noise of the best baseline
    assert (table["GBMCount"] - table["HistoricalRateBaseline"]).mean() > 0
    assert choice.chosen == "GBMCount" and choice.versus_best_baseline["low"] > 0


def test_a_simpler_model_that_also_beats_the_baseline_wins_within_noise():
    rng = np.random.default_rng(4)
    base = 0.16 + rng.normal(0, 0.02, 12)
    table = pd.DataFrame(
        {
            "GBMCount": base + 0.03 + rng.normal(0, 0.01, 12),
            "LogisticRisk": base + 0.028 + rng.normal(0, 0.005, 12),
            "HistoricalRateBaseline": base,
        }
    )
    choice = choose_from_folds(table)
    assert choice.chosen == "LogisticRisk" and choice.versus_runner_up["model"] == "GBMCount"
    assert "within noise of the best mean (GBMCount" in choice.reason


def test_a_model_clearly_worse_than_the_best_baseline_is_excluded_even_if_simpler_and_close_to_the_leader():
    # The leader is noisy, so the Scorecard is within noise of it, but it trails the
    # baseline on every fold: it must not be chosen.
    rng = np.random.default_rng(2)
    base = 0.20 + rng.normal(0, 0.01, 10)
    table = pd.DataFrame(
        {
            "GBMCount": base + 0.005 + rng.normal(0, 0.05, 10),
            "HistoricalRateBaseline": base,
            "Scorecard": base - 0.02,
        }
    )
    choice = choose_from_folds(table)
    assert not choice.leaderboard.loc["Scorecard", "eligible"]
    assert choice.chosen == "HistoricalRateBaseline"


def test_lower_is_better_metrics_are_turned_around():
    table = pd.DataFrame({"HistoricalRateBaseline": [0.30, 0.31, 0.29, 0.30], "GBMCount": [0.20, 0.21, 0.19, 0.20]})
    choice = choose_from_folds(table, metric="brier")
    assert choice.chosen == "GBMCount" and choice.versus_best_baseline["mean"] == pytest.approx(0.10)


def test_the_evidence_is_json_ready():
    import json

    table = pd.DataFrame({"HistoricalRateBaseline": [0.2, 0.21], "GBMCount": [0.2, np.nan]})
    evidence = choose_from_folds(table).to_dict()
    text = json.dumps(evidence, allow_nan=False)
    assert json.loads(text)["chosen"] == "HistoricalRateBaseline"
    assert len(evidence["leaderboard"]) == 2 and len(evidence["differences"]) == 2


NAMES = ["HistoricalRateBaseline", "LastPeriodBaseline", "Scorecard", "LogisticRisk", "GBMCount", "EnsembleCount", "X"]


@st.composite
def fold_tables(draw):
    folds = draw(st.integers(1, 15))
    models = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    values = st.floats(0, 1, allow_nan=False, width=32)
    table = pd.DataFrame({m: draw(st.lists(values | st.just(np.nan), min_size=folds, max_size=folds)) for m in models})
    table[models[0]] = draw(st.lists(values, min_size=folds, max_size=folds))  # one model scored on every fold
    return table, draw(st.integers(0, 4)), draw(st.sampled_from(["hit_rate_at_5pct", "brier"]))


@settings(deadline=None)
@given(fold_tables())
def test_never_worse_than_the_best_baseline_by_more_than_noise(drawn):
    """Stronger: the champion is the best baseline or beats it by more than noise."""
    table, lag, metric = drawn
    choice = choose_from_folds(table, metric=metric, lag=lag)
    sign = -1 if metric == "brier" else 1
    assert choice.chosen in table.columns
    baselines = [m for m in table.columns if m.endswith("Baseline")]
    if not baselines:
        return
    best = max(baselines, key=lambda m: (sign * table[m]).mean() if table[m].notna().any() else -np.inf)
    if choice.chosen == best:
        return
    d = (sign * (table[choice.chosen] - table[best])).dropna().to_numpy()
    # Only a model that beats the best baseline by more than noise displaces it.
    assert len(d) >= 2, f"{choice.chosen} chosen over {best} without an estimate of noise"
    half = stats.t.ppf(0.975, len(d) - 1) * reference_se(d, lag)
    assert d.mean() - half > -1e-12, f"{choice.chosen} does not beat {best} by more than noise"


@settings(deadline=None)
@given(fold_tables())
def test_the_choice_is_at_least_as_simple_as_the_leader_and_within_its_noise(drawn):
    table, lag, metric = drawn
    choice = choose_from_folds(table, metric=metric, lag=lag)
    board = choice.leaderboard
    leader = board.index[board["eligible"].to_numpy()][0]
    assert board.loc[choice.chosen, "complexity"] <= board.loc[leader, "complexity"]
    assert choice.chosen == leader or board.loc[choice.chosen, "contender"]


def test_paired_difference_pairs_on_the_shared_cutoffs_and_reads_the_metric_s_direction():
    cutoffs = pd.date_range("2024-01-01", periods=6, freq="7D")
    a = pd.Series([0.20, 0.22, 0.21, 0.25, 0.24, np.nan], index=cutoffs)
    b = pd.Series([0.23, 0.21, 0.26, 0.27, 0.25, 0.30], index=cutoffs).drop(cutoffs[0])
    folds, summary = paired_difference(a, b, metric="hit_rate_at_5pct", lag=2)
    d = np.array([-0.01, 0.05, 0.02, 0.01])  # cutoffs 1-4: the first lacks b, the last a
    assert list(folds.index) == list(cutoffs[1:5])
    np.testing.assert_allclose(folds["difference"], d)
    half = stats.t.ppf(0.975, 3) * reference_se(d, 2)
    assert summary["mean"] == pytest.approx(d.mean()) and summary["folds"] == 4 and summary["lag"] == 2
    assert (summary["low"], summary["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert summary["verdict"] == "within noise"
    steady = pd.Series([0.10, 0.11, 0.12, 0.13], index=cutoffs[:4])
    assert paired_difference(steady, steady + [0.02, 0.03, 0.02, 0.03], metric="roc_auc")[1]["verdict"] == "better"
    assert paired_difference(steady, steady + [0.02, 0.03, 0.02, 0.03], metric="brier")[1]["verdict"] == "worse"
    with pytest.raises(ValueError, match="share 1 fold"):
        paired_difference(a, b.iloc[:1], metric="roc_auc")
