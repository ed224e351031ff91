"""The uplift of a visit: the cases a visit would prevent in a unit, by a two-model or X-learner.

Why not econml or causalml: both exist on PyPI (econml 0.17, causalml 0.18) and both have a
T- and an X-learner, but either brings a large dependency tree (econml: sparse, shap,
statsmodels...; causalml: torch or tensorflow extras, pygam, cython builds) beside the pinned
MLflow, for what is here about forty lines around LightGBM. The meta-learners below are the
textbook ones (Künzel et al., "Metalearners for estimating heterogeneous treatment effects
using machine learning", PNAS 2019).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .classifiers import GBMCount

__all__ = ["UpliftRegressor"]

_MIN_PER_ARM = 2


class UpliftRegressor(RegressorMixin, BaseEstimator):
    """The resident-reported cases a visit would prevent per unit (higher = more prevented).

    Fitted on units whose visit was decided at random (a plan's explore and control rows),
    ``fit(X, y, treated)`` learns two LightGBM Poisson regressors of the window's count ``y``:
    one on the unvisited units, one on the visited ones. ``predict`` is then

    - ``learner="t"`` (two models): the unvisited model's count minus the visited model's;
    - ``learner="x"`` (X-learner): each arm's rows get an imputed effect (a visited unit's
      predicted count without the visit minus its count; an unvisited unit's count minus its
      predicted count with the visit), a LightGBM regressor learns each arm's imputed effects,
      and the two are averaged weighted by the share of the other arm (the arm with more rows
      imputes the effects the other arm's regressor learns from).

    Parameters
    ----------
    learner : {"t", "x"}
        The meta-learner.
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, reg_lambda
        LightGBM's parameters of the same names, for every regressor.
    random_state : int
        Seed; the same seed gives the same model.
    n_jobs : int
        Threads.

    Attributes
    ----------
    control_estimator_, treated_estimator_ : lightgbm.LGBMRegressor
        The Poisson models of the count without and with a visit.
    effect_estimators_ : tuple of two lightgbm.LGBMRegressor, or None
        The X-learner's regressors of the imputed effects of the unvisited and the visited
        units; None for the two-model learner.
    treated_share_ : float
        The (weighted) share of visited rows in the training set.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``, when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from riskmodel.models import UpliftRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((4000, 2))
    >>> treated = rng.random(4000) < 0.5
    >>> y = rng.poisson(2.0 * (1 - treated * X[:, 1]))  # a visit prevents 2 * x1 cases
    >>> model = UpliftRegressor(n_estimators=50, random_state=0).fit(X, y, treated)
    >>> prevented = model.predict(X)
    >>> bool(np.corrcoef(prevented, X[:, 1])[0, 1] > 0.5)
    True
    """

    _parameter_constraints = {
        "learner": [StrOptions({"t", "x"})],
        # the LightGBM parameters, as GBMCount constrains them
        **{k: v for k, v in GBMCount._parameter_constraints.items() if not k.startswith("calibration")},
    }

    def __init__(
        self,
        *,
        learner="x",
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=0,
        n_jobs=2,
    ):
        self.learner = learner
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _regressor(self, objective: str) -> lgb.LGBMRegressor:
        params = self.get_params()
        params.pop("learner")
        return lgb.LGBMRegressor(**{**GBMCount(calibration=None, **params).lightgbm_params(), "objective": objective})

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, treated=None, sample_weight=None):
        """Fit on features ``X``, the window's counts ``y`` (resident-reported cases after the
        plan week) and ``treated`` (True where the unit was visited); ``sample_weight`` optional
        (e.g. inverse draw probabilities)."""
        if treated is None:
            raise ValueError("UpliftRegressor.fit needs treated: True (or 1) where the unit was visited")
        values, counts = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype="float64", y_numeric=True)
        arm = np.asarray(treated).reshape(-1)
        if len(arm) != len(counts) or not np.isin(arm, [0, 1]).all():
            raise ValueError(f"treated must hold one 0/1 (or bool) per row of X ({len(counts)}), got {arm[:5]!r}...")
        arm = arm.astype(bool)
        if min(arm.sum(), (~arm).sum()) < _MIN_PER_ARM:
            raise ValueError(f"each arm needs at least {_MIN_PER_ARM} rows; treated has {int(arm.sum())} of {len(arm)}")
        if (counts < 0).any():
            raise ValueError(f"counts must be >= 0, got {counts[counts < 0][:5].tolist()}")
        if counts[arm].sum() == 0 or counts[~arm].sum() == 0:
            raise ValueError("each arm needs at least one case: a Poisson model of all-zero counts has nothing to fit")
        weight = np.ones(len(counts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.treated_share_ = float(weight[arm].sum() / weight.sum())
        control = self._regressor("poisson").fit(values[~arm], counts[~arm], sample_weight=weight[~arm])
        visited = self._regressor("poisson").fit(values[arm], counts[arm], sample_weight=weight[arm])
        self.control_estimator_, self.treated_estimator_ = control, visited
        self.effect_estimators_ = None
        if self.learner == "x":  # imputed effects, in cases prevented
            from_control = counts[~arm] - visited.predict(values[~arm])
            from_treated = control.predict(values[arm]) - counts[arm]
            self.effect_estimators_ = (
                self._regressor("regression").fit(values[~arm], from_control, sample_weight=weight[~arm]),
                self._regressor("regression").fit(values[arm], from_treated, sample_weight=weight[arm]),
            )
        return self

    def predict(self, X) -> np.ndarray:
        """The expected cases a visit prevents per row of ``X``: without minus with a visit."""
        check_is_fitted(self)
        values = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")
        if self.effect_estimators_ is None:
            return self.control_estimator_.predict(values) - self.treated_estimator_.predict(values)
        from_control, from_treated = (estimator.predict(values) for estimator in self.effect_estimators_)
        share = self.treated_share_  # weigh each arm's regressor by the other arm's share
        return share * from_control + (1 - share) * from_treated
