"""Data in partitions of whole top-level units, and the halo each partition borrows.

A partition owns whole top-level units (streets, in the simulator), so every parent
aggregate is computed from cases it holds. A unit's neighbours may lie in another
partition: the partition also receives the cases of those neighbouring units, its
halo, so that the mean over neighbours is exact. Rows are built for the owned units
only.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from scipy import sparse

from ..coerce import to_text, to_time
from ..contract import Dataset, empty_history
from ..features.grid_panel import level_units
from ..io import read_dataset, write_dataset
from ..serving import latest_plausible
from ..validation import validate

__all__ = ["DaskDataset", "open_dataset", "read_partitioned", "write_partitioned"]

_MANIFEST = "dataset.json"
_PART = "_part"  # the routing column: the partition a row goes to


@dataclass(frozen=True, eq=False)
class DaskDataset:
    """A dataset whose cases (and attribute snapshots) are Dask DataFrames.

    The units (``grids``) and ``adjacency`` stay pandas frames on the client: even
    4.5 million units take well under a gigabyte there.

    Parameters
    ----------
    cases : dask DataFrame
        The cases, with the contract's columns; ``reported_at`` (and the optional
        ``resolved_at``, ``escalated_at``) already datetimes. Any partitioning:
        :func:`~riskmodel.scaleout.build_panel` routes every case to its partition.
    grids : DataFrame
        Every unit at every level.
    grid_history : dask DataFrame or DataFrame, optional
        Attribute snapshots (held as a Dask DataFrame; empty when not given).
    adjacency : DataFrame, optional
        Neighbour pairs; without them, neighbours come from centroids.
    as_of : Timestamp, optional
        The extraction time, as in :class:`~riskmodel.Dataset`.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.scaleout import DaskDataset
    >>> data = DaskDataset.from_dataset(simulate_district("tiny", seed=0), partitions=2)
    >>> data.cases.npartitions
    2
    """

    cases: dd.DataFrame
    grids: pd.DataFrame
    grid_history: dd.DataFrame | pd.DataFrame | None = None
    adjacency: pd.DataFrame | None = None
    as_of: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cases, dd.DataFrame):
            raise TypeError(f"DaskDataset.cases must be a dask DataFrame, got {type(self.cases).__name__}")
        for name in ("reported_at", "resolved_at", "escalated_at"):
            kind = self.cases.dtypes.get(name)
            if kind is not None and not isinstance(kind, pd.DatetimeTZDtype) and kind.kind != "M":
                raise ValueError(
                    f"cases.{name} must hold datetimes in a Dask DataFrame, got {kind}; convert it "
                    f"first, e.g. cases['{name}'] = dd.to_datetime(cases['{name}'])"
                )
        # As validate does: ids and categories as text, zone-aware times as naive UTC wall-clock times.
        object.__setattr__(self, "cases", _as_contract(self.cases, ("grid_id", "category")))
        history = empty_history() if self.grid_history is None else self.grid_history
        if isinstance(history, pd.DataFrame):
            history = dd.from_pandas(history, npartitions=1)
        object.__setattr__(self, "grid_history", _as_contract(history, ("grid_id",)))
        if self.as_of is not None:
            as_of = pd.Timestamp(self.as_of)
            object.__setattr__(self, "as_of", as_of if as_of.tz is None else as_of.tz_convert("UTC").tz_localize(None))

    @classmethod
    def from_dataset(cls, dataset: Dataset, *, partitions: int | None = None) -> DaskDataset:
        """The in-memory ``dataset``, its cases and snapshots split into ``partitions`` Dask
        partitions (default 8)."""
        partitions = partitions or 8
        if dataset.visits is not None or dataset.plans is not None:
            raise ValueError(
                "the Dask path does not support visits or plans yet: their features would be left out "
                "silently; use the in-memory path (riskmodel.train, riskmodel.predict), or drop them "
                "with dataset.replace(visits=None, plans=None) for a model without visit features"
            )
        data = validate(dataset).dataset
        history = data.grid_history
        return cls(
            cases=dd.from_pandas(data.cases, npartitions=partitions),
            grids=data.grids,
            adjacency=data.adjacency,
            as_of=data.as_of,
            grid_history=dd.from_pandas(history, npartitions=min(partitions, max(len(history), 1))),
        )

    @cached_property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first report and the end (``as_of``, else the last report up to now plus a
        day, as :func:`riskmodel.predict` reads it), computed once."""
        first, last = dask.compute(self.cases["reported_at"].min(), latest_plausible(self.cases["reported_at"]))
        return pd.Timestamp(first), self.as_of if self.as_of is not None else pd.Timestamp(last)

    @cached_property
    def shape(self) -> Dataset:
        """The units with empty cases and snapshots of the right columns, validated: what the
        builders read their levels, hierarchy and column names from."""
        return validate(
            Dataset(
                cases=self.cases._meta,
                grids=self.grids,
                grid_history=self.grid_history._meta,
                adjacency=self.adjacency,
                as_of=self.as_of,
            )
        ).dataset


