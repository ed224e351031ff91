"""The backtest: same folds for every model, the embargo, the oracle, and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from riskmodel import Dataset
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.models import GBMCount, HistoricalRateBaseline, LastPeriodBaseline, LogisticRisk, SpikeDetector
from riskmodel.models.protocol import RiskMixin

CUTOFFS = ["2023-09-04", "2023-10-02", "2023-10-30"]
FITS: list[pd.Timestamp] = []


class Spy(ClassifierMixin, RiskMixin, BaseEstimator):
    """Records the latest training cutoff of every fit; predicts the training rate."""

    def fit(self, X, y):
        FITS.append(X.index.get_level_values("cutoff").max())
        self.rate_ = float(np.mean(y))
        self.classes_ = np.array([0.0, 1.0])
        return self

    def predict_expected(self, X):
        return np.full(len(X), -np.log1p(-min(self.rate_, 0.999)))


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


def _run(data, models, **kw):
    kw = {"cutoffs": CUTOFFS, "horizon": 28, "track": False, "progress": False} | kw
    return backtest(data, models, **kw)


def test_every_model_gets_the_same_folds_and_the_oracle_its_ratios(tiny):
    result = _run(
        tiny,
        {
            "hist": HistoricalRateBaseline(),
            "last": LastPeriodBaseline(),
            "count": GBMCount(n_estimators=20, min_child_samples=5, n_jobs=1),
        },
    )
    folds = result.folds
    assert set(folds["model"]) == {"oracle", "hist", "last", "count"}
    per_model = folds.pivot(index="fold", columns="model", values="cutoff")
    assert (per_model.nunique(axis=1) == 1).all()
    assert list(per_model["hist"]) == list(pd.to_datetime(CUTOFFS))
    train_rows = folds[folds["model"] != "oracle"].pivot(index="fold", columns="model", values="train_rows")
    assert (train_rows.nunique(axis=1) == 1).all()
    board = result.leaderboard
    for metric in ("roc_auc", "hit_rate_at_5pct", "brier", "ece", "pai_at_5pct", "pei_star_at_5pct", "rri_at_5pct"):
        assert board.loc["hist", f"{metric}_oracle_ratio"] == pytest.approx(
            board.loc["hist", metric] / board.loc["oracle", metric]
        )
        assert board.loc["last", metric] == pytest.approx(folds.loc[folds["model"] == "last", metric].mean())
    assert (board["folds"] == 3).all()
    assert board["psi_score"].drop("oracle").between(0, 5).all() and np.isnan(board.loc["oracle", "psi_score"])
    assert result.best != "oracle"
    preds = result.predictions
    assert len(preds) == 4 * 3 * 25  # models x folds x grids
    oracle = preds[preds["model"] == "oracle"].xs(pd.Timestamp(CUTOFFS[0]), level="cutoff")
    truth = tiny.truth.expected_counts(CUTOFFS[0], 28).reindex(oracle.index)
    np.testing.assert_allclose(oracle["expected"], truth)


def test_no_training_label_overlaps_the_test_window(tiny):
    FITS.clear()
    _run(tiny, {"spy": Spy()})
    folds, inner = FITS[0::2], FITS[1::2]  # each fold's fit, then the one its dispersion is fitted out of sample
    assert len(folds) == len(inner) == 3
    for latest, early, cutoff in zip(folds, inner, pd.to_datetime(CUTOFFS), strict=True):
        assert latest + pd.Timedelta(days=28) <= cutoff
        assert latest + pd.Timedelta(days=35) > cutoff  # and every closed week is used
        assert early + pd.Timedelta(days=28) <= latest  # the dispersion's rows, too, are after an embargo


def test_refit_every_reuses_the_last_fit(tiny):
    FITS.clear()
    _run(tiny, {"spy": Spy()}, refit_every=2)
    assert len(FITS) == 2 * 2  # folds 0 and 2, each with its dispersion's fit


def test_a_model_with_its_own_holdout_costs_no_extra_fit(tiny, monkeypatch):
    calls = []
    fit = GBMCount.fit
    monkeypatch.setattr(GBMCount, "fit", lambda self, X, y: calls.append(len(X)) or fit(self, X, y))
    result = _run(tiny, {"count": GBMCount(n_estimators=20, min_child_samples=5, n_jobs=1)}, refit_every=3)
    assert len(calls) == 1  # the dispersion is fitted on the calibration slice's forecasts
    dispersion = result.predictions.loc[result.predictions["model"] == "count", "dispersion"]
    assert dispersion.nunique() == 1 and dispersion.iloc[0] >= 0


def test_same_seed_same_result(tiny):
    models = {"logistic": LogisticRisk(), "hist": HistoricalRateBaseline()}
    a, b = _run(tiny, models), _run(tiny, models)
    pd.testing.assert_frame_equal(a.leaderboard, b.leaderboard)


def test_real_data_has_no_oracle(tiny):
    plain = Dataset(cases=tiny.cases, grids=tiny.grids, grid_history=tiny.grid_history, as_of=tiny.as_of)
    result = _run(plain, [HistoricalRateBaseline()])
    assert list(result.leaderboard.index) == ["HistoricalRateBaseline"]
    assert not any(c.endswith("_oracle_ratio") for c in result.leaderboard)


def test_streets_spread_and_start_end_frequency():
    small = simulate_district("small", seed=0)
    result = backtest(
        small,
        [HistoricalRateBaseline()],
        start="2024-09-02",
        end="2024-10-28",
        frequency="4W-MON",
        horizon=28,
        track=False,
        progress=False,
    )
    assert len(result.folds) == 2 * 3
    assert result.leaderboard["hit_rate_at_5pct_street_std"].notna().all()
    assert (result.leaderboard["roc_auc_street_std"] > 0).all()


def test_escalation_target(tiny):
    result = _run(tiny, [LogisticRisk()], target="escalation", escalation_days=30)
    assert result.target == "escalation"
    assert set(result.leaderboard.index) == {"oracle", "LogisticRisk"}
    assert {"roc_auc", "brier", "ece", "roc_auc_oracle_ratio"} <= set(result.leaderboard.columns)
    cases = result.predictions.index.get_level_values("reported_at")
    assert cases.min() >= pd.Timestamp(CUTOFFS[0]) and cases.max() < pd.Timestamp(CUTOFFS[-1]) + pd.Timedelta(days=28)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2023-09-04"}, "either cutoffs or start/end"),
        ({"cutoffs": None}, "the test cutoffs are required"),
        ({"cutoffs": ["2023-12-25"]}, r"label windows .* had not closed"),
        ({"cutoffs": ["2023-04-03"], "train_start": "2023-04-03"}, "no training rows"),
        ({"refit_every": 0}, "refit_every must be a whole number >= 1"),
    ],
)
def test_bad_input(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _run(tiny, [HistoricalRateBaseline()], **kwargs)


def test_bad_models(tiny):
    with pytest.raises(ValueError, match="no models"):
        _run(tiny, {})
    with pytest.raises(ValueError, match="'oracle' is the name of the simulator's truth"):
        _run(tiny, {"oracle": HistoricalRateBaseline()})


def test_waves_target_scores_detectors_on_the_injected_waves():
    small = simulate_district("small", seed=0)
    result = backtest(
        small,
        {"spike": SpikeDetector(), "mute": SpikeDetector(alpha=1e-300)},
        start="2023-04-03",
        end="2024-12-16",
        frequency="13W-MON",
        target="waves",
        track=False,
        progress=False,
    )
    board = result.leaderboard
    assert result.target == "waves" and list(board.index) == ["spike", "mute"]
    assert board.loc["spike", "wave_detection_rate"] >= 0.8
    assert board.loc["spike", "false_alarms_per_1000_unit_weeks"] <= 5
    assert board.loc["mute", "wave_detection_rate"] == 0 and board.loc["mute", "false_alarms_per_1000_unit_weeks"] == 0
    waves = small.truth.waves
    first, last = result.config["cutoffs"][0], result.config["cutoffs"][-1]  # fold i: [c_i, c_i+1)
    in_folds = ((waves["start"] >= first) & (waves["start"] < last)).sum()
    assert result.folds.groupby("model")["waves"].sum().eq(in_folds).all()
    with pytest.raises(ValueError, match="needs a simulated district"):
        plain = Dataset(cases=small.cases, grids=small.grids, grid_history=small.grid_history, as_of=small.as_of)
        backtest(plain, [SpikeDetector()], cutoffs=CUTOFFS, target="waves", track=False, progress=False)


def test_escalation_folds_must_close(tiny):
    with pytest.raises(ValueError, match=r"escalation windows of 30 days that close on .* after the end of the data"):
        _run(tiny, [LogisticRisk()], cutoffs=["2023-11-06", "2023-11-27"], target="escalation")


def test_evaluation_imports_without_mlflow():
    code = "import sys, riskmodel, riskmodel.evaluation; assert 'mlflow' not in sys.modules, 'mlflow was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_tracker_gets_the_finished_result(tiny):
    class Recorder:
        def __init__(self):
            self.seen = []

        def log_backtest(self, result, dataset, *, experiment):
            self.seen.append((result, dataset, experiment))
            return "run-1"

        def log_model(self, trained, *, example, experiment, register):
            raise AssertionError("a backtest logs no model")

    recorder = Recorder()
    result = backtest(
        tiny,
        {"hist": HistoricalRateBaseline()},
        cutoffs=["2023-10-02"],
        horizon=28,
        experiment="exp",
        progress=False,
        tracker=recorder,
    )
    assert result.run_id == "run-1" and recorder.seen == [(result, tiny, "exp")]
