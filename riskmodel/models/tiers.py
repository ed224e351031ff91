"""Tiers a grid worker acts on: red, orange, yellow, green."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from .protocol import row_times

__all__ = ["TierPolicy", "TIERS", "probability_saturated"]

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
    saturated_share : tuple of up to 3 floats, or None
        With cut-points, the shares of units in red, orange and yellow for a
        forecast date whose probabilities say little (see
        :func:`probability_saturated`: a case nearly every period), ranked by the
        ``tiebreak`` of :meth:`assign` (the expected count): cut-points would put
        nearly every unit in red. None keeps the cut-points there too.

    Notes
    -----
    The policy learns nothing: it has no ``fit`` and no fitted attributes, and
    :meth:`assign` validates the parameters. With capacity or share, units are
    ranked by score, highest first, then by ``tiebreak`` when given (for a grid
    model, :meth:`~riskmodel.TrainedModel.score` passes the expected count: when
    probabilities saturate at 1.0, the units expecting most cases are red), then in
    the order of the rows (for a panel: by ``grid_id``), so the same input always
    gives the same tiers. With cut-points, units whose scores tie share a tier
    whatever their ``tiebreak``; but where the probabilities of a forecast date are
    saturated and a ``tiebreak`` is given, ``saturated_share`` tiers them by it
    instead. Either way a unit ranked above another by (score, tiebreak) is never in
    a lower tier.

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
    >>> TierPolicy(saturated_share=(0.34, 0.33)).assign(saturated, tiebreak=[55.2, 64.6, 5.0]).tolist()
    ['orange', 'red', 'green']
    """

    # What the constraints cannot say (three decreasing cut-points, up to three sizes,
    # not both capacity and share) ``assign`` checks with messages of its own.
    _parameter_constraints = {
        "cut_points": ["array-like"],
        "capacity": [Interval(Integral, 0, None, closed="left"), "array-like", None],
        "share": [Interval(Real, 0, 1, closed="both"), "array-like", None],
        "saturated_share": ["array-like", None],
    }

    def __init__(self, *, cut_points=(0.5, 0.25, 0.1), capacity=None, share=None, saturated_share=(0.05, 0.1, 0.2)):
        self.cut_points = cut_points
        self.capacity = capacity
        self.share = share
        self.saturated_share = saturated_share

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
        if self.capacity is not None and self.share is not None:
            raise ValueError("give capacity or share, not both")
        by_size = self.capacity is not None or self.share is not None
        if not by_size:
            cuts = np.asarray(self.cut_points, dtype=float)
            if cuts.shape != (3,) or not (np.diff(cuts) <= 0).all():
                raise ValueError(f"cut_points must be three decreasing values, got {self.cut_points!r}")
            level = 3 - (values[:, None] >= cuts[None, :]).sum(axis=1)
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            if by_size:
                sizes = self.capacity if self.capacity is not None else self.share
            elif self.saturated_share is not None and tiebreak is not None and probability_saturated(values[rows]):
                sizes = self.saturated_share
            else:
                continue
            level[rows] = _by_rank(values[rows], second[rows], sizes, shares=self.capacity is None)
        tiers = pd.Categorical(np.array(TIERS)[np.minimum(level, 3)], categories=TIERS[::-1], ordered=True)
        return pd.Series(tiers, index=index, name="tier")


def _by_rank(values: np.ndarray, second: np.ndarray, sizes, *, shares: bool) -> np.ndarray:
    """Tier levels (0 red ... 3 green) of one forecast date's units ranked by (values,
    second), highest first, then row order: the first ``sizes[0]`` units (or shares of
    the units) red, the next ``sizes[1]`` orange, the next ``sizes[2]`` yellow."""
    sizes = np.atleast_1d(np.asarray(sizes, dtype=float))
    if len(sizes) > 3 or (sizes < 0).any() or (shares and (sizes > 1).any()):
        raise ValueError(
            f"capacity or share takes up to three non-negative sizes (shares at most 1), got {sizes.tolist()}"
        )
    bounds = np.cumsum(np.pad(sizes, (0, 3 - len(sizes))))
    rank = np.empty(len(values), dtype=int)
    rank[np.lexsort((-second, -values))] = np.arange(len(values))  # stable: then row order
    return np.searchsorted(np.round(bounds * len(values)) if shares else bounds, rank, side="right")


def probability_saturated(probability) -> bool:
    """Whether a probability of at least one case says little: most units (the median)
    are at 0.99 or more, or the mean is 0.8 or more, as when nearly every unit has a
    case each period. Then the expected count ranks and colours the units instead.

    Examples
    --------
    >>> from riskmodel.models import probability_saturated
    >>> probability_saturated([0.999, 1.0, 0.995, 0.4]), probability_saturated([0.2, 0.05, 0.6])
    (True, False)
    """
    p = np.asarray(probability, dtype=float)
    p = p[np.isfinite(p)]
    return bool(len(p)) and bool(np.median(p) >= 0.99 or p.mean() >= 0.8)
