"""Tiers a grid worker acts on: red, orange, yellow, green."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from .protocol import row_times

__all__ = ["TierPolicy", "TIERS"]

#: Tiers from the riskiest down.
TIERS = ("red", "orange", "yellow", "green")


class TierPolicy(BaseEstimator):
    """Map risk scores to tiers, by probability cut-points or by visit capacity.

    Exactly one of ``cut_points``, ``capacity`` or ``share`` is used (``capacity``
    or ``share`` when given, else ``cut_points``), separately for every forecast
    date (the ``cutoff`` level of a panel's index).

    Parameters
    ----------
    cut_points : tuple of 3 floats
        Lowest probability of red, orange and yellow (decreasing).
    capacity : int or tuple of 3 ints, optional
        Units per forecast date in red, orange and yellow (an int: red only),
        e.g. "the top 50 units".
    share : float or tuple of 3 floats, optional
        The same as shares of the units, e.g. the top 5%.

    Notes
    -----
    The policy learns nothing: it has no ``fit`` and no fitted attributes, and
    :meth:`assign` validates the parameters. With capacity or share, units are
    ranked by score, highest first, then by ``tiebreak`` when given (for a grid
    model, :meth:`~riskmodel.TrainedModel.score` passes the expected count: when
    probabilities saturate at 1.0, the units expecting most cases are red), then in
    the order of the rows (for a panel: by ``grid_id``), so the same input always
    gives the same tiers. With cut-points, units whose scores tie share a tier
    whatever their ``tiebreak`` (all saturated probabilities are red): give a
    capacity or share to split them by expected count. Either way a unit ranked above
    another by (score, tiebreak) is never in a lower tier.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.models import TierPolicy
    >>> scores = pd.Series([0.9, 0.4, 0.2, 0.05])
    >>> TierPolicy(cut_points=(0.6, 0.3, 0.1)).assign(scores).tolist()
    ['red', 'orange', 'yellow', 'green']
    >>> TierPolicy(capacity=1).assign(scores).tolist()
    ['red', 'green', 'green', 'green']
    >>> saturated = pd.Series([1.0, 1.0, 1.0])
    >>> TierPolicy(capacity=1).assign(saturated, tiebreak=[55.2, 64.6, 5.0]).tolist()
    ['green', 'red', 'green']
    """

    # What the constraints cannot say (three decreasing cut-points, up to three sizes,
    # not both capacity and share) ``assign`` checks with messages of its own.
    _parameter_constraints = {
        "cut_points": ["array-like"],
        "capacity": [Interval(Integral, 0, None, closed="left"), "array-like", None],
        "share": [Interval(Real, 0, 1, closed="both"), "array-like", None],
    }

    def __init__(self, *, cut_points=(0.5, 0.25, 0.1), capacity=None, share=None):
        self.cut_points = cut_points
        self.capacity = capacity
        self.share = share

    def assign(self, scores, dates=None, *, tiebreak=None) -> pd.Series:
        """Tier of every score (an ordered categorical, green < yellow < orange < red).

        Parameters
        ----------
        scores : Series or array-like
            Risk scores (probabilities for ``cut_points``), higher = riskier.
        dates : array-like, optional
            Forecast date of every score; default: the ``cutoff`` index level of
            ``scores``, else one date for all.
        tiebreak : array-like, optional
            A second key for ranking with capacity or share, higher = riskier,
            used where scores tie (e.g. the expected count); default: row order.

        Raises
        ------
        InvalidParameterError
            For a parameter of the wrong type or out of its range.
        ValueError
            For cut-points that are not three decreasing values, more than three or
            negative sizes, both ``capacity`` and ``share``, or missing scores.
        """
        self._validate_params()
        index = scores.index if isinstance(scores, pd.Series) else pd.RangeIndex(len(scores))
        values = np.asarray(scores, dtype=float)
        if np.isnan(values).any():
            raise ValueError(f"{int(np.isnan(values).sum())} scores are missing; every unit needs a score")
        second = np.zeros(len(values)) if tiebreak is None else np.asarray(tiebreak, dtype=float)
        if second.shape != values.shape:
            raise ValueError(f"tiebreak must have one value per score ({len(values)}), got shape {second.shape}")
        if dates is None:
            dates = row_times(scores) if isinstance(scores, pd.Series) else None
        groups = np.zeros(len(values), dtype=int) if dates is None else pd.factorize(np.asarray(dates))[0]
        level = np.full(len(values), 3)
        if self.capacity is None and self.share is None:
            cuts = np.asarray(self.cut_points, dtype=float)
            if cuts.shape != (3,) or not (np.diff(cuts) <= 0).all():
                raise ValueError(f"cut_points must be three decreasing values, got {self.cut_points!r}")
            level = 3 - (values[:, None] >= cuts[None, :]).sum(axis=1)
        else:
            sizes = self.capacity if self.capacity is not None else self.share
            sizes = np.atleast_1d(np.asarray(sizes, dtype=float))
            if self.capacity is not None and self.share is not None:
                raise ValueError("give capacity or share, not both")
            if len(sizes) > 3 or (sizes < 0).any():
                raise ValueError(f"capacity or share takes up to three non-negative sizes, got {sizes.tolist()}")
            bounds = np.cumsum(np.pad(sizes, (0, 3 - len(sizes))))
            for g in np.unique(groups):
                rows = np.flatnonzero(groups == g)
                rank = np.empty(len(rows), dtype=int)
                rank[np.lexsort((-second[rows], -values[rows]))] = np.arange(len(rows))  # stable: then row order
                limits = bounds if self.capacity is not None else np.round(bounds * len(rows))
                level[rows] = np.searchsorted(limits, rank, side="right")
        tiers = pd.Categorical(np.array(TIERS)[np.minimum(level, 3)], categories=TIERS[::-1], ordered=True)
        return pd.Series(tiers, index=index, name="tier")
