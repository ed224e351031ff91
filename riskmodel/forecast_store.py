"""The forecast store: every served forecast on the record, once.

:func:`riskmodel.predict` with ``record=`` appends its answer here, so that the
forecasts a district acted on can be scored when their windows close. A row holds
the forecast's id, the model (its registered name and registry version, or a hash
of its content for a folder or an in-memory model), ``as_of``, the horizon and the
end of its window, the unit, the probability, the expected count and 80% interval
(grid models), the tier and the rank.

Two kinds of store share one API (:class:`ForecastStore`):

- a database at any SQLAlchemy URL (SQLAlchemy Core; a path is a SQLite file),
  by default ``forecasts.db`` beside MLflow's ``mlflow.db``;
- a folder of Parquet files partitioned by the month of ``as_of``
  (``month=2024-01/part-<hash>.parquet``), for the Dask batch path.

Recording is idempotent: a model's forecast of a unit as of a time is written once
(a unique key and an insert that ignores what is there; in Parquet, a lock per month
and the ids already there left out), from any number of threads and processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

if TYPE_CHECKING:
    from .training import TrainedModel

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "STORE_VARIABLE",
    "ForecastNotRecorded",
    "ForecastStore",
    "StoreSchemaError",
    "default_store",
    "forecast_rows",
    "horizon_text",
    "model_identity",
    "open_store",
    "record_safely",
]

#: The version of the store's layout; a store of another version is refused.
SCHEMA_VERSION = 1
#: The environment variable naming the default store (a SQLAlchemy URL, a path or a folder).
STORE_VARIABLE = "RISKMODEL_FORECAST_STORE"
#: The stored columns, in order, with their dtypes as :meth:`ForecastStore.read` returns them.
COLUMNS = {
    "forecast_id": "str",
    "model_name": "str",
    "model_version": "str",
    "as_of": "datetime64[us]",
    "horizon": "str",
    "horizon_days": "float64",
    "window_end": "datetime64[us]",
    "unit_kind": "str",
    "unit": "str",
    "level": "str",
    "probability": "float64",
    "expected_count": "float64",
    "low": "float64",
    "high": "float64",
    "tier": "str",
    "rank": "int64",
    "recorded_at": "datetime64[us]",
}
_OPTIONAL = ("level", "expected_count", "low", "high")


class StoreSchemaError(ValueError):
    """A store written by another schema version (or not a forecast store); the message names both."""


class ForecastNotRecorded(UserWarning):
    """A forecast was returned but could not be recorded; the message names the store and the error."""


# -- which model --------------------------------------------------------------------------
_fingerprints: weakref.WeakKeyDictionary[TrainedModel, str] = weakref.WeakKeyDictionary()


def model_identity(trained: TrainedModel) -> tuple[str, str]:
    """The model's name and version as the store keys them.

    The name is the registered name (``dispute-risk-grid``); the version is the
    registry's version when the model was loaded from ``models:/<name>/<version>``
    (or an alias of it), else ``"sha256:"`` and 16 hex digits of a hash of the model's
    content (estimator, feature builder, tier policy, schema, training cutoff), the
    same for every load of one saved model.

    Examples
    --------
    >>> from riskmodel import train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.forecast_store import model_identity
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> trained = train(simulate_district("tiny", seed=0), model=HistoricalRateBaseline(), track=False)
    >>> name, version = model_identity(trained)
    >>> name, version.startswith("sha256:"), len(version)
    ('dispute-risk-grid', True, 23)
    """
    name = trained.registered_name
    uri = trained.model_uri or ""
    registered, _, number = uri.removeprefix("models:/").rpartition("/")
    if uri.startswith("models:/") and registered == name and number.isdigit():
        return name, number
    found = _fingerprints.get(trained)
    if found is None:
        import joblib  # scikit-learn's: a stable hash of numpy arrays, frames and estimators

        parts = (
            trained.kind,
            trained.estimator,
            trained.builder,
            trained.tier_policy.get_params(),
            trained.schema_hash,
            str(trained.trained_through),
            trained.dispersion,
            None if trained.units is None else [str(u) for u in trained.units],
        )
        found = _fingerprints[trained] = "sha256:" + hashlib.sha256(joblib.hash(parts).encode()).hexdigest()[:16]
    return name, found


def horizon_text(window: pd.Timedelta | pd.DateOffset) -> str:
    """A forecast window as the store keeps it: ``"28D"`` for days, the offset's name for
    months (``"ME"``, read back by ``pandas.tseries.frequencies.to_offset``, or
    ``"<DateOffset: months=1>"``, read back by :func:`riskmodel.features.base.logged_horizon`).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.forecast_store import horizon_text
    >>> horizon_text(pd.Timedelta(days=28)), horizon_text(pd.offsets.MonthEnd()), horizon_text(pd.DateOffset(months=1))
    ('28D', 'ME', '<DateOffset: months=1>')
    """
    if isinstance(window, pd.Timedelta):
        return f"{window.days}D" if window == pd.Timedelta(days=window.days) else window.isoformat()
    return window.freqstr


# -- the rows -----------------------------------------------------------------------------
def forecast_rows(frame: pd.DataFrame, trained: TrainedModel) -> pd.DataFrame:
    """The store's rows (:data:`COLUMNS`) of :func:`riskmodel.predict`'s answer by ``trained``.

    ``forecast_id`` is 32 hex digits of the SHA-256 of the model's name and version, the
    kind of unit, ``as_of`` and the unit: the same forecast has the same id in every store.
    ``window_end`` is ``as_of`` plus the model's horizon (a calendar offset for a monthly
    horizon); ``recorded_at`` is the time of the call, in UTC.

    Raises
    ------
    ValueError
        Naming the column and the rule, with examples, when ``frame`` is not a forecast.

    Examples
    --------
    >>> from riskmodel import predict, train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.forecast_store import forecast_rows
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), track=False)
    >>> rows = forecast_rows(predict(district, model=trained), trained)
    >>> rows.loc[0, ["unit", "as_of", "window_end", "horizon"]].tolist()
    ['G18', Timestamp('2024-01-01 00:00:00'), Timestamp('2024-01-29 00:00:00'), '28D']
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"a forecast to record must be a DataFrame (predict's answer), got {type(frame).__name__}")
    unit_kind = "grid_id" if trained.target.counts else "case_id"
    required = [unit_kind, "as_of", "probability", "tier", "rank"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"a forecast of a {trained.kind} model needs the column(s) {required}; {missing} missing "
            f"(got {list(frame.columns)[:8]})"
        )
    _check(frame, unit_kind)
    name, version = model_identity(trained)
    window = trained.target.window(trained.builder)
    as_of = _times(frame["as_of"]).astype("datetime64[us]")
    out = pd.DataFrame(
        {
            "model_name": name,
            "model_version": version,
            "as_of": as_of,
            "horizon": horizon_text(window),
            "horizon_days": ((as_of + window) - as_of) / pd.Timedelta(days=1),
            "window_end": as_of + window,
            "unit_kind": unit_kind,
            "unit": frame[unit_kind].astype(str),
            **{c: frame[c] if c in frame else None for c in _OPTIONAL},
            "probability": frame["probability"],
            "tier": frame["tier"].astype(str),
            "rank": frame["rank"],
            "recorded_at": pd.Timestamp.now("UTC").tz_localize(None).floor("us"),
        }
    )
    keys = zip(_texts(out["as_of"], "%Y-%m-%dT%H:%M:%S.%f"), out["unit"].tolist(), strict=True)
    prefix = f"{name}\x1f{version}\x1f{unit_kind}\x1f"
    out.insert(0, "forecast_id", [hashlib.sha256(f"{prefix}{t}\x1f{u}".encode()).hexdigest()[:32] for t, u in keys])
    return _typed(out)


