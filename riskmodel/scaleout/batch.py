"""Batch prediction on Dask: every unit scored, one Parquet file per partition."""

from __future__ import annotations

import copy
from pathlib import Path

import dask
import numpy as np
import pandas as pd

from .. import serving
from ..evaluation.targets import GridRisk, alert_text, anomaly_alerts, unit_rows
from ..features.base import parse_horizon
from ..features.grid_panel import level_units
from ..models import SpikeDetector
from ..training import TrainedModel
from .panel import empty_panel, part_data, part_panel, shrinkage_of, tasks_of
from .partitions import DaskDataset, cluster_client, shared

__all__ = ["predict_partitioned"]


def predict_partitioned(
    data: DaskDataset,
    out,
    *,
    as_of=None,
    model=None,
    drivers: int | None = 200,
    partitions: int | None = None,
    client=None,
    record=None,
) -> Path:
    """Score every unit on a Dask cluster and write one Parquet file per partition.

    The rows are those of :func:`riskmodel.predict` on the same data in memory, with
    the same values: the features, probabilities and alerts are computed per
    partition; the ranks, the tiers (a capacity is the whole data's) and which
    rows get ``top_drivers`` are decided over all units on the client, from three
    columns of every unit (about 50 bytes a unit).

    Parameters
    ----------
    data : DaskDataset
    out : str or Path
        A folder every worker can write to (a shared disk); ``part.NNNNN.parquet``
        files are written there, each sorted by ``rank``, and earlier ones removed.
    as_of, model, drivers
        As in :func:`riskmodel.predict` (a grid model).
    partitions : int, optional
        As in :func:`~riskmodel.scaleout.build_panel`.
    client : distributed.Client, optional
        Default: the current client.
    record : ForecastStore, str, path or True, optional
        As in :func:`riskmodel.predict`: the rows written are also appended to this
        forecast store (a folder for the Parquet store, partitioned by month), read back
        from the files and recorded at once on the client; a failure to record is a
        :class:`~riskmodel.store.ForecastNotRecorded` warning and the files stay.

    Returns
    -------
    Path
        The folder; ``pandas.read_parquet`` reads it whole.

    Raises
    ------
    RuntimeError
        When the written rows are not every unit of the level once.
    """
    client = cluster_client(client)
    trained = serving.model_for(model, drivers)
    store = None if record is None or record is False else serving.record_store(record)
    if not isinstance(trained.target, GridRisk):
        raise ValueError("batch prediction scores units: it takes a grid model, got a model of open cases")
    serving.check_inputs(trained, data.shape.replace(grid_history=data.grid_history.head(1, npartitions=-1)))
    first, last = data.span
    as_of = None if as_of is None else serving.naive(as_of)
    end = data.as_of if data.as_of is not None else serving.data_end(as_of, last)
    as_of = serving.check_as_of(as_of, first, end)
    builder = copy.copy(trained.builder).set_params(cutoffs=[as_of])
    serving.check_schema(trained, empty_panel(builder).X)
    tasks = tasks_of(builder, data, [as_of], partitions, end=end)
    horizon_days = (as_of + parse_horizon(builder.horizon) - as_of) / pd.Timedelta(days=1)
    shared_model = shared([trained])[0]  # sent to each worker once, not with every task
    weights = shrinkage_of(builder, data.shape, tasks)  # the shrunk rates' weights over every unit
    scored = client.compute(
        [
            dask.delayed(_score_part)(*task, shared_model, as_of, horizon_days, drivers, data.shape.levels, weights)
            for task in tasks
        ]
    )
    light = client.gather(
        [client.submit(lambda f: (f[0][["grid_id", "probability", "expected_count"]], f[2]), f) for f in scored]
    )
    ranks, tiers = _rank(trained, [frame for frame, _ in light], data.shape.grids)
    sums = [totals for _, totals in light if totals is not None]
    totals = pd.concat(sums).groupby(level=0).sum() if sums else None  # the spike detector's, over all units
    folder = Path(out).resolve()  # the workers' working directory is not ours
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part.*.parquet"):
        old.unlink()
    client.gather(
        [
            client.submit(_write_part, f, ranks[g], tiers[g], totals, drivers, str(folder / f"part.{g:05d}.parquet"))
            for g, f in enumerate(scored)
        ]
    )
    if store is not None:
        from ..store import record_safely

        record_safely(store, pd.read_parquet(folder), trained)
    return folder


