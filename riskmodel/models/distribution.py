"""The predictive distribution of a unit's count: negative binomial around the expected count.

Every grid family gives an expected count ``mu`` per unit; its predictive distribution is
the NB2 negative binomial with that mean and one ``dispersion`` per fitted model:
``variance = mu + dispersion * mu**2`` (dispersion 0 is the Poisson law). Counts of
disputes are overdispersed (cases come in bursts, and a model's mean is only an estimate
of the unit's rate), and one dispersion fitted by maximum likelihood on held-out counts
is the standard, parsimonious answer (Cameron and Trivedi, *Regression Analysis of
Count Data*, ch. 3). Where the dispersion is fitted (out of sample) is the harness's
choice: see :meth:`riskmodel.evaluation.targets.GridRisk.run_folds`.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

__all__ = ["NegativeBinomial", "fit_dispersion"]

#: Below this the fitted dispersion is reported as 0 (the Poisson law).
MIN_DISPERSION = 1e-6


def _arrays(expected, counts) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(expected, dtype=float).ravel()
    y = np.asarray(counts, dtype=float).ravel()
    if len(mu) != len(y):
        raise ValueError(f"expected and counts differ in length: {len(mu)} and {len(y)}")
    if not (np.isfinite(mu).all() and (mu >= 0).all()):
        bad = mu[~(np.isfinite(mu) & (mu >= 0))][:5].tolist()
        raise ValueError(f"expected counts must be finite and >= 0, got {bad}")
    if not (np.isfinite(y).all() and (y >= 0).all() and (y == np.round(y)).all()):
        bad = y[~(np.isfinite(y) & (y >= 0) & (y == np.round(y)))][:5].tolist()
        raise ValueError(f"counts must be whole numbers >= 0, got {bad}")
    return mu, y


def _log_likelihood(dispersion: float, mu: np.ndarray, y: np.ndarray) -> float:
    """Sum of the NB2 log probabilities of the whole counts ``y`` (the terms that depend on
    the dispersion). ``log Gamma(y + n) - log Gamma(n)`` is summed as ``sum_{j < y} log(n + j)``,
    exact where the difference of two large log-gammas would lose the digits that matter."""
    n = 1 / dispersion
    steps = np.concatenate([[0.0], np.cumsum(np.log(n + np.arange(int(y.max()))))])
    am = dispersion * mu
    return float(np.sum(steps[y.astype(int)] + y * np.log(am) - (n + y) * np.log1p(am)))


def fit_dispersion(expected, counts, *, max_dispersion: float = 1e3) -> float:
    """The NB2 dispersion that makes ``counts`` most likely around the means ``expected``.

    Maximises ``sum_i log NB(y_i; mu_i, a)`` over ``a >= 0`` with the means held fixed
    (scipy's bounded scalar search over ``log a``). When the score at ``a = 0``,
    ``sum_i ((y_i - mu_i)**2 - y_i) / 2``, is not positive the counts are no more spread
    than Poisson and the answer is 0; an answer below 1e-6 is also 0. Means below 1e-9
    are taken as 1e-9 (a count where the model expected none would make every
    dispersion impossible).

    Parameters
    ----------
    expected : array of float >= 0
        The model's expected counts (out of sample: in-sample means of a learned model
        are closer to the counts than new ones will be, and give too small a dispersion).
    counts : array of whole numbers >= 0
        The observed counts.
    max_dispersion : float
        The upper bound of the search.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from riskmodel.models.distribution import fit_dispersion
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.gamma(2.0, 0.5, 20_000)
    >>> y = rng.negative_binomial(1 / 0.5, 1 / (1 + 0.5 * mu))  # dispersion 0.5
    >>> round(fit_dispersion(mu, y), 1)
    0.5
    >>> fit_dispersion(mu, rng.poisson(mu))
    0.0
    """
    mu, y = _arrays(expected, counts)
    if len(mu) == 0:
        raise ValueError("cannot fit a dispersion on no counts")
    mu = np.maximum(mu, 1e-9)
    if np.sum((y - mu) ** 2 - y) <= 0:
        return 0.0
    found = optimize.minimize_scalar(
        lambda t: -_log_likelihood(np.exp(t), mu, y),
        bounds=(np.log(MIN_DISPERSION), np.log(max_dispersion)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    dispersion = float(np.exp(found.x))
    return 0.0 if dispersion < 2 * MIN_DISPERSION else dispersion


class NegativeBinomial:
    """The NB2 predictive distribution of counts with means ``expected`` and one ``dispersion``.

    ``variance = expected + dispersion * expected**2``; ``dispersion = 0`` is the Poisson
    law. A thin layer over scipy's ``nbinom`` (``n = 1 / dispersion``,
    ``p = n / (n + expected)``) and ``poisson``.

    Parameters
    ----------
    expected : array of float >= 0
    dispersion : float >= 0

    Examples
    --------
    >>> from riskmodel.models.distribution import NegativeBinomial
    >>> nb = NegativeBinomial([0.05, 2.0, 10.0], dispersion=0.5)
    >>> nb.variance.round(5).tolist()
    [0.05125, 4.0, 60.0]
    >>> low, high = nb.interval(0.8)
    >>> low.tolist(), high.tolist()
    ([0, 0, 2], [0, 5, 20])
    >>> lower, upper = nb.pit([0, 1, 10])  # F(y - 1) and F(y)
    >>> float(lower[0]), round(float(upper[0]), 4)
    (0.0, 0.9518)
    """

    def __init__(self, expected, dispersion: float = 0.0):
        self.expected = np.asarray(expected, dtype=float)
        if not (np.isfinite(self.expected).all() and (self.expected >= 0).all()):
            raise ValueError(f"expected counts must be finite and >= 0, got {self.expected[:5].tolist()}")
        if not (np.isfinite(dispersion) and dispersion >= 0):
            raise ValueError(f"dispersion must be a finite number >= 0 (0 is Poisson), got {dispersion!r}")
        self.dispersion = float(dispersion)

    @property
    def variance(self) -> np.ndarray:
        return self.expected + self.dispersion * self.expected**2

    def frozen(self):
        """The scipy distribution (``poisson`` with dispersion 0, else ``nbinom``)."""
        if self.dispersion == 0:
            return stats.poisson(self.expected)
        n = 1 / self.dispersion
        return stats.nbinom(n, n / (n + self.expected))

    def cdf(self, k) -> np.ndarray:
        """``P(Y <= k)``."""
        return np.asarray(self.frozen().cdf(k), dtype=float)

    def ppf(self, q) -> np.ndarray:
        """The smallest whole ``k`` with ``P(Y <= k) >= q``."""
        return np.asarray(self.frozen().ppf(q)).astype(int)

    def interval(self, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """The central interval ``[ppf((1 - level) / 2), ppf((1 + level) / 2)]`` in whole counts.

        It holds at least ``level`` of the probability (counts are whole, so often more:
        a unit with mean 0.05 has ``[0, 0]`` as its 80% interval, which holds 95%).
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        return self.ppf((1 - level) / 2), self.ppf((1 + level) / 2)

    def pit(self, counts) -> tuple[np.ndarray, np.ndarray]:
        """The nonrandomized PIT of the observed ``counts``: ``F(y - 1)`` and ``F(y)``.

        Czado, Gneiting and Held (2009, Biometrics 65): observation ``i``'s PIT is
        uniform on ``[F(y_i - 1), F(y_i)]``; under a calibrated forecast the average
        of these uniforms is uniform on [0, 1] (see
        :func:`riskmodel.evaluation.metrics.pit_histogram`).
        """
        y = np.asarray(counts, dtype=float)
        return self.cdf(y - 1), self.cdf(y)
