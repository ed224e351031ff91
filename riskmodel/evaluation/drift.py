"""Input drift: the population stability index of each feature, the latest forecast's rows
against the training cutoffs' rows, and the alarm that names the drifting features."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from ..contract import Dataset
from .alarms import ALARM_COLUMNS
from .metrics import population_stability_index, quantile_bins, stability_index
from .monitoring import MonitorSettings

__all__ = ["drift_features", "feature_drift", "input_drift_alarms"]


def _by_cutoff(values: np.ndarray, current: np.ndarray, codes: np.ndarray, gap: int, bins: int, eps: float = 1e-4):
    """PSI of ``current`` against the last reference cutoff's rows, and the largest PSI
    between two reference cutoffs ``gap`` cutoffs apart (inf for a clock: one bin a cutoff)."""
    where, n_bins = quantile_bins(values, bins)
    n = codes.max() + 1
    counts = np.bincount(codes * n_bins + where(values), minlength=n * n_bins).reshape(n, n_bins)
    shares = counts / counts.sum(axis=1, keepdims=True)
    now = np.bincount(where(current), minlength=n_bins) / len(current)
    if (counts.max(axis=1) == counts.sum(axis=1)).all():  # one bin a cutoff: a clock (the month), not an input
        return float(stability_index(now, shares[-1], eps)), float("inf")
    usual = float(stability_index(shares[gap:], shares[:-gap], eps).max()) if gap else 0.0
    return float(stability_index(now, shares[-1], eps)), usual


def _gap(cutoffs: pd.DatetimeIndex, as_of: pd.Timestamp) -> int:
    """How many reference cutoffs ``as_of`` lies past the last one (at least 1, at most the reference's span)."""
    if len(cutoffs) < 2:
        return 0
    spacing = pd.Series(cutoffs).diff().median()
    return int(min(len(cutoffs) - 1, max(1, round((as_of - cutoffs[-1]) / spacing))))


def feature_drift(
    reference: pd.DataFrame, current: pd.DataFrame, *, bins: int = 10, threshold: float = 0.25
) -> pd.DataFrame:
    """:func:`~riskmodel.evaluation.metrics.population_stability_index` of every column of
    ``reference`` in ``current``, and whether it drifted.

    When both frames' indexes have a ``cutoff`` level (the grid panel's: ``reference``
    the training cutoffs' rows, ``current`` one later cutoff's), like is compared with
    like: ``psi`` is that of the current rows against the last reference cutoff's rows
    (on the quantile bins of all the reference rows), and ``usual`` the largest PSI
    between two reference cutoffs as far apart as the current one is from the last (in
    cutoffs, at most the reference's span). A feature drifted when its ``psi`` is above
    ``threshold`` and above ``usual``: it moved more than it did in training over the same
    time. So the season, the features of few distinct values a cutoff (a parent's
    counts), and the features that grow with the length of the record (the long decays
    and the all-history rates, which grow through the first years of any data) do not
    drift by that alone. A feature in one bin at every reference cutoff is a clock (the
    calendar's ``month``, ``days_to_holiday``): its ``usual`` is infinite and it never
    drifts. Without the ``cutoff`` levels, ``psi`` is against all the reference rows and
    ``usual`` is 0.

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
    by_cutoff = "cutoff" in reference.index.names and "cutoff" in current.index.names
    if by_cutoff:
        stamps = pd.DatetimeIndex(reference.index.get_level_values("cutoff"))
        cutoffs = stamps.unique().sort_values()
        codes = cutoffs.get_indexer(stamps)
        gap = _gap(cutoffs, pd.Timestamp(current.index.get_level_values("cutoff").max()))
    rows = {}
    for column in reference.columns:
        values, now = reference[column].to_numpy(dtype=float), current[column].to_numpy(dtype=float)
        if by_cutoff:
            found = _by_cutoff(values, now, codes, gap, bins)
        else:
            found = population_stability_index(values, now, bins=bins), 0.0
        rows[column] = dict(zip(["psi", "usual"], found, strict=True))
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
    1 of 2 features moved more since training than over any span as long within it (PSI above 0.25): b (4.35)
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
                "message": f"{len(high)} of {len(drift)} features moved more since training than over any span "
                f"as long within it (PSI above {settings.psi_threshold:g}): {named}",
            }
        )
    return pd.DataFrame(rows, columns=ALARM_COLUMNS), drift