def _score_part(cases, history, part, settings, trained: TrainedModel, as_of, horizon_days, drivers, levels, weights):
    """A partition's rows of :func:`riskmodel.predict` without ``rank``, ``tier`` and the
    ``anomaly:`` alerts (they need all units), with its own ``drivers`` riskiest units'
    ``top_drivers`` (the riskiest of all are among them); the spike detector's counts
    and its sums over the partition's units."""
    data = part_data(cases, history, part, settings["as_of"])
    X = part_panel(data, part, settings, weights).X
    out = unit_rows(trained, data, X, as_of, anomalies=False, levels=levels)  # the whole data's levels
    scores = trained.score(X)
    p = scores["probability"].to_numpy()
    out = out.assign(
        as_of=as_of,
        horizon_days=horizon_days,
        probability=p,
        expected_count=scores["expected_count"].to_numpy(),
        low=scores["low"].to_numpy(),
        high=scores["high"].to_numpy(),
        score=serving.score(p),
    )
    order = serving.riskiest_first(p, out["expected_count"], out["grid_id"])
    text = serving.top_drivers(trained, X, order, drivers)
    try:
        detector = SpikeDetector().fit(X)
    except ValueError:  # no per-category windows: no anomaly alerts, as in riskmodel.predict
        return out.assign(top_drivers=text), None, None
    counts = X[
        [f"count_{w}d_{c}" for c in detector.categories_ for w in (detector.window, detector.baseline, detector.long)]
    ]
    return out.assign(top_drivers=text), counts, detector.totals(counts)


def _rank(trained: TrainedModel, light: list[pd.DataFrame], grids: pd.DataFrame):
    """Every unit's rank (1 = riskiest, by :func:`riskmodel.serving.riskiest_first`) and tier, per partition."""
    units = pd.concat(light, ignore_index=True)
    level = trained.builder.level
    expected = level_units(grids, level)  # sorted: a unit's position orders ties by grid_id
    position = expected.get_indexer(units["grid_id"])
    once = np.bincount(position[position >= 0], minlength=len(expected)) == 1
    if len(units) != len(expected) or (position < 0).any() or not once.all():
        raise RuntimeError(f"scored {len(units)} rows for the {len(expected)} units at level {level!r}")
    p = units["probability"].to_numpy()
    expected_count = units["expected_count"].to_numpy()
    order = serving.riskiest_first(p, expected_count, position)
    rank = np.empty(len(p), dtype=np.int64)
    rank[order] = np.arange(1, len(p) + 1)
    tier = np.empty(len(p), dtype=object)
    tier[order] = trained.tier_policy.assign(p[order], tiebreak=expected_count[order]).astype(str).to_numpy()
    bounds = np.cumsum([0] + [len(f) for f in light])
    return (
        [rank[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
        [tier[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
    )


def _write_part(scored, rank: np.ndarray, tier: np.ndarray, totals, drivers, path: str) -> int:
    frame, counts, _ = scored
    frame = frame.assign(tier=tier, rank=rank)
    if counts is not None:
        anomalies = alert_text(anomaly_alerts(counts, totals), len(frame))
        alerts = frame["alerts"].to_numpy(object)
        both = (alerts != "") & (anomalies != "")
        frame["alerts"] = np.where(both, alerts + ";" + anomalies, alerts + anomalies)
    if drivers is not None:
        frame.loc[frame["rank"] > drivers, "top_drivers"] = ""
    columns = [c for c in frame.columns if c not in ("rank", "top_drivers", "alerts")]
    frame = frame.sort_values("rank")[columns + ["rank", "top_drivers", "alerts"]].reset_index(drop=True)
    frame.to_parquet(path, index=False)
    return len(frame)