def _check(frame: pd.DataFrame, unit_kind: str) -> None:
    def refuse(column: str, rule: str, bad: pd.Series) -> None:
        if bad.any():
            examples = frame.loc[bad.to_numpy(), column].head(3).tolist()
            raise ValueError(f"{column} must {rule}: {int(bad.sum())} row(s) do not, e.g. {examples}")

    refuse(unit_kind, "be given", frame[unit_kind].isna())
    refuse("as_of", "be a time", _times(frame["as_of"], errors="coerce").isna())
    p = pd.to_numeric(frame["probability"], errors="coerce")
    refuse("probability", "be a number from 0 to 1", ~p.between(0, 1))
    refuse("rank", "be a whole number from 1", ~pd.to_numeric(frame["rank"], errors="coerce").ge(1))
    key = pd.DataFrame({"as_of": frame["as_of"], unit_kind: frame[unit_kind]})
    refuse(unit_kind, "appear once per as_of", key.duplicated(keep=False))
    if "expected_count" in frame:
        refuse("expected_count", "be a number of at least 0", ~pd.to_numeric(frame["expected_count"]).ge(0))
    if {"low", "high"} <= set(frame.columns):
        refuse("low", "be at most high", pd.to_numeric(frame["low"]) > pd.to_numeric(frame["high"]))


