"""Real incident records with only a place become a dataset: square cells of a
chosen size on an equal-area plane, or the records' own area codes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pyproj import Transformer

from .coerce import to_number, to_text, to_time
from .contract import Dataset
from .problems import DataReport, ProblemLog, describe

__all__ = ["events_to_dataset"]


def events_to_dataset(
    frame: pd.DataFrame,
    *,
    time: str,
    lon: str | None = None,
    lat: str | None = None,
    area: str | None = None,
    category: str | None = None,
    case_id: str | None = None,
    cell_m: float = 500.0,
    root: str = "city",
    as_of=None,
    tz: str = "UTC",
) -> DataReport:
    """Turn incident records into a dataset of cases in grid cells (or areas).

    With ``lon`` and ``lat``, points are projected to a Lambert azimuthal
    equal-area plane centred on the data (PROJ, WGS84 ellipsoid) and assigned
    to square cells of ``cell_m`` metres; with ``area``, each distinct code is a
    unit. Every unit is a ``grid`` under one top unit ``root`` (level ``city``);
    only units that hold at least one record exist. Cells get queen adjacency.

    Records without a readable time or place are left out and reported: they are
    the report's ``rejected`` rows (with the reason), its ``problems`` and
    ``counts``, and a warning says how many.

    Parameters
    ----------
    frame : DataFrame
        One row per incident.
    time : str
        Column of the incident time (times or strings; see
        :func:`riskmodel.validate` for the time-zone policy).
    lon, lat : str, optional
        Columns of WGS84 coordinates. Give both, or ``area``.
    area : str, optional
        Column of an area code to use as the unit instead of cells.
    category : str, optional
        Column of the incident category; all records are ``"incident"`` without it.
    case_id : str, optional
        Column of a unique record id; ``E`` and the row number without it.
    cell_m : float
        Side of a cell in metres.
    root : str
        ``grid_id`` of the top unit.
    as_of : datetime-like, optional
        The time the records were extracted.
    tz : str
        Zone that times carrying a zone are converted to.

    Returns
    -------
    DataReport
        ``.dataset`` (cases, grids, adjacency), ``.rejected``, ``.problems``
        and ``.counts`` for the table ``events``.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.io import events_to_dataset
    >>> events = pd.DataFrame({"date": ["2019-01-01 10:00", None, "2019-01-02 11:30"],
    ...                        "longitude": [-87.63, -87.63, -87.70],
    ...                        "latitude": [41.88, 41.88, 41.90]})
    >>> report = events_to_dataset(events, time="date", lon="longitude", lat="latitude")
    >>> len(report.dataset.cases), len(report.rejected)
    (2, 1)
    """
    _check_arguments(frame, [time, lon, lat, area, category, case_id], lon=lon, lat=lat, area=area, cell_m=cell_m)
    check = ProblemLog({"events": frame})
    times, failed = to_time(frame[time], tz)
    check.add("events", time, "type", "must be a time", failed)
    check.add("events", time, "missing", "is required and missing", frame[time].isna())
    if lon is not None and lat is not None:
        x, y = _coordinates(check, frame, lon, lat)
    if area is not None:
        codes = to_text(frame[area])
        check.add("events", area, "missing", "is required and missing", codes.isna())
    categories = (
        to_text(frame[category]) if category is not None else pd.Series("incident", index=frame.index, dtype="str")
    )
    if category is not None:
        check.add("events", category, "missing", "is required and missing", categories.isna())
    if as_of is not None:
        as_of = pd.Timestamp(as_of)
        check.add("events", time, "after_as_of", f"must not be after the as-of time {as_of}", times > as_of)
    if case_id is not None:
        ids = to_text(frame[case_id])
        check.add("events", case_id, "missing", "is required and missing", ids.isna())
        check.add(
            "events",
            case_id,
            "unique",
            "must be unique; every copy is rejected",
            ids.duplicated(keep=False) & ids.notna(),
        )
    else:
        ids = pd.Series(np.arange(1, len(frame) + 1), index=frame.index).astype("str").radd("E")
    if area is not None:
        check.add(
            "events", area, "root", f"must differ from the top unit's id {root!r} (choose another root=)", codes == root
        )

    if area is None:
        plane = _plane(x[~check.bad["events"]], y[~check.bad["events"]])
        east, north = plane[0].transform(x.to_numpy(float), y.to_numpy(float)) if plane else (x, y)
        check.add(
            "events",
            f"{lon}, {lat}",
            "projection",
            "cannot be mapped to the equal-area plane centred on the data (a point on the far side of the Earth?)",
            ~check.bad["events"] & ~(np.isfinite(east) & np.isfinite(north)),
        )
    keep = ~check.bad["events"]
    cases = pd.DataFrame({"case_id": ids[keep], "reported_at": times[keep]})
    if area is not None:
        units, grids, adjacency = _areas(codes[keep], root)
        if lon is not None and lat is not None:
            cases["lon"], cases["lat"] = x[keep], y[keep]
            centroid = cases.groupby(units.to_numpy())[["lon", "lat"]].mean()
            grids.loc[1:, ["lon", "lat"]] = centroid.reindex(grids["grid_id"].iloc[1:]).to_numpy()
    elif keep.any():
        assert plane is not None  # there is a point to centre the plane on
        units, grids, adjacency = _cells(np.asarray(east)[keep], np.asarray(north)[keep], plane, cell_m, root)
        cases["lon"], cases["lat"] = x[keep], y[keep]
    else:  # no usable record: the top unit alone
        units, grids, adjacency = _areas(pd.Series([], dtype="str"), root)
    cases.insert(2, "grid_id", units.to_numpy())
    cases.insert(3, "category", categories[keep])
    cases = cases.reset_index(drop=True)

    problems = check.frame()
    rejected = check.rejected()
    if len(rejected):
        warnings.warn(f"{len(rejected)} of {len(frame)} records left out:\n{describe(problems)}", stacklevel=2)
    counts = pd.DataFrame(
        {"input": [len(frame)], "valid": [len(cases)], "rejected": [len(rejected)]},
        index=pd.Index(["events"], name="table"),
    )
    dataset = Dataset(cases=cases, grids=grids, adjacency=adjacency, as_of=as_of)
    return DataReport(dataset=dataset, rejected=rejected, problems=problems, counts=counts)


def _check_arguments(frame, columns: list, *, lon, lat, area, cell_m) -> None:
    """Refuse arguments no record can be read with: not a frame, no place, a bad cell size, absent columns."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"events_to_dataset expects a DataFrame, got {type(frame).__name__}")
    if area is None and (lon is None or lat is None):
        raise ValueError("give the coordinate columns lon= and lat=, or an area= column")
    if isinstance(cell_m, bool) or not isinstance(cell_m, (int, float, np.number)) or not 0 < cell_m < np.inf:
        raise ValueError(f"cell_m must be a finite positive number of metres, got {cell_m!r}")
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"no column(s) {missing} in the records; they have {list(frame.columns)}")


