"""Reading and writing datasets: a folder with one file per table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pandas as pd

from .dataset import Dataset
from .gridding import events_to_dataset

__all__ = ["write_dataset", "read_dataset", "events_to_dataset"]

_MANIFEST = "dataset.json"
_TABLES = ("cases", "grids", "grid_history", "adjacency")


def write_dataset(dataset: Dataset, folder: str | Path, *,
                  format: Literal["parquet", "csv"] = "parquet") -> Path:
    """Write a dataset as a folder: one file per table and a ``dataset.json``.

    The manifest records the format, ``as_of`` and every column's type, so that
    :func:`read_dataset` gives back exactly the same frames from CSV too.

    Parameters
    ----------
    dataset : Dataset
        The data to write (a simulated district's truth is not written).
    folder : str or Path
        Created if missing; files of the same names are replaced.
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
    manifest = {"format": format, "as_of": None if dataset.as_of is None else str(dataset.as_of),
                "tables": {}}
    for name, frame in dataset.tables.items():
        path = folder / f"{name}.{format}"
        if format == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        manifest["tables"][name] = {column: str(dtype) for column, dtype in frame.dtypes.items()}
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder


def read_dataset(folder: str | Path) -> Dataset:
    """Read a dataset folder written by :func:`write_dataset`.

    The frames come back as they were written (they are not validated; call
    :func:`riskmodel.validate` on data from elsewhere). A folder without a
    ``dataset.json`` is read from ``cases``, ``grids`` and optional
    ``grid_history`` and ``adjacency`` files in Parquet or CSV.

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
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"tables": {}}
    frames = {}
    for name in _TABLES:
        dtypes = manifest["tables"].get(name)
        path = _find(folder, name, manifest.get("format"))
        if path is None:
            if name in ("cases", "grids"):
                raise FileNotFoundError(f"dataset folder {folder} has no {name}.parquet or {name}.csv")
            continue
        frames[name] = _read(path, dtypes)
    as_of = manifest.get("as_of")
    return Dataset(**frames, as_of=None if as_of is None else pd.Timestamp(as_of))


def _find(folder: Path, name: str, format: str | None) -> Path | None:
    for suffix in ([format] if format else ["parquet", "csv", "csv.gz"]):
        if (folder / f"{name}.{suffix}").exists():
            return folder / f"{name}.{suffix}"
    return None


def _read(path: Path, dtypes: dict[str, str] | None) -> pd.DataFrame:
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif dtypes is None:
        frame = pd.read_csv(path)
    else:
        times = [c for c, t in dtypes.items() if t.startswith("datetime64")]
        frame = pd.read_csv(path, dtype={c: t for c, t in dtypes.items() if c not in times},
                            parse_dates=times)
        frame = frame.astype({c: dtypes[c] for c in times})
    return frame
