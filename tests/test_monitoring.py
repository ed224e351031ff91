"""Scoring what was served and the alarms: hand computations, unscored counts, a CUSUM that fires
on a change of the simulated world and stays silent without it, and the PSI (no MLflow here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import first_reports, predict, train
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import (
    MonitorSettings,
    feature_drift,
    input_drift_alarms,
    score_served,
    served_alarms,
)
from riskmodel.evaluation.alarms import (
    ALARM_COLUMNS,
    backtest_band,
    backtest_expectation,
    calibration_alarms,
    cold_start_alarms,
    hit_rate_alarms,
)
from riskmodel.evaluation.drift import drift_features
from riskmodel.evaluation.metrics import population_stability_index
from riskmodel.evaluation.monitoring import first_weeks, observed_counts
from riskmodel.features import build_grid_panel
from riskmodel.models import HistoricalRateBaseline

from .test_serving import truncate


def served_frame(rows) -> pd.DataFrame:
    columns = ["model", "version", "as_of", "horizon_days", "grid_id", "probability", "expected_count", "low", "high"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    rank = frame.groupby(["model", "version", "as_of"])["probability"].rank(ascending=False, method="first")
    return frame.assign(tier="high", rank=rank.astype(int), alerts="")


def test_scores_equal_a_hand_computation(dataset):
    # make_dataset: c1 G1 2024-01-05, c2 G2 2024-02-01, c3 M1 (a microgrid of G1) 2024-03-03,
    # c4 G1 2024-06-01; the data ends 2024-12-31.
    served = served_frame(
        [
            ["rate", "1", "2024-02-26", 28.0, "G1", 0.8, 1.5, 0.0, 3.0],  # counts c3: 1 case, in [0, 3]
            ["rate", "1", "2024-02-26", 28.0, "G2", 0.3, 0.4, 1.0, 2.0],  # no case, outside [1, 2]
            ["rate", "1", "2024-02-26", 28.0, "G9", 0.5, 0.5, 0.0, 1.0],  # a unit the data lacks
            ["rate", "1", "2024-12-20", 28.0, "G1", 0.8, 1.5, 0.0, 3.0],  # closes 2025-01-17: open
            ["rate", "1", "2024-12-20", 28.0, "G2", 0.3, 0.4, 1.0, 2.0],
            ["rate", "2", "2024-01-01", 35.0, "G1", 0.6, 0.5, np.nan, np.nan],  # c1
            ["rate", "2", "2024-01-01", 35.0, "G2", 0.6, 0.5, np.nan, np.nan],  # c2
        ]
    )
    scores, unscored = score_served(served, dataset, capacity=1)
    first = scores.set_index("version").loc["1"]
    assert (first["units"], first["observed"], first["expected"]) == (2, 1.0, 1.9)
    assert first["oe_ratio"] == pytest.approx(1 / 1.9)
    assert first["hit_rate_at_5pct"] == pytest.approx(0.1)  # 5% of 2 units: a tenth of G1 and its case
    assert first["pai_at_5pct"] == pytest.approx(2.0)
    assert first["hit_rate_at_capacity"] == 1.0 and first["pai_at_capacity"] == pytest.approx(2.0)
    assert first["brier"] == pytest.approx(((0.8 - 1) ** 2 + 0.3**2) / 2)
    assert first["ece"] == pytest.approx((0.2 + 0.3) / 2)  # one row a bin
    assert first["interval_coverage"] == 0.5
    assert first["window_end"] == pd.Timestamp("2024-03-25")
    second = scores.set_index("version").loc["2"]
    assert second["observed"] == 2 and second["hit_rate_at_5pct"] == pytest.approx(0.05)  # a tie: shared
    assert np.isnan(second["interval_coverage"])  # no interval given
    assert unscored.astype({"as_of": str}).values.tolist() == [
        ["rate", "1", "2024-02-26", "unknown_unit", 1],
        ["rate", "1", "2024-12-20", "window_open", 2],
    ]


def test_a_forecast_of_a_lower_level_counts_its_own_cases(dataset):
    served = served_frame([["micro", "1", "2024-02-26", 28.0, "M1", 0.5, 0.5, 0.0, 1.0]]).assign(level="microgrid")
    scores, unscored = score_served(served, dataset)
    assert scores["observed"].tolist() == [1.0] and unscored.empty


def test_data_that_ends_before_every_window_closes_scores_nothing_and_says_so(dataset):
    served = served_frame([["rate", "1", "2024-02-26", 28.0, g, 0.5, 0.5, 0.0, 1.0] for g in ("G1", "G2")])
    with pytest.warns(UserWarning, match=r"2 forecast\(s\) whose window had not closed"):
        scores, unscored = score_served(served, dataset.replace(as_of=pd.Timestamp("2024-03-01")))
    assert scores.empty and list(scores.columns[:4]) == ["model", "version", "as_of", "window_end"]
    assert unscored[["reason", "forecasts"]].values.tolist() == [["window_open", 2]]


def test_bad_forecasts_are_refused_naming_the_problem(dataset):
    served = served_frame([["rate", "1", "2024-02-26", 28.0, "G1", 0.5, 0.5, 0.0, 1.0]])
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['rank'\]"):
        score_served(served.drop(columns="rank"), dataset)
    with pytest.raises(ValueError, match="repeat a model, version, as_of and grid_id"):
        score_served(pd.concat([served, served]), dataset)
    with pytest.raises(ValueError, match="cusum_shift must be a ratio > 1"):
        MonitorSettings(cusum_shift=0.8)


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


def test_observed_counts_are_the_backtests_labels(tiny):
    cutoffs = pd.date_range("2023-06-05", periods=3, freq="W-MON")
    for target in (None, {"categories": ("family", "neighbour_noise"), "min_severity": 2}, {"escalations": True}):
        panel = build_grid_panel(tiny, cutoffs=cutoffs, horizon=28, level="community", target=target)
        counts = observed_counts(tiny, cutoffs, 28, level="community", target=target)
        labels = counts.set_index(["grid_id", "as_of"])["observed"].rename_axis(["grid_id", "cutoff"])
        pd.testing.assert_series_equal(labels.sort_index(), panel.y_count.sort_index(), check_names=False)
        assert labels.sum() > 0


def inflate(dataset, start, share=0.5, seed=1):
    """The cases multiplied by ``1 + share`` from ``start``: a random ``share`` of them
    duplicated, with new case ids (a new reporting platform)."""
    cases = dataset.cases
    after = cases[cases["reported_at"] >= start]
    extra = after[np.random.default_rng(seed).random(len(after)) < share].copy()
    extra["case_id"] = extra["case_id"].astype(str) + "-again"
    if "dispute_id" in extra:  # more disputes, not more reports of the same ones
        extra["dispute_id"] = extra["case_id"]
    return dataset.replace(cases=pd.concat([cases, extra], ignore_index=True))


WEEKS = pd.date_range("2024-06-03", periods=12, freq="W-MON")
CHANGE = WEEKS[4]


@pytest.fixture(scope="module")
def small():
    return simulate_district("small", seed=0)


@pytest.fixture(scope="module")
def rate(small):
    return train(truncate(small, WEEKS[0]), model=HistoricalRateBaseline(), horizon=28, track=False)


def serve(dataset, trained):
    """A forecast every week from data as it stood then, as a service records them."""
    answers = [predict(truncate(dataset, week), as_of=week, model=trained, drivers=0) for week in WEEKS]
    return pd.concat(answers, ignore_index=True).assign(model="rate", version="1")


@pytest.fixture(scope="module")
def worlds(small, rate):
    """The unchanged and the changed world, each with the forecasts served in it."""
    changed = inflate(small, CHANGE)
    return {"unchanged": (small, serve(small, rate)), "changed": (changed, serve(changed, rate))}


@pytest.fixture(scope="module")
def unchanged(worlds):
    return score_served(worlds["unchanged"][1], worlds["unchanged"][0])[0]


@pytest.fixture(scope="module")
def unchanged_weeks(worlds):
    return first_weeks(worlds["unchanged"][1], worlds["unchanged"][0])


@pytest.fixture(scope="module")
def changed_weeks(worlds):
    return first_weeks(worlds["changed"][1], worlds["changed"][0])


def test_first_weeks_count_each_forecasts_first_week_once(worlds, unchanged_weeks):
    dataset, served = worlds["unchanged"]
    assert list(unchanged_weeks["as_of"]) == list(WEEKS) and (unchanged_weeks["units"] == 256).all()
    assert (unchanged_weeks["window_end"] == unchanged_weeks["as_of"] + pd.Timedelta(days=7)).all()
    reported = first_reports(dataset.cases)["reported_at"]  # monitoring counts disputes
    for week in unchanged_weeks.itertuples():
        assert week.observed == ((reported >= week.as_of) & (reported < week.window_end)).sum()
        assert week.expected == pytest.approx(served.loc[served["as_of"] == week.as_of, "expected_count"].sum() / 4)


def test_the_cusum_fires_within_two_weeks_of_more_cases_and_is_silent_without(unchanged_weeks, changed_weeks):
    assert calibration_alarms(unchanged_weeks).empty
    alarms = calibration_alarms(changed_weeks)
    assert "calibration_cusum" in set(alarms["kind"]) and list(alarms.columns) == ALARM_COLUMNS
    assert alarms["week"].min() >= CHANGE  # a week that saw the change
    assert alarms["known_at"].min() <= CHANGE + pd.Timedelta(weeks=2)
    cusum = alarms[alarms["kind"] == "calibration_cusum"]
    assert cusum["message"].str.startswith("more cases than forecast").all()
    later = changed_weeks.set_index("as_of").loc[CHANGE:, "oe_ratio"]
    assert later.mean() > unchanged_weeks.set_index("as_of").loc[CHANGE:, "oe_ratio"].mean() * 1.3  # the change


def test_served_alarms_gathers_them_in_the_order_they_could_be_known(unchanged, changed_weeks):
    forecasts = pd.DataFrame({"model": "rate", "version": "1", "as_of": WEEKS[-1], "alerts": ["cold_start", ""]})
    band = {"rate": (unchanged["hit_rate_at_5pct"].max() + 0.01, 1.0)}
    alarms = served_alarms(unchanged, changed_weeks, forecasts, bands=band, settings=MonitorSettings(weeks=2))
    assert {"calibration_cusum", "hit_rate", "cold_start"} <= set(alarms["kind"])
    assert alarms["known_at"].is_monotonic_increasing and alarms["message"].str.len().gt(40).all()


def test_the_cusum_also_fires_on_fewer_cases(unchanged_weeks):
    unchanged = unchanged_weeks
    observed = unchanged["observed"]
    fewer = unchanged.assign(observed=observed.where(unchanged["as_of"] < CHANGE, observed / 2))
    alarms = calibration_alarms(fewer)
    assert len(alarms) and alarms.loc[alarms["kind"] == "calibration_cusum", "message"].str.startswith("fewer").all()


def test_a_hit_rate_below_its_band_for_weeks_in_a_row(unchanged):
    typical = unchanged["hit_rate_at_5pct"]
    assert hit_rate_alarms(unchanged, {"rate": (typical.min() - 0.01, 1.0)}).empty
    alarms = hit_rate_alarms(unchanged, {("rate", "1"): (typical.max() + 0.01, 1.0)}, MonitorSettings(weeks=3))
    assert alarms["week"].tolist() == [WEEKS[2]]  # one alarm at the third week of the run
    assert "below its backtest band" in alarms["message"].iloc[0]
    assert hit_rate_alarms(unchanged, {"other": (1.0, 1.0)}).empty  # no band for this model


def test_the_backtest_expectation_reads_the_chosen_models_fold_scores():
    evidence = {
        "chosen": "GBMCount",
        "folds": [
            {"cutoff": f"2024-0{i}-01", "hit_rate_at_5pct": h} for i, h in enumerate([0.28, 0.30, 0.32], start=1)
        ],
    }
    assert backtest_band(evidence, sigmas=2) == pytest.approx((0.26, 0.34))
    assert backtest_expectation(evidence).loc["hit_rate_at_5pct", "folds"] == 3
    assert backtest_band(None) is None and backtest_expectation({"chosen": "old"}).empty  # saved before fold scores
    assert backtest_band(evidence, metric="pai_at_5pct") is None


def test_cold_start_share_above_its_threshold():
    forecasts = pd.DataFrame(
        {
            "model": "m",
            "version": "1",
            "as_of": pd.to_datetime(["2024-01-01"] * 4 + ["2024-01-08"] * 4),
            "alerts": ["cold_start", "", "", "", "cold_start;no_history", "cold_start", "no_history", ""],
        }
    )
    alarms = cold_start_alarms(forecasts, MonitorSettings(cold_start_share=0.3))
    assert alarms["week"].tolist() == [pd.Timestamp("2024-01-08")] and alarms["value"].tolist() == [0.5]


def test_psi_is_near_zero_for_one_distribution_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    reference = rng.poisson(3.0, 20_000).astype(float)
    assert population_stability_index(reference, rng.poisson(3.0, 5_000)) < 0.01
    assert population_stability_index(reference, rng.poisson(4.5, 5_000)) > 0.25
    with_gaps = np.where(rng.random(5_000) < 0.5, np.nan, rng.poisson(3.0, 5_000))
    assert population_stability_index(reference, with_gaps) > 1  # half missing, where the reference has none
    assert population_stability_index(np.zeros(100), np.zeros(50)) == 0  # a constant feature: one bin
    with pytest.raises(ValueError, match="needs values on both sides"):
        population_stability_index(reference, [])


def test_input_drift_names_the_drifting_features(small, rate):
    at = CHANGE + pd.Timedelta(weeks=4)
    reference, current = drift_features(rate.builder, small, at)
    world = drift_features(rate.builder, inflate(small, CHANGE, share=1.0), at)[1]
    assert len(reference) == len(rate.builder.cutoffs) * len(current)
    assert list(reference.columns) == list(current.columns) == rate.feature_names
    calm, doubled = feature_drift(reference, current), feature_drift(reference, world)
    assert calm["drifted"].sum() <= 1 and doubled["drifted"].sum() >= 5
    assert np.isinf(calm.loc[["month", "days_to_holiday"], "usual"]).all()  # clocks never drift
    alarms, drift = input_drift_alarms(reference, world, model="rate", version="1", as_of=at)
    top = drift.index[:3]
    assert len(alarms) == 1 and all(name in alarms["message"].iloc[0] for name in top)
    assert doubled.loc["count_28d", "drifted"] and not calm.loc["count_28d", "drifted"]  # the unit's own cases
    assert alarms["value"].iloc[0] == drift["psi"].iloc[0] > 0.25
