"""Count-spike surveillance: is this week's count improbably high for this unit?"""

from __future__ import annotations

import re
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .protocol import row_times

__all__ = ["SpikeDetector"]


class SpikeDetector(BaseEstimator):
    """EARS-like surveillance of every unit and category on a grid panel.

    At each cutoff, the count of the last ``window`` days (``count_{window}d_{c}``)
    is compared with what the unit's own history expects: its daily rate in the
    ``baseline`` days before that window, or, if higher, over the ``long`` days
    before it (each with half a case added, so a quiet unit is not "infinitely"
    surprised), times a seasonal factor of the cutoff — all units' observed
    total over their expected total in that category (at least 1), which absorbs
    district-wide peaks such as unpaid wages before Spring Festival. The p-value
    is the upper tail ``P(N >= observed)`` of a negative binomial with that mean
    and ``dispersion`` (0: Poisson). An alarm needs ``p < alpha`` and at least
    ``min_count`` cases.

    The method is EARS-like (a unit's own recent baseline, no model fit across
    units) with a Poisson or negative-binomial tail instead of EARS's normal
    approximation, which misbehaves at the small counts of a grid. It is meant
    to run daily: cutoffs every day, the last week's count each day. With eight
    categories tested seven times a week, the default ``alpha`` of 1e-4 keeps
    false alarms to a few per 1,000 unit-weeks (``make bench`` measures it on
    the simulator's injected waves).

    It counts what the panel counts: a :class:`~riskmodel.features.GridPanelBuilder` counts
    disputes (``count="disputes"``, its default), so a dispute reported on three platforms is
    one case, not the start of a wave; a panel built with ``count="reports"`` has it watch
    reports instead.

    Parameters
    ----------
    window, baseline, long : int
        Window lengths in days; the panel needs per-category counts for all three.
    alpha : float
        p-value below which a count alarms (per unit, category and cutoff).
    min_count : int
        Fewest cases in the window that can alarm.
    dispersion : float
        Negative-binomial dispersion: variance = mean + dispersion * mean**2.

    Attributes
    ----------
    categories_ : list of str
        The categories watched: those with counts for the three windows in the ``X`` of ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.models import SpikeDetector
    >>> X = pd.DataFrame({"count_7d_noise": [1.0] * 20 + [9.0], "count_91d_noise": [13.0] * 20 + [21.0],
    ...                   "count_364d_noise": [52.0] * 20 + [60.0]})
    >>> detector = SpikeDetector().fit(X)
    >>> detector.alarms(X)["noise"].tolist()[-2:], float(detector.p_values(X)["noise"].iloc[-1].round(5))
    ([False, True], 1e-05)
    """

    _parameter_constraints = {
        "window": [Interval(Integral, 1, None, closed="left")],
        "baseline": [Interval(Integral, 1, None, closed="left")],
        "long": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "min_count": [Interval(Integral, 0, None, closed="left")],
        "dispersion": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, window=7, baseline=91, long=364, alpha=1e-4, min_count=3, dispersion=0.0):
        self.window = window
        self.baseline = baseline
        self.long = long
        self.alpha = alpha
        self.min_count = min_count
        self.dispersion = dispersion

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the categories: those with counts for the three windows in ``X``.

        Raises
        ------
        InvalidParameterError
            For a parameter of the wrong type or out of its range.
        ValueError
            When ``baseline`` or ``long`` is not longer than ``window``, or ``X`` has no
            per-category counts of the three windows.
        """
        if not (self.window < self.baseline and self.window < self.long):
            raise ValueError(
                f"baseline and long must be longer than window, got window={self.window}, "
                f"baseline={self.baseline}, long={self.long}"
            )
        if not isinstance(X, pd.DataFrame):
            raise TypeError("SpikeDetector reads a grid panel's per-category counts: pass panel.X")
        found = [m.group(1) for c in X.columns if (m := re.fullmatch(rf"count_{self.window}d_(.+)", c))]
        self.categories_ = [
            c for c in found if f"count_{self.baseline}d_{c}" in X.columns and f"count_{self.long}d_{c}" in X.columns
        ]
        if not self.categories_:
            raise ValueError(
                f"X has no per-category counts of {self.window}, {self.baseline} and {self.long} days; "
                "build the panel with those windows"
            )
        return self

    def totals(self, X) -> pd.DataFrame:
        """What the seasonal factor reads: per cutoff (row) and category, the observed
        and the expected counts summed over the units (columns ``(category, "observed")``
        and ``(category, "expected")``). The sums over parts of the units add up to the
        whole's: pass them to :meth:`p_values` of each part to score it as the whole."""
        groups, times = self._groups(X)
        out = {}
        for c in self.categories_:
            observed, expected = self._counts(X, c)
            out[(c, "observed")] = np.bincount(groups, observed, minlength=len(times))
            out[(c, "expected")] = np.bincount(groups, expected, minlength=len(times))
        return pd.DataFrame(out, index=times)

    def p_values(self, X, totals: pd.DataFrame | None = None) -> pd.DataFrame:
        """Upper-tail p-value of every unit, cutoff (row) and category (column); the
        seasonal factor from ``totals`` (:meth:`totals`) when given, else from ``X``."""
        totals = self.totals(X) if totals is None else totals
        groups, times = self._groups(X)
        absent = times.difference(totals.index)
        if len(absent):
            raise ValueError(f"totals lack the cutoff(s) {list(absent[:5])} of X")
        totals = totals.reindex(times)
        out = {}
        for c in self.categories_:
            observed, expected = self._counts(X, c)
            season = (totals[(c, "observed")].to_numpy() + 1) / (totals[(c, "expected")].to_numpy() + 1)
            out[c] = self._tail(observed, expected * np.maximum(season, 1.0)[groups])
        return pd.DataFrame(out, index=X.index)

    def _groups(self, X) -> tuple[np.ndarray, pd.Index]:
        """The cutoff of every row, as codes of the distinct cutoffs; checks ``X``'s columns."""
        check_is_fitted(self)
        missing = [
            f"count_{w}d_{c}"
            for c in self.categories_
            for w in (self.window, self.baseline, self.long)
            if f"count_{w}d_{c}" not in X.columns
        ]
        if missing:
            raise ValueError(f"X lacks the column(s) {missing[:5]}")
        times = row_times(X)
        if times is None:
            return np.zeros(len(X), dtype=int), pd.Index([0])
        groups, unique = pd.factorize(times)
        return groups, pd.Index(unique)

    def _counts(self, X, c: str) -> tuple[np.ndarray, np.ndarray]:
        """The window's count of category ``c`` and what the unit's history expects."""
        observed = X[f"count_{self.window}d_{c}"].to_numpy(float)
        recent = (X[f"count_{self.baseline}d_{c}"].to_numpy(float) - observed + 0.5) / (self.baseline - self.window)
        usual = (X[f"count_{self.long}d_{c}"].to_numpy(float) - observed + 0.5) / (self.long - self.window)
        return observed, np.maximum(recent, usual) * self.window

    def _tail(self, observed: np.ndarray, mean: np.ndarray) -> np.ndarray:
        if self.dispersion <= 0:
            return stats.poisson.sf(observed - 1, mean)
        size = 1.0 / self.dispersion
        return stats.nbinom.sf(observed - 1, size, size / (size + mean))

    def alarms(self, X, totals: pd.DataFrame | None = None) -> pd.DataFrame:
        """True where a category's count in the window is improbably high (``totals``:
        see :meth:`p_values`)."""
        return self._flags(X, self.p_values(X, totals))

    def _flags(self, X, p: pd.DataFrame) -> pd.DataFrame:
        counts = X[[f"count_{self.window}d_{c}" for c in self.categories_]].to_numpy()
        return pd.DataFrame((p.to_numpy() < self.alpha) & (counts >= self.min_count), index=p.index, columns=p.columns)

    def alarm_table(self, X) -> pd.DataFrame:
        """The alarms one per row: ``unit_id``, ``time`` (the cutoff), ``category``, ``p_value``.

        ``X`` is a grid panel, indexed by unit and cutoff.
        """
        p = self.p_values(X)
        flags = self._flags(X, p)
        p.index = p.index.set_names(["unit_id", "time"])
        long = p.stack()
        long = long[flags.stack().to_numpy()]
        return long.rename_axis(["unit_id", "time", "category"]).rename("p_value").reset_index()
