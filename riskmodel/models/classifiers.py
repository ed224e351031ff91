"""Learned grid-risk models: logistic regression and LightGBM, and LightGBM with a Poisson
objective for expected counts; all calibrated in time order."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..threads import available_threads
from .calibration import fit_calibrator, split_latest
from .protocol import GridRiskModel, RiskMixin, binary_target, poisson_probability

__all__ = ["LogisticRisk", "GBMRisk", "GBMCount", "count_odds"]

#: The calibration parameters every learned grid-risk model shares.
_CALIBRATION_CONSTRAINTS = {
    "calibration": [StrOptions({"isotonic", "sigmoid"}), None],
    "calibration_fraction": [Interval(Real, 0, 1, closed="neither")],
}

#: LightGBM's parameters as the LightGBM models expose them (see ``_lgb_params``).
_LIGHTGBM_CONSTRAINTS = {
    "n_estimators": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "num_leaves": [Interval(Integral, 2, None, closed="left")],
    "min_child_samples": [Interval(Integral, 0, None, closed="left")],
    "subsample": [Interval(Real, 0, 1, closed="right")],
    "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
    "reg_lambda": [Interval(Real, 0, None, closed="left")],
    "random_state": ["random_state"],
    "n_jobs": [Integral, None],
}


class _CalibratedRisk(GridRiskModel):
    """Fit on the earlier training rows, calibrate on the latest slice (never shuffled)."""

    def _make_estimator(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit_estimator(self, values, target, fit_rows, calibrate_rows):
        return self._make_estimator().fit(values[fit_rows], target[fit_rows])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on ``X`` (a panel's features, rows with a ``cutoff`` index level) and 0/1 ``y``."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        target, self.classes_ = binary_target(y)
        values, target = validate_data(self, X, target, ensure_all_finite="allow-nan", dtype="float64")
        if self.calibration is None:
            fit_rows, calibrate_rows = np.arange(len(target)), None
        else:
            fit_rows, calibrate_rows = split_latest(X, self.calibration_fraction)
        if len(np.unique(target[fit_rows])) < 2:
            raise ValueError("the earlier training rows hold one class only; a risk model needs both")
        self.estimator_ = self._fit_estimator(values, target, fit_rows, calibrate_rows)
        self.n_iter_ = getattr(self.estimator_[-1], "n_iter_", None) if hasattr(self.estimator_, "steps") else None
        self.calibrator_ = self.holdout_ = None
        if calibrate_rows is not None:
            raw = self.estimator_.predict_proba(values[calibrate_rows])[:, 1]
            self.calibrator_ = fit_calibrator(self.calibration, raw, target[calibrate_rows])
            self.holdout_ = (calibrate_rows, -np.log1p(-np.clip(self.calibrator_.transform(raw), 0, 1 - 1e-12)))
        return self

    def _probability(self, X) -> np.ndarray:
        check_is_fitted(self)
        values = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")
        p = self.estimator_.predict_proba(values)[:, 1]
        return p if self.calibrator_ is None else self.calibrator_.transform(p)

    def predict_expected(self, X) -> np.ndarray:
        """The Poisson mean whose P(at least one) is the probability: ``-log(1 - p)``."""
        return -np.log1p(-np.clip(self._probability(X), 0, 1 - 1e-12))


class LogisticRisk(_CalibratedRisk):
    """Regularised logistic regression on standardised features (missing values: medians).

    Parameters
    ----------
    C : float
        Inverse strength of the L2 penalty.
    calibration : {"sigmoid", "isotonic"} or None
        Calibration fitted on the latest ``calibration_fraction`` of the training
        rows in time order (whole cutoffs); the model is fitted on the rows before.
    calibration_fraction : float
        Share of the training rows, the latest, used to calibrate.
    max_iter : int
        Iterations of the solver.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The training labels' two classes, the riskier one second.
    estimator_ : Pipeline
        The model, fitted on the rows before the calibration slice (all rows without one).
    calibrator_ : Calibrator or None
        Maps the model's probability to the calibrated one; None without calibration.
    holdout_ : tuple of (ndarray, ndarray) or None
        Positions of the calibration slice in the training ``X`` and the expected counts
        there (``-log(1 - p)`` of the calibrated probability) from the fit on the earlier
        rows: what the harness fits the forecast distribution's dispersion on (None
        without calibration).
    n_iter_ : ndarray of shape (1,)
        Iterations the solver ran.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``, when ``X`` has string column names.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_grid_panel
    >>> from riskmodel.models import LogisticRisk
    >>> district = simulate_district("small", seed=0)
    >>> panel = build_grid_panel(district, cutoffs={"start": "2023-06-05", "end": "2024-06-03",
    ...                                             "freq": "4W-MON"}, horizon=28)
    >>> model = LogisticRisk().fit(panel.X, panel.y)
    >>> model.predict_proba(panel.X).shape
    (3584, 2)
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        **_CALIBRATION_CONSTRAINTS,
    }

    def __init__(self, *, C=1.0, calibration="sigmoid", calibration_fraction=0.2, max_iter=2000):
        self.C = C
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.max_iter = max_iter

    def _make_estimator(self):
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter),
        )


