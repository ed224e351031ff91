"""The district's units on a plane: streets, communities, grids, microgrids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from .presets import SimulationConfig

_M_PER_DEG_LAT = 111_320.0


@dataclass
class Layout:
    """Units and their geometry. Grid-level arrays are indexed by grid number."""

    grids: pd.DataFrame  # the contract's units table, every level
    adjacency: pd.DataFrame  # grid_id, neighbour_id (queen contiguity, both ways)
    grid_ids: pd.Index
    community_of_grid: np.ndarray
    street_of_grid: np.ndarray
    community_ids: pd.Index
    street_ids: pd.Index
    micro_ids: pd.Index
    micro_grid: np.ndarray  # grid number of each microgrid (sorted)
    micro_share: np.ndarray  # share of its grid's cases
    micro_lonlat: np.ndarray  # (n_micro, 2)
    neighbours: sparse.csr_matrix  # row-normalised grid adjacency


def _ids(prefix: str, n: int) -> pd.Index:
    width = len(str(n))
    return pd.Index([f"{prefix}{i + 1:0{width}d}" for i in range(n)], dtype="str")


def _blocks(row: np.ndarray, col: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number the side x side blocks that hold each cell, in row-major order."""
    block_row, block_col = row // side, col // side
    key = block_row * (int(block_col.max()) + 1) + block_col
    _, number = np.unique(key, return_inverse=True)
    return number, block_row, block_col


def build_layout(config: SimulationConfig, rng: np.random.Generator) -> Layout:
    """The district's units: a lattice of grids in blocks of communities and streets, and microgrids.

    Parameters
    ----------
    config : SimulationConfig
        The number of grids, the block sides, the cell size, the origin and the microgrids per grid.
    rng : numpy.random.Generator
        Draws the microgrids' number, shares and positions.

    Returns
    -------
    Layout
    """
    n = config.n_grids
    n_cols = int(np.ceil(np.sqrt(n)))
    row, col = np.divmod(np.arange(n), n_cols)
    community, comm_row, comm_col = _blocks(row, col, config.community_side)
    street_of_comm_cell, _, _ = _blocks(comm_row, comm_col, config.street_side)
    n_comm = int(community.max()) + 1
    street_of_comm = np.zeros(n_comm, dtype=np.int64)
    street_of_comm[community] = street_of_comm_cell
    n_street = int(street_of_comm.max()) + 1

    cell = config.cell_m
    xy = np.column_stack([(col + 0.5) * cell, (row + 0.5) * cell])
    lonlat = _to_lonlat(xy, config)

    street_ids, community_ids, grid_ids = _ids("S", n_street), _ids("C", n_comm), _ids("G", n)
    micro_count = 1 + rng.poisson(max(config.microgrids_per_grid - 1, 0), size=n)
    micro_grid = np.repeat(np.arange(n), micro_count)
    weights = rng.gamma(2.0, size=len(micro_grid))
    micro_share = weights / np.bincount(micro_grid, weights)[micro_grid]
    rank = np.arange(len(micro_grid)) - np.repeat(np.cumsum(micro_count) - micro_count, micro_count)
    micro_ids = pd.Index(
        grid_ids.to_numpy()[micro_grid].astype(object) + "-" + (rank + 1).astype(str).astype(object),
        dtype="str",
    )
    micro_xy = xy[micro_grid] + rng.uniform(-0.4, 0.4, size=(len(micro_grid), 2)) * cell
    micro_lonlat = _to_lonlat(micro_xy, config)

    def mean_lonlat(group: np.ndarray, size: int) -> np.ndarray:
        counts = np.bincount(group, minlength=size)
        return np.column_stack([np.bincount(group, lonlat[:, k], size) / counts for k in (0, 1)])

    comm_lonlat = mean_lonlat(community, n_comm)
    street_lonlat = mean_lonlat(street_of_comm[community], n_street)
    area = cell * cell / 1e6
    levels = [
        ("street", street_ids, None, street_lonlat, np.bincount(street_of_comm[community]) * area),
        ("community", community_ids, street_ids[street_of_comm], comm_lonlat, np.bincount(community) * area),
        ("grid", grid_ids, community_ids[community], lonlat, np.full(n, area)),
        ("microgrid", micro_ids, grid_ids[micro_grid], micro_lonlat, micro_share * area),
    ]
    grids = _units_table(levels)
    adjacency, neighbours = _queen_adjacency(row, col, n_cols, grid_ids)

    return Layout(
        grids=grids,
        adjacency=adjacency,
        grid_ids=grid_ids,
        community_of_grid=community,
        street_of_grid=street_of_comm[community],
        community_ids=community_ids,
        street_ids=street_ids,
        micro_ids=micro_ids,
        micro_grid=micro_grid,
        micro_share=micro_share,
        micro_lonlat=micro_lonlat,
        neighbours=neighbours,
    )


def _units_table(levels: list) -> pd.DataFrame:
    """The contract's units table: one frame of ``(level, ids, parent ids or None, lon/lat, areas)``
    per level, stacked in the order of ``levels``."""
    grids = pd.concat(
        [
            pd.DataFrame(
                {
                    "grid_id": ids,
                    "parent_id": pd.Series(parents, dtype="str")
                    if parents is not None
                    else pd.Series(np.nan, index=range(len(ids)), dtype="str"),
                    "level": level,
                    "lon": ll[:, 0],
                    "lat": ll[:, 1],
                    "area_km2": areas,
                }
            )
            for level, ids, parents, ll, areas in levels
        ],
        ignore_index=True,
    )
    grids["level"] = grids["level"].astype("str")
    return grids


def _queen_adjacency(
    row: np.ndarray, col: np.ndarray, n_cols: int, grid_ids: pd.Index
) -> tuple[pd.DataFrame, sparse.csr_matrix]:
    """Queen contiguity on the lattice (the eight surrounding cells that exist): the adjacency
    table, both ways and sorted, and its row-normalised matrix."""
    n = len(grid_ids)
    src_parts: list[np.ndarray] = []
    dst_parts: list[np.ndarray] = []
    for d_row in (-1, 0, 1):
        for d_col in (-1, 0, 1):
            if d_row == d_col == 0:
                continue
            r, c = row + d_row, col + d_col
            other = r * n_cols + c
            ok = (r >= 0) & (c >= 0) & (c < n_cols) & (other < n)
            src_parts.append(np.flatnonzero(ok))
            dst_parts.append(other[ok])
    src, dst = np.concatenate(src_parts), np.concatenate(dst_parts)
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    adjacency = pd.DataFrame({"grid_id": grid_ids[src], "neighbour_id": grid_ids[dst]})
    degree = np.bincount(src, minlength=n).astype(float)
    neighbours = (
        sparse.csr_matrix((1.0 / degree[src], (src, dst)), shape=(n, n)) if len(src) else (sparse.csr_matrix((n, n)))
    )
    return adjacency, neighbours


def _to_lonlat(xy: np.ndarray, config: SimulationConfig) -> np.ndarray:
    """Metres east and north of the origin to WGS84 (local equirectangular)."""
    lat = config.origin_lat + xy[:, 1] / _M_PER_DEG_LAT
    lon = config.origin_lon + xy[:, 0] / (_M_PER_DEG_LAT * np.cos(np.radians(config.origin_lat)))
    return np.column_stack([lon, lat])
