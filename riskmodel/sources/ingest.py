"""Many platforms' raw exports in, one validated dataset out, with every rejected row and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import Dataset, empty_history
from ..problems import ValidationError
from ..validation import CONTRACT, validate
from .adapt import Export, map_source, read_source
from .config import load_sources

__all__ = ["Ingested", "ingest"]

_REJECTED = ["source", "file", "row", "source_case_id", "column", "reason", "value"]


@dataclass(frozen=True, repr=False)
class Ingested:
    """What :func:`ingest` made of the raw exports.

    Attributes
    ----------
    dataset : Dataset
        Every source's valid cases (each with its ``source``, its platform's id in
        ``source_case_id`` and ``case_id`` = ``"<source>:<id>"``) and the
        configuration's grids, grid history, adjacency and as-of time, validated.
    rejected : DataFrame
        One row per problem of a rejected row: ``source``, ``file``, ``row`` (its
        position among the file's rows, from 0), ``source_case_id``, ``column`` (the
        platform's column), ``reason`` and ``value`` (the file's value, as text).
    counts : DataFrame
        Per source: ``files``, ``read``, ``mapped`` and ``rejected`` rows;
        ``read == mapped + rejected`` always.
    """

    dataset: Dataset
    rejected: pd.DataFrame
    counts: pd.DataFrame

    def __repr__(self) -> str:  # the rejected rows may hold party keys: never shown here
        return f"Ingested({self.dataset!r}, rejected={self.counts['rejected'].sum()} row(s))"


def ingest(config: str | Path | Mapping) -> Ingested:
    """Read every platform's raw export, map it onto the contract and validate it.

    Each source of the configuration (see ``configs/sources.yaml``) names its files (a
    glob, relative to the YAML's folder), their format (CSV, Parquet or Excel), its id
    column, the platform column of each contract column, its time format and zone and
    its code tables. Times are converted to the dataset's zone and stored naive; coded
    values are mapped through their table (a column without a table passes through).
    Each source's rows are validated with quarantine: a row whose time cannot be read,
    whose unit is unknown or that breaks another rule of the contract is rejected with
    its reason, and the counts reconcile (read = mapped + rejected).

    Parameters
    ----------
    config : str, Path or mapping
        The sources YAML, or its content (paths then relative to the working directory).

    Returns
    -------
    Ingested
        ``.dataset``, ``.rejected`` and ``.counts``.

    Raises
    ------
    ValueError
        Naming the source, the column and example rows: unknown keys or a key given twice
        in the YAML, two sources of one name, a pattern that matches no file, a file
        without a declared column, a code its table does not map, a time column none of
        whose values can be read. A :class:`~riskmodel.ValidationError` when the grids,
        their history or the adjacency break the contract.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from riskmodel.io import ingest
    >>> folder = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"grid_id": ["S1", "G1"], "parent_id": [None, "S1"],
    ...               "level": ["street", "grid"]}).to_csv(folder / "grids.csv", index=False)
    >>> pd.DataFrame({"ticket": [7, 8, 9], "unit": ["G1", "G1", "G9"], "kind": ["N", "P", "N"],
    ...               "at": ["01/05/2024 10:00", "02/05/2024 11:00", "02/05/2024 09:30"]},
    ...              ).to_csv(folder / "hotline.csv", index=False)
    >>> _ = (folder / "sources.yaml").write_text('''
    ... version: 1
    ... timezone: Asia/Shanghai
    ... grids: grids.csv
    ... sources:
    ...   - name: hotline
    ...     files: hotline*.csv
    ...     id: ticket
    ...     columns: {reported_at: at, grid_id: unit, category: kind}
    ...     time: {format: "%d/%m/%Y %H:%M"}
    ...     codes:
    ...       category: {N: neighbour_noise, P: property}
    ... ''')
    >>> ingested = ingest(folder / "sources.yaml")
    >>> ingested.counts
        source  files  read  mapped  rejected
    0  hotline      1     3       2         1
    >>> ingested.rejected[["source_case_id", "column", "reason"]].to_numpy().tolist()
    [['9', 'unit', 'unknown_grid: grid_id must be a grid_id of the grids table']]
    >>> ingested.dataset.cases[["case_id", "reported_at", "category"]]
         case_id         reported_at         category
    0  hotline:7 2024-05-01 10:00:00  neighbour_noise
    1  hotline:8 2024-05-02 11:00:00         property
    """
    sources, root = load_sources(config)
    tables = {
        name: _read_table(root / path, name)
        for name, path in (
            ("grids", sources.grids),
            ("grid_history", sources.grid_history),
            ("adjacency", sources.adjacency),
        )
        if path is not None
    }
    exports, parts, early = [], [], []
    for source in sources.sources:
        export = read_source(source, root)
        cases, rejected = map_source(export, sources.timezone)
        exports.append(export)
        parts.append(cases.assign(_source=len(exports) - 1, _position=cases.index))
        early.append(rejected.assign(_source=len(exports) - 1))
    cases = pd.concat(parts, ignore_index=True)
    where = cases[["_source", "_position"]]
    as_of = sources.as_of
    if as_of is not None and as_of.tzinfo is not None:
        as_of = pd.Timestamp(as_of).tz_convert(sources.timezone).tz_localize(None)
    report = validate(
        Dataset(
            cases=cases.drop(columns=["_source", "_position"]),
            grids=tables["grids"],
            grid_history=tables.get("grid_history", empty_history()),
            adjacency=tables.get("adjacency"),
            as_of=as_of,
        ),
        errors="quarantine",
        tz=sources.timezone,
    )
    if (report.problems["table"] != "cases").any():
        raise ValidationError(report.problems[report.problems["table"] != "cases"].reset_index(drop=True))
    late = _validation_rejects(report, where, exports)
    rejected = _describe(pd.concat([*early, late], ignore_index=True), exports)
    return Ingested(report.dataset, rejected, _counts(exports, rejected, report.dataset.cases))


def _read_table(path: Path, name: str) -> pd.DataFrame:
    """A contract table's CSV or Parquet file, its text columns read as text."""
    if not path.is_file():
        raise FileNotFoundError(f"the sources configuration's {name} file {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    text = {c: "str" for c, (kind, _) in CONTRACT[name].items() if kind == "text"}
    return pd.read_csv(path, dtype=text)


def _validation_rejects(report, where: pd.DataFrame, exports: list[Export]) -> pd.DataFrame:
    """The contract's rejections as ``_source``, ``position``, ``column`` (the platform's) and ``reason``."""
    rejected = report.rejected
    if not len(rejected):
        return pd.DataFrame(columns=["_source", "position", "column", "reason"])
    messages = {(p.column, p.rule): p.message for p in report.problems.itertuples()}
    located = where.iloc[rejected["position"].to_numpy()]
    rows = pd.DataFrame(
        {
            "_source": located["_source"].to_numpy(),
            "position": located["_position"].to_numpy(),
            "reason": rejected["reason"].str.split("; ").to_numpy(),
        }
    ).explode("reason")
    parts = rows["reason"].str.split(": ", n=1)
    column, rule = parts.str[0], parts.str[1]
    rows["reason"] = [f"{r}: {c} {messages[c, r]}" for c, r in zip(column, rule, strict=True)]
    platform = [{"case_id": e.source.id, "source_case_id": e.source.id, **e.source.columns} for e in exports]
    rows["column"] = [platform[s].get(c, c) for s, c in zip(rows["_source"], column, strict=True)]
    return rows


def _describe(rows: pd.DataFrame, exports: list[Export]) -> pd.DataFrame:
    """Rejections with their source, file, row, platform id and the file's value."""
    if not len(rows):
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str") for c in _REJECTED})
    parts = []
    for index, group in rows.groupby("_source", sort=True):
        export = exports[int(index)]
        positions = group["position"].to_numpy(dtype=np.int64)
        origin = export.origin.iloc[positions]
        ids = export.raw[export.source.id].iloc[positions]
        values = [
            None if c not in export.raw.columns or pd.isna(v := export.raw[c].iat[p]) else str(v)
            for c, p in zip(group["column"], positions, strict=True)
        ]
        parts.append(
            pd.DataFrame(
                {
                    "source": export.source.name,
                    "file": origin["file"].to_numpy(),
                    "row": origin["row"].to_numpy(),
                    "source_case_id": ids.astype("str").where(ids.notna()).to_numpy(),
                    "column": group["column"].to_numpy(),
                    "reason": group["reason"].to_numpy(),
                    "value": values,
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values(["source", "file", "row"], kind="stable", ignore_index=True)


def _counts(exports: list[Export], rejected: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    rows = []
    kept = cases["source"].value_counts()
    for export in exports:
        name = export.source.name
        mine = rejected[rejected["source"] == name]
        bad = len(mine[["file", "row"]].drop_duplicates())
        mapped = len(export.raw) - bad
        assert mapped == kept.get(name, 0), f"source {name!r}: the counts do not reconcile"
        rows.append({"source": name, "files": export.files, "read": len(export.raw), "mapped": mapped, "rejected": bad})
    return pd.DataFrame(rows)