def _coordinates(check: ProblemLog, frame: pd.DataFrame, lon: str, lat: str) -> tuple[pd.Series, pd.Series]:
    """The records' coordinates as numbers; those missing, unreadable or out of range are logged."""
    x, failed_x = to_number(frame[lon])
    y, failed_y = to_number(frame[lat])
    check.add("events", lon, "type", "must be a finite number", failed_x)
    check.add("events", lat, "type", "must be a finite number", failed_y)
    place = f"{lon}, {lat}"
    check.add("events", place, "missing", "a place is required and missing", frame[lon].isna() | frame[lat].isna())
    check.add(
        "events",
        place,
        "range",
        "must be WGS84 longitude (-180..180) and latitude (-90..90)",
        (x.abs() > 180) | (y.abs() > 90),
    )
    return x, y


def _root_row(root: str, lon=np.nan, lat=np.nan) -> dict:
    return {"grid_id": root, "parent_id": np.nan, "level": "city", "lon": lon, "lat": lat}


def _areas(codes: pd.Series, root: str):
    unique = np.sort(codes.unique())
    grids = pd.DataFrame(
        [_root_row(root)]
        + [{"grid_id": code, "parent_id": root, "level": "grid", "lon": np.nan, "lat": np.nan} for code in unique]
    ).astype({"grid_id": "str", "parent_id": "str", "level": "str", "lon": "float64", "lat": "float64"})
    return codes, grids, None


def _plane(lon: pd.Series, lat: pd.Series) -> tuple[Transformer, tuple[float, float]] | None:
    """WGS84 to a Lambert azimuthal equal-area plane centred on the points' median, and
    that centre (None without a point)."""
    if not len(lon):
        return None
    lon0, lat0 = float(np.median(lon)), float(np.median(lat))
    laea = f"+proj=laea +lat_0={lat0} +lon_0={lon0} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    return Transformer.from_crs("EPSG:4326", laea, always_xy=True), (lon0, lat0)


def _cells(x: np.ndarray, y: np.ndarray, plane: tuple[Transformer, tuple[float, float]], cell_m: float, root: str):
    """Square cells of ``cell_m`` metres of the points ``x``, ``y`` projected to ``plane``."""
    forward, (lon0, lat0) = plane
    ix = np.floor(np.asarray(x) / cell_m).astype(np.int64)
    iy = np.floor(np.asarray(y) / cell_m).astype(np.int64)
    cells = pd.DataFrame({"ix": ix, "iy": iy}).drop_duplicates().sort_values(["iy", "ix"])
    cells["grid_id"] = ("c" + cells["ix"].astype("str") + "_" + cells["iy"].astype("str")).astype("str")
    cells["lon"], cells["lat"] = forward.transform(
        (cells["ix"].to_numpy() + 0.5) * cell_m, (cells["iy"].to_numpy() + 0.5) * cell_m, direction="INVERSE"
    )
    grids = pd.concat(
        [
            pd.DataFrame([_root_row(root, lon0, lat0)]),
            cells.assign(parent_id=root, level="grid", area_km2=(cell_m / 1000) ** 2)[
                ["grid_id", "parent_id", "level", "lon", "lat", "area_km2"]
            ],
        ],
        ignore_index=True,
    ).astype({"grid_id": "str", "parent_id": "str", "level": "str"})
    units = pd.Series(ix).astype("str").radd("c") + "_" + pd.Series(iy).astype("str")

    # Queen adjacency between occupied cells.
    pairs = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                moved = cells[["ix", "iy", "grid_id"]].assign(ix=cells["ix"] + dx, iy=cells["iy"] + dy)
                pairs.append(moved.merge(cells[["ix", "iy", "grid_id"]], on=["ix", "iy"], suffixes=("", "_n")))
    adjacency = pd.concat(pairs, ignore_index=True).rename(columns={"grid_id_n": "neighbour_id"})
    adjacency = adjacency[["grid_id", "neighbour_id"]].sort_values(["grid_id", "neighbour_id"], ignore_index=True)
    return units.astype("str"), grids, adjacency
