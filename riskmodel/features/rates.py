"""Rates from counts: the exposure of a time-weighted count over a finite history.

A case of age ``a`` days weighs ``2^(-a / half_life)`` in a decayed count. One case a day
over ``history`` days then sums to ``half_life / ln 2 * (1 - 2^(-history / half_life))``
days of exposure, which tends to ``history`` as the half-life grows: dividing a decayed
count by it gives cases a day for any half-life, infinity (the plain historical rate) included.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exposure_days"]

_LN2 = np.log(2)


def exposure_days(history_days, half_life: float) -> np.ndarray:
    """The weight of one case a day over ``history_days`` at ``half_life``: the decayed
    count's exposure in days.

    Parameters
    ----------
    history_days : array-like of float
        Days of history before the cutoff (from the data's first case).
    half_life : float
        Half-life in days; ``numpy.inf`` for unweighted counts (the exposure is the history).

    Returns
    -------
    ndarray of float
        Exposure in days, between 0 and ``history_days``.

    Examples
    --------
    >>> import numpy as np
    >>> from riskmodel.features.rates import exposure_days
    >>> exposure_days([365.0], 365).round(1).tolist(), exposure_days([365.0], np.inf).tolist()
    ([263.3], [365.0])
    """
    history = np.clip(np.asarray(history_days, dtype=float), 0, None)
    if np.isinf(half_life):
        return history
    return half_life / _LN2 * -np.expm1(-history * _LN2 / half_life)
