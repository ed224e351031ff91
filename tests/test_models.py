"""The grid-risk models: scikit-learn's checks, our protocol, and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from riskmodel.evaluation import metrics
from riskmodel.features import build_grid_panel
from riskmodel.models import (
    EscalationClassifier,
    GBMCount,
    GBMRisk,
    HistoricalRateBaseline,
    KDEBaseline,
    LastPeriodBaseline,
    LogisticRisk,
    ProfileOutlier,
    Scorecard,
)
from riskmodel.models.calibration import split_latest
from riskmodel.models.classifiers import _odds

FAST = dict(n_estimators=20, min_child_samples=5, n_jobs=1)  # one thread: the suite runs on two workers


def _deviations(estimator) -> dict[str, str]:
    if isinstance(estimator, GBMCount):
        return {"check_regressors_no_decision_function":
                "the protocol gives every grid-risk model predict_proba, here P(count >= 1)"}
    return {}


# Calibration is switched off here: the checks' small data leave no slice to calibrate on.
@parametrize_with_checks([LogisticRisk(calibration=None), GBMRisk(calibration=None, **FAST),
                          GBMCount(calibration=None, **FAST),
                          EscalationClassifier(calibration=None, **FAST), Scorecard(), ProfileOutlier(n_estimators=20)],
                         expected_failed_checks=_deviations)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def panel():
    from riskmodel.datasets import simulate_district

    district = simulate_district("small", seed=0)
    built = build_grid_panel(district, cutoffs={"start": "2023-04-03", "end": "2024-11-04", "freq": "2W-MON"},
                             horizon=28)
    truth = pd.concat({c: district.truth.expected_counts(c, 28) for c in
                       built.X.index.get_level_values("cutoff").unique()}, names=["cutoff", "grid_id"])
    return built, truth.swaplevel().reindex(built.X.index)


MODELS = [
    (LastPeriodBaseline(), "y"),
    (HistoricalRateBaseline(), "y"),
    (HistoricalRateBaseline(half_life=60), "y"),
    (KDEBaseline(bandwidth_m=700, half_life=60), "y"),
    (LogisticRisk(), "y"),
    (GBMRisk(n_estimators=60, n_jobs=1), "y"),
    (GBMCount(n_estimators=60, n_jobs=1), "y_count"),
    (Scorecard(), "y"),
]
IDS = [f"{type(m).__name__}-{i}" for i, (m, _) in enumerate(MODELS)]


@pytest.mark.parametrize("model, label", MODELS, ids=IDS)
def test_protocol_clone_pickle_seed_and_sign(panel, model, label):
    built, truth = panel
    known = built.label_known.to_numpy()
    X, y = built.X[known], getattr(built, label)[known]
    fitted = clone(model).fit(X, y)
    p, expected = fitted.predict_proba(X), fitted.predict_expected(X)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(axis=1), 1) and ((p >= 0) & (p <= 1)).all()
    assert expected.shape == (len(X),) and (expected >= 0).all()
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), p)
    np.testing.assert_array_equal(clone(model).fit(X, y).predict_proba(X), p)  # same seed, same model
    # Higher is riskier: scores follow the simulator's true expected counts.
    assert spearmanr(p[:, 1], truth[known]).statistic > 0.4
    assert spearmanr(expected, truth[known]).statistic > 0.4


def test_probabilities_are_calibrated_on_the_latest_cutoffs(panel):
    built, _ = panel
    fit_rows, calibrate_rows = split_latest(built.X, 0.2)
    cutoffs = built.X.index.get_level_values("cutoff")
    assert cutoffs[fit_rows].max() < cutoffs[calibrate_rows].min()  # whole cutoffs, latest last
    assert abs(len(calibrate_rows) / len(built.X) - 0.2) < 0.05
    shuffled = built.X.sample(frac=1, random_state=0)
    fit_again, calibrate_again = split_latest(shuffled, 0.2)
    assert set(shuffled.index[calibrate_again]) == set(built.X.index[calibrate_rows])
    known = built.label_known.to_numpy()
    model = LogisticRisk().fit(built.X[known], built.y[known])
    p = model.predict_proba(built.X[known])[:, 1]
    assert abs(p.mean() - built.y[known].mean()) < 0.05


def test_count_model_calibrates_its_probability_and_keeps_its_counts(panel):
    built, _ = panel
    cutoff, known = built.X.index.get_level_values("cutoff"), built.label_known.to_numpy()
    train, test = known & (cutoff < "2024-06-01"), known & (cutoff >= "2024-07-01")
    calibrated = GBMCount(n_estimators=60, n_jobs=1).fit(built.X[train], built.y_count[train])
    poisson = GBMCount(n_estimators=60, n_jobs=1, calibration=None).fit(built.X[train], built.y_count[train])
    expected = poisson.predict_expected(built.X[test])
    np.testing.assert_array_equal(calibrated.predict_expected(built.X[test]), expected)  # fitted on all rows
    np.testing.assert_allclose(poisson.predict_proba(built.X[test])[:, 1], 1 - np.exp(-expected))
    p = calibrated.predict_proba(built.X[test])[:, 1]
    order = np.argsort(expected, kind="stable")
    assert (np.diff(p[order]) >= 0).all()  # the sigmoid keeps the ranking
    busy = calibrated.calibrator_.transform(_odds(np.array([5.0, 14.0, 20.0, 40.0])))
    assert (np.diff(busy) > 0).all() and busy[-1] < 1  # even the busiest units keep their order
    # Bursts make the Poisson law overstate P(count >= 1); the calibrated probability does not.
    truth = built.y_count[test]
    ece_poisson = metrics.expected_calibration_error(truth, 1 - np.exp(-expected))
    assert metrics.expected_calibration_error(truth, p) < ece_poisson / 2
    assert abs(p.mean() - built.y[test].mean()) < 0.05 < abs((1 - np.exp(-expected)).mean() - built.y[test].mean())


def test_bad_input(panel):
    built, _ = panel
    known = built.label_known.to_numpy()
    X, y = built.X[known], built.y[known]
    model = LogisticRisk().fit(X, y)
    with pytest.raises(ValueError, match="count_7d"):
        model.predict_proba(X.drop(columns=["count_7d"]))
    with pytest.raises(ValueError, match="surprise"):
        model.predict_proba(X.assign(surprise=1.0))
    with pytest.raises(ValueError, match="order"):
        model.predict_proba(X[X.columns[::-1]])
    with pytest.raises(ValueError, match=r"needs the panel column\(s\) \['count_28d'\]"):
        LastPeriodBaseline().fit(X.drop(columns=["count_28d"]))
    for unfitted in (LogisticRisk(), GBMRisk(), GBMCount(), HistoricalRateBaseline()):
        with pytest.raises(NotFittedError):
            unfitted.predict_proba(X)
    with pytest.raises(ValueError, match="empty training set"):
        GBMRisk().fit(X.iloc[:0], y.iloc[:0])
    with pytest.raises(ValueError, match="empty training set"):
        LastPeriodBaseline().fit(X.iloc[:0])
    with pytest.raises(ValueError, match="one class only"):
        LogisticRisk().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="labels are missing"):
        GBMRisk().fit(X, y.where(y.index.get_level_values("grid_id") != "G001"))
    quiet_end = y.to_numpy().copy()
    quiet_end[split_latest(X, 0.2)[1]] = 0
    with pytest.raises(ValueError, match="calibration slice"):
        LogisticRisk().fit(X, quiet_end)
