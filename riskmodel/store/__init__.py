"""The forecast store: every served forecast on the record, once.

:func:`riskmodel.predict` with ``record=`` appends its answer here, so that the
forecasts a district acted on can be scored when their windows close. A row holds
the forecast's id, the model (its registered name and registry version, or a hash
of its content for a folder or an in-memory model), ``as_of``, the horizon and the
end of its window, the unit, the probability, the expected count and 80% interval
(grid models), the tier, the rank and the alerts (such as ``cold_start``, which the
monitor counts).

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

import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .parquet import ParquetBackend
from .rows import (
    COLUMNS,
    SCHEMA_VERSION,
    StoreSchemaError,
    forecast_rows,
    horizon_text,
    model_identity,
    typed,
)
from .sql import SqlBackend

if TYPE_CHECKING:
    from ..training import TrainedModel

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

#: The environment variable naming the default store (a SQLAlchemy URL, a path or a folder).
STORE_VARIABLE = "RISKMODEL_FORECAST_STORE"


class ForecastNotRecorded(UserWarning):
    """A forecast was returned but could not be recorded; the message names the store and the error."""


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
    >>> from riskmodel.store import ForecastStore
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
            self._backend: SqlBackend | ParquetBackend = ParquetBackend(Path(self.url))
        elif isinstance(url, str) and "://" in url:
            self.url = url
            self._backend = SqlBackend(url)
        elif isinstance(url, (str, os.PathLike)):
            self.url = f"sqlite:///{Path(url).resolve()}"
            self._backend = SqlBackend(self.url)
        else:
            raise TypeError(
                f"a forecast store is a SQLAlchemy URL, a path or a folder (str or Path), got {type(url).__name__}"
            )

    def __repr__(self) -> str:
        return f"ForecastStore({self.url!r})"

    def record(self, frame: pd.DataFrame, *, model: TrainedModel) -> int:
        """Append :func:`riskmodel.predict`'s answer by ``model``; returns the rows written
        (the forecasts already there are left as they are and not counted).

        Parameters
        ----------
        frame : DataFrame
            :func:`riskmodel.predict`'s answer (or :func:`riskmodel.scaleout.predict_partitioned`'s
            files read back): ``grid_id`` (grid model) or ``case_id`` (case model), ``as_of``,
            ``probability``, ``tier``, ``rank``, and where the model gives them ``level``,
            ``expected_count``, ``low``, ``high`` and ``alerts``. A database writes them in one transaction;
            Parquet, one new file per month, each whole or not at all.
        model : TrainedModel
            The model that made it: its name and version (:func:`model_identity`) and its horizon.

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
        return typed(frame).sort_values(["model_name", "model_version", "as_of", "rank"], ignore_index=True)


def _is_folder(url) -> bool:
    text = os.fspath(url)
    return "://" not in text and (text.endswith(("/", os.sep)) or Path(text).is_dir())


# -- opening and recording ----------------------------------------------------------------
_stores: dict[str, ForecastStore] = {}
_opening = threading.Lock()


def default_store() -> str:
    """The default store: ``$RISKMODEL_FORECAST_STORE``, else ``forecasts.db`` beside a SQLite
    ``$MLFLOW_TRACKING_URI``, else ``forecasts.db`` in the working directory (beside ``mlflow.db``).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> from riskmodel.store import default_store
    >>> with mock.patch.dict(os.environ, {"RISKMODEL_FORECAST_STORE": "sqlite:////data/forecasts.db"}):
    ...     default_store()
    'sqlite:////data/forecasts.db'
    >>> with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": "sqlite:////srv/mlflow.db"}, clear=True):
    ...     default_store()
    'sqlite:////srv/forecasts.db'
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
    >>> from riskmodel.store import open_store
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
            if isinstance(store._backend, SqlBackend):
                store._backend.forget()

    os.register_at_fork(after_in_child=_forget_connections)