def _times(values: pd.Series, errors="raise") -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values, errors=errors, format="ISO8601")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the store's columns in order and of their dtypes (absent optional ones empty)."""
    frame = frame.reindex(columns=list(COLUMNS))
    out = {}
    for column, dtype in COLUMNS.items():
        values = frame[column]
        if dtype == "str":
            values = values.astype(object).where(values.notna(), None).astype("str")
        elif dtype.startswith("datetime"):
            values = pd.to_datetime(values).astype(dtype)
        out[column] = values.astype(dtype)
    return pd.DataFrame(out, index=range(len(frame)))


# -- the store ----------------------------------------------------------------------------
class ForecastStore:
    """Forecasts on the record, in a database or a folder of Parquet files.

    Parameters
    ----------
    url : str or path
        A SQLAlchemy URL (``sqlite:///forecasts.db``, ``postgresql://...``), a path
        to a SQLite file, or a folder (a path ending in ``/``, or an existing
        directory) for Parquet files partitioned by month.

    Attributes
    ----------
    url : str
        The database URL, or the folder's path.

    Examples
    --------
    >>> import tempfile
    >>> from riskmodel import predict, train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.forecast_store import ForecastStore
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), track=False)
    >>> store = ForecastStore(tempfile.mkdtemp() + "/forecasts.db")
    >>> store.record(predict(district, model=trained), model=trained)
    25
    >>> store.record(predict(district, model=trained), model=trained)  # already there
    0
    >>> store.read()[["model_name", "unit", "horizon", "rank"]].head(2)
              model_name unit horizon  rank
    0  dispute-risk-grid  G18     28D     1
    1  dispute-risk-grid  G04     28D     2
    """

    def __init__(self, url) -> None:
        if isinstance(url, (str, os.PathLike)) and _is_folder(url):
            self.url = str(Path(url).resolve())
            self._backend: _Sql | _Parquet = _Parquet(Path(self.url))
        elif isinstance(url, str) and "://" in url:
            self.url = url
            self._backend = _Sql(url)
        elif isinstance(url, (str, os.PathLike)):
            self.url = f"sqlite:///{Path(url).resolve()}"
            self._backend = _Sql(self.url)
        else:
            raise TypeError(
                f"a forecast store is a SQLAlchemy URL, a path or a folder (str or Path), got {type(url).__name__}"
            )

    def __repr__(self) -> str:
        return f"ForecastStore({self.url!r})"

    def record(self, frame: pd.DataFrame, *, model: TrainedModel) -> int:
        """Append :func:`riskmodel.predict`'s answer by ``model``; returns the rows written
        (the forecasts already there are left as they are and not counted).

        Raises
        ------
        ValueError
            When ``frame`` is not a forecast (naming the column and the rule).
        StoreSchemaError
            When the store was written by another schema version.
        """
        rows = forecast_rows(frame, model)
        return self._backend.record(rows) if len(rows) else 0

    def read(self, model=None, since=None, until=None) -> pd.DataFrame:
        """The stored forecasts, by model, ``as_of`` and rank, with the columns of :data:`COLUMNS`.

        Parameters
        ----------
        model : str or TrainedModel, optional
            A registered name (``"dispute-risk-grid"``), a name and version
            (``"dispute-risk-grid/3"``, ``"dispute-risk-grid/sha256:..."``), or a model.
        since, until : datetime-like, optional
            The first and last ``as_of`` to read (both included).
        """
        name = version = None
        if model is not None and not isinstance(model, str):
            name, version = model_identity(model)
        elif model is not None:
            name, _, version = model.partition("/")
        since = None if since is None else pd.Timestamp(since)
        until = None if until is None else pd.Timestamp(until)
        frame = self._backend.read(name, version or None, since, until)
        return _typed(frame).sort_values(["model_name", "model_version", "as_of", "rank"], ignore_index=True)


