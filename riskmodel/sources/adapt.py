"""One platform's raw export read and mapped onto the contract: its files, columns, times and codes."""

from __future__ import annotations

import glob
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from python_calamine import CalamineError

from ..coerce import to_text
from ..problems import shown_value
from .config import TIME_COLUMNS, Source

__all__ = ["Export", "read_source", "map_source"]

_EXAMPLES = 3


@dataclass(frozen=True)
class Export:
    """A source's rows as read: the declared columns of every file, one after the other
    (a ``RangeIndex``), and where each row came from (``file``, ``row`` from 0)."""

    source: Source
    raw: pd.DataFrame
    origin: pd.DataFrame
    files: int

    def where(self, positions) -> str:
        """Rows as ``row 3 of hotline/a.csv``, for messages."""
        origin = self.origin.iloc[np.asarray(positions)[:_EXAMPLES]]
        return ", ".join(f"row {row} of {file}" for file, row in zip(origin["file"], origin["row"], strict=True))

    def examples(self, column: str, positions) -> str:
        """Up to three rows and their values of ``column`` (hidden for a party key)."""
        positions = np.asarray(positions)[:_EXAMPLES]
        origin = self.origin.iloc[positions]
        values = self.raw[column].iloc[positions]
        secret = self.source.columns.get("party_key") == column
        return "; ".join(
            f"row {row} of {file}" + ("" if secret else f" ({shown_value(value)})")
            for file, row, value in zip(origin["file"], origin["row"], values, strict=True)
        )


def read_source(source: Source, root: Path) -> Export:
    """Every file the source's pattern matches, in name order, with its declared columns."""
    pattern = str(root / source.files)
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not paths:
        raise ValueError(f"source {source.name!r}: files {source.files!r} match no file (looked for {pattern})")
    declared = {source.id: "id", **{platform: contract for contract, platform in source.columns.items()}}
    frames, origins = [], []
    for path in paths:
        frame = _read_file(source, path, list(declared))
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        frames.append(frame)
        origins.append(pd.DataFrame({"file": name, "row": np.arange(len(frame))}))
    raw = pd.concat(frames, ignore_index=True)
    return Export(source, raw, pd.concat(origins, ignore_index=True), len(paths))


