"""Baselines every real system is judged against: last period, historical rate, kernel density,
time-weighted and smoothed rates.

They read the grid panel's own columns (window counts, decayed counts, rates, the horizon,
unit centroids). Most learn nothing (``fit`` only checks that the columns are there); the
time-weighted and smoothed rates choose their half-life on the training rows.
"""

from __future__ import annotations

import re
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..features.rates import exposure_days
from .protocol import GridRiskModel, RiskMixin, row_times

__all__ = [
    "Baseline",
    "LastPeriodBaseline",
    "HistoricalRateBaseline",
    "KDEBaseline",
    "TimeWeightedRateBaseline",
    "SmoothedRateBaseline",
    "hit_rates_by_cutoff",
    "longest_within_noise",
]

_LN2 = np.log(2)

_DAYS = Interval(Integral, 1, None, closed="left")  # a window of the panel's counts
_POSITIVE = Interval(Real, 0, None, closed="neither")
_SHARE = Interval(Real, 0, 1, closed="right")


class Baseline:
    """What the baselines share: they read named columns of the grid panel.

    Subclasses name the columns they read in `panel_columns`; `riskmodel.models.explain` reads the
    first of them as the baseline's one driver. The classifier baselines also derive from
    `GridRiskModel`, the count baselines from ``RegressorMixin`` and ``RiskMixin``.
    """

    if TYPE_CHECKING:  # every baseline defines it

        def predict_expected(self, X) -> np.ndarray: ...

    def panel_columns(self) -> list[str]:  # pragma: no cover - overridden
        """The panel columns the baseline reads, its driver first.

        Returns
        -------
        list of str
            Column names of the grid panel's ``X``.
        """
        raise NotImplementedError

    def panel_frame(self, X, columns: list[str] | None = None) -> pd.DataFrame:
        """Check that ``X`` is a DataFrame holding the columns the baseline reads.

        Parameters
        ----------
        X : pandas.DataFrame
            The grid panel's features, ``panel.X``.
        columns : list of str, optional
            The columns to check; `panel_columns` by default.

        Returns
        -------
        pandas.DataFrame
            ``X`` itself.

        Raises
        ------
        TypeError
            If ``X`` is not a DataFrame.
        ValueError
            If a column of `panel_columns` is missing.
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} reads the grid panel's columns: pass panel.X, a DataFrame")
        missing = [c for c in (self.panel_columns() if columns is None else columns) if c not in X.columns]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs the panel column(s) {missing}; build the panel with "
                "riskmodel.features.build_grid_panel (GridPanelBuilder) of this version, with matching "
                "windows and half-lives (e.g. half_lives=(14, 60, 365) gives decay_14d, decay_60d, decay_365d)"
            )
        return X

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check that ``X`` has the columns the baseline reads; nothing is learned."""
        self.panel_frame(X)
        if len(X) == 0:
            raise ValueError("cannot fit on an empty training set")
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self


class LastPeriodBaseline(Baseline, GridRiskModel):
    """The count of the last period, scaled to the horizon.

    Without ``window``, the previous period as long as the horizon (the previous calendar
    month for a one-month horizon): ``count_last_period * horizon_days / last_period_days``.
    With it, the last ``window`` days: ``count_{window}d * horizon_days / window``.

    Parameters
    ----------
    window : int, optional
        A window of the panel's counts, in days; None for the previous period.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: no case and at least one case, the classes of ``predict_proba``.
    n_features_in_ : int
        Number of columns of the ``X`` passed to ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.models import LastPeriodBaseline
    >>> X = pd.DataFrame({"count_28d": [0.0, 2.0], "horizon_days": [14.0, 14.0]})
    >>> LastPeriodBaseline(window=28).fit(X).predict_expected(X).tolist()
    [0.0, 1.0]
    >>> february = pd.DataFrame({"count_last_period": [4.0], "last_period_days": [28.0],
    ...                          "horizon_days": [31.0]})  # a March forecast
    >>> LastPeriodBaseline().fit(february).predict_expected(february).round(2).tolist()
    [4.43]
    """

    _parameter_constraints = {"window": [_DAYS, None]}

    def __init__(self, *, window=None):
        self.window = window

    def panel_columns(self) -> list[str]:
        if self.window is None:
            return ["count_last_period", "horizon_days", "last_period_days"]
        return [f"count_{self.window}d", "horizon_days"]

    def predict_expected(self, X) -> np.ndarray:
        X = self.panel_frame(X)
        count, horizon = X[self.panel_columns()[0]].to_numpy(float), X["horizon_days"].to_numpy(float)
        days = X["last_period_days"].to_numpy(float) if self.window is None else float(self.window)
        return count * horizon / days