def _is_folder(url) -> bool:
    text = os.fspath(url)
    return "://" not in text and (text.endswith(("/", os.sep)) or Path(text).is_dir())


# -- SQL ----------------------------------------------------------------------------------
_metadata = sa.MetaData()
_TYPES = {"str": sa.String, "float64": sa.Float, "int64": sa.Integer, "datetime64[us]": sa.DateTime}
_FORECASTS = sa.Table(
    "forecasts",
    _metadata,
    *(
        sa.Column(name, _TYPES[dtype](), primary_key=name == "forecast_id", nullable=name in _OPTIONAL)
        for name, dtype in COLUMNS.items()
    ),
    sa.UniqueConstraint("model_name", "model_version", "as_of", "unit", name="one_forecast_per_model_time_unit"),
    sa.Index("forecasts_by_time", "as_of"),
)
_SCHEMA = sa.Table(
    "store_schema", _metadata, sa.Column("name", sa.String(), primary_key=True), sa.Column("value", sa.String())
)
_ATTEMPTS = 12  # "database is locked" beyond the busy timeout: retried with a growing pause


class _Sql:
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
        _refuse(url, "none (no store_schema table)")
    _metadata.create_all(engine, checkfirst=True)
    with engine.begin() as connection:
        if connection.execute(sa.select(sa.func.count()).select_from(_SCHEMA)).scalar() == 0:
            connection.execute(sa.insert(_SCHEMA), [{"name": "schema_version", "value": str(SCHEMA_VERSION)}])
        found = connection.execute(sa.select(_SCHEMA.c.value).where(_SCHEMA.c.name == "schema_version")).scalar()
    if found != str(SCHEMA_VERSION):
        _refuse(url, found)


def _refuse(where, found) -> None:
    raise StoreSchemaError(
        f"the forecast store {where} was written with schema version {found}; this riskmodel reads and writes "
        f"schema version {SCHEMA_VERSION}: record to a new store, or read it with the riskmodel that wrote it"
    )


_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's DateTime in SQLite


def _texts(times: pd.Series, layout: str) -> list[str]:
    """Times as text, each distinct time formatted once (a forecast has one ``as_of``)."""
    codes, uniques = pd.factorize(times)
    return np.asarray(uniques.strftime(layout), dtype=object)[codes].tolist()


def _values(rows: pd.DataFrame, time_layout: str | None = None) -> dict[str, list]:
    """Each column as a list of Python values, None for missing; times as text in ``time_layout``
    (default: ``datetime`` objects)."""
    columns = {}
    for name, dtype in COLUMNS.items():
        values = rows[name]
        if dtype.startswith("datetime"):
            columns[name] = _texts(values, time_layout) if time_layout else values.dt.to_pydatetime().tolist()
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


# -- Parquet ------------------------------------------------------------------------------
_MARKER = "_forecast_store.json"


