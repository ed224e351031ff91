"""The sources YAML: which raw exports to read and how each maps onto the data contract."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..problems import shown_value
from ..validation import CONTRACT

__all__ = ["SourcesConfig", "Source", "load_sources", "MAPPABLE", "TIME_COLUMNS"]

#: The case columns a source may map: every contract column but the ones ingest writes.
MAPPABLE = tuple(c for c in CONTRACT["cases"] if c not in ("case_id", "source", "source_case_id"))
#: The mapped columns read as times with the source's time format and zone.
TIME_COLUMNS = tuple(c for c in MAPPABLE if CONTRACT["cases"][c][0] == "time")
_REQUIRED = ("reported_at", "grid_id", "category")
_FORMATS = {".csv": "csv", ".txt": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone of the IANA database (such as 'Asia/Shanghai' or 'UTC')"
        ) from None
    return name


class Time(_Strict):
    """How a platform writes its times: a strptime ``format``, ``iso``, ``epoch_s`` or
    ``epoch_ms``, in ``timezone`` (default: the dataset's; epochs are UTC by definition)."""

    format: str = "iso"
    timezone: str | None = None

    _zone = field_validator("timezone")(lambda name: name if name is None else _zone(name))


class Source(_Strict):
    """One platform's export: its files, their format, its id column, the contract
    column each platform column maps to, its times and its code tables."""

    name: str = Field(min_length=1)
    files: str = Field(min_length=1)
    format: Literal["csv", "parquet", "excel"] | None = None
    sheet: str | int | None = None
    id: str
    columns: dict[str, str]
    time: Time = Time()
    codes: dict[str, dict[str, str | int | float]] = {}

    @field_validator("columns")
    @classmethod
    def _contract_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = [c for c in columns if c not in MAPPABLE]
        if unknown:
            raise ValueError(f"{unknown} are not contract columns a source maps; these are: {', '.join(MAPPABLE)}")
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"{missing} are required: every case has {', '.join(_REQUIRED)}")
        return columns

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, codes: Any) -> Any:
        """Codes are compared as text (a CSV's ``1`` is the YAML's ``1``); a YAML boolean
        (an unquoted ``NO``) or two keys with one text (``1`` and ``"1"``) are refused."""
        if not isinstance(codes, Mapping):
            return codes
        out = {}
        for column, table in codes.items():
            if not isinstance(table, Mapping):
                out[column] = table
                continue
            text: dict[str, Any] = {}
            for code, value in table.items():
                if isinstance(code, bool):
                    raise ValueError(f"{column}: code {code} is a YAML boolean: quote it (e.g. 'NO', 'yes')")
                key = str(code)
                if key in text:
                    raise ValueError(f"{column}: code {key!r} is given twice")
                text[key] = value
            out[column] = text
        return out

    @model_validator(mode="after")
    def _codes_of_mapped_columns(self) -> Source:
        unmapped = [c for c in self.codes if c not in self.columns]
        if unmapped:
            raise ValueError(f"codes for {unmapped}, which 'columns' does not map")
        timed = [c for c in self.codes if c in TIME_COLUMNS or c == "party_key"]
        if timed:
            raise ValueError(f"codes for {timed}: times and party keys take no code table")
        return self

    def file_format(self, path: Path) -> str:
        """The declared ``format``, else the one of the file's extension."""
        if self.format is not None:
            return self.format
        suffix = path.suffix.lower()
        if suffix not in _FORMATS:
            raise ValueError(
                f"source {self.name!r}: cannot tell the format of {path.name} from its extension; "
                "give format: csv, parquet or excel"
            )
        return _FORMATS[suffix]


class SourcesConfig(_Strict):
    """The sources YAML: the dataset's zone, its contract tables and its sources."""

    version: Literal[1]
    timezone: str
    grids: Path
    grid_history: Path | None = None
    adjacency: Path | None = None
    as_of: datetime.datetime | None = None
    sources: list[Source] = Field(min_length=1)

    _zone = field_validator("timezone")(lambda name: _zone(name))

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[Source]) -> list[Source]:
        names = [s.name for s in sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"source name(s) {twice} are given twice: a name becomes its cases' source, one per platform"
            )
        return sources


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives a key twice (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {seen[key] + 1})", key_node.start_mark
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def load_sources(config: str | Path | Mapping) -> tuple[SourcesConfig, Path]:
    """The sources configuration, checked, and the folder its paths are relative to
    (the YAML's folder; the working directory for a mapping).

    Raises
    ------
    ValueError
        Naming the file and, for each problem, the key, the rule and the value given:
        unknown keys, a key given twice, an unknown time zone, two sources of one name.

    Examples
    --------
    >>> from riskmodel.sources.config import load_sources
    >>> config, root = load_sources({"version": 1, "timezone": "Asia/Shanghai", "grids": "grids.csv",
    ...     "sources": [{"name": "hotline", "files": "hotline/*.csv", "id": "ticket_no",
    ...                  "columns": {"reported_at": "call_time", "grid_id": "unit", "category": "issue"}}]})
    >>> config.sources[0].time.format, str(root)
    ('iso', '.')
    """
    where = "the sources configuration"
    if isinstance(config, Mapping):
        raw, root = dict(config), Path(".")
    else:
        path = Path(config)
        where, root = str(path), path.parent
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeys)  # noqa: S506 (a safe loader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: cannot read the sources configuration: {error}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a sources configuration is a mapping of keys, got {type(raw).__name__}")
    try:
        return SourcesConfig.model_validate(raw), root
    except ValidationError as error:
        problems = "\n".join(
            f"  {_key(e['loc'], raw)}: {e['msg']} (got {shown_value(e['input'])})" for e in error.errors()
        )
        raise ValueError(f"{where}: {error.error_count()} problem(s)\n{problems}") from None


def _key(loc: tuple, raw: dict) -> str:
    """A problem's key, a source named by its name: ``sources.1 (police).codes``."""
    key = ".".join(map(str, loc)) or "(top)"
    sources = raw.get("sources")
    if len(loc) > 1 and loc[0] == "sources" and isinstance(loc[1], int) and isinstance(sources, list):
        entry = sources[loc[1]] if loc[1] < len(sources) else None
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            key = ".".join(map(str, [f"sources.{loc[1]} ({entry['name']})", *loc[2:]]))
    return key