class HistoricalRateBaseline(Baseline, GridRiskModel):
    """Prospective hotspot: the unit's long-run rate, scaled to the horizon.

    Without ``half_life``: ``count_{window}d / window`` cases a day. With it, the
    time-weighted rate ``decay_{half_life}d * ln 2 / half_life`` (a case of age a
    weighs 2^(-a / half_life); the weights of one case a day sum to half_life / ln 2).

    Parameters
    ----------
    window : int
        The long window of the panel's counts, in days.
    half_life : float, optional
        A half-life of the panel's decayed counts, for a time-weighted rate.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: no case and at least one case, the classes of ``predict_proba``.
    n_features_in_ : int
        Number of columns of the ``X`` passed to ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> X = pd.DataFrame({"count_364d": [52.0], "decay_14d": [20.2], "horizon_days": [7.0]})
    >>> HistoricalRateBaseline().fit(X).predict_expected(X).round(2).tolist()
    [1.0]
    """

    _parameter_constraints = {"window": [_DAYS], "half_life": [_POSITIVE, None]}

    def __init__(self, *, window=364, half_life=None):
        self.window = window
        self.half_life = half_life

    def panel_columns(self) -> list[str]:
        base = f"decay_{self.half_life}d" if self.half_life is not None else f"count_{self.window}d"
        return [base, "horizon_days"]

    def predict_expected(self, X) -> np.ndarray:
        X = self.panel_frame(X)
        if self.half_life is None:
            per_day = X[f"count_{self.window}d"] / self.window
        else:
            per_day = X[f"decay_{self.half_life}d"] * _LN2 / self.half_life
        return (per_day * X["horizon_days"]).to_numpy(float)


class KDEBaseline(Baseline, GridRiskModel):
    """Space-time kernel density of recent cases over unit centroids.

    In time, each case weighs 2^(-age / half_life) (the panel's decayed count); in
    space, each unit's weighted cases are spread over the units around it with a
    Gaussian kernel of ``bandwidth_m`` metres (cut at three bandwidths), each
    case's weight summing to one over the units. The result, a rate a day, is
    scaled to the horizon. Rows are grouped by cutoff (the panel's index).

    Parameters
    ----------
    bandwidth_m : float
        Spatial bandwidth in metres.
    half_life : float
        Temporal bandwidth: a half-life of the panel's decayed counts, in days.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: no case and at least one case, the classes of ``predict_proba``.
    n_features_in_ : int
        Number of columns of the ``X`` passed to ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.models import KDEBaseline
    >>> X = pd.DataFrame({"decay_14d": [10.0, 0.0], "horizon_days": [28.0, 28.0],
    ...                   "lon": [120.0, 120.005], "lat": [30.0, 30.0]})
    >>> expected = KDEBaseline(bandwidth_m=500, half_life=14).fit(X).predict_expected(X)
    >>> bool(expected[0] > expected[1] > 0), round(float(expected.sum()), 2)
    (True, 13.86)
    """

    _parameter_constraints = {"bandwidth_m": [_POSITIVE], "half_life": [_POSITIVE]}

    def __init__(self, *, bandwidth_m=500.0, half_life=14):
        self.bandwidth_m = bandwidth_m
        self.half_life = half_life

    def panel_columns(self) -> list[str]:
        return [f"decay_{self.half_life}d", "horizon_days", "lon", "lat"]

    def predict_expected(self, X) -> np.ndarray:
        X = self.panel_frame(X)
        times = row_times(X)
        groups = np.zeros(len(X), dtype=int) if times is None else pd.factorize(times)[0]
        rate = X[f"decay_{self.half_life}d"].to_numpy(float) * _LN2 / self.half_life
        out = np.zeros(len(X))
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            out[rows] = self._spread(X["lon"].to_numpy(float)[rows], X["lat"].to_numpy(float)[rows], rate[rows])
        return out * X["horizon_days"].to_numpy(float)

    def _spread(self, lon, lat, rate) -> np.ndarray:
        metres = np.column_stack([lon * 111_320 * np.cos(np.radians(np.nanmean(lat))), lat * 111_320])
        if np.isnan(metres).any():
            raise ValueError("KDEBaseline needs the centroid (lon, lat) of every unit")
        graph = (
            NearestNeighbors(radius=3 * self.bandwidth_m).fit(metres).radius_neighbors_graph(metres, mode="distance")
        )
        kernel = graph.copy()  # holds each unit's own zero distance explicitly
        kernel.data = np.exp(-0.5 * (kernel.data / self.bandwidth_m) ** 2)
        # Column j spreads unit j's rate over its surroundings: normalise each column to one.
        kernel = kernel @ sparse.diags(1.0 / np.asarray(kernel.sum(axis=0)).ravel())
        return kernel @ rate