class _Parquet:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _check(self, create: bool) -> None:
        marker = self.root / _MARKER
        if not marker.is_file():
            if any(self.root.glob("month=*")):
                _refuse(self.root, f"none ({_MARKER} is missing)")
            if not create:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            _replace(marker, json.dumps({"schema_version": SCHEMA_VERSION}).encode())
        found = json.loads(marker.read_text()).get("schema_version")
        if found != SCHEMA_VERSION:
            _refuse(self.root, found)

    def record(self, rows: pd.DataFrame) -> int:
        from filelock import FileLock

        self._check(create=True)
        written = 0
        for month, part in rows.groupby(rows["as_of"].dt.strftime("%Y-%m"), sort=True):
            folder = self.root / f"month={month}"
            folder.mkdir(exist_ok=True)
            with FileLock(folder / ".lock", timeout=300):
                there = [pd.read_parquet(f, columns=["forecast_id"]) for f in sorted(folder.glob("part-*.parquet"))]
                if there:
                    part = part[~part["forecast_id"].isin(pd.concat(there)["forecast_id"])]
                if len(part):
                    key = hashlib.sha256("\n".join(sorted(part["forecast_id"])).encode()).hexdigest()[:16]
                    path = folder / f"part-{key}.parquet"
                    temporary = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
                    part.to_parquet(temporary, index=False)
                    os.replace(temporary, path)
                    written += len(part)
        return written

    def read(self, name, version, since, until) -> pd.DataFrame:
        self._check(create=False)
        first = None if since is None else since.strftime("%Y-%m")
        last = None if until is None else until.strftime("%Y-%m")
        files = [
            f
            for folder in sorted(self.root.glob("month=*"))
            if (first is None or folder.name[6:] >= first) and (last is None or folder.name[6:] <= last)
            for f in sorted(folder.glob("part-*.parquet"))
        ]
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else _typed(pd.DataFrame())
        keep = np.ones(len(frame), dtype=bool)
        for column, value in (("model_name", name), ("model_version", version)):
            if value is not None:
                keep &= (frame[column] == value).to_numpy()
        if since is not None:
            keep &= (frame["as_of"] >= since).to_numpy()
        if until is not None:
            keep &= (frame["as_of"] <= until).to_numpy()
        return frame[keep]


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# -- opening and recording ----------------------------------------------------------------
_stores: dict[str, ForecastStore] = {}
_opening = threading.Lock()


def default_store() -> str:
    """The default store: ``$RISKMODEL_FORECAST_STORE``, else ``forecasts.db`` beside a SQLite
    ``$MLFLOW_TRACKING_URI``, else ``forecasts.db`` in the working directory (beside ``mlflow.db``).

    Examples
    --------
    >>> import os
    >>> from riskmodel.forecast_store import default_store
    >>> default_store() == os.environ.get("RISKMODEL_FORECAST_STORE", default_store())
    True
    """
    given = os.environ.get(STORE_VARIABLE)
    if given:
        return given
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    folder = Path(tracking.removeprefix("sqlite:///")).parent if tracking.startswith("sqlite:///") else Path.cwd()
    return f"sqlite:///{folder.resolve() / 'forecasts.db'}"


def open_store(store=None) -> ForecastStore:
    """The :class:`ForecastStore` at ``store``: one object per store and process (its
    database connections are shared by threads).

    Parameters
    ----------
    store : ForecastStore, str, path, True or None
        A store, a SQLAlchemy URL, a SQLite file's path, or a folder for Parquet; None
        or True: :func:`default_store`.

    Examples
    --------
    >>> import tempfile
    >>> from riskmodel.forecast_store import open_store
    >>> folder = tempfile.mkdtemp()
    >>> open_store(folder + "/forecasts.db") is open_store(folder + "/forecasts.db")
    True
    >>> open_store(folder).url == folder  # a folder: Parquet
    True
    """
    if isinstance(store, ForecastStore):
        return store
    if store is None or store is True:
        store = default_store()
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(
            f"record must be a ForecastStore, a SQLAlchemy URL, a path or True (the default store), "
            f"got {type(store).__name__}"
        )
    key = os.fspath(store)
    with _opening:
        if key not in _stores:
            _stores[key] = ForecastStore(store)
        return _stores[key]


def record_safely(store: ForecastStore, frame: pd.DataFrame, trained: TrainedModel) -> int | None:
    """:meth:`ForecastStore.record`, with a :class:`ForecastNotRecorded` warning naming the
    store and the error instead of an exception; None when nothing could be recorded."""
    try:
        return store.record(frame, model=trained)
    except Exception as error:
        warnings.warn(
            f"the forecast was returned but not recorded in the store {store.url}: {type(error).__name__}: {error}",
            ForecastNotRecorded,
            stacklevel=3,
        )
        return None


if hasattr(os, "register_at_fork"):  # a forked child must not use its parent's connections

    def _forget_connections() -> None:
        for store in _stores.values():
            if isinstance(store._backend, _Sql) and store._backend._engine is not None:
                store._backend._engine.dispose(close=False)
                store._backend._engine = None

    os.register_at_fork(after_in_child=_forget_connections)
