"""Rates from counts: the exposure of a time-weighted count over a finite history.

A case of age ``a`` days weighs ``2^(-a / half_life)`` in a decayed count. One case a day
over ``history`` days then sums to ``half_life / ln 2 * (1 - 2^(-history / half_life))``
days of exposure, which tends to ``history`` as the half-life grows: dividing a decayed
count by it gives cases a day for any half-life, infinity (the plain historical rate) included.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exposure_days", "shrinkage_weight"]

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


def shrinkage_weight(rate, prior, exposure: float) -> float:
    """The weight of each unit's own rate in its empirical-Bayes (gamma-Poisson) rate.

    Each unit's cases over an exposure of ``n`` days are Poisson with mean ``lambda * n``,
    and its rate ``lambda`` is gamma distributed around its prior mean ``m`` with variance
    ``m / b``: the posterior mean is ``(n * rate + b * m) / (n + b) = w * rate + (1 - w) * m``
    with ``w = n / (n + b)``. The prior strength ``b`` (days of pseudo-exposure) is
    estimated across units by the method of moments: ``E[(rate - m)^2] = m / b + m / n``, so
    ``1 / b = max(0, sum((rate - m)^2 - m / n)) / sum(m)``. When the rates vary no more than
    Poisson noise around their priors, ``w`` is 0 (every unit gets its prior).

    Parameters
    ----------
    rate : array-like of float
        The units' observed rates a day; NaN entries are left out.
    prior : array-like of float
        Their prior means (cases a day), each finite where ``rate`` is.
    exposure : float
        The units' (common) exposure in days. For a time-weighted count, the effective
        exposure ``exposure_days(t, h)^2 / exposure_days(t, h / 2)``, whose Poisson variance
        matches the weighted count's.

    Returns
    -------
    float
        ``w`` in ``[0, 1]``; NaN without exposure or without a finite rate.

    Examples
    --------
    >>> from riskmodel.features.rates import shrinkage_weight
    >>> round(shrinkage_weight([0.0, 0.1, 1.0, 2.0], [0.5, 0.5, 0.5, 0.5], exposure=100.0), 3)
    0.993
    >>> shrinkage_weight([0.49, 0.51], [0.5, 0.5], exposure=100.0)  # within Poisson noise
    0.0
    """
    rate, prior = np.asarray(rate, dtype=float), np.asarray(prior, dtype=float)
    known = np.isfinite(rate) & np.isfinite(prior)
    if not exposure > 0 or not known.any():
        return np.nan
    rate, prior = rate[known], prior[known]
    total = prior.sum()
    if total <= 0:
        return 0.0
    inverse_strength = max(0.0, float(np.sum((rate - prior) ** 2 - prior / exposure))) / total
    return float(exposure * inverse_strength / (exposure * inverse_strength + 1))