def count_odds(expected: np.ndarray) -> np.ndarray:
    """The score a count model's calibrator reads: ``expected / (1 + expected)``.

    Its log-odds are ``log(expected)``, so that no realistic count saturates them.

    Parameters
    ----------
    expected : ndarray
        Expected counts; negative values count as 0.

    Returns
    -------
    ndarray
        Scores in ``[0, 1)``, in the order of ``expected``.
    """
    expected = np.clip(expected, 0, None)
    return expected / (1 + expected)


def _lgb_params(model) -> dict:
    return dict(
        n_estimators=model.n_estimators,
        learning_rate=model.learning_rate,
        num_leaves=model.num_leaves,
        min_child_samples=model.min_child_samples,
        subsample=model.subsample,
        subsample_freq=1,
        colsample_bytree=model.colsample_bytree,
        reg_lambda=model.reg_lambda,
        random_state=model.random_state,
        n_jobs=available_threads(model.n_jobs),
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


class GBMRisk(_CalibratedRisk):
    """LightGBM classifier, calibrated on the latest training rows.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, reg_lambda
        LightGBM's parameters of the same names (``n_estimators`` is the most rounds).
    random_state : int
        Seed; the same seed gives the same model.
    n_jobs : int or None
        Threads; None: the threads :func:`riskmodel.threads.available_threads` gives (the
        cores this process is given, or less inside :func:`riskmodel.threads.limit_threads`).
    calibration : {"isotonic", "sigmoid"} or None
        See :class:`LogisticRisk`.
    calibration_fraction : float
        See :class:`LogisticRisk`.
    early_stopping_rounds : int or None
        Stop boosting when the log loss on the calibration slice has not improved
        for this many rounds (needs calibration); None (or 0) boosts all rounds.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The training labels' two classes, the riskier one second.
    estimator_ : lightgbm.LGBMClassifier
        The model, fitted on the rows before the calibration slice (all rows without one).
    calibrator_ : Calibrator or None
        Maps the model's probability to the calibrated one; None without calibration.
    holdout_ : tuple of (ndarray, ndarray) or None
        Positions of the calibration slice in the training ``X`` and the expected counts
        there (``-log(1 - p)`` of the calibrated probability) from the fit on the earlier
        rows: what the harness fits the forecast distribution's dispersion on (None
        without calibration).
    n_iter_ : None
        Always None: the rounds LightGBM ran are ``estimator_.n_iter_``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``, when ``X`` has string column names.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_grid_panel
    >>> from riskmodel.models import GBMRisk
    >>> district = simulate_district("small", seed=0)
    >>> panel = build_grid_panel(district, cutoffs={"start": "2023-06-05", "end": "2024-06-03",
    ...                                             "freq": "4W-MON"}, horizon=28)
    >>> p = GBMRisk(n_estimators=50).fit(panel.X, panel.y).predict_proba(panel.X)[:, 1]
    >>> bool(((p >= 0) & (p <= 1)).all())
    True
    """

    _parameter_constraints = {
        **_LIGHTGBM_CONSTRAINTS,
        **_CALIBRATION_CONSTRAINTS,
        "early_stopping_rounds": [Interval(Integral, 0, None, closed="left"), None],
    }

    def __init__(
        self,
        *,
        n_estimators=300,
        learning_rate=0.1,
        num_leaves=31,
        min_child_samples=50,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=0,
        n_jobs=None,
        calibration="isotonic",
        calibration_fraction=0.2,
        early_stopping_rounds=50,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.early_stopping_rounds = early_stopping_rounds

    def _make_estimator(self):
        return lgb.LGBMClassifier(**_lgb_params(self))

    def _fit_estimator(self, values, target, fit_rows, calibrate_rows):
        """With a calibration slice and ``early_stopping_rounds``, boosting stops once the
        slice's log loss has not improved for that many rounds."""
        model = self._make_estimator()
        if calibrate_rows is None or not self.early_stopping_rounds:
            return model.fit(values[fit_rows], target[fit_rows])
        return model.fit(
            values[fit_rows],
            target[fit_rows],
            eval_X=(values[calibrate_rows],),
            eval_y=(target[calibrate_rows],),
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )


class GBMCount(RegressorMixin, RiskMixin, BaseEstimator):
    """LightGBM with a Poisson objective: the expected number of target cases.

    ``predict`` and ``predict_expected`` give the expected count, fitted on all
    training rows. ``predict_proba(X)[:, 1]`` is P(count >= 1), calibrated on the
    latest slice of the training rows; without calibration, the Poisson law's
    ``1 - exp(-expected)``. The calibration matters because cases come in bursts (one
    dispute brings follow-ups), so the Poisson law overstates the chance of at least
    one. A copy of the model fitted on the earlier rows scores that slice; the
    calibrator is fitted on those expected counts (a sigmoid in ``log(expected)``, or
    isotonic); then the model is refitted on all rows. A sigmoid with its usual
    positive slope keeps the order of the expected counts, so ranking by probability
    or by count is the same.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, reg_lambda
        LightGBM's parameters of the same names.
    random_state : int
        Seed.
    n_jobs : int or None
        Threads; None: the threads :func:`riskmodel.threads.available_threads` gives (the
        cores this process is given, or less inside :func:`riskmodel.threads.limit_threads`).
    calibration : {"sigmoid", "isotonic"} or None
        How P(count >= 1) is calibrated; None keeps the Poisson law.
    calibration_fraction : float
        See :class:`LogisticRisk`.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: no case and at least one case, the classes of ``predict_proba``.
    estimator_ : lightgbm.LGBMRegressor
        The Poisson model fitted on all training rows.
    calibrator_ : Calibrator or None
        Maps the expected count's odds to P(count >= 1); None without calibration.
    holdout_ : tuple of (ndarray, ndarray) or None
        Positions of the calibration slice in the training ``X`` and the expected counts
        there of the model fitted on the earlier rows: what the harness fits the forecast
        distribution's dispersion on (None without calibration).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``, when ``X`` has string column names.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_grid_panel
    >>> from riskmodel.models import GBMCount
    >>> district = simulate_district("small", seed=0)
    >>> panel = build_grid_panel(district, cutoffs={"start": "2023-06-05", "end": "2024-06-03",
    ...                                             "freq": "4W-MON"}, horizon=28)
    >>> model = GBMCount(n_estimators=50).fit(panel.X, panel.y_count)
    >>> round(float(model.predict_expected(panel.X).sum() / panel.y_count.sum()), 1)
    1.0
    """

    _parameter_constraints = {**_LIGHTGBM_CONSTRAINTS, **_CALIBRATION_CONSTRAINTS}

    def __init__(
        self,
        *,
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=50,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=0,
        n_jobs=None,
        calibration="sigmoid",
        calibration_fraction=0.2,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on ``X`` and the counts ``y`` (non-negative)."""
        values, counts = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype="float64", y_numeric=True)
        if len(counts) == 0:
            raise ValueError("cannot fit on an empty training set")
        if (counts < 0).any():
            raise ValueError(f"counts must be >= 0, got {counts[counts < 0][:5].tolist()}")
        scores = slice_counts = None
        if self.calibration is not None:
            fit_rows, calibrate_rows = split_latest(X, self.calibration_fraction)
            early = self._make_estimator().fit(values[fit_rows], counts[fit_rows])
            scores, slice_counts = early.predict(values[calibrate_rows]), counts[calibrate_rows]
        self.fit_from_parts(
            estimator=self._make_estimator().fit(values, counts),
            feature_names=getattr(self, "feature_names_in_", None),
            calibration_scores=scores,
            calibration_counts=slice_counts,
        )
        self.holdout_ = None if scores is None else (calibrate_rows, scores)
        return self

    def fit_from_parts(
        self,
        *,
        estimator: lgb.LGBMRegressor,
        feature_names: Sequence[str] | None,
        calibration_scores: np.ndarray | None = None,
        calibration_counts: np.ndarray | None = None,
    ) -> GBMCount:
        """Set the model up from a LightGBM regressor fitted elsewhere, as `fit` does.

        `fit` ends here with the regressors it fitted in memory; the Dask path
        (`riskmodel.scaleout.train`) with the ones it fitted on the cluster. Both fit the
        regressors with `lightgbm_params`.

        Parameters
        ----------
        estimator : lightgbm.LGBMRegressor
            Fitted with `lightgbm_params` on all training rows; becomes ``estimator_``.
        feature_names : sequence of str or None
            The names of the features ``estimator`` was fitted on, in order; None when
            they had no names (``n_features_in_`` is then the estimator's).
        calibration_scores : ndarray, optional
            The expected counts, on the calibration slice (the latest ``calibration_fraction``
            of the training rows), of a regressor fitted with `lightgbm_params` on the rows
            before it. Needed when ``calibration`` is not None, ignored otherwise.
        calibration_counts : ndarray, optional
            The counts of the calibration slice's rows, in the order of ``calibration_scores``.

        Returns
        -------
        self : GBMCount
            Fitted.

        Raises
        ------
        ValueError
            If ``calibration`` is set and the calibration slice's scores or counts are missing
            or differ in length.
        """
        self._validate_params()
        self.classes_ = np.array([0, 1])
        self.calibrator_ = None
        if self.calibration is not None:
            if calibration_scores is None or calibration_counts is None:
                raise ValueError(f"calibration={self.calibration!r} needs the calibration slice's scores and counts")
            if len(calibration_scores) != len(calibration_counts):
                raise ValueError(f"{len(calibration_scores)} calibration scores for {len(calibration_counts)} counts")
            self.calibrator_ = fit_calibrator(
                self.calibration,
                count_odds(np.asarray(calibration_scores)),
                (np.asarray(calibration_counts) >= 1).astype(float),
            )
        self.estimator_: Any = estimator
        if feature_names is None:
            if hasattr(self, "feature_names_in_"):  # as validate_data does for data without names
                delattr(self, "feature_names_in_")
            self.n_features_in_ = estimator.n_features_in_
        else:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
            self.n_features_in_ = len(self.feature_names_in_)
        return self

    def lightgbm_params(self) -> dict:
        """The parameters of the LightGBM regressors the model fits, all of them.

        Returns
        -------
        dict
            ``lightgbm.LGBMRegressor``'s parameters: the Poisson objective, the model's LightGBM
            parameters and the settings that make its fits deterministic.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            If a parameter of the model is invalid.
        """
        self._validate_params()
        return lgb.LGBMRegressor(objective="poisson", **_lgb_params(self)).get_params()

    def _make_estimator(self):
        return lgb.LGBMRegressor(**self.lightgbm_params())

    def _probability(self, X) -> np.ndarray:
        expected = self.predict_expected(X)
        if self.calibrator_ is None:
            return poisson_probability(expected)
        return self.calibrator_.transform(count_odds(expected))

    def predict_expected(self, X) -> np.ndarray:
        """Expected number of target cases in the horizon."""
        check_is_fitted(self)
        values = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")
        return self.estimator_.predict(values)

    def predict(self, X) -> np.ndarray:
        """Expected number of target cases in the horizon."""
        return self.predict_expected(X)
