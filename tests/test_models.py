"""The grid-risk models: scikit-learn's checks, our protocol, and bad input."""

from __future__ import annotations

import inspect
import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_estimator, check_param_validation, parametrize_with_checks

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
    SmoothedRateBaseline,
    SpikeDetector,
    TierPolicy,
    TimeWeightedRateBaseline,
    UpliftRegressor,
)
from riskmodel.models.calibration import split_latest
from riskmodel.models.classifiers import count_odds

FAST = dict(n_estimators=20, min_child_samples=5, n_jobs=1)  # one thread: the suite runs on two workers


def _deviations(estimator) -> dict[str, str]:
    if isinstance(estimator, GBMCount):
        return {
            "check_regressors_no_decision_function": (
                "the protocol gives every grid-risk model predict_proba, here P(count >= 1)"
            )
        }
    return {}


# Calibration is switched off here: the checks' small data leave no slice to calibrate on.
@parametrize_with_checks(
    [
        LogisticRisk(calibration=None),
        GBMRisk(calibration=None, **FAST),
        GBMCount(calibration=None, **FAST),
        EscalationClassifier(calibration=None, **FAST),
        Scorecard(),
        ProfileOutlier(n_estimators=20),
    ],
    expected_failed_checks=_deviations,
)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


# The baselines and SpikeDetector read named panel columns (count_28d, horizon_days,
# count_7d_<category>, ...) from a DataFrame and refuse anything else with a TypeError that
# says so; the checks below feed bare NumPy arrays (or sparse matrices, lists, unnamed
# frames) and fail on that alone. The baselines also learn nothing from y (fit only checks
# the columns), so the checks of bad targets would not see y refused even with a panel.
_NUMPY = "feeds bare NumPy arrays; {name} reads named panel columns from a DataFrame (TypeError otherwise)"
_SPARSE = "feeds sparse data; {name} reads named panel columns from a DataFrame (TypeError otherwise)"
_NO_Y = "feeds bare NumPy arrays, which {name} refuses (TypeError); and a baseline learns nothing from y"
_PANEL_READER_DEVIATIONS = {
    **dict.fromkeys(
        [
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_positive_only_tag_during_fit",
            "check_estimators_dtypes",
            "check_complex_data",
            "check_dtype_object",
            "check_estimators_empty_data_messages",
            "check_pipeline_consistency",
            "check_estimators_nan_inf",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_classifier_data_not_an_array",
            "check_classifiers_classes",
            "check_supervised_y_2d",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1sample",
            "check_fit2d_1feature",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit1d",
            "check_fit2d_predict1d",
            "check_requires_y_none",
        ],
        _NUMPY,
    ),
    **dict.fromkeys(
        ["check_estimator_sparse_tag", "check_estimator_sparse_array", "check_estimator_sparse_matrix"], _SPARSE
    ),
}
_BASELINE_DEVIATIONS = dict.fromkeys(
    [
        "check_classifiers_one_label",
        "check_classifiers_train",
        "check_classifiers_regression_target",
        "check_supervised_y_no_nan",
        "check_classifier_not_supporting_multiclass",
    ],
    _NO_Y,
)
_COUNT_BASELINE_DEVIATIONS = dict.fromkeys(
    [
        "check_regressors_train",
        "check_regressor_data_not_an_array",
        "check_regressors_no_decision_function",
        "check_supervised_y_no_nan",
        "check_regressors_int",
    ],
    _NUMPY,
)


def _panel_reader_deviations(estimator) -> dict[str, str]:
    name = type(estimator).__name__
    extra = _BASELINE_DEVIATIONS if is_classifier(estimator) else {}
    extra = _COUNT_BASELINE_DEVIATIONS if is_regressor(estimator) else extra
    deviations = _PANEL_READER_DEVIATIONS | extra
    return {check: reason.format(name=name) for check, reason in deviations.items()}


# check_estimator runs the checks parametrize_with_checks would, with the same list of
# deviations. Here it is the faster: pytest formats the traceback of every expected
# failure parametrize_with_checks marks xfail, parsing scikit-learn's estimator_checks
# module each time (about 60 s for these five estimators on two cores).
@pytest.mark.parametrize(
    "estimator",
    [
        LastPeriodBaseline(),
        HistoricalRateBaseline(),
        HistoricalRateBaseline(half_life=14),
        KDEBaseline(),
        TimeWeightedRateBaseline(),
        SmoothedRateBaseline(),
        SpikeDetector(),
    ],
    ids=repr,
)
def test_scikit_learn_checks_of_panel_readers(estimator):
    results = check_estimator(
        estimator, expected_failed_checks=_panel_reader_deviations(estimator), on_fail=None, on_skip=None
    )
    failed = {
        r["check_name"]: f"{type(r['exception']).__name__}: {r['exception']}"
        for r in results
        if r["status"] == "failed"
    }
    assert not failed
    listed_yet_passed = {r["check_name"] for r in results if r["expected_to_fail"] and r["status"] == "passed"}
    assert not listed_yet_passed  # the list of deviations holds only checks that fail
    assert sum(r["status"] == "passed" for r in results) >= 5  # clone, repr, get_params, set_params, ...


