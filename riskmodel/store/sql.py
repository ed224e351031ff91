"""The forecast store in a database: SQLAlchemy Core, any URL; SQLite in WAL mode with a busy timeout."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from .rows import COLUMNS, OPTIONAL, SCHEMA_VERSION, StoreSchemaError, refuse_version, times_as_text

__all__ = ["SqlBackend"]

#: The tables of a store: its forecasts and its schema version.
_metadata = sa.MetaData()
_TYPES = {"str": sa.String, "float64": sa.Float, "int64": sa.Integer, "datetime64[us]": sa.DateTime}
_FORECASTS = sa.Table(
    "forecasts",
    _metadata,
    *(
        sa.Column(name, _TYPES[dtype](), primary_key=name == "forecast_id", nullable=name in OPTIONAL)
        for name, dtype in COLUMNS.items()
    ),
    sa.UniqueConstraint("model_name", "model_version", "as_of", "unit", name="one_forecast_per_model_time_unit"),
    sa.Index("forecasts_by_time", "as_of"),
)
_SCHEMA = sa.Table(
    "store_schema", _metadata, sa.Column("name", sa.String(), primary_key=True), sa.Column("value", sa.String())
)
_ATTEMPTS = 12  # "database is locked" beyond the busy timeout: retried with a growing pause


class SqlBackend:
    """Rows in the table ``forecasts`` (its schema version in ``store_schema``) at a SQLAlchemy URL;
    one engine per process, its connections shared by threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._engine_pid = os.getpid()
        self._lock = threading.Lock()

    @property
    def engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is None or self._engine_pid != os.getpid():  # a forked child opens its own
                engine = _engine(self.url)
                _retry(lambda: _open(engine, self.url))
                self._engine, self._engine_pid = engine, os.getpid()
            return self._engine

    def forget(self) -> None:
        """Drop the connections without closing them (in a forked child: they are its parent's)."""
        if self._engine is not None:
            self._engine.dispose(close=False)
            self._engine = None

    def record(self, rows: pd.DataFrame) -> int:
        engine = self.engine
        return _INSERTS.get(engine.dialect.name, _insert_checked)(engine, rows)

    def read(self, name, version, since, until) -> pd.DataFrame:
        c = _FORECASTS.c
        given = {"model_name": name, "model_version": version}
        conditions = [c[column] == value for column, value in given.items() if value is not None]
        conditions += [] if since is None else [c.as_of >= since.to_pydatetime()]
        conditions += [] if until is None else [c.as_of <= until.to_pydatetime()]
        with self.engine.connect() as connection:
            return pd.read_sql(sa.select(_FORECASTS).where(*conditions), connection)


def _insert_sqlite(engine: sa.Engine, rows: pd.DataFrame) -> int:
    """Through the driver's executemany: SQLAlchemy's per-row work would take longer than the insert."""
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    sql = f"INSERT INTO forecasts ({names}) VALUES ({', '.join('?' * len(COLUMNS))}) ON CONFLICT DO NOTHING"
    values = list(zip(*_values(rows, _SQLITE_TIME).values(), strict=True))

    def write() -> int:
        with engine.begin() as connection:
            return connection.exec_driver_sql(sql, values).rowcount

    return _retry(write)


def _insert_postgresql(engine: sa.Engine, rows: pd.DataFrame) -> int:
    from sqlalchemy.dialects.postgresql import insert

    statement, records = insert(_FORECASTS).on_conflict_do_nothing(), _records(rows)

    def write() -> int:
        with engine.begin() as connection:
            return connection.execute(statement, records).rowcount

    return _retry(write)


def _insert_checked(engine: sa.Engine, rows: pd.DataFrame) -> int:
    """Any other database: the ids already there are read, the others inserted, in one transaction;
    a unique key broken by a writer in between retries the whole."""
    records = _records(rows)

    def write() -> int:
        with engine.begin() as connection:
            there: set[str] = set()
            for start in range(0, len(records), 500):
                ids = [r["forecast_id"] for r in records[start : start + 500]]
                found = sa.select(_FORECASTS.c.forecast_id).where(_FORECASTS.c.forecast_id.in_(ids))
                there.update(connection.execute(found).scalars())
            new = [r for r in records if r["forecast_id"] not in there]
            if new:
                connection.execute(sa.insert(_FORECASTS), new)
            return len(new)

    return _retry(write, also=(sa.exc.IntegrityError,))


_INSERTS = {"sqlite": _insert_sqlite, "postgresql": _insert_postgresql}


def _engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    path = sa.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})  # the busy timeout, in seconds

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer, nor it them
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe in WAL mode
        cursor.close()

    return engine


def _open(engine: sa.Engine, url: str) -> None:
    """Create the store's tables if the database has none, and refuse another schema version."""
    tables = set(sa.inspect(engine).get_table_names())
    if tables and not tables & {"forecasts", "store_schema"}:
        raise StoreSchemaError(
            f"the database {url} holds other tables ({sorted(tables)[:4]}) and no forecast store: give another one"
        )
    if "forecasts" in tables and "store_schema" not in tables:
        refuse_version(url, "none (no store_schema table)")
    _metadata.create_all(engine, checkfirst=True)
    with engine.begin() as connection:
        if connection.execute(sa.select(sa.func.count()).select_from(_SCHEMA)).scalar() == 0:
            connection.execute(sa.insert(_SCHEMA), [{"name": "schema_version", "value": str(SCHEMA_VERSION)}])
        found = connection.execute(sa.select(_SCHEMA.c.value).where(_SCHEMA.c.name == "schema_version")).scalar()
    if found != str(SCHEMA_VERSION):
        refuse_version(url, found)


_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's DateTime in SQLite


def _values(rows: pd.DataFrame, time_layout: str | None = None) -> dict[str, list]:
    """Each column as a list of Python values, None for missing; times as text in ``time_layout``
    (default: ``datetime`` objects)."""
    columns = {}
    for name, dtype in COLUMNS.items():
        values = rows[name]
        if dtype.startswith("datetime"):
            columns[name] = times_as_text(values, time_layout) if time_layout else values.dt.to_pydatetime().tolist()
        elif dtype == "int64":
            columns[name] = values.tolist()
        else:
            columns[name] = values.astype(object).where(values.notna(), None).tolist()
    return columns


def _records(rows: pd.DataFrame) -> list[dict]:
    columns = _values(rows)
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _retry(work, also: tuple[type[Exception], ...] = ()):
    """``work()``, again after a pause when the database was busy beyond its timeout, a table was
    made by another process meanwhile, or (``also``) another error the caller can retry."""
    caught: tuple[type[Exception], ...] = (sa.exc.OperationalError, *also)
    for attempt in range(_ATTEMPTS):
        try:
            return work()
        except caught as error:
            text = str(getattr(error, "orig", error)).lower()
            busy = "locked" in text or "busy" in text or "already exists" in text
            if attempt == _ATTEMPTS - 1 or not (busy or isinstance(error, also)):
                raise
            time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