def hit_rates_by_cutoff(groups: np.ndarray, y: np.ndarray, score: np.ndarray, top: float) -> np.ndarray:
    """Each cutoff's share of its cases in its ``top`` share of units by score.

    The hit rate of `riskmodel.evaluation.metrics.hit_rate` (units tied at the boundary share
    the slots left), one cutoff at a time.

    Parameters
    ----------
    groups : ndarray of int
        The cutoff of each row, as codes.
    y : ndarray of float
        Each row's number of cases in the horizon.
    score : ndarray of float
        Each row's score, higher riskier.
    top : float
        The share of each cutoff's units chosen, in (0, 1].

    Returns
    -------
    ndarray of float
        One hit rate per cutoff, in the order of the sorted codes; NaN for a cutoff without a case.

    Examples
    --------
    >>> import numpy as np
    >>> from riskmodel.models.baselines import hit_rates_by_cutoff
    >>> hit_rates_by_cutoff(np.array([0, 0, 1, 1, 2]), np.array([3.0, 1.0, 0.0, 2.0, 0.0]),
    ...                     np.array([0.9, 0.1, 0.5, 0.5, 0.0]), 0.5).tolist()
    [0.75, 0.5, nan]
    """
    order = np.argsort(groups, kind="stable")
    rates = []
    for rows in np.split(order, np.flatnonzero(np.diff(groups[order])) + 1):
        cases, values = y[rows], score[rows]
        budget = top * len(rows)
        last = min(int(np.ceil(budget)), len(rows)) - 1  # the last unit chosen, at least in part
        boundary = -np.partition(-values, last)[last]
        above, tied = values > boundary, values == boundary
        weight = above + tied * np.clip((budget - above.sum()) / tied.sum(), 0.0, 1.0)
        total = cases.sum()
        rates.append(weight @ cases / total if total > 0 else np.nan)
    return np.array(rates, dtype=float)


def longest_within_noise(hit_rates: dict[float, np.ndarray]) -> float:
    """The longest half-life whose hit rates are within one standard error of the best's.

    The best has the highest mean over cutoffs; another is within noise when the mean of its
    paired differences to the best over the cutoffs is at most their standard error (the
    one-standard-error rule: the smoother choice unless the data show the other is better).
    Cutoffs without a case (NaN) are left out; without any case the longest wins.

    Parameters
    ----------
    hit_rates : dict of float to ndarray
        Each candidate half-life's hit rate per cutoff.

    Returns
    -------
    float
        The chosen half-life.

    Examples
    --------
    >>> import numpy as np
    >>> from riskmodel.models.baselines import longest_within_noise
    >>> noisy = {30.0: np.array([0.5, 0.1, 0.5, 0.1]), np.inf: np.array([0.1, 0.5, 0.1, 0.4])}
    >>> clear = {30.0: np.array([0.5, 0.4, 0.5, 0.4]), np.inf: np.array([0.4, 0.3, 0.4, 0.3])}
    >>> float(longest_within_noise(noisy)), float(longest_within_noise(clear))
    (inf, 30.0)
    """
    known = ~np.isnan(np.vstack(list(hit_rates.values()))).any(axis=0)
    longest_first = sorted(hit_rates, reverse=True)
    if not known.any():
        return longest_first[0]
    rates = {h: hit_rates[h][known] for h in longest_first}
    best = rates[max(longest_first, key=lambda h: rates[h].mean())]

    def within_noise(h: float) -> bool:
        gap = best - rates[h]
        noise = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else 0.0
        return bool(gap.mean() <= noise + 1e-12)

    return next(h for h in longest_first if within_noise(h))  # the best itself at the latest


