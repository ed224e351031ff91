"""A non-negative blend of the roster's expected counts, its weights fitted on validation blocks.

The members are taken by name from :func:`riskmodel.models.grid_models`, so a family added
to the roster can join the blend by name. The weights are fitted on predictions the members
never saw the labels of: for each of a few validation blocks at the end of the training
cutoffs, the members are fitted on the rows whose label window closed before the block
starts (cutoff + horizon <= block start, the backtest's embargo) and predict the block; the
weights maximise the Poisson likelihood of the blocks' counts under an identity link with
weights >= 0; then every member is refitted on all rows. The cost is
``len(members) * (blocks + 1)`` member fits, the blocks' on fewer rows: on Chicago's
training panel (113,256 rows, 52 cutoffs) three blocks took 2.7 times one fit of every
member (97 s against 36 s on 2 busy cores), hence two blocks by default.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone, is_regressor
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .protocol import RiskMixin, row_times

__all__ = ["DEFAULT_MEMBERS", "EnsembleCount", "poisson_blend"]

#: The roster's families the blend takes by default: every baseline of the roster (names
#: ending in ``Baseline``), LogisticRisk and GBMCount.
DEFAULT_MEMBERS = ("LogisticRisk", "GBMCount")


def poisson_blend(predictions: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Non-negative weights ``w`` maximising the Poisson likelihood of ``counts`` with mean
    ``predictions @ w`` (identity link), by L-BFGS-B with bounds ``w >= 0``.

    Parameters
    ----------
    predictions : ndarray of shape (n_rows, n_members)
        Each member's expected counts (non-negative).
    counts : ndarray of shape (n_rows,)
        The observed counts.

    Returns
    -------
    ndarray of shape (n_members,)
        The weights; a member that adds nothing gets 0.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.gamma(1.0, 1.0, 5000)
    >>> noise = rng.gamma(1.0, 1.0, 5000)
    >>> counts = rng.poisson(truth)
    >>> np.round(poisson_blend(np.column_stack([truth, noise]), counts), 1).tolist()
    [1.0, 0.0]
    """
    P = np.clip(np.asarray(predictions, dtype=float), 0, None)
    y = np.asarray(counts, dtype=float)
    scale = P.mean(axis=0)
    scale[scale <= 0] = 1.0
    Z = P / scale  # columns of mean 1: a well-conditioned problem
    eps = 1e-9

    def loss(v):
        mu = Z @ v + eps
        return float(np.sum(mu - y * np.log(mu))) / len(y), (Z.T @ (1 - y / mu)) / len(y)

    start = np.full(Z.shape[1], max(y.mean(), eps) / Z.shape[1])
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0, None)] * Z.shape[1])
    return np.asarray(found.x) / scale


