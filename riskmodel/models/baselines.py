"""Baselines every real system is judged against: last period, historical rate, kernel density.

They read the grid panel's own columns (window counts, decayed counts, the horizon,
unit centroids) and learn nothing; ``fit`` only checks that the columns are there.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import _fit_context
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval

from .protocol import GridRiskModel, row_times

__all__ = ["Baseline", "LastPeriodBaseline", "HistoricalRateBaseline", "KDEBaseline"]

_LN2 = np.log(2)

_DAYS = Interval(Integral, 1, None, closed="left")  # a window of the panel's counts
_POSITIVE = Interval(Real, 0, None, closed="neither")


class Baseline(GridRiskModel):
    """What the baselines share: they read named columns of the grid panel and learn nothing.

    Subclasses name the columns they read in `panel_columns`; `riskmodel.models.explain` reads the
    first of them as the baseline's one driver.
    """

    def panel_columns(self) -> list[str]:  # pragma: no cover - overridden
        """The panel columns the baseline reads, its driver first.

        Returns
        -------
        list of str
            Column names of the grid panel's ``X``.
        """
        raise NotImplementedError

    def panel_frame(self, X) -> pd.DataFrame:
        """Check that ``X`` is a DataFrame holding the columns the baseline reads.

        Parameters
        ----------
        X : pandas.DataFrame
            The grid panel's features, ``panel.X``.

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
        missing = [c for c in self.panel_columns() if c not in X.columns]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs the panel column(s) {missing}; build the panel with "
                "matching windows and half-lives"
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


class LastPeriodBaseline(Baseline):
    """The count of the last ``window`` days, scaled to the horizon.

    ``predict_expected = count_{window}d * horizon_days / window``.

    Parameters
    ----------
    window : int
        A window of the panel's counts, in days.

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
    """

    _parameter_constraints = {"window": [_DAYS]}

    def __init__(self, *, window=28):
        self.window = window

    def panel_columns(self) -> list[str]:
        return [f"count_{self.window}d", "horizon_days"]

    def predict_expected(self, X) -> np.ndarray:
        X = self.panel_frame(X)
        return (X[f"count_{self.window}d"] * X["horizon_days"] / self.window).to_numpy(float)


class HistoricalRateBaseline(Baseline):
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


class KDEBaseline(Baseline):
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