class _ChosenHalfLife(Baseline, RegressorMixin, RiskMixin, BaseEstimator):
    """A rate a day at a half-life chosen on the training rows, scaled to the horizon.

    Subclasses say which column holds a half-life's rate (`_column`, with ``numpy.inf`` for all
    history) and how to read it (`_rate`).
    """

    _parameter_constraints = {"half_lives": ["array-like", None], "top": [_SHARE]}
    _pattern = ""  # the decayed columns' names, the half-life in group 1

    def __init__(self, *, half_lives=None, top=0.05):
        self.half_lives = half_lives
        self.top = top

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = True
        return tags

    def _column(self, half_life: float) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _rate(self, X: pd.DataFrame, half_life: float) -> np.ndarray:
        return X[self._column(half_life)].to_numpy(float)

    def _rate_or_zero(self, X: pd.DataFrame, half_life: float) -> np.ndarray:
        return np.nan_to_num(self._rate(X, half_life), nan=0.0)  # missing: no history, no case yet

    def _extra_columns(self, half_life: float) -> list[str]:
        return []

    def _columns(self, half_life: float) -> list[str]:
        return [self._column(half_life), "horizon_days", *self._extra_columns(half_life)]

    def candidates(self, X: pd.DataFrame) -> list[float]:
        """The half-lives `fit` chooses from, longest first: ``half_lives``, or by default
        every half-life of at least 14 days among the columns of ``X``, and infinity."""
        if self.half_lives is not None:
            chosen = [float(h) for h in np.ravel(self.half_lives)]
            if not chosen or min(chosen) <= 0 or np.isnan(chosen).any():
                raise ValueError(
                    f"half_lives must be positive half-lives in days (numpy.inf for all history), "
                    f"e.g. (30, 90, 365, numpy.inf); got {self.half_lives!r}"
                )
        else:
            found = (re.fullmatch(self._pattern, str(c)) for c in X.columns)
            chosen = [h for h in (float(m.group(1)) for m in found if m) if h >= 14] + [np.inf]
        return sorted(set(chosen), reverse=True)

    def panel_columns(self) -> list[str]:
        check_is_fitted(self)
        return self._columns(self.half_life_)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Choose the half-life by the hit rate of its rates on the training rows.

        Parameters
        ----------
        X : pandas.DataFrame
            The grid panel's features, indexed by (``grid_id``, ``cutoff``).
        y : array-like of shape (n_rows,)
            The counts of cases in each row's horizon.

        Returns
        -------
        self
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} reads the grid panel's columns: pass panel.X, a DataFrame")
        candidates = self.candidates(X)
        self.panel_frame(X, list(dict.fromkeys(c for h in candidates for c in self._columns(h))))
        counts = column_or_1d(y, warn=True).astype(float)
        if len(X) == 0:
            raise ValueError("cannot fit on an empty training set")
        if len(counts) != len(X):
            raise ValueError(f"{len(counts)} counts for {len(X)} rows of X")
        bad = ~(np.isfinite(counts) & (counts >= 0))
        if bad.any():
            raise ValueError(f"counts must be finite, >= 0 and known, got {counts[bad][:5].tolist()}")
        times = row_times(X)
        groups = np.zeros(len(X), dtype=int) if times is None else pd.factorize(times)[0]
        order = np.argsort(groups, kind="stable")  # once: then each candidate's rows come sorted
        groups, counts = groups[order], counts[order]
        hit_rates = {
            h: hit_rates_by_cutoff(groups, counts, self._rate_or_zero(X, h)[order], self.top) for h in candidates
        }
        self.scores_ = {h: float(np.nanmean(r)) if not np.isnan(r).all() else np.nan for h, r in hit_rates.items()}
        self.half_life_ = longest_within_noise(hit_rates)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_expected(self, X) -> np.ndarray:
        """Expected number of target cases in the horizon: the rate a day times ``horizon_days``.

        A missing rate (a cutoff before any history) counts as no case a day.
        """
        check_is_fitted(self)
        X = self.panel_frame(X)
        return self._rate_or_zero(X, self.half_life_) * X["horizon_days"].to_numpy(float)

    def predict(self, X) -> np.ndarray:
        """Expected number of target cases in the horizon."""
        return self.predict_expected(X)


