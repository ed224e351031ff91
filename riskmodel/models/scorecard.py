"""A scorecard a person can read: monotone bins, weight of evidence, points."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import _fit_context
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .protocol import GridRiskModel, binary_target

__all__ = ["Scorecard"]


def _monotone_edges(x: np.ndarray, y: np.ndarray, n_bins: int, min_share: float) -> np.ndarray:
    """Inner bin edges of ``x``: quantiles, merged until every bin holds ``min_share``
    of the rows and the event rate moves one way only (the way of the rank correlation)."""
    finite = ~np.isnan(x)
    if finite.sum() < 2 or np.ptp(x[finite]) == 0:
        return np.array([])
    edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, n_bins + 1)[1:-1]))
    rho = spearmanr(x[finite], y[finite]).statistic
    direction = 1.0 if not np.isfinite(rho) or rho >= 0 else -1.0
    while len(edges):
        bins = np.searchsorted(edges, x[finite], side="right")
        count = np.bincount(bins, minlength=len(edges) + 1)
        rate = np.bincount(bins, y[finite], minlength=len(edges) + 1) / np.maximum(count, 1)
        small = count < min_share * finite.sum()
        wrong = direction * np.diff(rate) < 0
        if small.any():  # drop the edge beside the smallest bin
            b = int(np.argmin(count))
            edges = np.delete(edges, min(b, len(edges) - 1))
        elif wrong.any():  # merge the first pair that breaks the direction
            edges = np.delete(edges, int(np.argmax(wrong)))
        else:
            break
    return edges


class Scorecard(GridRiskModel):
    """Monotone binning, weight of evidence, logistic regression, points.

    Each feature is cut at quantiles into at most ``n_bins`` bins, merged until
    each holds ``min_bin_share`` of the rows and the event rate rises (or falls)
    monotonically; missing values get a bin of their own. A bin's weight of
    evidence is ``ln(share of events / share of non-events)`` (positive =
    riskier). A logistic regression on the weights gives coefficients ``b``;
    points are ``factor * b * woe`` per feature with ``factor = pdo / ln 2``, and
    the base points ``offset + factor * b0`` with
    ``offset = base_score - factor * ln(base_odds)``, so that ``base_score``
    points mean odds of ``base_odds`` and every ``pdo`` points double the odds.
    Higher scores are riskier.

    Parameters
    ----------
    n_bins : int
        Most bins per feature.
    min_bin_share : float
        Least share of the rows in a bin.
    C : float
        Inverse strength of the L2 penalty of the regression.
    base_score, base_odds, pdo : float
        Scaling of the points (see above).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The training labels' two classes, the riskier one second.
    feature_names_ : list of str
        The features' names (``x0``, ``x1``, ... when ``X`` has none).
    edges_ : list of ndarray
        Every feature's inner bin edges.
    woe_ : list of ndarray
        Every feature's weight of evidence per bin, the last bin holding missing values.
    counts_ : list of ndarray
        Every feature's training rows per bin.
    regression_ : LogisticRegression
        The regression on the weights of evidence.
    factor_ : float
        Points per unit of log-odds, ``pdo / ln 2``.
    offset_ : float
        Points at log-odds zero, ``base_score - factor_ * ln(base_odds)``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``, when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from riskmodel.models import Scorecard
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"count_28d": rng.poisson(2, 2000).astype(float), "noise": rng.normal(size=2000)})
    >>> y = (rng.random(2000) < 0.1 + 0.1 * X["count_28d"].clip(0, 6)).astype(int)
    >>> card = Scorecard(n_bins=4).fit(X, y)
    >>> points = card.predict_points(X)
    >>> list(points.columns), bool(points["count_28d"].corr(X["count_28d"]) > 0.9)
    (['base', 'count_28d', 'noise', 'total'], True)
    """

    _parameter_constraints = {
        "n_bins": [Interval(Integral, 1, None, closed="left")],
        "min_bin_share": [Interval(Real, 0, 1, closed="both")],
        "C": [Interval(Real, 0, None, closed="neither")],
        "base_score": [Real],
        "base_odds": [Interval(Real, 0, None, closed="neither")],
        "pdo": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, *, n_bins=5, min_bin_share=0.05, C=1.0, base_score=600.0, base_odds=1 / 20, pdo=20.0):
        self.n_bins = n_bins
        self.min_bin_share = min_bin_share
        self.C = C
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Bin every feature, weigh the bins, fit the regression and the points."""
        target, self.classes_ = binary_target(y)
        values, target = validate_data(self, X, target, ensure_all_finite="allow-nan", dtype="float64")
        names = getattr(self, "feature_names_in_", np.array([f"x{j}" for j in range(values.shape[1])]))
        self.feature_names_ = [str(n) for n in names]
        events, quiet = target.sum(), len(target) - target.sum()
        self.edges_, self.woe_ = [], []
        for j in range(values.shape[1]):
            edges = _monotone_edges(values[:, j], target, self.n_bins, self.min_bin_share)
            bins = self._bin(values[:, j], edges)
            hit = np.bincount(bins, target, minlength=len(edges) + 2)
            total = np.bincount(bins, minlength=len(edges) + 2)
            woe = np.log((hit + 0.5) / (events + 0.5)) - np.log((total - hit + 0.5) / (quiet + 0.5))
            woe[total == 0] = 0.0  # a bin never seen (no missing values in training) weighs nothing
            self.edges_.append(edges)
            self.woe_.append(woe)
        self.counts_ = [
            np.bincount(self._bin(values[:, j], e), minlength=len(e) + 2) for j, e in enumerate(self.edges_)
        ]
        self.regression_ = LogisticRegression(C=self.C, max_iter=1000).fit(self._woe(values), target)
        self.factor_ = self.pdo / np.log(2)
        self.offset_ = self.base_score - self.factor_ * np.log(self.base_odds)
        return self

    @staticmethod
    def _bin(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
        """Bin number of every value; the last bin (number len(edges) + 1) holds missing values."""
        return np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right"))

    def _woe(self, values: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [w[self._bin(values[:, j], e)] for j, (e, w) in enumerate(zip(self.edges_, self.woe_, strict=True))]
        )

    def _values(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")

    def predict_points(self, X) -> pd.DataFrame:
        """Points of every row: ``base``, one column per feature, and ``total``."""
        contributions = self.factor_ * self._woe(self._values(X)) * self.regression_.coef_[0]
        points = pd.DataFrame(contributions, columns=self.feature_names_, index=getattr(X, "index", None))
        points.insert(0, "base", self.offset_ + self.factor_ * self.regression_.intercept_[0])
        points["total"] = points.sum(axis=1)
        return points

    def _probability(self, X) -> np.ndarray:
        return self.regression_.predict_proba(self._woe(self._values(X)))[:, 1]

    def predict_expected(self, X) -> np.ndarray:
        """The Poisson mean whose P(at least one) is the probability."""
        return -np.log1p(-np.clip(self._probability(X), 0, 1 - 1e-12))

    def table(self) -> pd.DataFrame:
        """Every bin of every feature: range, training rows, weight of evidence, points."""
        check_is_fitted(self)
        rows = []
        for j, name in enumerate(self.feature_names_):
            edges, woe, counts = self.edges_[j], self.woe_[j], self.counts_[j]
            bounds = np.concatenate([[-np.inf], edges, [np.inf]])
            for b in range(len(edges) + 2):
                label = "missing" if b == len(edges) + 1 else f"[{bounds[b]:g}, {bounds[b + 1]:g})"
                rows.append(
                    {
                        "feature": name,
                        "bin": label,
                        "rows": int(counts[b]),
                        "woe": woe[b],
                        "points": self.factor_ * self.regression_.coef_[0][j] * woe[b],
                    }
                )
        return pd.DataFrame(rows)