def _as_contract(frame: dd.DataFrame, text: tuple[str, ...]) -> dd.DataFrame:
    """``text`` columns as strings, zone-aware times as naive UTC: the conversions of
    :func:`riskmodel.validate` that routing and the vocabularies need before it runs."""

    def convert(part: pd.DataFrame) -> pd.DataFrame:
        part = part.copy()
        for name in text:
            if name in part.columns:
                part[name] = to_text(part[name])
        for name, kind in part.dtypes.items():
            if isinstance(kind, pd.DatetimeTZDtype):
                part[name] = to_time(part[name])[0]
        return part

    return frame.map_partitions(convert, meta=convert(frame._meta))


def write_partitioned(dataset: Dataset, folder: str | Path, *, partitions: int) -> Path:
    """Write a dataset as a folder for the Dask path: the cases and the snapshots in
    ``partitions`` Parquet files of whole top-level units, beside ``grids`` (and
    ``adjacency``) and a ``dataset.json``.

    Examples
    --------
    >>> import tempfile
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.scaleout import read_partitioned, write_partitioned
    >>> folder = write_partitioned(simulate_district("tiny", seed=0), tempfile.mkdtemp(), partitions=2)
    >>> read_partitioned(folder).cases.npartitions
    2
    """
    data = validate(dataset).dataset
    folder = Path(folder)
    write_dataset(
        Dataset(
            cases=data.cases.iloc[:0],
            grids=data.grids,
            adjacency=data.adjacency,
            grid_history=data.grid_history.iloc[:0],
            as_of=data.as_of,
        ),
        folder,
        extra={"partitions": partitions},
    )
    ids = pd.Index(data.grids["grid_id"])
    root = _roots(ids.get_indexer(data.grids["parent_id"]))
    tops = np.unique(ids[root])  # sorted; dealt into files in contiguous blocks
    group = pd.Series(np.arange(len(tops)) * partitions // len(tops), index=tops)
    owner_of = pd.Series(group.reindex(ids[root]).to_numpy(), index=ids)
    for name in ("cases", "grid_history"):
        frame = getattr(data, name)
        (folder / name).mkdir(exist_ok=True)
        for old in (folder / name).glob("part.*.parquet"):
            old.unlink()
        owner = owner_of.reindex(frame["grid_id"]).to_numpy()
        written = 0
        for g in range(partitions):
            frame[owner == g].to_parquet(folder / name / f"part.{g:05d}.parquet", index=False)
            written += int((owner == g).sum())
        if written != len(frame):  # never: validation has checked every grid_id
            raise RuntimeError(f"wrote {written} of the {len(frame)} rows of {name}")
    return folder


def open_dataset(folder: str | Path, *, partitions: int | None = None) -> DaskDataset:
    """A dataset folder for the Dask path: one written by :func:`write_partitioned` is
    read lazily; any other is read into memory and split into ``partitions`` (default 8)."""
    if (Path(folder) / "cases").is_dir():
        return read_partitioned(folder)
    return DaskDataset.from_dataset(read_dataset(folder), partitions=partitions)


def read_partitioned(folder: str | Path) -> DaskDataset:
    """Read a folder written by :func:`write_partitioned` (the cases and snapshots lazily)."""
    folder = Path(folder)
    manifest = folder / _MANIFEST
    if not manifest.is_file() or "partitions" not in json.loads(manifest.read_text()):
        raise FileNotFoundError(
            f"{folder} is not a partitioned dataset folder (no {_MANIFEST} with 'partitions'); "
            "write one with riskmodel.scaleout.write_partitioned"
        )
    shell = read_dataset(folder)
    history = dd.read_parquet(folder / "grid_history")
    return DaskDataset(
        cases=dd.read_parquet(folder / "cases"),
        grids=shell.grids,
        adjacency=shell.adjacency,
        grid_history=history,
        as_of=shell.as_of,
    )


@dataclass(frozen=True)
class Part:
    """One partition's share of the units: the rows it builds and what it must see.

    Attributes
    ----------
    grids : DataFrame
        Its units at every level, the halo units and the halo's ancestors.
    own : Index
        The units of the panel's level it builds rows for.
    pairs : tuple of arrays
        Neighbour pairs (unit, neighbour, weight) of the owned units.
    """

    grids: pd.DataFrame
    own: pd.Index
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]

    def neighbours(self, units: pd.Index) -> sparse.csr_matrix:
        """The row-normalised neighbour matrix over ``units`` (the level's units of this part)."""
        src, dst, weight = self.pairs
        n = len(units)
        return sparse.csr_matrix((weight, (units.get_indexer(src), units.get_indexer(dst))), shape=(n, n))


