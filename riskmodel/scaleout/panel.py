"""The grid panel built on Dask, one partition of top-level units per task."""

from __future__ import annotations

import dataclasses

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..contract import Dataset, first_reports
from ..features import GridPanelBuilder
from ..features.base import check_count, parse_cutoffs
from ..features.events import filled_attributes
from ..features.grid_panel import GridPanel, build_block, children_per_unit, level_units, neighbour_matrix, shrunk_rates
from ..validation import CONTRACT, validate
from .partitions import DaskDataset, Part, Plan, shared

__all__ = ["build_panel", "empty_panel", "fit_builder"]

#: The label columns of a panel frame, after ``grid_id``, ``cutoff`` and the features.
_LABELS = ("y_count", "y", "label_known")


def fit_builder(builder: GridPanelBuilder, data: DaskDataset) -> GridPanelBuilder:
    """Fit ``builder`` on Dask data: the same vocabularies as ``builder.fit`` on the
    data in memory (the categories seen in every partition, the attribute columns
    with a value for some unit of the level).

    Returns
    -------
    GridPanelBuilder
        ``builder``, fitted.
    """
    refuse_origins(builder)
    data = counted_data(builder, data)
    shape = data.shape
    units = level_units(shape.grids, builder.level) if builder.level in shape.levels else pd.Index([])
    meta = filled_attributes(data.grid_history._meta, units).to_frame().T
    filled = data.grid_history.map_partitions(lambda h: filled_attributes(h, units).to_frame().T, meta=meta)
    categories, filled = dask.compute(data.cases["category"].dropna().unique(), filled)
    found = filled.any().reindex(meta.columns, fill_value=False)
    return builder.fit_learned(
        shape, categories=pd.Series(np.asarray(categories, dtype=object)), attributes=found.index[found].tolist()
    )


def build_panel(builder: GridPanelBuilder, data: DaskDataset, *, partitions: int | None = None) -> dd.DataFrame:
    """The grid panel of Dask data: exactly the values of ``builder.build`` on the same
    data in memory, one Dask partition per group of top-level units.

    Each partition owns whole top-level units, so parent aggregates are computed
    from cases it holds; it also receives the cases of its units' neighbours in
    other partitions (a halo), so the neighbour means are exact too. Every
    partition is validated against the data contract on its worker (the columns
    the features read); the units and adjacency are validated on the client too.

    Parameters
    ----------
    builder : GridPanelBuilder
        Fitted, by :func:`fit_builder` (or on the same data in memory).
    data : DaskDataset
        The cases (any partitioning), the units and the attribute snapshots.
    partitions : int, optional
        Groups of whole top-level units, one task each (default: as many as the
        cases' partitions). At most the number of top-level units: data whose top
        level is one unit (a city) runs as one task. More, smaller partitions need
        less memory per task.

    Returns
    -------
    dask DataFrame
        One row per unit and cutoff: ``grid_id``, ``cutoff``, the features
        (float32, ``builder.get_feature_names_out()``), ``y_count``, ``y`` and
        ``label_known`` as in :class:`~riskmodel.features.GridPanel`. Within a
        partition, rows are cutoff-major and units sorted.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import GridPanelBuilder
    >>> from riskmodel.scaleout import DaskDataset, build_panel, fit_builder
    >>> data = DaskDataset.from_dataset(simulate_district("tiny", seed=0), partitions=2)
    >>> builder = fit_builder(GridPanelBuilder(cutoffs=["2023-06-05", "2023-07-03"], horizon=28), data)
    >>> panel = build_panel(builder, data).compute(scheduler="sync")
    >>> panel.shape
    (50, 121)
    """
    tasks = tasks_of(builder, data, builder.cutoffs, partitions)
    meta = _frame(empty_panel(builder))
    parts = [dask.delayed(_panel_part)(*task) for task in tasks]
    if builder.long_run_features_:  # the shrunk rates' weights are estimated over every partition's units
        per_child = _per_child(builder, data.shape)
        weights = dask.delayed(shrinkage_weights)(builder, [dask.delayed(_slim)(builder, p) for p in parts], per_child)
        parts = [dask.delayed(_reshrunk)(builder, p, per_child, weights) for p in parts]
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def shrinkage_weights(builder: GridPanelBuilder, parts: list[pd.DataFrame], per_child: pd.Series) -> pd.DataFrame:
    """The shrunk rates' weights and level means at every cutoff, from the rate columns of every
    partition's rows: the rows in the in-memory panel's order, so that the values are the same."""
    frame = pd.concat(parts).set_index(["grid_id", "cutoff"]).sort_index(level=["cutoff", "grid_id"])
    per_row = per_child.reindex(frame.index.get_level_values("grid_id")).to_numpy()
    return shrunk_rates(frame, per_row, builder.half_lives)[1]


