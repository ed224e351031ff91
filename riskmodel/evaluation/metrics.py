"""Evaluation metrics: pure functions of scores, labels and alarms."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scoringrules
from sklearn import metrics as _sk

from ..models.distribution import NegativeBinomial

__all__ = [
    "average_precision",
    "brier",
    "crps",
    "crps_poisson",
    "expected_calibration_error",
    "hit_rate",
    "interval_coverage",
    "lead_time",
    "log_loss",
    "pai",
    "pei_star",
    "pit_coverage",
    "pit_histogram",
    "poisson_deviance",
    "population_stability_index",
    "precision_at_capacity",
    "quantile_bins",
    "roc_auc",
    "rri",
    "score_cases",
    "score_distribution",
    "score_fold",
    "selection",
    "stability_index",
    "wave_detection",
]


def _selection(score, k: float, area=None) -> np.ndarray:
    """Weight in [0, 1] of each unit in the top ``k`` share (of units, or of area):
    :func:`selection` at one share ``k`` in (0, 1]."""
    if not 0 < k <= 1:
        raise ValueError(f"k must be a share in (0, 1], got {k}")
    if len(np.asarray(score)) == 0:
        raise ValueError("no units to rank")
    return selection(score, np.array([k]), area)[0]


def selection(score, shares, area=None) -> np.ndarray:
    """Weight in [0, 1] of each unit in the top share of units (or of area), at every share.

    Units are taken from the highest score down until the share of the units (or of the
    total area) is reached; the units tied at the boundary score share the slots
    left in proportion to their number (or area), so the result is the expected
    selection under a random tie-break: it does not depend on the row order. The units
    are ranked once for all the shares.

    Parameters
    ----------
    score : array-like of shape (n,)
    shares : array-like of shape (m,)
        Shares in [0, 1]; at 0 no unit is chosen.
    area : array-like of shape (n,), optional

    Returns
    -------
    ndarray of shape (m, n)

    Examples
    --------
    >>> selection([0.9, 0.5, 0.5, 0.1], [0.25, 0.5]).tolist()
    [[1.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.5, 0.0]]
    """
    score = np.asarray(score, dtype=float)
    size = np.ones(len(score)) if area is None else np.asarray(area, dtype=float)
    budget = np.asarray(shares, dtype=float)[:, None] * size.sum()
    values, group = np.unique(-score, return_inverse=True)  # groups of tied scores, highest first
    group_size = np.bincount(group, size, len(values))
    before = np.cumsum(group_size) - group_size  # size of the groups above each one
    return np.clip((budget - before) / group_size, 0.0, 1.0)[:, group]


def hit_rate(y, score, *, k: float = 0.05, area=None) -> float:
    """Share of the cases that fall in the top ``k`` of units by score.

    ``hit_rate = sum_i w_i y_i / sum_i y_i`` where ``w_i`` is 1 for the units
    above the boundary, a share for the units tied at it (see below), 0 else,
    and ``y_i`` the unit's number of cases in the horizon. ``k`` is a share of
    the units, or of the total ``area`` when given (``area_km2``). Ties at the
    boundary share the slots left in proportion to their number (or area): the
    expected hit rate under a random tie-break. NaN when there is no case.

    Examples
    --------
    >>> hit_rate([3, 0, 1, 0], [0.9, 0.8, 0.1, 0.1], k=0.25)
    0.75
    """
    y = np.asarray(y, dtype=float)
    total = y.sum()
    return float(_selection(score, k, area) @ y / total) if total > 0 else float("nan")


def pai(y, score, *, k: float = 0.05, area=None) -> float:
    """Predictive accuracy index: hit rate over the share of area (or of units) chosen.

    ``PAI = hit_rate / (sum_i w_i a_i / sum_i a_i)`` with ``a_i`` the unit's area
    (1 without ``area``), so 1 is no better than chance.

    Examples
    --------
    >>> pai([3, 0, 1, 0], [0.9, 0.8, 0.1, 0.1], k=0.25)
    3.0
    """
    size = np.ones(len(np.asarray(score))) if area is None else np.asarray(area, dtype=float)
    share = _selection(score, k, area) @ size / size.sum()
    return hit_rate(y, score, k=k, area=area) / float(share)


def pei_star(y, score, *, k: float = 0.05, area=None) -> float:
    """Predictive efficiency index: cases caught over the most the same selection could catch.

    ``PEI* = sum_i w_i y_i / max_v sum_i v_i y_i`` where ``v`` ranges over the
    selections of the same size (or area) — the top ``k`` ranked by the cases
    themselves; 1 is perfect. NaN when there is no case.

    Examples
    --------
    >>> pei_star([3, 0, 1, 0], [0.1, 0.9, 0.8, 0.0], k=0.25)
    0.0
    """
    y = np.asarray(y, dtype=float)
    best = _selection(y, k, area) @ y
    return float(_selection(score, k, area) @ y / best) if best > 0 else float("nan")


def rri(y, expected, *, k: float = 0.05, area=None) -> float:
    """Recapture rate index: how much better the model's expected counts hold in its top units.

    ``RRI = (sum_i w_i y_i / sum_i w_i e_i) / (sum_i y_i / sum_i e_i)`` with ``e_i``
    the model's expected count and ``w`` its top ``k`` by ``e``: 1 when the chosen
    units see as many cases, relative to the forecast, as the whole area.

    Examples
    --------
    >>> rri([3, 0, 1, 0], [2.0, 1.0, 0.5, 0.5], k=0.25)
    1.5
    """
    y, e = np.asarray(y, dtype=float), np.asarray(expected, dtype=float)
    w = _selection(e, k, area)
    if y.sum() == 0 or w @ e == 0:  # no case, or a forecast of none in the chosen units: undefined
        return float("nan")
    return float((w @ y / (w @ e)) / (y.sum() / e.sum()))


def precision_at_capacity(y, score, *, capacity: int) -> float:
    """Share of the ``capacity`` highest-scored units that have at least one case.

    ``precision = sum_i w_i [y_i > 0] / capacity`` with ``w`` the top ``capacity``
    units (ties at the boundary shared as in :func:`hit_rate`).

    Examples
    --------
    >>> precision_at_capacity([3, 0, 1, 0], [0.9, 0.8, 0.1, 0.1], capacity=2)
    0.5
    """
    y = np.asarray(y, dtype=float)
    if not 1 <= capacity <= len(y):
        raise ValueError(f"capacity must be between 1 and the {len(y)} units, got {capacity}")
    return float(_selection(score, capacity / len(y)) @ (y > 0) / capacity)


def lead_time(flag_times, case_times) -> float:
    """Median days from a unit's first flag to its next case.

    For each case the lead time is ``case time - first flag time`` of the run of
    flags of its unit that precedes it (the earliest flag after the unit's
    previous case, if any is before the case); cases with no flag before them
    are left out. Inputs are Series of times indexed by unit id. NaN when no
    case was flagged in advance.

    Examples
    --------
    >>> import pandas as pd
    >>> flags = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-08"]), index=["G1", "G1"])
    >>> cases = pd.Series(pd.to_datetime(["2024-01-11", "2024-01-20"]), index=["G1", "G2"])
    >>> lead_time(flags, cases)
    10.0
    """
    flags = pd.DataFrame({"unit": flag_times.index, "flag": flag_times.to_numpy()}).sort_values("flag")
    cases = pd.DataFrame({"unit": case_times.index, "case": case_times.to_numpy()}).sort_values("case")
    cases["previous"] = cases.groupby("unit")["case"].shift()
    pairs = cases.reset_index(names="row").merge(flags, on="unit")
    mine = (pairs["flag"] < pairs["case"]) & (pairs["previous"].isna() | (pairs["flag"] > pairs["previous"]))
    first = pairs[mine].groupby("row")["flag"].min()
    days = (cases["case"].reindex(first.index) - first) / pd.Timedelta(days=1)
    return float(days.median()) if len(days) else float("nan")


def roc_auc(y, p) -> float:
    """Area under the ROC curve: P(score of a unit with a case > score of one without),
    ties counting one half (scikit-learn's ``roc_auc_score``); NaN with one class.

    Examples
    --------
    >>> roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.8, 0.1])
    0.875
    """
    y = np.asarray(y) > 0
    return float(_sk.roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def average_precision(y, p) -> float:
    """``AP = sum_n (R_n - R_{n-1}) P_n`` over the score thresholds (scikit-learn's
    ``average_precision_score``); NaN without a positive.

    Examples
    --------
    >>> average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    0.8333333333333333
    """
    y = np.asarray(y) > 0
    return float(_sk.average_precision_score(y, p)) if y.any() else float("nan")


def brier(y, p) -> float:
    """Brier score ``mean_i (p_i - [y_i > 0])**2``; lower is better.

    Examples
    --------
    >>> brier([1, 0], [0.8, 0.4])
    0.1
    """
    y = (np.asarray(y) > 0).astype(float)
    return float(np.mean((np.asarray(p, dtype=float) - y) ** 2))


def log_loss(y, p, *, eps: float = 1e-15) -> float:
    """``-mean_i [y_i log p_i + (1 - y_i) log(1 - p_i)]`` with ``p`` clipped to [eps, 1 - eps].

    Examples
    --------
    >>> round(log_loss([1, 0], [0.5, 0.5]), 6)
    0.693147
    """
    y = (np.asarray(y) > 0).astype(float)
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def expected_calibration_error(y, p, *, bins: int = 10) -> float:
    """``ECE = sum_b (n_b / n) |mean_{i in b} [y_i > 0] - mean_{i in b} p_i|``.

    The bins hold equal numbers of rows (quantiles of ``p``; rows of equal ``p``
    stay in one bin, so a bin may hold more): with rare events, equal-width bins
    would put nearly every row in the first bin.

    Examples
    --------
    >>> expected_calibration_error([1, 0, 0, 0], [0.5, 0.5, 0.1, 0.1], bins=2)
    0.05
    """
    y = (np.asarray(y) > 0).astype(float)
    p = np.asarray(p, dtype=float)
    if len(p) == 0:
        return float("nan")
    first_rank = np.searchsorted(np.sort(p), p, side="left")  # ties share the bin of the first of them
    b = np.minimum(first_rank * bins // len(p), bins - 1)
    gap = np.abs(np.bincount(b, y, bins) - np.bincount(b, p, bins))
    return float(gap.sum() / len(p))


def poisson_deviance(y, expected) -> float:
    """Mean Poisson deviance ``2 mean_i (y_i log(y_i / e_i) - (y_i - e_i))`` (0 log 0 = 0).

    Examples
    --------
    >>> round(poisson_deviance([0, 2], [1.0, 1.0]), 6)
    1.386294
    """
    y, e = np.asarray(y, dtype=float), np.clip(np.asarray(expected, dtype=float), 1e-12, None)
    term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / e), 0.0)
    return float(2 * np.mean(term - (y - e)))


def crps(y, expected, dispersion: float = 0.0) -> float:
    """Mean continuous ranked probability score of the NB2 forecasts (lower is better).

    ``CRPS(F, y) = sum_k (F(k) - [y <= k])**2`` for counts, in closed form by
    ``scoringrules`` (``crps_negbinom``, ``crps_poisson`` with dispersion 0); where its
    hypergeometric form does not converge (large means with a dispersion near 0) the
    sum is taken directly. It is in the units of the count: a forecast of exactly the
    observed count scores 0.

    Examples
    --------
    >>> round(crps([0, 2], [0.5, 1.5], dispersion=0.2), 4)
    0.3069
    >>> crps([0, 2], [0.5, 1.5]) == crps_poisson([0, 2], [0.5, 1.5])
    True
    """
    forecast = NegativeBinomial(expected, dispersion)
    y = np.asarray(y, dtype=float)
    if forecast.dispersion == 0:
        return crps_poisson(y, forecast.expected)
    scores = np.asarray(scoringrules.crps_negbinom(y, 1 / forecast.dispersion, mu=forecast.expected), dtype=float)
    bad = ~np.isfinite(scores)
    if bad.any():
        scores[bad] = _crps_sum(y[bad], NegativeBinomial(forecast.expected[bad], forecast.dispersion))
    return float(np.mean(scores))


def _crps_sum(y: np.ndarray, forecast: NegativeBinomial, chunk: int = 2048) -> np.ndarray:
    """``sum_k (F(k) - [y <= k])**2`` over k up to past the observation and the 1 - 1e-12 quantile."""
    out = np.empty(len(y))
    for start in range(0, len(y), chunk):
        part = slice(start, start + chunk)
        mu = forecast.expected[part]
        k = np.arange(int(max(y[part].max(), NegativeBinomial(mu, forecast.dispersion).ppf(1 - 1e-12).max())) + 2)
        cdf = NegativeBinomial(mu[:, None], forecast.dispersion).cdf(k[None, :])
        out[part] = np.sum((cdf - (y[part, None] <= k[None, :])) ** 2, axis=1)
    return out


def crps_poisson(y, expected) -> float:
    """Mean CRPS of Poisson forecasts with means ``expected`` (``scoringrules.crps_poisson``):
    the reference that a distribution with a fitted dispersion should beat, for example a
    Poisson law around the historical rate.

    Examples
    --------
    >>> round(crps_poisson([0, 1], [0.0, 1.0]), 4)  # a sure 0 for a 0 scores 0, the 1: 0.2119
    0.106
    """
    e = np.clip(np.asarray(expected, dtype=float), 0, None)
    return float(np.mean(scoringrules.crps_poisson(np.asarray(y, dtype=float), e)))


def _pit_below(lower: np.ndarray, upper: np.ndarray, u) -> np.ndarray:
    """Each observation's nonrandomized PIT distribution at ``u``: uniform on [lower, upper]."""
    u = np.asarray(u, dtype=float)[..., None]
    width = upper - lower
    inside = np.clip((u - lower) / np.where(width > 0, width, 1), 0, 1)
    return np.where(width > 0, inside, (u >= upper).astype(float))


