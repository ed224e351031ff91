"""The uplift model in the loop: fitted on the explore and control rows of past plans,
it ranks units by the resident-reported disputes a visit is expected to prevent."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from ..contract import Dataset
from ..evaluation.effects import resident_cases, window_counts
from ..models import UpliftRegressor
from ..serving import predict
from ..training import TrainedModel

__all__ = ["fit_uplift", "predict_uplift", "ready", "resident_counts", "uplift_rows", "validate_uplift"]


def resident_counts(dataset: Dataset, units, level: str, start, days: int) -> np.ndarray:
    """Resident-reported cases of each of ``units`` (of ``level``) in ``[start, start + days)``
    (every case when the cases carry no ``origin``); ``start`` is one time or one per unit."""
    cases, _ = resident_cases(dataset, dataset.ancestors(level))
    starts = pd.Series(np.broadcast_to(np.asarray(pd.to_datetime(start)), len(units)))
    return window_counts(cases["unit"], cases["reported_at"], pd.Series(np.asarray(units)), starts, days)


def uplift_rows(dataset: Dataset, trained: TrainedModel, *, horizon: int = 28, cache: dict | None = None):
    """The training rows of the uplift model: every explore (treated) and control unit of
    the dataset's plans whose window of ``horizon`` days after the plan's week has closed,
    with the risk model's features at the week, and its resident-reported cases in the
    window. ``cache`` (a dict) keeps each week's features between calls.

    Returns
    -------
    X : DataFrame, y : ndarray, treated : ndarray of bool
    """
    if dataset.plans is None:
        return pd.DataFrame(), np.zeros(0), np.zeros(0, dtype=bool)
    pool = dataset.plans[dataset.plans["assignment"].isin(["explore", "control"])]
    pool = pool[pool["week"] + pd.Timedelta(days=horizon) <= dataset.end]
    cache = {} if cache is None else cache
    if pool.empty:
        return pd.DataFrame(), np.zeros(0), np.zeros(0, dtype=bool)
    pool = pool.sort_values("week", kind="stable")
    parts = []
    for week, rows in pool.groupby("week", sort=True):
        if week not in cache:
            cache[week] = trained.features(dataset, week).droplevel("cutoff")
        parts.append(cache[week].reindex(rows["grid_id"]))
    y = resident_counts(dataset, pool["grid_id"], trained.builder.level, pool["week"], horizon)
    return pd.concat(parts), y.astype(float), (pool["assignment"] == "explore").to_numpy()


def fit_uplift(
    dataset: Dataset, trained: TrainedModel, *, horizon: int = 28, model: UpliftRegressor | None = None, cache=None
) -> UpliftRegressor:
    """An :class:`~riskmodel.models.UpliftRegressor` fitted on the randomised margin of
    the dataset's past plans (see :func:`uplift_rows`), on the risk model's features.

    Raises
    ------
    ValueError
        When the plans hold no explore or no control unit whose window has closed.
    """
    X, y, treated = uplift_rows(dataset, trained, horizon=horizon, cache=cache)
    if not ready(y, treated, 1):
        raise ValueError(
            f"the uplift model needs explore and control units of past plans whose {horizon}-day window has "
            f"closed, and a case among each; the data has {int(treated.sum())} and {int((~treated).sum())} units "
            f"with {int(y[treated].sum())} and {int(y[~treated].sum())} cases (plan with explore > 0 first)"
        )
    return copy.deepcopy(model if model is not None else UpliftRegressor()).fit(X, y, treated)


def ready(y: np.ndarray, treated: np.ndarray, min_rows: int) -> bool:
    """Whether rows can fit an uplift model: ``min_rows`` of them, and a case in each arm."""
    return len(y) >= min_rows and y[treated].sum() > 0 and y[~treated].sum() > 0


def validate_uplift(X, y, treated, *, risk, model: UpliftRegressor | None = None, folds: int = 2, share: float = 0.5):
    """Does ranking by uplift find the units where a visit prevents more than ranking by risk?

    Cross-fitted on the randomised margin: the rows (in time order) are cut into ``folds``
    blocks; on each block, an uplift model fitted on the others scores the rows, and
    among the ``share`` of them it ranks highest the visited and unvisited units are
    compared (mean cases of the unvisited minus the visited: cases prevented per visit).
    The same for the ``share`` ranked highest by ``risk``. Since the draw is random within
    the pool, both comparisons are unbiased.

    Returns
    -------
    dict
        ``uplift`` and ``risk`` (cases prevented per visit among each score's top),
        ``difference``, its standard error ``se``, and ``better``: whether uplift beats
        risk by more than 1.64 standard errors (one-sided 5%). Ranking by uplift when it
        is not ``better`` would trade a known ranking for noise.
    """
    y, treated, risk = np.asarray(y, float), np.asarray(treated, bool), np.asarray(risk, float)
    block = np.arange(len(y)) * folds // max(len(y), 1)
    uplift_score = np.full(len(y), np.nan)
    for k in range(folds):
        rest = block != k
        if not ready(y[rest], treated[rest], 2):
            return {"uplift": np.nan, "risk": np.nan, "difference": np.nan, "se": np.nan, "better": False}
        fitted = copy.deepcopy(model if model is not None else UpliftRegressor()).fit(X[rest], y[rest], treated[rest])
        uplift_score[~rest] = fitted.predict(X[~rest])
    found = {
        name: _prevented_in_top(score, block, y, treated, share)
        for name, score in (("uplift", uplift_score), ("risk", risk))
    }
    difference = found["uplift"][0] - found["risk"][0]
    se = float(np.hypot(found["uplift"][1], found["risk"][1]))
    return {
        "uplift": found["uplift"][0],
        "risk": found["risk"][0],
        "difference": difference,
        "se": se,
        "better": bool(difference > 1.64 * se),
    }


def _prevented_in_top(score, block, y, treated, share) -> tuple[float, float]:
    """Mean of the unvisited minus the visited among each block's top ``share`` by ``score``,
    pooled over blocks, with its standard error."""
    top = np.zeros(len(y), dtype=bool)
    for k in np.unique(block):
        rows = np.flatnonzero(block == k)
        top[rows[np.argsort(-score[rows], kind="stable")[: max(1, int(share * len(rows)))]]] = True
    control, visited = y[top & ~treated], y[top & treated]
    if len(control) < 2 or len(visited) < 2:
        return np.nan, np.nan
    return float(control.mean() - visited.mean()), float(
        np.sqrt(control.var(ddof=1) / len(control) + visited.var(ddof=1) / len(visited))
    )


def predict_uplift(dataset: Dataset, trained: TrainedModel, uplift: UpliftRegressor, *, as_of=None, drivers=0):
    """:func:`riskmodel.predict`'s answer with an ``uplift`` column: the resident-reported
    cases a visit at ``as_of`` is expected to prevent in the model's horizon (higher =
    more prevented), for :func:`plan_visits` with ``rank_by="uplift"``."""
    forecast = predict(dataset, model=trained, as_of=as_of, drivers=drivers)
    X = trained.features(dataset, forecast["as_of"].iloc[0]).droplevel("cutoff")
    return forecast.assign(uplift=uplift.predict(X.reindex(forecast["grid_id"])))