def shrinkage_of(builder: GridPanelBuilder, shape: Dataset, tasks: list):
    """The shrunk rates' weights over every partition of ``tasks`` (`tasks_of`), delayed: each
    partition's rate columns are built once for them; None for a builder without shrunk rates."""
    if not builder.long_run_features_:
        return None
    slims = [dask.delayed(_slim_task)(*task) for task in tasks]
    return dask.delayed(shrinkage_weights)(builder, slims, _per_child(builder, shape))


def _slim_task(cases: pd.DataFrame, history: pd.DataFrame, part: Part, settings: dict) -> pd.DataFrame:
    return _slim(settings["builder"], _panel_part(cases, history, part, settings))


def slim_columns(builder: GridPanelBuilder) -> list[str]:
    """The columns the shrunk rates are computed from."""
    decays = [f"{kind}decay_{h}d" for kind in ("", "nbr_", "parent_") for h in builder.half_lives]
    return ["grid_id", "cutoff", "history_days", "rate_all", "nbr_rate_all", "parent_rate_all", *decays]


def _slim(builder: GridPanelBuilder, part: pd.DataFrame) -> pd.DataFrame:
    return part[slim_columns(builder)]


def _per_child(builder: GridPanelBuilder, shape: Dataset) -> pd.Series:
    units = level_units(shape.grids, builder.level)
    return pd.Series(children_per_unit(shape, builder.level, units), index=units)


def _reshrunk(builder: GridPanelBuilder, part: pd.DataFrame, per_child: pd.Series, weights: pd.DataFrame):
    X = part.set_index(["grid_id", "cutoff"])
    per_row = per_child.reindex(X.index.get_level_values("grid_id")).to_numpy()
    shrunk = shrunk_rates(X, per_row, builder.half_lives, weights)[0]
    return part.assign(**{name: shrunk[name].to_numpy() for name in shrunk.columns})


def refuse_origins(builder: GridPanelBuilder) -> None:
    """The Dask path counts every case: a builder with an ``origins`` filter is refused, not
    silently given every case (cases' patrol counts, which need no filter, are computed)."""
    if builder.origins is not None:
        raise ValueError(
            f"the Dask path does not support an origins filter (origins={builder.origins!r}); "
            "build the panel in memory (riskmodel.features.GridPanelBuilder) or leave origins None"
        )


def counted_data(builder: GridPanelBuilder, data: DaskDataset) -> DaskDataset:
    """``data`` with the cases ``builder`` counts: for ``count="disputes"`` and cases with a
    ``dispute_id``, the first report of every dispute (:func:`riskmodel.first_reports`), found
    after a shuffle that brings each dispute's reports, in whatever partition and unit, together.
    Each partition validates the rows its features read, so a dispute's later reports, which
    are not read, are not checked here (validate the cases in memory to check every report)."""
    if check_count(builder.count) == "reports" or "dispute_id" not in data.cases.columns:
        return data
    cases = data.cases.shuffle("dispute_id").map_partitions(first_reports, meta=data.cases._meta)
    return dataclasses.replace(data, cases=cases)


