"""The simulated district as its platforms export it: one raw file per platform,
each with its own columns, codes and times, and the ``sources.yaml`` that maps them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..contract import Dataset
from .presets import CATEGORIES, SOURCES

__all__ = ["export_platforms"]

#: The zone the simulated case times are in (stored naive).
TIMEZONE = "Asia/Shanghai"
_SEVERITIES = (1, 2, 3, 4)
_OUTCOMES = ("resolved", "open", "escalated", "withdrawn")


def _map(values, codes) -> dict:
    """Contract value -> platform code."""
    return dict(zip(values, codes, strict=True))


@dataclass(frozen=True)
class _Platform:
    """How one platform writes its reports: ``columns`` maps contract -> platform
    column, ``codes`` contract value -> platform code per coded column."""

    file: str
    id: str
    id_format: str  # of the report's number on the platform (1, 2, ...)
    columns: dict[str, str]
    time: str  # strptime format, "iso", "epoch_s" or "epoch_ms"
    timezone: str = TIMEZONE
    codes: dict[str, dict] = field(default_factory=dict)
    sheet: str | None = None
    split_by_year: bool = False


_PLATFORMS = {
    "hotline": _Platform(
        file="hotline/hotline_12345.csv",
        id="ticket_no",
        id_format="12345-{:07d}",
        columns=dict(
            reported_at="call_time",
            grid_id="unit_code",
            category="issue_type",
            severity="urgency",
            party_key="caller_key",
            description="summary",
            resolved_at="closed_time",
            outcome="status",
        ),
        time="%d/%m/%Y %H:%M",
        codes=dict(
            category=_map(CATEGORIES, ("NOISE", "PROPERTY", "WAGES", "FAMILY", "LAND", "CONSUMER", "TRAFFIC", "OTHER")),
            severity=_map(_SEVERITIES, ("LOW", "MEDIUM", "HIGH", "URGENT")),
            outcome=_map(_OUTCOMES, ("CLOSED", "OPEN", "ESCALATED", "WITHDRAWN")),
        ),
    ),
    "police": _Platform(
        file="police/incidents.parquet",
        id="incident_no",
        id_format="{:d}",
        columns=dict(
            reported_at="received_ms",
            grid_id="unit",
            category="type_code",
            severity="priority",
            party_key="person_key",
            description="brief",
            resolved_at="closed_ms",
            escalated_at="referred_ms",
            outcome="result_code",
            lon="x",
            lat="y",
        ),
        time="epoch_ms",
        timezone="UTC",
        codes=dict(
            category=_map(CATEGORIES, (110, 120, 130, 140, 150, 160, 170, 190)),
            severity=_map(_SEVERITIES, (4, 3, 2, 1)),  # priority 1 is the most urgent
            outcome=_map(_OUTCOMES, (1, 0, 2, 3)),
        ),
    ),
    "mediation_centre": _Platform(
        file="mediation/ledger.xlsx",
        sheet="台账",
        id="案件编号",
        id_format="TJ{:06d}",
        columns=dict(
            reported_at="受理时间",
            grid_id="网格编码",
            category="纠纷类型",
            severity="严重程度",
            party_key="当事人编号",
            description="案情摘要",
            resolved_at="结案时间",
            outcome="调解结果",
        ),
        time="iso",
        codes=dict(
            category=_map(
                CATEGORIES,
                ("邻里噪音", "物业管理", "劳资欠薪", "婚姻家庭", "征地拆迁补偿", "消费维权", "交通事故", "其他"),
            ),
            severity=_map(_SEVERITIES, ("一般", "较重", "严重", "重大")),
            outcome=_map(_OUTCOMES, ("调解成功", "未结", "已移交", "撤回")),
        ),
    ),
    "petition_office": _Platform(
        file="petition/*.csv",
        id="xf_no",
        id_format="XF{:08d}",
        columns=dict(
            reported_at="register_time",
            grid_id="grid_code",
            category="matter_type",
            severity="level",
            party_key="petitioner_id",
            description="content",
            resolved_at="reply_time",
            outcome="state",
        ),
        time="%Y-%m-%d %H:%M:%S",
        timezone="UTC",
        codes=dict(
            category=_map(CATEGORIES, (f"XF0{i}" for i in range(1, 9))),
            severity=_map(_SEVERITIES, "DCBA"),
            outcome=_map(_OUTCOMES, ("replied", "pending", "transferred", "withdrawn")),
        ),
        split_by_year=True,
    ),
    "grid_worker": _Platform(
        file="grid_worker/events.parquet",
        id="event_id",
        id_format="GW{:07d}",
        columns=dict(
            reported_at="found_at",
            grid_id="microgrid",
            category="event_type",
            severity="grade",
            party_key="resident_key",
            resolved_at="closed_at",
            escalated_at="escalated_at",
            outcome="result",
            lon="lng",
            lat="lat",
        ),
        time="epoch_s",
        timezone="UTC",
        codes=dict(
            category=_map(CATEGORIES, ("noise", "prop", "wage", "family", "land", "consumer", "traffic", "misc")),
            severity=_map(_SEVERITIES, _SEVERITIES),
            outcome=_map(_OUTCOMES, ("done", "open", "up", "dropped")),
        ),
    ),
}


def _generic(name: str) -> _Platform:
    """A platform the table does not know (a simulated ``NewPlatform``): contract names, ISO times."""
    return _Platform(
        file=f"{name}/{name}.csv",
        id="id",
        id_format=name + "-{:07d}",
        columns={c: c for c in ("reported_at", "grid_id", "category", "severity", "party_key", "outcome")},
        time="iso",
        codes=dict(category={c: c for c in CATEGORIES}, outcome={o: o for o in _OUTCOMES}),
    )


def export_platforms(district: Dataset, folder: str | Path) -> Path:
    """Write each platform's reports as its own raw export, with a ``sources.yaml``.

    Every platform (``source``) of ``district.cases`` gets a file with its own
    column names, codes, time format and time zone, without ``dispute_id``: the
    hotline a CSV (upper-case English codes, ``"%d/%m/%Y %H:%M"`` local time), the
    police a Parquet file (numeric codes, UTC epoch milliseconds), the mediation
    centre an Excel workbook (Chinese column names and labels, ISO local time), the
    petition office one CSV per year (letter codes, UTC ``"%Y-%m-%d %H:%M:%S"``) and
    the grid workers a Parquet file (short codes, UTC epoch seconds); any other
    platform a CSV with the contract's names. Beside them: the contract tables
    (``grids.csv``, ``grid_history.csv``, ``adjacency.csv`` when present), a
    ``sources.yaml`` that describes every export (the schema of
    ``configs/sources.yaml``; what :func:`riskmodel.io.ingest` reads), and
    ``truth_disputes.csv`` (``source``, ``source_case_id``, ``dispute_id``: each
    report's true dispute, for evaluating linkage; not in the YAML). Without
    ``dispute_id`` in the cases, every report is its own dispute.

    Parameters
    ----------
    district : Dataset
        Usually :func:`~riskmodel.datasets.simulate_district`'s; its cases need
        ``case_id``, ``source``, ``reported_at``, ``grid_id`` and ``category``.
    folder : str or Path
        Created if missing; files of an earlier export are replaced.

    Returns
    -------
    Path
        The ``sources.yaml`` written.

    Examples
    --------
    >>> import tempfile
    >>> import yaml
    >>> from riskmodel.datasets import export_platforms, simulate_district
    >>> path = export_platforms(simulate_district("tiny", seed=0), tempfile.mkdtemp())
    >>> config = yaml.safe_load(path.read_text(encoding="utf-8"))
    >>> [source["name"] for source in config["sources"]]
    ['hotline', 'grid_worker', 'mediation_centre', 'police', 'petition_office']
    >>> config["sources"][0]["time"]
    {'format': '%d/%m/%Y %H:%M', 'timezone': 'Asia/Shanghai'}
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases = district.cases
    dispute = cases["dispute_id"] if "dispute_id" in cases else cases["case_id"]
    names = [s for s in SOURCES if (cases["source"] == s).any()]
    names += sorted(set(cases["source"].dropna()) - set(names))
    sources, truth = [], []
    for name in names:
        platform = _PLATFORMS.get(name) or _generic(name)
        rows = (cases["source"] == name).to_numpy()
        ids = pd.Series([platform.id_format.format(i) for i in range(1, rows.sum() + 1)], dtype="str")
        if platform.id_format == "{:d}":  # a numeric id
            ids = pd.Series(np.arange(rows.sum(), dtype=np.int64) + 2023_000_001)
        raw = _raw(cases[rows].reset_index(drop=True), platform, ids)
        _write(raw, folder, platform, cases.loc[rows, "reported_at"].dt.year.to_numpy())
        sources.append(_entry(name, platform, raw.columns))
        truth.append(
            pd.DataFrame({"source": name, "source_case_id": ids.astype(str), "dispute_id": dispute[rows].to_numpy()})
        )
    config = {"version": 1, "timezone": TIMEZONE}
    for table in ("grids", "grid_history", "adjacency"):
        frame = getattr(district, table)
        if frame is not None:
            frame.to_csv(folder / f"{table}.csv", index=False)
            config[table] = f"{table}.csv"
    if district.as_of is not None:
        config["as_of"] = str(district.as_of)
    config["sources"] = sources
    pd.concat(truth, ignore_index=True).to_csv(folder / "truth_disputes.csv", index=False)
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _raw(cases: pd.DataFrame, platform: _Platform, ids: pd.Series) -> pd.DataFrame:
    """The platform's export of its cases: its id, its columns, its codes and times."""
    raw = {platform.id: ids}
    for column, name in platform.columns.items():
        if column not in cases:
            continue
        values = cases[column]
        if column in platform.codes:
            values = values.map(platform.codes[column])
        elif column.endswith("_at"):
            values = _times(values, platform)
        raw[name] = values
    return pd.DataFrame(raw)


def _times(values: pd.Series, platform: _Platform) -> pd.Series:
    """Naive local times written as the platform writes them."""
    if platform.timezone != TIMEZONE:
        values = values.dt.tz_localize(TIMEZONE).dt.tz_convert(platform.timezone).dt.tz_localize(None)
    if platform.time.startswith("epoch_"):
        unit = 1_000 if platform.time == "epoch_ms" else 1
        seconds = (values - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
        return (seconds * unit).astype("Int64")
    return values.dt.strftime("%Y-%m-%dT%H:%M:%S" if platform.time == "iso" else platform.time)


def _write(raw: pd.DataFrame, folder: Path, platform: _Platform, year: np.ndarray) -> None:
    """Write the export (one file per year for a platform that splits by year)."""
    path = folder / platform.file
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(path.name):
        old.unlink()
    if platform.split_by_year:
        for y in np.unique(year):
            raw[year == y].to_csv(path.parent / f"{path.parent.name}_{y}.csv", index=False)
    elif path.suffix == ".parquet":
        raw.to_parquet(path, index=False)
    elif path.suffix == ".xlsx":
        _write_excel(raw, path, platform.sheet or "Sheet1")
    else:
        raw.to_csv(path, index=False)


def _write_excel(raw: pd.DataFrame, path: Path, sheet: str) -> None:
    """An .xlsx of one sheet, streamed (openpyxl's write-only mode: twice as fast as pandas')."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    rows = book.create_sheet(sheet)
    rows.append(list(raw.columns))
    for row in raw.astype(object).where(raw.notna(), None).itertuples(index=False):
        rows.append(row)
    book.save(path)


def _entry(name: str, platform: _Platform, columns: pd.Index) -> dict:
    """The platform's entry in ``sources.yaml``: platform code -> contract value."""
    entry: dict = {"name": name, "files": platform.file, "format": Path(platform.file).suffix.lstrip(".")}
    entry["format"] = {"xlsx": "excel"}.get(entry["format"], entry["format"])
    if platform.sheet:
        entry["sheet"] = platform.sheet
    entry["id"] = platform.id
    entry["columns"] = {c: n for c, n in platform.columns.items() if n in columns}
    entry["time"] = {"format": platform.time, "timezone": platform.timezone}
    entry["codes"] = {
        column: {_plain(code): _plain(value) for value, code in table.items()}
        for column, table in platform.codes.items()
        if platform.columns.get(column) in columns
    }
    return entry


def _plain(value):
    """A numpy scalar as the Python value YAML writes."""
    return value.item() if isinstance(value, np.generic) else value