# Every estimator of riskmodel.models; TierPolicy has no fit (see tests/test_tiers.py).
ESTIMATORS = [
    HistoricalRateBaseline,
    LastPeriodBaseline,
    KDEBaseline,
    TimeWeightedRateBaseline,
    SmoothedRateBaseline,
    LogisticRisk,
    GBMRisk,
    GBMCount,
    EscalationClassifier,
    Scorecard,
    ProfileOutlier,
    SpikeDetector,
    TierPolicy,
    UpliftRegressor,
]

#: A bad value of every parameter (of every estimator that has a parameter of that name).
BAD_VALUES = {
    "window": 0,
    "half_life": -1,
    "bandwidth_m": -1,
    "half_lives": "60",
    "top": 0.0,
    "C": 0.0,
    "max_iter": 0,
    "calibration": "platt",
    "calibration_fraction": 1.0,
    "n_estimators": 0,
    "learning_rate": 0.0,
    "num_leaves": 1,
    "min_child_samples": -1,
    "subsample": 0.0,
    "colsample_bytree": 1.5,
    "reg_lambda": -1.0,
    "random_state": "seed",
    "n_jobs": 1.5,
    "early_stopping_rounds": -1,
    "n_bins": 0,
    "min_bin_share": 1.5,
    "base_score": "600",
    "base_odds": 0.0,
    "pdo": -20.0,
    "contamination": 0.6,
    "baseline": 0,
    "long": 364.0,
    "alpha": 2.0,
    "min_count": -1,
    "dispersion": -0.1,
    "cut_points": 0.5,
    "capacity": -1,
    "share": 1.5,
    "saturated_share": 0.5,
    "learner": "s",
}


def _parameters(cls) -> list[str]:
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_constraints_cover_every_init_parameter(cls):
    assert set(cls._parameter_constraints) == set(_parameters(cls))
    assert set(cls().get_params()) == set(_parameters(cls))


