"""Input drift: the population stability index of each feature, the latest forecast's rows
against the training cutoffs' rows, and the alarm that names the drifting features."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from ..contract import Dataset
from .alarms import ALARM_COLUMNS
from .monitoring import MonitorSettings

__all__ = ["drift_features", "feature_drift", "input_drift_alarms", "psi"]


def _bins(reference: np.ndarray, bins: int):
    """The bin of a value: the reference's quantile bins (repeated edges merged), and one for missing values."""
    known = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if len(known) else np.array([])

    def where(values: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(values), len(edges) + 1, np.searchsorted(edges, values, side="right"))

    return where, len(edges) + 2


def _index(shares: np.ndarray, base: np.ndarray, eps: float) -> np.ndarray:
    shares, base = np.maximum(shares, eps), np.maximum(base, eps)
    return np.sum((shares - base) * np.log(shares / base), axis=-1)


def psi(reference, current, bins: int = 10, *, eps: float = 1e-4) -> float:
    """Population stability index ``sum_b (c_b - r_b) ln(c_b / r_b)`` of ``current`` against ``reference``.

    ``r_b`` and ``c_b`` are the shares of the reference's and the current values in bin
    ``b``: the quantile bins of the reference (repeated edges merged, as
    :func:`~riskmodel.evaluation.metrics.population_stability_index` makes them) and one
    bin for missing values; shares are floored at ``eps``. 0 for the same distribution;
    below 0.1 is usually read as stable, above 0.25 as shifted.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> same = psi(rng.normal(size=5000), rng.normal(size=5000))
    >>> shifted = psi(rng.normal(size=5000), rng.normal(1.0, size=5000))
    >>> same < 0.01, shifted > 0.25
    (True, True)
    """
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(f"psi needs values on both sides, got {len(reference)} reference and {len(current)} current")
    where, n = _bins(reference, bins)
    r = np.bincount(where(reference), minlength=n) / len(reference)
    c = np.bincount(where(current), minlength=n) / len(current)
    return float(_index(c, r, eps))


def _usual(values: np.ndarray, cutoff: np.ndarray, cutoffs: int, bins: int, eps: float = 1e-4) -> float:
    """The largest PSI of one reference cutoff's rows against all the reference rows."""
    where, n = _bins(values, bins)
    b = where(values)
    total = np.bincount(b, minlength=n) / len(values)
    per = np.bincount(cutoff * n + b, minlength=cutoffs * n).reshape(cutoffs, n)
    if (per.max(axis=1) == per.sum(axis=1)).all():  # one bin a cutoff: a clock (the month), not an input
        return float("inf")
    return float(_index(per / per.sum(axis=1, keepdims=True), total, eps).max())


def feature_drift(
    reference: pd.DataFrame, current: pd.DataFrame, *, bins: int = 10, threshold: float = 0.25
) -> pd.DataFrame:
    """:func:`psi` of every column of ``reference`` in ``current``, and whether it drifted.

    A feature drifted when its PSI is above ``threshold`` and above ``usual``: the largest
    PSI of any one reference cutoff's rows against all the reference rows (when the
    reference's index has a ``cutoff`` level, as the grid panel's has; else 0). One
    forecast's rows are one cutoff, and a feature that differs between the training
    cutoffs as much (the parents' counts, few distinct values a cutoff, or seasonal
    counts) has not drifted by that alone. A feature in one bin at every reference cutoff
    is a clock (the calendar's ``month``, ``days_to_holiday``): its ``usual`` is infinite
    and it never drifts.

    Returns
    -------
    DataFrame
        Indexed by feature: ``psi``, ``usual``, ``drifted``; the drifted first, then by PSI.

    Raises
    ------
    ValueError
        When ``current`` lacks columns of ``reference``.

    Examples
    --------
    >>> reference = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0)})
    >>> current = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) + 50})
    >>> feature_drift(reference, current).round(2).to_dict(orient="index")
    {'b': {'psi': 4.35, 'usual': 0.0, 'drifted': True}, 'a': {'psi': 0.0, 'usual': 0.0, 'drifted': False}}
    """
    missing = [c for c in reference.columns if c not in current.columns]
    if missing:
        raise ValueError(f"the current features lack the reference's column(s) {missing[:5]}")
    by_cutoff = "cutoff" in reference.index.names
    codes = pd.factorize(reference.index.get_level_values("cutoff"))[0] if by_cutoff else np.zeros(0, dtype=int)
    rows = {}
    for column in reference.columns:
        values = reference[column].to_numpy(dtype=float)
        usual = _usual(values, codes, codes.max() + 1, bins) if by_cutoff else 0.0
        rows[column] = {"psi": psi(values, current[column], bins), "usual": usual}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["psi", "usual"]).astype(float)
    out["drifted"] = (out["psi"] > threshold) & (out["psi"] > out["usual"])
    return out.sort_values(["drifted", "psi"], ascending=False, kind="stable")