def pit_histogram(lower, upper, *, bins: int = 10) -> np.ndarray:
    """Share of the PIT mass in each of ``bins`` equal bins of [0, 1] (Czado, Gneiting and Held 2009).

    Observation ``i`` with ``lower_i = F_i(y_i - 1)`` and ``upper_i = F_i(y_i)`` (see
    :meth:`~riskmodel.models.distribution.NegativeBinomial.pit`) puts its unit mass
    uniformly on ``[lower_i, upper_i]``; the histogram is the average over observations.
    Under a calibrated forecast every bin holds ``1 / bins`` in expectation; a U shape
    means too narrow a distribution, a hump too wide.

    Examples
    --------
    >>> pit_histogram([0.0, 0.5], [0.5, 1.0], bins=2).tolist()
    [0.5, 0.5]
    """
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    below = _pit_below(lower, upper, edges).mean(axis=-1)
    return np.diff(below)


def pit_coverage(lower, upper, level: float) -> float:
    """Coverage of the central ``level`` interval read on the nonrandomized PIT.

    The share of each observation's PIT mass inside ``[(1 - level) / 2, (1 + level) / 2]``,
    averaged. Under a calibrated forecast it is exactly ``level`` in expectation, also for
    counts, where a whole-number interval covers at least its level by construction (a
    unit with mean 0.05 has [0, 0] as its 80% interval, which holds 95%): see
    :func:`interval_coverage` for that one.

    Examples
    --------
    >>> pit_coverage([0.0], [1.0], 0.8)  # one observation whose PIT spans [0, 1]
    0.8
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    inside = _pit_below(lower, upper, (1 + level) / 2) - _pit_below(lower, upper, (1 - level) / 2)
    return float(np.round(np.mean(inside), 12))


def interval_coverage(y, low, high) -> float:
    """Share of the counts ``y`` inside their whole-number intervals ``[low, high]``
    (at least the interval's level for a calibrated forecast; see :func:`pit_coverage`).

    Examples
    --------
    >>> interval_coverage([0, 3, 5], [0, 1, 1], [0, 2, 6])
    0.6666666666666666
    """
    y = np.asarray(y, dtype=float)
    return float(np.mean((y >= np.asarray(low)) & (y <= np.asarray(high))))


def quantile_bins(reference, bins: int = 10):
    """The bins of a population stability index: the quantiles of ``reference`` (repeated
    edges merged) and one more bin for missing values.

    Returns
    -------
    where : callable
        The bin of each value of an array.
    n : int
        The number of bins.

    Examples
    --------
    >>> where, n = quantile_bins([1.0, 2, 3, 4], bins=2)
    >>> where(np.array([0.0, 3.0, np.nan])).tolist(), n
    ([0, 1, 2], 3)
    """
    reference = np.asarray(reference, dtype=float)
    known = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if len(known) else np.array([])

    def where(values: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(values), len(edges) + 1, np.searchsorted(edges, values, side="right"))

    return where, len(edges) + 2


def stability_index(shares, base, eps: float = 1e-4) -> np.ndarray:
    """``sum_b (s_b - e_b) ln(s_b / e_b)`` over the last axis of two arrays of bin shares,
    floored at ``eps``: the population stability index of ``shares`` against ``base``.

    Examples
    --------
    >>> float(stability_index(np.array([0.5, 0.5]), np.array([0.5, 0.5])))
    0.0
    """
    shares, base = np.maximum(shares, eps), np.maximum(base, eps)
    return np.sum((shares - base) * np.log(shares / base), axis=-1)


def population_stability_index(expected, actual, *, bins: int = 10, eps: float = 1e-4) -> float:
    """``PSI = sum_b (a_b - e_b) ln(a_b / e_b)`` over the deciles of ``expected``.

    ``e_b`` and ``a_b`` are the shares of the training (``expected``) and scoring
    (``actual``) values in bin ``b``: the quantile bins of ``expected`` (repeated edges
    merged) and one bin for missing values (:func:`quantile_bins`), shares floored at
    ``eps`` (:func:`stability_index`). 0 for the same distribution; below 0.1 is usually
    read as stable, above 0.25 as shifted.

    Raises
    ------
    ValueError
        When either side has no value.

    Examples
    --------
    >>> round(population_stability_index([1, 2, 3, 4], [1, 3, 4, 4], bins=2), 4)
    0.2747
    >>> rng = np.random.default_rng(0)
    >>> same = population_stability_index(rng.normal(size=5000), rng.normal(size=5000))
    >>> shifted = population_stability_index(rng.normal(size=5000), rng.normal(1.0, size=5000))
    >>> same < 0.01, shifted > 0.25
    (True, True)
    """
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if len(expected) == 0 or len(actual) == 0:
        raise ValueError(
            f"a population stability index needs values on both sides, got {len(expected)} expected "
            f"and {len(actual)} actual"
        )
    where, n = quantile_bins(expected, bins)
    e = np.bincount(where(expected), minlength=n) / len(expected)
    a = np.bincount(where(actual), minlength=n) / len(actual)
    return float(stability_index(a, e, eps))


def wave_detection(
    alarms: pd.DataFrame,
    waves: pd.DataFrame,
    *,
    unit_weeks: float,
    parent: Mapping[str, str] | None = None,
    watch_start=None,
    watch_end=None,
    within_days: int = 14,
    grace_days: int = 7,
) -> dict[str, float]:
    """Share of dispute waves detected, their detection delay, and the false alarms.

    An alarm ``a`` (unit, time, category) belongs to wave ``w`` when the categories
    are equal, the places match (same unit, or one is the other's ``parent``:
    a grid's alarm counts for its community's wave and the other way round) and
    ``start_w < time_a <= end_w + grace_days`` (an alarm at the very start saw
    none of the wave). Then, over the waves watched (those with
    ``watch_start <= start_w`` and ``start_w + within_days <= watch_end``),

    - ``wave_detection_rate`` = #{w : some alarm of w has time_a <= start_w + within_days} / #watched;
    - ``wave_median_delay_days`` = median over the detected waves of
      (earliest such time_a - start_w) in days (NaN when none is detected);
    - ``false_alarms_per_1000_unit_weeks`` = 1000 x #{(unit, week) with an alarm
      that belongs to no wave} / ``unit_weeks`` (weeks start on Monday).

    Parameters
    ----------
    alarms : DataFrame
        One row per alarm: ``unit_id``, ``time``, ``category``.
    waves : DataFrame
        One row per wave: ``unit_id``, ``category``, ``start``, ``end`` (exclusive),
        as in ``truth.waves`` of a simulated district.
    unit_weeks : float
        Units watched times weeks watched (for a daily panel: rows / 7).
    parent : mapping, optional
        Unit to the unit that contains it (for example grid to community).
    watch_start, watch_end : timestamp, optional
        The watched period; waves outside it are not counted as missed.
    within_days, grace_days : int
        Days from a wave's start in which an alarm detects it; days after its end
        in which an alarm is still the wave's.

    Returns
    -------
    dict
        ``waves_watched``, ``waves_detected``, ``wave_detection_rate``,
        ``wave_median_delay_days``, ``false_alarms_per_1000_unit_weeks``.

    Examples
    --------
    >>> import pandas as pd
    >>> waves = pd.DataFrame({"unit_id": ["C1"], "category": ["noise"],
    ...                       "start": pd.to_datetime(["2024-03-01"]), "end": pd.to_datetime(["2024-03-15"])})
    >>> alarms = pd.DataFrame({"unit_id": ["G1", "G2"], "category": ["noise", "noise"],
    ...                        "time": pd.to_datetime(["2024-03-05", "2024-06-01"])})
    >>> result = wave_detection(alarms, waves, unit_weeks=1000, parent={"G1": "C1", "G2": "C1"})
    >>> result["wave_detection_rate"], result["wave_median_delay_days"], result["false_alarms_per_1000_unit_weeks"]
    (1.0, 4.0, 1.0)
    """
    if unit_weeks <= 0:
        raise ValueError(f"unit_weeks must be > 0, got {unit_weeks}")
    parent = {} if parent is None else dict(parent)
    alarms = alarms.reset_index(drop=True)
    pairs = alarms.reset_index(names="alarm").merge(
        waves.reset_index(drop=True).reset_index(names="wave"), on="category", suffixes=("", "_wave")
    )
    unit, wave_unit = pairs["unit_id"], pairs["unit_id_wave"]
    place = (unit == wave_unit) | (unit.map(parent) == wave_unit) | (wave_unit.map(parent) == unit)
    after = pairs["time"] - pairs["start"]
    pairs = pairs[place & (after > pd.Timedelta(0)) & (pairs["time"] <= pairs["end"] + pd.Timedelta(days=grace_days))]
    early = after[pairs.index][after[pairs.index] <= pd.Timedelta(days=within_days)]
    first = early.groupby(pairs.loc[early.index, "wave"]).min()
    watched = pd.Series(True, index=waves.index)
    if watch_start is not None:
        watched &= waves["start"] >= pd.Timestamp(watch_start)
    if watch_end is not None:
        watched &= waves["start"] + pd.Timedelta(days=within_days) <= pd.Timestamp(watch_end)
    positions = np.flatnonzero(watched.to_numpy())
    delays = first[first.index.isin(positions)] / pd.Timedelta(days=1)
    false = alarms.drop(index=pairs["alarm"].unique())
    false_weeks = false.groupby([false["unit_id"], false["time"].dt.to_period("W")]).ngroups
    return {
        "waves_watched": len(positions),
        "waves_detected": len(delays),
        "wave_detection_rate": len(delays) / len(positions) if len(positions) else float("nan"),
        "wave_median_delay_days": float(np.median(delays)) if len(delays) else float("nan"),
        "false_alarms_per_1000_unit_weeks": 1000 * false_weeks / unit_weeks,
    }


#: The central intervals whose coverage :func:`score_fold` reports (``coverage_50`` ...).
COVERAGE_LEVELS = (0.5, 0.8, 0.9)


def score_distribution(y_count, expected, dispersion: float) -> dict[str, float]:
    """The metrics of the NB2 forecasts of one fold: ``crps``, ``coverage_50/80/90``
    (:func:`pit_coverage`, exactly nominal in expectation under calibration) and
    ``interval_coverage_80`` (:func:`interval_coverage` of the whole-number 80% intervals,
    at least 0.8 for a calibrated forecast).

    Examples
    --------
    >>> from riskmodel.evaluation.metrics import score_distribution
    >>> scores = score_distribution([0, 1, 0, 4], [0.2, 0.5, 0.1, 2.0], dispersion=0.3)
    >>> round(scores["crps"], 4), scores["interval_coverage_80"]
    (0.4656, 1.0)
    """
    forecast = NegativeBinomial(expected, dispersion)
    lower, upper = forecast.pit(y_count)
    out = {"crps": crps(y_count, forecast.expected, forecast.dispersion)}
    for level in COVERAGE_LEVELS:
        out[f"coverage_{round(100 * level)}"] = pit_coverage(lower, upper, level)
    out["interval_coverage_80"] = interval_coverage(y_count, *forecast.interval(0.8))
    return out


def score_fold(
    y_count, probability, expected, *, area=None, capacity=None, street=None, dispersion: float | None = None
) -> dict[str, float]:
    """Every grid metric of one fold (see :mod:`riskmodel.evaluation.metrics` for the formulas);
    with a ``dispersion`` also those of the forecasts' distribution (:func:`score_distribution`).

    Examples
    --------
    >>> from riskmodel.evaluation.metrics import score_fold
    >>> scores = score_fold([2, 0, 0, 1], [0.8, 0.1, 0.3, 0.5], [1.6, 0.1, 0.4, 0.7])
    >>> scores["roc_auc"], round(scores["hit_rate_at_5pct"], 4)  # 5% of 4 units: a fifth of the top one
    (1.0, 0.1333)
    """
    y_count = np.asarray(y_count, dtype=float)
    out = {
        "roc_auc": roc_auc(y_count, probability),
        "average_precision": average_precision(y_count, probability),
        "brier": brier(y_count, probability),
        "log_loss": log_loss(y_count, probability),
        "ece": expected_calibration_error(y_count, probability),
        "poisson_deviance": poisson_deviance(y_count, expected),
        "hit_rate_at_1pct": hit_rate(y_count, probability, k=0.01),
        "hit_rate_at_5pct": hit_rate(y_count, probability, k=0.05),
        "pai_at_1pct": pai(y_count, probability, k=0.01),
        "pai_at_5pct": pai(y_count, probability, k=0.05),
        "pei_star_at_1pct": pei_star(y_count, probability, k=0.01),
        "pei_star_at_5pct": pei_star(y_count, probability, k=0.05),
        "rri_at_5pct": rri(y_count, expected, k=0.05),
    }
    if area is not None:
        out["hit_rate_at_5pct_area"] = hit_rate(y_count, probability, k=0.05, area=area)
        out["pai_at_5pct_area"] = pai(y_count, probability, k=0.05, area=area)
    if capacity is not None:
        out["precision_at_capacity"] = precision_at_capacity(y_count, probability, capacity=min(capacity, len(y_count)))
    if street is not None:
        frame = pd.DataFrame({"y": y_count, "p": probability, "street": np.asarray(street)})
        by = frame.groupby("street", sort=True)
        out["roc_auc_street_std"] = by.apply(lambda g: roc_auc(g["y"], g["p"])).std()
        out["hit_rate_at_5pct_street_std"] = by.apply(lambda g: hit_rate(g["y"], g["p"], k=0.05)).std()
    if dispersion is not None:
        out |= score_distribution(y_count, expected, dispersion)
    return out


def score_cases(y, probability) -> dict[str, float]:
    """Every case metric of one fold: ranking and calibration of 0/1 outcomes."""
    return {
        "roc_auc": roc_auc(y, probability),
        "average_precision": average_precision(y, probability),
        "brier": brier(y, probability),
        "log_loss": log_loss(y, probability),
        "ece": expected_calibration_error(y, probability),
    }