class TimeWeightedRateBaseline(_ChosenHalfLife):
    """Exponentially time-weighted rate over the whole history, its half-life chosen on the training rows.

    At half-life h a case of age a weighs 2^(-a / h); the rate a day is
    ``decay_{h}d / exposure_days(history_days, h)`` (:func:`riskmodel.features.rates.exposure_days`),
    and at h = infinity the historical rate ``rate_all``. ``fit`` scores each candidate
    half-life on the training rows (their features are point-in-time and their counts after
    each cutoff, and nothing else is learned): the mean over cutoffs of the share of the
    cutoff's cases in its ``top`` units. The longest half-life within noise of the best
    wins (within one standard error of the paired differences over cutoffs: see
    :func:`longest_within_noise`), so a short memory must show it is better; exact ties go to
    the longer. A regressor on counts; ``predict_proba`` through the Poisson law.

    Parameters
    ----------
    half_lives : array-like of float, optional
        The candidate half-lives in days (``numpy.inf`` for the historical rate). By
        default every ``decay_{h}d`` column of ``X`` with h >= 14, and infinity.
    top : float
        The share of units of the hit rate that chooses the half-life.

    Attributes
    ----------
    half_life_ : float
        The chosen half-life in days (``inf``: the historical rate).
    scores_ : dict of float to float
        Each candidate's hit rate on the training rows (the mean over cutoffs with a case).
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: no case and at least one case, the classes of ``predict_proba``.
    n_features_in_ : int
        Number of columns of the ``X`` passed to ``fit``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from riskmodel.models import TimeWeightedRateBaseline
    >>> index = pd.MultiIndex.from_product([["A", "B"], pd.to_datetime(["2024-01-01", "2024-01-08"])],
    ...                                    names=["grid_id", "cutoff"])
    >>> X = pd.DataFrame({"decay_14d": [4.0, 4.0, 0.5, 0.5], "rate_all": [0.01, 0.01, 0.02, 0.02],
    ...                   "history_days": 365.0, "horizon_days": 7.0}, index=index)
    >>> model = TimeWeightedRateBaseline(top=0.5).fit(X, [2, 1, 0, 0])  # A's recent cases tell
    >>> model.half_life_, model.predict_expected(X).round(2).tolist()
    (14.0, [1.39, 1.39, 0.17, 0.17])
    """

    _pattern = r"decay_(\d+(?:\.\d+)?)d"

    def _column(self, half_life: float) -> str:
        return "rate_all" if np.isinf(half_life) else f"decay_{half_life:g}d"

    def _extra_columns(self, half_life: float) -> list[str]:
        return [] if np.isinf(half_life) else ["history_days"]

    def _rate(self, X: pd.DataFrame, half_life: float) -> np.ndarray:
        value = X[self._column(half_life)].to_numpy(float)
        if np.isinf(half_life):
            return value
        exposure = exposure_days(X["history_days"].to_numpy(float), half_life)
        return np.divide(value, exposure, out=np.zeros_like(value), where=exposure > 0)


class SmoothedRateBaseline(_ChosenHalfLife):
    """Empirical-Bayes time-weighted rate, its half-life chosen on the training rows.

    Reads the panel's ``shrunk_rate_{h}d`` (``shrunk_rate_all`` at h = infinity): each unit's
    time-weighted rate a day shrunk toward its neighbours' and its parent's (a gamma-Poisson
    posterior mean), the standard answer to sparse cells. The half-life is chosen as in
    :class:`TimeWeightedRateBaseline`.

    Parameters
    ----------
    half_lives : array-like of float, optional
        The candidate half-lives in days (``numpy.inf`` for all history). By default every
        ``shrunk_rate_{h}d`` column of ``X`` with h >= 14, and infinity.
    top : float
        The share of units of the hit rate that chooses the half-life.

    Attributes
    ----------
    half_life_ : float
        The chosen half-life in days (``inf``: all history).
    scores_ : dict of float to float
        Each candidate's hit rate on the training rows (the mean over cutoffs with a case).
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: no case and at least one case, the classes of ``predict_proba``.
    n_features_in_ : int
        Number of columns of the ``X`` passed to ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.models import SmoothedRateBaseline
    >>> X = pd.DataFrame({"shrunk_rate_60d": [0.1, 0.3], "shrunk_rate_all": [0.2, 0.1],
    ...                   "horizon_days": 7.0})
    >>> model = SmoothedRateBaseline(top=0.5).fit(X, [0, 3])
    >>> model.half_life_, model.scores_, model.predict_expected(X).round(2).tolist()
    (60.0, {inf: 0.0, 60.0: 1.0}, [0.7, 2.1])
    """

    _pattern = r"shrunk_rate_(\d+(?:\.\d+)?)d"

    def _column(self, half_life: float) -> str:
        return "shrunk_rate_all" if np.isinf(half_life) else f"shrunk_rate_{half_life:g}d"