@pytest.mark.parametrize(
    "cls, parameter",
    [(cls, p) for cls in ESTIMATORS for p in _parameters(cls)],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_a_bad_parameter_is_refused_by_name(cls, parameter):
    estimator = cls(**{parameter: BAD_VALUES[parameter]})
    X = pd.DataFrame({"count_28d": [1.0, 2.0], "horizon_days": [28.0, 28.0]})
    match = rf"The '{parameter}' parameter of {cls.__name__} must be"
    with pytest.raises(InvalidParameterError, match=match):
        estimator.assign(pd.Series([0.5])) if cls is TierPolicy else estimator.fit(X, np.array([0, 1]))


@pytest.mark.parametrize("cls", [c for c in ESTIMATORS if hasattr(c, "fit")], ids=lambda cls: cls.__name__)
def test_scikit_learn_parameter_validation(cls):
    """scikit-learn's own check: a value of no valid type, and a value of a valid type out
    of every constraint's range, are refused by fit with InvalidParameterError."""
    check_param_validation(cls.__name__, cls())


def test_kde_bandwidth_is_checked_at_fit():
    X = pd.DataFrame({"decay_14d": [1.0], "horizon_days": [28.0], "lon": [120.0], "lat": [30.0]})
    with pytest.raises(InvalidParameterError, match="'bandwidth_m' parameter of KDEBaseline"):
        KDEBaseline(bandwidth_m=-1).fit(X)
    KDEBaseline(bandwidth_m=700).fit(X)  # an int or a float


def test_shipped_configurations_build():
    """Every model and tier policy of configs/*.yaml passes the constraints."""
    from pathlib import Path

    from riskmodel.config import load_config

    for path in sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml")):
        if path.name in ("monitoring.yaml", "sources.yaml"):  # the monitor's thresholds, ingest's sources
            continue
        config = load_config(path)
        for estimator in config.estimators().values():
            estimator._validate_params()
        config.tiers().assign(pd.Series([0.5]))


@pytest.fixture(scope="module")
def panel():
    from riskmodel.datasets import simulate_district

    district = simulate_district("small", seed=0)
    built = build_grid_panel(
        district, cutoffs={"start": "2023-04-03", "end": "2024-11-04", "freq": "2W-MON"}, horizon=28
    )
    truth = pd.concat(
        {c: district.truth.expected_counts(c, 28) for c in built.X.index.get_level_values("cutoff").unique()},
        names=["cutoff", "grid_id"],
    )
    return built, truth.swaplevel().reindex(built.X.index)


MODELS = [
    (LastPeriodBaseline(), "y"),
    (HistoricalRateBaseline(), "y"),
    (HistoricalRateBaseline(half_life=60), "y"),
    (KDEBaseline(bandwidth_m=700, half_life=60), "y"),
    (TimeWeightedRateBaseline(), "y_count"),
    (SmoothedRateBaseline(), "y_count"),
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
    latest = split_latest(built.X[known], 0.2)[1]
    assert abs(p[latest].mean() - built.y[known].to_numpy()[latest].mean()) < 0.02
    # Earlier rows drift a little: the slow decays (730 days) still grow over the two simulated years.
    assert abs(p.mean() - built.y[known].mean()) < 0.1


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
    busy = calibrated.calibrator_.transform(count_odds(np.array([5.0, 14.0, 20.0, 40.0])))
    assert (np.diff(busy) > 0).all() and busy[-1] < 1  # even the busiest units keep their order
    # Bursts make the Poisson law overstate P(count >= 1); the calibrated probability does not.
    truth = built.y_count[test]
    ece_poisson = metrics.expected_calibration_error(truth, 1 - np.exp(-expected))
    assert metrics.expected_calibration_error(truth, p) < ece_poisson / 2
    assert abs(p.mean() - built.y[test].mean()) < 0.05 < abs((1 - np.exp(-expected)).mean() - built.y[test].mean())


def test_a_count_model_set_up_from_its_parts_is_the_fitted_one(panel):
    built, _ = panel
    known = built.label_known.to_numpy()
    X, y = built.X[known], built.y_count[known]
    fitted = GBMCount(n_estimators=30, n_jobs=1).fit(X, y)
    model = GBMCount(n_estimators=30, n_jobs=1)
    fit_rows, calibrate_rows = split_latest(X, model.calibration_fraction)
    early = lgb.LGBMRegressor(**model.lightgbm_params()).fit(X.iloc[fit_rows].to_numpy(float), y.iloc[fit_rows])
    parts = model.fit_from_parts(
        estimator=lgb.LGBMRegressor(**model.lightgbm_params()).fit(X.to_numpy(float), y),
        feature_names=list(X.columns),
        calibration_scores=early.predict(X.iloc[calibrate_rows].to_numpy(float)),
        calibration_counts=y.iloc[calibrate_rows].to_numpy(),
    )
    assert parts is model and model.n_features_in_ == fitted.n_features_in_
    np.testing.assert_array_equal(model.feature_names_in_, fitted.feature_names_in_)
    np.testing.assert_array_equal(model.predict_proba(X), fitted.predict_proba(X))
    with pytest.raises(ValueError, match="needs the calibration slice"):
        GBMCount().fit_from_parts(estimator=fitted.estimator_, feature_names=list(X.columns))
    plain = GBMCount(calibration=None).fit_from_parts(estimator=fitted.estimator_, feature_names=None)
    assert plain.calibrator_ is None and plain.n_features_in_ == X.shape[1]
    assert not hasattr(plain, "feature_names_in_")


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
        LastPeriodBaseline(window=28).fit(X.drop(columns=["count_28d"]))
    for unfitted in (LogisticRisk(), GBMRisk(), GBMCount(), HistoricalRateBaseline()):
        with pytest.raises(NotFittedError):
            unfitted.predict_proba(X)
    with pytest.raises(ValueError, match="empty training set"):
        GBMRisk().fit(X.iloc[:0], y.iloc[:0])
    with pytest.raises(ValueError, match="empty training set"):
        LastPeriodBaseline(window=28).fit(X.iloc[:0])
    with pytest.raises(ValueError, match="one class only"):
        LogisticRisk().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="labels are missing"):
        GBMRisk().fit(X, y.where(y.index.get_level_values("grid_id") != "G001"))
    quiet_end = y.to_numpy().copy()
    quiet_end[split_latest(X, 0.2)[1]] = 0
    with pytest.raises(ValueError, match="calibration slice"):
        LogisticRisk().fit(X, quiet_end)