class EnsembleCount(RegressorMixin, RiskMixin, BaseEstimator):
    """A non-negative blend of the roster's expected counts (see the module's docstring).

    A regressor on counts like :class:`GBMCount`: the backtest and :func:`riskmodel.train`
    pass it the counts; members that are classifiers are fitted on ``counts >= 1``.
    ``predict_expected`` is the weighted sum of the members' expected counts and
    ``predict_proba(X)[:, 1]`` its Poisson probability of at least one case.

    Parameters
    ----------
    members : sequence of str, optional
        Names of :func:`~riskmodel.models.grid_models` families. Default: the roster's
        baselines, LogisticRisk and GBMCount. They are fitted without their probability
        calibration (``calibration=None``): the blend reads their expected counts only.
    blocks : int
        Validation blocks: the last ``blocks * block_cutoffs`` training cutoffs, in
        consecutive groups of ``block_cutoffs``.
    block_cutoffs : int
        Training cutoffs per validation block.

    Attributes
    ----------
    members_ : dict of str to estimator
        The members, fitted on all training rows.
    weights_ : ndarray of shape (n_members,)
        The blend's weights, in the order of ``members_`` (>= 0).
    validation_rows_ : int
        The validation rows the weights were fitted on (0: no block had earlier rows with
        both classes, and the weights are equal).
    holdout_ : tuple of (ndarray, ndarray) or None
        Positions of the validation rows in the training ``X`` and the blend's expected
        counts there, from members that did not see them: what the harness fits the
        forecast distribution's dispersion on (None without validation rows).
    classes_ : ndarray of shape (2,)
        ``[0, 1]``.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_grid_panel
    >>> from riskmodel.models import EnsembleCount
    >>> district = simulate_district("tiny", seed=0)
    >>> panel = build_grid_panel(district, cutoffs={"start": "2023-04-03", "end": "2023-12-04",
    ...                                             "freq": "W-MON"}, horizon=28)
    >>> model = EnsembleCount(members=["HistoricalRateBaseline", "LastPeriodBaseline"])
    >>> model = model.fit(panel.X[panel.label_known], panel.y_count[panel.label_known])
    >>> list(model.members_), bool((model.weights_ >= 0).all())
    (['HistoricalRateBaseline', 'LastPeriodBaseline'], True)
    """

    _parameter_constraints = {
        "members": [list, tuple, None],
        "blocks": [Interval(Integral, 1, None, closed="left")],
        "block_cutoffs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, members=None, blocks=2, block_cutoffs=6):
        self.members = members
        self.blocks = blocks
        self.block_cutoffs = block_cutoffs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = True
        return tags

    def member_models(self) -> dict:
        """Fresh, unfitted members by name (from :func:`~riskmodel.models.grid_models`).

        Raises
        ------
        ValueError
            Naming an unknown member and the roster's names.
        """
        from .roster import grid_models  # the roster lists this family too

        roster = {name: model for name, model in grid_models().items() if not isinstance(model, EnsembleCount)}
        names = self.members
        if names is None:
            names = [n for n in roster if n.endswith("Baseline") or n in DEFAULT_MEMBERS]
        unknown = [n for n in names if n not in roster]
        if unknown or not names:
            raise ValueError(f"members must name grid_models() families, got {unknown or names}; known: {list(roster)}")
        # The blend reads expected counts only: no member needs its probability calibration
        # (GBMCount's expected counts are the same without it, at half the fits).
        return {
            name: roster[name].set_params(calibration=None)
            if "calibration" in roster[name].get_params()
            else roster[name]
            for name in names
        }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on panel rows ``X`` (index level ``cutoff``, column ``horizon_days``) and counts ``y``."""
        times = row_times(X)
        if not isinstance(X, pd.DataFrame) or times is None or "horizon_days" not in X.columns:
            raise ValueError(
                "EnsembleCount fits on a grid panel's rows: a DataFrame with a 'cutoff' index level "
                "and a 'horizon_days' column (panel.X)"
            )
        counts = np.asarray(y, dtype=float)
        if len(counts) == 0:
            raise ValueError("cannot fit on an empty training set")
        if (counts < 0).any() or np.isnan(counts).any():
            raise ValueError(f"counts must be >= 0, got {counts[~(counts >= 0)][:5].tolist()}")
        models = self.member_models()
        predictions, observed, positions = self._validation(X, counts, pd.DatetimeIndex(times), models)
        self.validation_rows_ = len(observed)
        self.holdout_ = None
        if len(observed):
            self.weights_ = poisson_blend(predictions, observed)
            self.holdout_ = (positions, predictions @ self.weights_)
        else:
            warnings.warn(
                "EnsembleCount: no validation block has earlier training rows with cases and without; "
                "the members get equal weights",
                stacklevel=2,
            )
            self.weights_ = np.full(len(models), 1 / len(models))
        self.members_ = {name: _fit(model, X, counts) for name, model in models.items()}
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def dominant_member(self, X):
        """The fitted member whose weighted expected counts add most to the blend on ``X``."""
        check_is_fitted(self)
        shares = [w * m.predict_expected(X).sum() for w, m in zip(self.weights_, self.members_.values(), strict=True)]
        return list(self.members_.values())[int(np.argmax(shares))]

    def _validation(self, X, counts, times, models):
        """The members' predictions on each validation block (fitted on the rows whose
        label window closed before it), the blocks' counts and their positions in ``X``."""
        closes = times + pd.to_timedelta(X["horizon_days"].to_numpy(), unit="D")
        cutoffs = times.unique().sort_values()
        cutoffs = cutoffs[cutoffs >= closes.min()]  # a block needs earlier rows whose labels closed
        starts = cutoffs[-self.blocks * self.block_cutoffs :: self.block_cutoffs]
        predictions, observed, positions = [], [], []
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else None
            block = (times >= start) & ((times < end) if end is not None else True)
            before = np.asarray(closes <= start)
            if len(np.unique(counts[before] >= 1)) < 2:
                continue  # too early: the members cannot learn yet
            fitted = [_fit(model, X[before], counts[before]) for model in models.values()]
            rows = X[np.asarray(block)]
            predictions.append(np.column_stack([m.predict_expected(rows) for m in fitted]))
            observed.append(counts[np.asarray(block)])
            positions.append(np.flatnonzero(np.asarray(block)))
        if not observed:
            return np.empty((0, len(models))), np.empty(0), np.empty(0, dtype=int)
        return np.vstack(predictions), np.concatenate(observed), np.concatenate(positions)

    def predict_expected(self, X) -> np.ndarray:
        """Expected number of target cases in the horizon: the weighted sum of the members'."""
        check_is_fitted(self)
        return np.column_stack([m.predict_expected(X) for m in self.members_.values()]) @ self.weights_

    def predict(self, X) -> np.ndarray:
        """Expected number of target cases in the horizon."""
        return self.predict_expected(X)


def _fit(model, X, counts):
    return clone(model).fit(X, counts if is_regressor(model) else (counts >= 1).astype(int))