def drift_features(builder, dataset: Dataset, as_of, *, last: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current feature rows of a grid model's builder: every unit at its
    training cutoffs (the ``last`` of them; default all) and at ``as_of``.

    ``builder`` is a fitted :class:`~riskmodel.features.GridPanelBuilder`, such as
    :attr:`riskmodel.training.TrainedModel.builder`; ``dataset`` holds the data up to
    ``as_of`` at least (the training cutoffs' rows are rebuilt from it).

    Examples
    --------
    >>> from riskmodel import train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> reference, current = drift_features(trained.builder, district, district.end, last=4)
    >>> len(reference), len(current), list(reference.columns) == list(current.columns)
    (100, 25, True)
    """
    cutoffs = pd.DatetimeIndex(builder.cutoffs)
    cutoffs = cutoffs if last is None else cutoffs[-last:]
    reference = copy.copy(builder).set_params(cutoffs=cutoffs).transform(dataset)
    current = copy.copy(builder).set_params(cutoffs=[pd.Timestamp(as_of)]).transform(dataset)
    return reference, current


def input_drift_alarms(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    model: str,
    version: str,
    as_of,
    settings: MonitorSettings | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """The input-drift alarm of one model version at ``as_of``: the features that drifted
    (:func:`feature_drift` at ``settings.psi_threshold``), the ``settings.psi_top`` largest named.

    Returns
    -------
    alarms : DataFrame
        At most one row (:data:`~riskmodel.evaluation.alarms.ALARM_COLUMNS`, kind
        ``input_drift``, value the largest PSI).
    drift : DataFrame
        Every feature's ``psi``, ``usual`` and ``drifted`` (:func:`feature_drift`).

    Examples
    --------
    >>> reference = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0)})
    >>> current = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) + 50})
    >>> alarms, drift = input_drift_alarms(reference, current, model="m", version="1", as_of="2024-01-01")
    >>> print(alarms["message"].iloc[0])
    1 of 2 features drifted from the training data (PSI above 0.25 and above that of every training cutoff): b (4.35)
    """
    settings = settings or MonitorSettings()
    drift = feature_drift(reference, current, bins=settings.psi_bins, threshold=settings.psi_threshold)
    high = drift.loc[drift["drifted"], "psi"]
    rows = []
    if len(high):
        named = ", ".join(f"{name} ({value:.2f})" for name, value in high.head(settings.psi_top).items())
        rows.append(
            {
                "model": model,
                "version": version,
                "week": pd.Timestamp(as_of),
                "known_at": pd.Timestamp(as_of),
                "kind": "input_drift",
                "value": float(high.iloc[0]),
                "threshold": settings.psi_threshold,
                "message": f"{len(high)} of {len(drift)} features drifted from the training data "
                f"(PSI above {settings.psi_threshold:g} and above that of every training cutoff): {named}",
            }
        )
    return pd.DataFrame(rows, columns=ALARM_COLUMNS), drift