def _read_file(source: Source, path: Path, columns: list[str]) -> pd.DataFrame:
    kind = source.file_format(path)
    try:
        if kind == "csv":
            available = list(pd.read_csv(path, nrows=0).columns)
            read = lambda: pd.read_csv(path, usecols=columns, dtype="str", keep_default_na=False, na_values=[""])  # noqa: E731
        elif kind == "parquet":
            available = pq.read_schema(path).names
            read = lambda: pd.read_parquet(path, columns=columns)  # noqa: E731
        else:
            whole = _read_excel(source, path)
            available = [str(c) for c in whole.columns]
            read = lambda: whole.set_axis(available, axis=1)[columns]  # noqa: E731
        missing = [c for c in columns if c not in available]
        if missing:
            declared = {source.id: "id", **{p: c for c, p in source.columns.items()}}
            named = ", ".join(f"{c!r} ({declared[c]})" for c in missing)
            raise ValueError(
                f"source {source.name!r}: {path} lacks the declared column(s) {named}; its columns are "
                f"{', '.join(map(repr, available))}. Fix the export, or the mapping if the platform does not record it"
            )
        return read()
    except UnicodeDecodeError:
        raise ValueError(f"source {source.name!r}: {path} is not UTF-8 text; save it again as UTF-8") from None
    except pd.errors.ParserError as error:
        raise ValueError(f"source {source.name!r}: {path} cannot be parsed as CSV: {str(error).strip()}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"source {source.name!r}: {path} is empty: it has no header line") from None
    except (OSError, KeyError) as error:
        raise ValueError(f"source {source.name!r}: cannot read {path} as {kind}: {error}") from None


def _read_excel(source: Source, path: Path) -> pd.DataFrame:
    try:
        return pd.read_excel(path, sheet_name=0 if source.sheet is None else source.sheet, engine="calamine")
    except (ValueError, CalamineError) as error:  # no such sheet; not a workbook
        sheet = "" if source.sheet is None else f" (sheet {source.sheet!r})"
        raise ValueError(f"source {source.name!r}: cannot read {path}{sheet} as Excel: {error}") from None


def map_source(export: Export, timezone: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The export's rows as contract cases (indexed by their position in the export), and
    the rows whose times cannot be read: ``position``, ``column``, ``reason``.

    Raises
    ------
    ValueError
        A code its table does not map (naming the platform, the column and the codes with
        their counts), or a time column none of whose values can be read.
    """
    source, raw = export.source, export.raw
    ids = to_text(raw[source.id])
    cases = pd.DataFrame(
        {"case_id": (source.name + ":" + ids).where(ids.notna()), "source_case_id": ids, "source": source.name},
        index=raw.index,
    )
    unmapped = []
    rejected = []
    for contract, platform in source.columns.items():
        values = raw[platform]
        if contract in source.codes:
            text = to_text(values)
            values = text.map(source.codes[contract])
            missing = text.notna() & values.isna()
            if missing.any():
                counts = text[missing].value_counts()
                listed = ", ".join(
                    f"{shown_value(code)} ({n} row{'s' if n > 1 else ''})" for code, n in counts[:10].items()
                )
                more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
                first = export.where(np.flatnonzero(missing.to_numpy()))
                unmapped.append(f"column {platform!r} ({contract}): {listed}{more}; first at {first}")
        elif contract in TIME_COLUMNS:
            values, present, failed = _times(values, source.time.format, source.time.timezone or timezone, timezone)
            where = f"source {source.name!r}: column {platform!r} ({contract})"
            for reason, rows in failed.items():
                rule, text = reason.split(": ", 1)
                if len(rows) and len(rows) == present.sum():
                    raise ValueError(f"{where}: no value {text}: e.g. {export.examples(platform, rows)}")
                if len(rows):
                    warnings.warn(
                        f"{where}: {len(rows)} row(s) rejected: their time {text}: e.g. "
                        f"{export.examples(platform, rows)}",
                        UserWarning,
                        stacklevel=3,
                    )
                    rejected.append(pd.DataFrame({"position": rows, "column": platform, "reason": reason}))
        cases[contract] = values
    if unmapped:
        raise ValueError(
            f"source {source.name!r}: codes that the code table does not map (add them under codes; an unmapped "
            "code is not guessed):\n  " + "\n  ".join(unmapped)
        )
    rejected_rows = (
        pd.concat(rejected, ignore_index=True)
        if rejected
        else pd.DataFrame(
            {"position": pd.Series(dtype="int64"), "column": pd.Series(dtype="str"), "reason": pd.Series(dtype="str")}
        )
    )
    return cases.drop(index=rejected_rows["position"].unique()), rejected_rows


def _times(
    values: pd.Series, format: str, source_tz: str, timezone: str
) -> tuple[pd.Series, np.ndarray, dict[str, np.ndarray]]:
    """Naive times in ``timezone`` from a platform's column, the rows that held a value, and
    the positions of those that give no time by why."""
    present = values.notna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet and Excel may hold times already
        parsed, reason = values, "is not a time"
    elif format in ("epoch_s", "epoch_ms"):
        numbers = pd.to_numeric(values, errors="coerce")
        parsed = pd.to_datetime(numbers, unit=format[-1] if format == "epoch_s" else "ms", utc=True, errors="coerce")
        reason = f"is not a number of {'seconds' if format == 'epoch_s' else 'milliseconds'} since 1970 ({format})"
    else:
        text = to_text(values)
        present = text.notna().to_numpy()
        kwargs = {"format": "ISO8601" if format == "iso" else format, "errors": "coerce"}
        reason = f"does not match the time format {format!r}"
        try:
            parsed = pd.to_datetime(text, **kwargs)
        except ValueError:  # offsets that differ between rows
            parsed = pd.to_datetime(text, utc=True, **kwargs)
    unparsed = present & parsed.isna().to_numpy()
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        local = parsed.dt.tz_convert(timezone)
    elif source_tz != timezone:
        local = parsed.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(timezone)
    else:
        local = parsed
    if isinstance(local.dtype, pd.DatetimeTZDtype):
        local = local.dt.tz_localize(None)
    skipped = present & ~unparsed & local.isna().to_numpy()
    failed = {
        f"time_format: {reason}": np.flatnonzero(unparsed),
        f"clock_change: is a local time that {source_tz} skips or repeats": np.flatnonzero(skipped),
    }
    return local.astype("datetime64[us]"), present, failed