def tasks_of(builder: GridPanelBuilder, data: DaskDataset, cutoffs, partitions: int | None, end=None):
    """Per partition, the arguments of a panel task: its cases (with the
    halo's), its snapshots, its units, and the whole data's settings. ``end`` replaces
    the data's end (and ``as_of``) when given."""
    check_is_fitted(builder)
    refuse_origins(builder)
    data = counted_data(builder, data)
    shape = data.shape
    target, horizon = builder.settings(shape)
    start, data_end = data.span
    as_of = data.as_of if end is None else end  # what each partition is validated against
    end = data_end if end is None else end
    cutoffs = parse_cutoffs(cutoffs, start, end)
    units = level_units(shape.grids, builder.level)
    plan = Plan(
        shape,
        builder.level,
        neighbour_matrix(shape, units, builder.neighbours),
        partitions,
        default=data.cases.npartitions,
    )
    required = [c for c, (_, needed) in CONTRACT["cases"].items() if needed]
    read = [
        c for c in (*required, "severity", *builder.optional_inputs) if c in data.cases.columns
    ]  # only what the features read crosses the network
    cases = plan.route(data.cases[read], halo=True)
    history = plan.route(data.grid_history, halo=False)
    settings = dict(builder=builder, cutoffs=cutoffs, horizon=horizon, target=target, start=start, end=end, as_of=as_of)
    return [(c, h, part, settings) for c, h, part in zip(cases, history, shared(plan.parts), strict=True)]


def part_data(cases: pd.DataFrame, history: pd.DataFrame, part: Part, as_of) -> Dataset:
    """A partition's data, validated against the contract."""
    return validate(
        Dataset(
            cases=cases.reset_index(drop=True),
            grids=part.grids,
            grid_history=history.reset_index(drop=True),
            as_of=as_of,
        )
    ).dataset


def part_panel(data: Dataset, part: Part, settings: dict, weights: pd.DataFrame | None = None) -> GridPanel:
    """The panel of a partition's validated data, its owned units' rows only; ``weights``, the
    shrunk rates' over every partition (`shrinkage_weights`), else the partition's own."""
    builder = settings["builder"]
    units = level_units(data.grids, builder.level)
    panel = build_block(
        builder,
        data,
        settings["cutoffs"],
        settings["horizon"],
        settings["target"],
        settings["start"],
        settings["end"],
        neighbours=part.neighbours(units),
        weights=weights,
    )
    own = panel.X.index.get_level_values("grid_id").isin(part.own)
    return GridPanel(
        X=panel.X[own],
        y_count=panel.y_count[own],
        y=panel.y[own],
        label_known=panel.label_known[own],
        level=panel.level,
        horizon=panel.horizon,
        target=panel.target,
    )


def _panel_part(cases: pd.DataFrame, history: pd.DataFrame, part: Part, settings: dict) -> pd.DataFrame:
    panel = part_panel(part_data(cases, history, part, settings["as_of"]), part, settings)
    return _frame(panel)


def _frame(panel: GridPanel) -> pd.DataFrame:
    frame = panel.X.reset_index()
    for name in _LABELS:
        frame[name] = getattr(panel, name).to_numpy()
    return frame


def empty_panel(builder: GridPanelBuilder) -> GridPanel:
    """A panel with no row and the columns and dtypes of ``builder``'s panels.

    It is the meta of the Dask panel frame and the frame a trained model's schema is checked
    against before any partition is scored.

    Parameters
    ----------
    builder : GridPanelBuilder
        A fitted builder.

    Returns
    -------
    GridPanel
        No row; ``X`` has ``builder.get_feature_names_out()`` as float32 columns.
    """
    names = builder.get_feature_names_out()
    index = pd.MultiIndex.from_arrays(
        [pd.Index([], dtype="str"), pd.DatetimeIndex([], dtype="datetime64[us]")], names=["grid_id", "cutoff"]
    )
    empty = pd.Series(np.array([], dtype=float), index=index)
    return GridPanel(
        X=pd.DataFrame(np.empty((0, len(names)), np.float32), index=index, columns=names),
        y_count=empty,
        y=empty,
        label_known=empty.astype(bool),
        level=builder.level,
        horizon=builder.horizon,
        target=builder.target,
    )