class Plan:
    """Which partition owns which top-level units, and the halo each one needs.

    Top-level units (those without a parent), sorted, are dealt into contiguous
    groups of about equal numbers of units at ``level``.

    Parameters
    ----------
    shape : Dataset
        The validated units (:meth:`DaskDataset.shape`).
    level : str
        The panel's level.
    neighbours : sparse matrix
        The row-normalised neighbour matrix over the level's sorted units,
        computed over the whole data.
    partitions : int or None
        How many partitions: at most the number of top-level units that hold
        units of the level (with a warning when more are asked for). None:
        ``default``, capped in the same way.
    default : int
        The number of partitions when ``partitions`` is None.
    """

    def __init__(
        self, shape: Dataset, level: str, neighbours: sparse.csr_matrix, partitions: int | None, default: int = 1
    ):
        grids = shape.grids
        ids = pd.Index(grids["grid_id"])
        parent = ids.get_indexer(grids["parent_id"])
        root = ids[_roots(parent)]  # every unit's top-level unit
        units = level_units(grids, level)
        weight = pd.Series(root[ids.get_indexer(units)]).value_counts().reindex(root.unique(), fill_value=0)
        weight = weight.sort_index()  # the top-level units, sorted, with their units of the level
        possible = int((weight > 0).sum())
        if partitions is not None and not 1 <= partitions:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        if partitions is not None and partitions > possible:
            warnings.warn(
                f"partitions={partitions}, but only {possible} top-level unit(s) hold units of level "
                f"{level!r}; a partition holds whole top-level units, so there will be {possible}",
                stacklevel=4,
            )
        self.n = min(partitions or default, possible) or 1
        block = pd.Series(np.nan, index=weight.index)
        block[weight > 0] = _blocks(weight[weight > 0].to_numpy(), self.n)
        # A top-level unit without units of the level joins the block before it (in id order).
        group = block.ffill().bfill().fillna(0).astype(int)
        owner = pd.DataFrame({"grid_id": ids, _PART: group.reindex(root).to_numpy()})
        unit_group = owner[_PART].to_numpy()[ids.get_indexer(units)]
        coo = neighbours.tocoo()  # in the matrix's own order, so that every sum adds in the same order
        cross = unit_group[coo.row] != unit_group[coo.col]
        halo = pd.DataFrame({"unit": units[coo.col[cross]], _PART: unit_group[coo.row[cross]]}).drop_duplicates()
        below = pd.DataFrame({"grid_id": ids, "unit": shape.ancestors(level).reindex(ids).to_numpy()}).dropna()
        halo_cases = below.merge(halo, on="unit")[["grid_id", _PART]]
        #: Every unit whose cases a partition needs: its own, and its halo's with their descendants.
        self.routes = pd.concat([owner, halo_cases], ignore_index=True)
        self.owners = owner
        members = pd.concat([self.routes, _ancestors(ids, parent, halo)], ignore_index=True).drop_duplicates()
        rows = pd.Series(ids.get_indexer(members["grid_id"])).groupby(members[_PART].to_numpy()).agg(np.sort)
        src_group = unit_group[coo.row]
        self.parts = [
            Part(
                grids=grids.iloc[rows.get(g, [])].reset_index(drop=True),
                own=units[unit_group == g],
                pairs=(units[coo.row[src_group == g]], units[coo.col[src_group == g]], coo.data[src_group == g]),
            )
            for g in range(self.n)
        ]

    def route(self, frame: dd.DataFrame, *, halo: bool) -> list:
        """``frame``'s rows (cases, or snapshots with ``halo=False``) gathered per partition:
        one delayed pandas frame per part, in order. A row whose ``grid_id`` is not a unit
        raises, naming examples: no row is lost on the way."""
        routes = _Routes(self.routes if halo else self.owners)
        meta = frame._meta.assign(**{_PART: pd.Series(dtype="int64")})
        routed = frame.map_partitions(_route, shared([routes])[0], meta=meta)
        gathered = routed.set_index(_PART, divisions=list(range(self.n)) + [self.n - 1])
        return gathered.to_delayed()


