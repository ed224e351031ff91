"""Reading and writing datasets: a folder with one file per table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pandas as pd

from .dataset import Dataset
from .gridding import events_to_dataset
from .validation import CONTRACT

__all__ = ["write_dataset", "read_dataset", "events_to_dataset"]

_MANIFEST = "dataset.json"
_TABLES = ("cases", "grids", "grid_history", "adjacency")
_SUFFIXES = ("parquet", "csv", "csv.gz")


def write_dataset(dataset: Dataset, folder: str | Path, *,
                  format: Literal["parquet", "csv"] = "parquet") -> Path:
    """Write a dataset as a folder: one file per table and a ``dataset.json``.

    The manifest records the format, ``as_of`` and every column's type (with the
    categories of categorical columns), so that :func:`read_dataset` gives back
    the same frames from CSV too. The index is not written: tables are keyed by
    their id columns, and come back with a fresh ``RangeIndex``. In CSV an empty
    text reads back as missing.

    Parameters
    ----------
    dataset : Dataset
        The data to write (a simulated district's truth is not written).
    folder : str or Path
        Created if missing; table files already there are replaced.
    format : {"parquet", "csv"}
        Parquet by default.

    Returns
    -------
    Path
        The folder.

    Examples
    --------
    >>> import tempfile
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.io import read_dataset, write_dataset
    >>> district = simulate_district("tiny", seed=0)
    >>> folder = write_dataset(district, tempfile.mkdtemp())
    >>> read_dataset(folder).cases.equals(district.cases)
    True
    """
    if format not in ("parquet", "csv"):
        raise ValueError(f"format must be 'parquet' or 'csv', got {format!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in _TABLES:  # no table of an earlier write may come back
        for suffix in _SUFFIXES:
            (folder / f"{name}.{suffix}").unlink(missing_ok=True)
    manifest = {"format": format, "as_of": None if dataset.as_of is None else str(dataset.as_of),
                "tables": {}}
    for name, frame in dataset.tables.items():
        frame = frame.reset_index(drop=True)
        path = folder / f"{name}.{format}"
        if format == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        manifest["tables"][name] = [_column_spec(column, frame[column]) for column in frame.columns]
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder


def _column_spec(name: str, values: pd.Series) -> dict:
    spec = {"name": name, "dtype": str(values.dtype)}
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories
        spec.update(categories=categories.astype(object).tolist() if categories.dtype.kind in "iufb"
                    else categories.astype("str").tolist(),
                    categories_dtype=str(categories.dtype), ordered=bool(values.cat.ordered))
    return spec


def read_dataset(folder: str | Path) -> Dataset:
    """Read a dataset folder written by :func:`write_dataset`.

    The frames come back as they were written (they are not validated; call
    :func:`riskmodel.validate` on data from elsewhere). A folder without a
    ``dataset.json`` is read from ``cases``, ``grids`` and optional
    ``grid_history`` and ``adjacency`` files in Parquet or CSV, the contract's
    text columns as text and its time columns as times.

    Parameters
    ----------
    folder : str or Path
        The dataset folder.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> import tempfile
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.io import read_dataset, write_dataset
    >>> folder = write_dataset(simulate_district("tiny", seed=0), tempfile.mkdtemp(), format="csv")
    >>> read_dataset(folder).cases["reported_at"].dtype
    dtype('<M8[us]')
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no dataset folder at {folder}")
    manifest_path = folder / _MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        frames = {name: _read(folder / f"{name}.{manifest['format']}", specs)
                  for name, specs in manifest["tables"].items()}
        as_of = manifest["as_of"]
        return Dataset(**frames, as_of=None if as_of is None else pd.Timestamp(as_of))
    frames = {}
    for name in _TABLES:
        path = next((folder / f"{name}.{s}" for s in _SUFFIXES if (folder / f"{name}.{s}").exists()), None)
        if path is None:
            if name in ("cases", "grids"):
                raise FileNotFoundError(f"dataset folder {folder} has no {name}.parquet or {name}.csv")
            continue
        frames[name] = _read_plain(path, name)
    return Dataset(**frames)


def _read(path: Path, specs: list[dict]) -> pd.DataFrame:
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        kinds = {spec["name"]: spec["dtype"] for spec in specs}
        times = [c for c, t in kinds.items() if t.startswith("datetime64")]
        as_read = {c: ("str" if t.startswith("timedelta64") else s.get("categories_dtype", t))
                   for s in specs for c, t in [(s["name"], s["dtype"])] if c not in times}
        frame = pd.read_csv(path, dtype=as_read, parse_dates=times, keep_default_na=False,
                            na_values={c: [""] for c in kinds})
    for spec in specs:
        name, dtype = spec["name"], spec["dtype"]
        if "categories" in spec:
            categories = pd.Index(spec["categories"]).astype(spec["categories_dtype"])
            frame[name] = frame[name].astype(spec["categories_dtype"]).astype(
                pd.CategoricalDtype(categories, ordered=spec["ordered"]))
        elif dtype.startswith("timedelta64") and frame[name].dtype != dtype:
            frame[name] = pd.to_timedelta(frame[name]).astype(dtype)
        elif str(frame[name].dtype) != dtype:
            frame[name] = frame[name].astype(dtype)
    return frame


def _read_plain(path: Path, name: str) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    present = pd.read_csv(path, nrows=0).columns
    kinds = {c: kind for c, (kind, _) in CONTRACT[name].items() if c in present}
    return pd.read_csv(path, dtype={c: "str" for c, k in kinds.items() if k == "text"},
                       parse_dates=[c for c, k in kinds.items() if k == "time"])
