"""Reading and writing datasets: a folder with one file per table; raw exports ingested."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from .checksums import content_digest, file_digest
from .contract import Dataset
from .gridding import events_to_dataset
from .problems import SECRET_COLUMNS, shown_value
from .sources import Ingested, ingest
from .validation import CONTRACT

__all__ = ["write_dataset", "read_dataset", "events_to_dataset", "ingest", "Ingested", "DatasetFileError"]

_MANIFEST = "dataset.json"
_VERSION = 2  # the manifest's "version"; a manifest without one (no row counts, no checksums) is older
_TABLES = tuple(CONTRACT)  # the contract's tables, and no others
_FORMATS = ("parquet", "csv")
_SUFFIXES = ("parquet", "csv", "csv.gz")


class DatasetFileError(ValueError):
    """A dataset folder's file that cannot be read as its manifest describes it
    (cut short, changed, corrupt, or holding values its column's type cannot take),
    or a dataset that cannot be written exactly. The message names the file and,
    where there is one, the column; it never shows a ``party_key`` value."""


def write_dataset(
    dataset: Dataset, folder: str | Path, *, format: Literal["parquet", "csv"] = "parquet", extra: dict | None = None
) -> Path:
    """Write a dataset as a folder: one file per table and a ``dataset.json``.

    The manifest records the format, ``as_of``, every column's type (with the
    categories of categorical columns) and each table's row count and file's
    SHA-256, so that :func:`read_dataset` gives back the same frames from CSV too
    and refuses a file that was cut short or changed. The index is not written:
    tables are keyed by their id columns, and come back with a fresh
    ``RangeIndex``. In CSV an empty text reads back as missing.

    Parameters
    ----------
    dataset : Dataset
        The data to write (a simulated district's truth is not written).
    folder : str or Path
        Created if missing; table files already there are replaced.
    format : {"parquet", "csv"}
        Parquet by default.
    extra : dict, optional
        Further manifest entries, kept as given (the Dask path records its
        ``partitions``); they cannot replace the manifest's own.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    DatasetFileError
        When a column cannot be written exactly: in CSV a text column that mixes
        value types (``1`` and ``"1"``), checked before anything is written; in
        Parquet a column that pyarrow cannot store in one type.

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
    if format not in _FORMATS:
        raise ValueError(f"format must be 'parquet' or 'csv', got {format!r}")
    tables = {name: frame.reset_index(drop=True) for name, frame in dataset.tables.items()}
    if format == "csv":
        for name, frame in tables.items():
            _check_one_type(name, frame)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in _TABLES:  # no table of an earlier write may come back
        for suffix in _SUFFIXES:
            (folder / f"{name}.{suffix}").unlink(missing_ok=True)
    manifest: dict[str, Any] = {
        "version": _VERSION,
        "format": format,
        "as_of": None if dataset.as_of is None else str(dataset.as_of),
        "tables": {},
        "files": {},
    }
    for name, frame in tables.items():
        path = folder / f"{name}.{format}"
        if format == "parquet":
            _write_parquet(frame, path, name)
        else:
            frame.to_csv(path, index=False)
        manifest["tables"][name] = [_column_spec(column, frame[column]) for column in frame.columns]
        manifest["files"][name] = {"rows": len(frame), "sha256": file_digest(path)}
    clash = sorted(set(extra or {}) & {*manifest, "manifest_sha256"})
    if clash:
        raise ValueError(f"extra manifest entries {clash} would replace the manifest's own")
    manifest.update(extra or {})
    manifest["manifest_sha256"] = content_digest(manifest)
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder


def _value_types(values: pd.Series) -> list[str]:
    return sorted({type(v).__name__ for v in values.dropna()})


def _check_one_type(table: str, frame: pd.DataFrame) -> None:
    """Refuse a text column that mixes value types: CSV would read them back as one."""
    for column in frame.columns:
        if frame[column].dtype == object and len(kinds := _value_types(frame[column])) > 1:
            raise DatasetFileError(
                f"cannot write {table}.{column} to CSV: it mixes values of types {', '.join(kinds)}, which CSV "
                "cannot tell apart (1 and '1' both read back as '1'); give the column one type, or write Parquet"
            )


def _write_parquet(frame: pd.DataFrame, path: Path, table: str) -> None:
    try:
        frame.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        path.unlink(missing_ok=True)
        # pyarrow's message may quote a value (a party key): name the column instead.
        column = next((c for c in frame.columns if not _arrow_can_store(frame[c])), None)
        where = f"{table}.{column}" if column is not None else f"table {table}"
        kinds = f" (it holds values of types {', '.join(_value_types(frame[column]))})" if column is not None else ""
        raise DatasetFileError(
            f"cannot write {where} to {path.name}: pyarrow cannot store it as one Parquet "
            f"type{kinds}; give the column one type"
        ) from None


def _arrow_can_store(values: pd.Series) -> bool:
    try:
        pa.Array.from_pandas(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


def _column_spec(name: str, values: pd.Series) -> dict:
    spec: dict[str, Any] = {"name": name, "dtype": str(values.dtype)}
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories
        spec.update(
            categories=categories.astype(object).tolist()
            if categories.dtype.kind in "iufb"
            else categories.astype("str").tolist(),
            categories_dtype=str(categories.dtype),
            ordered=bool(values.cat.ordered),
        )
    return spec


def read_dataset(folder: str | Path, *, verify: bool = True) -> Dataset:
    """Read a dataset folder written by :func:`write_dataset`.

    The frames come back as they were written (they are not validated; call
    :func:`riskmodel.validate` on data from elsewhere). Each file must have the
    row count and the SHA-256 that ``dataset.json`` records; a folder written
    before riskmodel recorded them is read with a warning. A folder without a
    ``dataset.json`` is read from ``cases``, ``grids`` and optional
    ``grid_history``, ``adjacency`` and ``visits`` files in Parquet or CSV, the
    contract's text columns as text and its time columns as times.

    Parameters
    ----------
    folder : str or Path
        The dataset folder.
    verify : bool
        False skips the hashes, for a trusted folder (row counts are still
        checked).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetFileError
        When the manifest is not one :func:`write_dataset` writes, or a file does
        not match it: a different row count or checksum, columns it does not
        list, values its types or categories cannot hold, or a file that cannot
        be parsed (CSV must be UTF-8). The message names the file and the column.
    FileNotFoundError
        When there is no such folder, or (without a manifest) no cases or grids.

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
        manifest = _read_manifest(manifest_path)
        if manifest["files"] is None:
            warnings.warn(
                f"{manifest_path} carries no row counts or checksums (it was written by an earlier "
                "riskmodel): its files are read unchecked; write the dataset again to add them",
                UserWarning,
                stacklevel=2,
            )
        paths = {name: folder / f"{name}.{manifest['format']}" for name in manifest["tables"]}
        lacking = [path.name for path in paths.values() if not path.is_file()]
        if lacking:
            raise DatasetFileError(f"{folder} lacks {', '.join(lacking)}, which {_MANIFEST} lists")
        files = manifest["files"] or {}
        with ThreadPoolExecutor(1) as hashing:  # each file's hash is computed while the files are parsed
            digests = {name: hashing.submit(file_digest, paths[name]) for name in files if verify}
            frames = {
                name: _read_table(path, manifest["tables"][name], files.get(name), digests.get(name))
                for name, path in paths.items()
            }
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


def _read_manifest(path: Path) -> dict:
    """The manifest, refused unless it has the shape :func:`write_dataset` gives it."""
    try:
        manifest = json.loads(path.read_bytes())
    except json.JSONDecodeError as error:  # its message quotes no content
        raise DatasetFileError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except UnicodeDecodeError:
        raise DatasetFileError(f"{path} is not UTF-8 text") from None

    def require(ok: bool, what: str) -> None:
        if not ok:
            raise DatasetFileError(f"{path} is not a riskmodel dataset manifest: {what}")

    require(isinstance(manifest, dict), "it is not a JSON object")
    if "manifest_sha256" in manifest or "version" in manifest:  # written with checksums: its own comes first
        checksum = manifest.pop("manifest_sha256", None)
        if checksum != content_digest(manifest):
            raise DatasetFileError(f"{path} does not match its own checksum: it was changed after it was written")
    missing = [key for key in ("format", "as_of", "tables") if key not in manifest]
    require(not missing, f"it lacks {', '.join(map(repr, missing))}")
    version = manifest.get("version")
    require(
        version is None or type(version) is int and version == _VERSION,
        f"version {shown_value(version)} is not {_VERSION}, the one this riskmodel reads",
    )
    require(manifest["format"] in _FORMATS, f"format {shown_value(manifest['format'])} is not 'parquet' or 'csv'")
    as_of = manifest["as_of"]
    require(
        as_of is None or isinstance(as_of, str) and not pd.isna(pd.to_datetime(as_of, errors="coerce")),
        f"as_of {shown_value(as_of)} is not a time",
    )
    tables = manifest["tables"]
    require(isinstance(tables, dict), "'tables' is not an object")
    unknown = [name for name in tables if name not in _TABLES]
    require(
        not unknown, f"table name(s) {', '.join(shown_value(n) for n in unknown)} are not among {', '.join(_TABLES)}"
    )
    require({"cases", "grids"} <= set(tables), "it lists no 'cases' or no 'grids' table")
    for name, specs in tables.items():
        require(
            isinstance(specs, list)
            and all(
                isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("dtype"), str)
                for s in specs
            ),
            f"the columns of {name} are not a list of objects with a 'name' and a 'dtype'",
        )
        names = [spec["name"] for spec in specs]
        require(len(set(names)) == len(names), f"{name} lists a column twice")
        for spec in specs:
            problem = _spec_problem(spec)
            require(problem is None, f"column {name}.{spec['name']}: {problem}")
    if version is None:  # written before riskmodel recorded counts and checksums
        return {**manifest, "files": None}
    files = manifest.get("files")
    require(
        isinstance(files, dict) and set(files) == set(tables),
        "'files' does not give the row count and checksum of every table",
    )
    for name, file in files.items():
        require(
            isinstance(file, dict)
            and type(file.get("rows")) is int
            and file["rows"] >= 0
            and isinstance(file.get("sha256"), str)
            and len(file["sha256"]) == 64,
            f"'files' has no row count or SHA-256 for {name}",
        )
    return manifest


def _spec_problem(spec: dict) -> str | None:
    """What is wrong with a column's entry in the manifest, if anything."""
    dtype, categorical = spec["dtype"], "categories" in spec
    for kind in (dtype, spec.get("categories_dtype", "str")):
        try:
            pd.api.types.pandas_dtype(kind)
        except (TypeError, ValueError):
            return f"dtype {shown_value(kind)} is not a pandas dtype"
    if (dtype == "category") != categorical:
        return "only a 'category' column has categories" if categorical else "a 'category' column needs categories"
    if categorical and not (
        isinstance(spec["categories"], list) and isinstance(spec.get("ordered"), bool) and "categories_dtype" in spec
    ):
        return "categories need a list, a 'categories_dtype' and 'ordered' (true or false)"
    return None


def _read_table(path: Path, specs: list[dict], expected: dict | None, digest: Future | None) -> pd.DataFrame:
    """One table's file, checked against its entry in the manifest (its SHA-256,
    being computed in ``digest``, before anything parsed is used or reported)."""
    try:
        frame = _parse_parquet(path) if path.suffix == ".parquet" else _parse_csv(path, specs)
    except Exception:
        _check_digest(path, expected, digest)  # a changed file is reported as changed, whatever its parse raised
        raise
    _check_digest(path, expected, digest)
    if expected is not None and len(frame) != expected["rows"]:
        raise DatasetFileError(f"{path} has {len(frame)} rows, {_MANIFEST} records {expected['rows']}")
    names = [spec["name"] for spec in specs]
    lacking = [c for c in names if c not in frame.columns]
    if lacking:
        raise DatasetFileError(f"{path} lacks column(s) {', '.join(map(repr, lacking))} that {_MANIFEST} lists")
    extra = [c for c in frame.columns if c not in names]
    if extra:
        raise DatasetFileError(f"{path} has column(s) {', '.join(map(repr, extra))} that {_MANIFEST} does not list")
    for spec in specs:
        frame[spec["name"]] = _convert(frame[spec["name"]], spec, path)
    return frame


def _check_digest(path: Path, expected: dict | None, digest: Future | None) -> None:
    if digest is None:
        return
    assert expected is not None, "a file's SHA-256 is computed only when the manifest records one"
    if (found := digest.result()) != expected["sha256"]:
        raise DatasetFileError(
            f"{path} was changed or cut short after it was written: its SHA-256 is {found}, "
            f"{_MANIFEST} records {expected['sha256']}"
        ) from None


def _parse_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError):  # pyarrow's message is not shown: it may quote values
        raise DatasetFileError(f"{path} is not a readable Parquet file (corrupt, cut short, or not Parquet)") from None


def _parse_csv(path: Path, specs: list[dict]) -> pd.DataFrame:
    """A CSV file's columns with the manifest's types where pandas parses them;
    when a value does not fit, every column as text (:func:`_convert` finds it)."""
    kinds = {spec["name"]: spec.get("categories_dtype", spec["dtype"]) for spec in specs}
    with _csv_errors(path):
        present = set(pd.read_csv(path, nrows=0).columns)
        kinds = {c: kind for c, kind in kinds.items() if c in present}
        times = [c for c, kind in kinds.items() if kind.startswith("datetime64")]
        typed = {c: "str" if kind.startswith("timedelta64") else kind for c, kind in kinds.items() if c not in times}
        na = {"keep_default_na": False, "na_values": {c: [""] for c in present}}  # only an empty field is missing
        try:
            return pd.read_csv(path, dtype=typed, parse_dates=times, **na)
        except (UnicodeDecodeError, pd.errors.ParserError):
            raise
        except (ValueError, TypeError, OverflowError):  # pandas' message may quote the value: not shown
            return pd.read_csv(path, dtype="str", **na)


@contextlib.contextmanager
def _csv_errors(path: Path):
    """Turns pandas' CSV parse and decode errors into a DatasetFileError naming the file."""
    try:
        yield
    except UnicodeDecodeError:
        raise DatasetFileError(_not_utf8(path)) from None
    except pd.errors.EmptyDataError:
        raise DatasetFileError(f"{path} is empty ({path.stat().st_size} bytes): it has no header line") from None
    except pd.errors.ParserError as error:  # the C parser's messages name lines, not values
        raise DatasetFileError(f"{path} cannot be parsed as CSV: {str(error).strip()}") from None


def _not_utf8(path: Path) -> str:
    """Where a file stops being UTF-8: the row and the column of the first byte that is not."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return f"{path} is not UTF-8 text; CSV files must be UTF-8"
    except UnicodeDecodeError as error:
        start = error.start
    rows = list(csv.reader(io.StringIO(data[:start].decode("utf-8"))))
    if not rows or data[:start].endswith((b"\n", b"\r")):
        rows.append([""])
    if len(rows) == 1:
        where = "in the header line"
    else:
        header = rows[0]
        column = len(rows[-1]) - 1
        where = (
            f"in row {len(rows) - 2}, column {header[column]!r}" if column < len(header) else f"in row {len(rows) - 2}"
        )
    hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
    return (
        f"{path} is not UTF-8 text{hint}: byte 0x{data[start]:02x} {where} is not UTF-8; "
        "CSV files must be UTF-8: save the file again as UTF-8"
    )


_FAMILIES = {"i": "number", "u": "number", "f": "number", "b": "bool", "M": "time", "m": "duration"}


def _convert(values: pd.Series, spec: dict, path: Path) -> pd.Series:
    """A column as the manifest types it; values that do not fit are an error
    naming the file, the column and the first bad row, never a silent NaN."""
    column, dtype = spec["name"], spec["dtype"]
    if "categories" in spec:
        plain = _convert(values, {"name": column, "dtype": spec["categories_dtype"]}, path)
        try:
            categories = pd.CategoricalDtype(
                pd.Index(spec["categories"]).astype(spec["categories_dtype"]), ordered=spec["ordered"]
            )
        except (ValueError, TypeError, OverflowError):
            raise DatasetFileError(
                f"{path.parent / _MANIFEST}: the categories of column {column!r} are not "
                f"distinct {spec['categories_dtype']} values"
            ) from None
        _refuse(
            path,
            column,
            f"are not among the categories {_MANIFEST} lists",
            plain,
            plain.notna() & ~plain.isin(categories.categories),
        )
        return plain.astype(categories)
    if str(values.dtype) == dtype:
        return values
    target = pd.api.types.pandas_dtype(dtype)
    family, source = _FAMILIES.get(target.kind, "text"), _FAMILIES.get(values.dtype.kind, "text")
    if source not in ("text", family):
        raise DatasetFileError(f"{path}: column {column!r} holds {values.dtype} values, {_MANIFEST} says {dtype}")
    if family == "time":
        result = pd.to_datetime(values, errors="coerce", format=None if source == "time" else "ISO8601")
    elif family == "duration":
        result = pd.to_timedelta(values, errors="coerce")
    elif family == "number":
        result = pd.to_numeric(values, errors="coerce")
    elif family == "bool" and source == "text":
        result = values.map({"True": True, "False": False, True: True, False: False})
    else:
        return _astype(values, dtype, path, column)  # text, and any other type the values already have
    _refuse(path, column, f"are not {dtype} values", values, values.notna() & result.isna())
    if target.kind in "iub":
        _refuse(path, column, f"are blank, which {dtype} cannot hold", values, result.isna())
    if target.kind in "iu":
        _refuse(path, column, "are not whole numbers", values, result % 1 != 0)
    converted = _astype(result, dtype, path, column)
    if family == "number":
        _refuse(path, column, f"do not fit in {dtype}", values, result.notna() & (converted != result))
    return converted


def _astype(values: pd.Series, dtype: str, path: Path, column: str) -> pd.Series:
    try:
        return values.astype(dtype)
    except (ValueError, TypeError, OverflowError):  # pandas' message may quote a value: not shown
        raise DatasetFileError(
            f"{path}: column {column!r} holds {values.dtype} values that cannot be read as {dtype}"
        ) from None


def _refuse(path: Path, column: str, problem: str, values: pd.Series, bad) -> None:
    """Raise for the rows of a column where ``bad``: their count, the first row and
    up to three example values (none of a secret column such as ``party_key``)."""
    rows = np.flatnonzero(np.asarray(bad, dtype=bool))
    if not len(rows):
        return
    shown = f"first at row {rows[0]}"
    examples = pd.unique(values.iloc[rows].dropna().astype(object))[:3]
    if column not in SECRET_COLUMNS and len(examples):
        shown += ", e.g. " + ", ".join(shown_value(v) for v in examples)
    raise DatasetFileError(f"{path}: column {column!r}: {len(rows)} value(s) {problem} ({shown})")


def _read_plain(path: Path, name: str) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return _parse_parquet(path)
    with _csv_errors(path):
        present = pd.read_csv(path, nrows=0).columns
        kinds = {c: kind for c, (kind, _) in CONTRACT[name].items() if c in present}
        return pd.read_csv(
            path,
            dtype={c: "str" for c, k in kinds.items() if k == "text"},
            parse_dates=[c for c, k in kinds.items() if k == "time"],
        )