def _blocks(weight: np.ndarray, n: int) -> np.ndarray:
    """The block of each item: ``n`` contiguous, non-empty blocks of about equal weight
    (``n`` at most the number of items)."""
    before = np.cumsum(weight) - weight
    starts = [0]
    for i in range(1, n):
        start = int(np.searchsorted(before, i * weight.sum() / n))
        starts.append(min(max(start, starts[-1] + 1), len(weight) - (n - i)))
    return np.searchsorted(starts, np.arange(len(weight)), side="right") - 1


def _roots(parent: np.ndarray) -> np.ndarray:
    """The position of every unit's top-level unit, from the positions of the parents (-1 at the top)."""
    root = np.arange(len(parent))
    while (up := parent[root] >= 0).any():
        root[up] = parent[root[up]]
    return root


def _ancestors(ids: pd.Index, parent: np.ndarray, halo: pd.DataFrame) -> pd.DataFrame:
    """The ancestors of the halo's units, with the partition that needs them (the
    hierarchy of a partition's units must be whole to be valid)."""
    found = []
    position, part = parent[ids.get_indexer(halo["unit"])], halo[_PART].to_numpy()
    while len(position := position[keep := position >= 0]):
        part = part[keep]
        found.append(pd.DataFrame({"grid_id": ids[position], _PART: part}))
        position = parent[position]
    return pd.concat(found) if found else pd.DataFrame(columns=["grid_id", _PART])


def shared(objects: list) -> list:
    """``objects`` as arguments of many tasks: sent to the workers once when a
    distributed client is connected (not carried in the task graph), else delayed."""
    from distributed import default_client

    try:
        return default_client().scatter(objects, broadcast=True, hash=False)
    except ValueError:  # no client: Dask's local schedulers
        return [dask.delayed(o) for o in objects]


class _Routes:
    """The partitions each unit's rows go to, as arrays: unit ``ids[i]`` goes to
    ``part[start[i]:start[i] + count[i]]``."""

    def __init__(self, routes: pd.DataFrame):
        routes = routes.sort_values(["grid_id", _PART], kind="stable")
        self.ids, first, self.count = np.unique(routes["grid_id"].to_numpy(), return_index=True, return_counts=True)
        self.ids = pd.Index(self.ids)
        self.start = first
        self.part = routes[_PART].to_numpy(np.int64)


def _route(frame: pd.DataFrame, routes: _Routes) -> pd.DataFrame:
    """``frame``'s rows, each once per partition it goes to, with that partition in ``_part``."""
    position = routes.ids.get_indexer(frame["grid_id"])
    missing = frame["grid_id"].isna().to_numpy()
    unknown = (position < 0) & ~missing
    if unknown.any():
        bad = frame.loc[unknown, "grid_id"]
        raise ValueError(
            f"grid_id: {len(bad)} row(s) refer to units that are not in grids "
            f"(rule: every grid_id exists in grids), e.g. {bad.unique()[:5].tolist()}"
        )
    count = np.where(missing, 1, routes.count[position])
    rows = np.repeat(np.arange(len(frame)), count)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    part = routes.part[np.repeat(routes.start[position], count) + within]
    part[missing[rows]] = 0  # a missing grid_id goes to the first partition, whose validation names it
    return frame.iloc[rows].assign(**{_PART: part})


def cluster_client(client=None):
    """``client``, else the current ``distributed`` client; a clear error without one."""
    if client is not None:
        return client
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        raise ValueError(
            "this step runs on a Dask cluster and needs a distributed Client: connect one first "
            "(distributed.Client('tcp://scheduler:8786'), or a LocalCluster) or pass client="
        ) from None
