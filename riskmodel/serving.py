"""``riskmodel.predict`` for services: every unit scored, the model loaded once, bad input refused.

A service calls :func:`predict` every night for every unit. :func:`load_model`
keeps each model it loaded (by folder and file time, or by registry version), so
that many threads share one object; a call reads the model and never changes it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .contract import Dataset
from .models import explain
from .problems import describe
from .training import MODELS_FOLDER, REGISTERED_NAMES, TrainedModel, library_version, model_file, schema_hash
from .validation import CONTRACT, validate

# After the entry points, the seams that :func:`predict` and
# :func:`riskmodel.scaleout.predict_partitioned` share, so that both check and score alike.
__all__ = [
    "DEFAULT_MODEL",
    "load_model",
    "predict",
    "check_as_of",
    "check_inputs",
    "check_schema",
    "data_end",
    "latest_plausible",
    "model_for",
    "naive",
    "riskiest_first",
    "score",
    "top_drivers",
]

#: The model :func:`predict` uses when none is given (when the tracking store has it).
DEFAULT_MODEL = f"models:/{REGISTERED_NAMES['grid']}@champion"

_loaded: dict[str, TrainedModel] = {}
_loading = threading.Lock()


def load_model(path_or_uri, *, reload: bool = False) -> TrainedModel:
    """The :class:`TrainedModel` in a folder written by :meth:`TrainedModel.save` or
    behind an MLflow model URI (``models:/name@alias``, ``models:/name/version``,
    ``runs:/id/model``).

    A model is loaded once per process: a folder once per modification time of
    its model file, a ``models:/name@alias`` once per version the alias points
    at (so a moved ``champion`` is picked up), another URI once per tracking
    store. ``reload=True`` reads it again regardless.

    Nothing in a model folder can run code when it is loaded: every file is
    checked against the manifest's SHA-256 before it is read (see
    :meth:`TrainedModel.load`), and a registry model is read from the same files.

    Raises
    ------
    FileNotFoundError
        Naming the path or URI, when there is no model there.
    riskmodel.persistence.ModelFileError
        A ``ValueError`` naming the folder and the file, when what is there cannot
        be loaded safely: a changed, missing, extra or unsigned file, or a pickle.
    """
    if _is_uri(path_or_uri):
        from .tracking import resolve, tracking_uri

        path_or_uri = resolve(path_or_uri)  # an alias becomes the version it points at
        key = f"{tracking_uri()} {path_or_uri}"  # the same URI in another store is another model
    else:
        file = model_file(path_or_uri)
        key = f"{file.resolve()} {file.stat().st_mtime_ns if file.is_file() else 0}"
    found = None if reload else _loaded.get(key)
    if found is not None:
        return found
    with _loading:  # one load at a time; readers of loaded models never wait here
        if reload or key not in _loaded:
            _loaded[key] = read_model(path_or_uri)
        return _loaded[key]


def _is_uri(path_or_uri) -> bool:
    return isinstance(path_or_uri, str) and ("://" in path_or_uri or path_or_uri.startswith(("models:/", "runs:/")))


def read_model(path_or_uri) -> TrainedModel:
    """Read a model without the cache of :func:`load_model` (see there)."""
    if _is_uri(path_or_uri):
        from .tracking import load_logged

        trained = load_logged(path_or_uri)
        trained.model_uri = path_or_uri  # models:/name/version: the version a forecast store records
        return trained
    return TrainedModel.load(path_or_uri)


def _default_model() -> str:
    """The registry's champion when the tracking store has it, else the folder
    ``models/dispute-risk-grid``."""
    from .tracking import resolve, tracking_uri

    folder = MODELS_FOLDER / REGISTERED_NAMES["grid"]
    store = tracking_uri()
    if not store.startswith("sqlite:///") or Path(store.removeprefix("sqlite:///")).is_file():
        champion = resolve(DEFAULT_MODEL)  # an absent SQLite store is not created by looking
        if champion != DEFAULT_MODEL:
            return champion
    if model_file(folder).is_file():
        return str(folder)
    raise FileNotFoundError(
        f"no model given, and neither {DEFAULT_MODEL} in the tracking store {store} nor a "
        f"saved model in {folder}; pass model= a registry URI, a folder or a TrainedModel"
    )


def predict(
    data,
    *,
    as_of=None,
    model=None,
    drivers: int | None = 200,
    errors: Literal["raise", "quarantine"] = "raise",
    record=None,
) -> pd.DataFrame:
    """Risk of every unit (grid model) or escalation risk of every open case (case
    model) as of a time, riskiest first.

    Parameters
    ----------
    data : Dataset or mapping of frames
        The data up to now: a :class:`~riskmodel.Dataset`, or its frames by name
        (``cases``, ``grids``, optional ``grid_history``, ``adjacency``, ``visits``
        and ``plans``). A model trained on data with visits needs visits (its visit
        features); one trained without ignores them.
    as_of : datetime-like, optional
        The forecast time: features count the cases reported before it. Default:
        the dataset's ``as_of`` when set, else the midnight after its last case.
    model : TrainedModel, folder or MLflow model URI, optional
        Default: ``models:/dispute-risk-grid@champion`` when the tracking store
        has it, else the folder ``models/dispute-risk-grid``.
    drivers : int >= 0 or None
        How many of the riskiest rows get ``top_drivers`` (None: all); the others
        get an empty string. The contributions are the costly part of a call:
        about 0.7 ms a row for the 300 trees of the default LightGBM models.
    errors : {"raise", "quarantine"}
        Data that breaks the contract (as :func:`~riskmodel.validate` checks it,
        with a case after the data's ``as_of``, or after now plus a day, among the
        rules): ``"raise"`` refuses it naming the rows; ``"quarantine"`` leaves
        the rows out with one warning that counts them (a rejected unit is then not
        scored).
    record : ForecastStore, str, path or True, optional
        Append the answer to this forecast store (see :mod:`riskmodel.store`:
        a SQLAlchemy URL, a SQLite file, a folder for Parquet; True: the default store,
        ``forecasts.db`` beside ``mlflow.db``). A forecast already there is not written
        again; a failure to record is a :class:`~riskmodel.store.ForecastNotRecorded`
        warning, and the answer is returned all the same.

    Returns
    -------
    DataFrame
        Grid model: one row per unit of the model's level, with ``grid_id``,
        ``level``, one ``<level>_id`` column per level above it (``parent_grid_id`` for a
        level named ``grid``: see :func:`~riskmodel.contract.level_column`), ``as_of``,
        ``horizon_days``, ``probability`` (of at least one case in the horizon),
        ``expected_count``, ``low`` and ``high`` (the 80% interval of the count in
        the horizon, whole numbers, from the model's negative binomial distribution:
        see :attr:`TrainedModel.dispersion`), ``score`` (the probability on a 0-100 scale),
        ``tier``, ``rank`` (1 = riskiest: see :func:`riskiest_first`), ``top_drivers``
        (the three largest contributions, in words, with their unit: see
        :func:`~riskmodel.models.explain`) and ``alerts``. Case model:
        one row per case open at ``as_of``, with ``case_id``, ``grid_id`` and the
        same scores (``horizon_days`` is the escalation window; no expected count).

    Raises
    ------
    ValueError
        When the data breaks the contract, lacks a column the model was trained
        with, or builds features of another schema than the model's.

    Notes
    -----
    ``alerts`` joins, with ``;``: ``cold_start`` (the unit was not among the
    training units: it is scored from its attributes, parents and neighbours, and
    its own short history), ``no_history`` (no case reported in the unit before
    ``as_of``), ``no_attributes`` (no attribute in force), and
    ``anomaly:<category>`` (the last week's count of that category is improbably
    high for the unit, by :class:`~riskmodel.models.SpikeDetector`). A case
    model's rows carry no alerts. (The column was ``flags`` up to 0.1.0, which
    ``risk.flags``, pandas' own attribute, hid.)

    Examples
    --------
    >>> from riskmodel import predict, train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> risk = predict(district, model=trained)
    >>> len(risk), list(risk.columns[:4]), risk["rank"].tolist()[:3]
    (25, ['grid_id', 'level', 'street_id', 'community_id'], [1, 2, 3])
    """
    if errors not in ("raise", "quarantine"):
        raise ValueError(f"errors must be 'raise' or 'quarantine', got {errors!r}")
    trained = model_for(model, drivers)
    store = None if record is None or record is False else record_store(record)
    dataset = _dataset(data)
    check_inputs(trained, dataset)  # before validation, which fills in an absent severity
    as_of = None if as_of is None else naive(as_of)
    if dataset.as_of is None:
        dataset = dataset.replace(as_of=data_end(as_of, latest_plausible(dataset.cases["reported_at"])))
    report = validate(dataset, errors=errors)
    if len(report.rejected):
        warnings.warn(
            f"predict left out {len(report.rejected)} row(s) that break the data contract:\n"
            f"{describe(report.problems)}",
            stacklevel=2,
        )
    dataset = report.dataset
    as_of = check_as_of(as_of, dataset.cases["reported_at"].min(), dataset.end)
    X = trained.features(dataset, as_of)
    check_schema(trained, X)
    out = trained.target.rows(trained, dataset, X, as_of)
    horizon = trained.target.window(trained.builder)
    scores = (
        trained.score(X)
        if len(X)
        else pd.DataFrame({"probability": [], "expected_count": [], "low": [], "high": [], "tier": []})
    )
    p = scores["probability"].to_numpy()
    out["as_of"] = as_of
    out["horizon_days"] = (as_of + horizon - as_of) / pd.Timedelta(days=1)
    out["probability"] = p
    if trained.target.counts:
        out["expected_count"] = scores["expected_count"].to_numpy()
        out["low"] = scores["low"].to_numpy()
        out["high"] = scores["high"].to_numpy()
    out["score"] = score(p)
    out["tier"] = scores["tier"].astype(str).to_numpy()
    order = riskiest_first(p, scores.get("expected_count"), out.iloc[:, 0])  # ties by grid_id or case_id
    out = out.iloc[order].reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    out["top_drivers"] = top_drivers(trained, X, order, drivers)[order]
    out = out[[c for c in out.columns if c != "alerts"] + ["alerts"]]
    if store is not None:
        from .store import record_safely

        record_safely(store, out, trained)
    return out


def record_store(record):
    """The forecast store ``record`` names (see :func:`riskmodel.store.open_store`),
    imported only to record: reading forecasts needs no SQLAlchemy."""
    from .store import open_store

    return open_store(record)


def model_for(model, drivers: int | None) -> TrainedModel:
    """The model to score with (see :func:`predict`), and ``drivers`` checked."""
    if drivers is not None and drivers < 0:
        raise ValueError(f"drivers must be None or at least 0, got {drivers}")
    return model if isinstance(model, TrainedModel) else load_model(model if model is not None else _default_model())


def data_end(as_of: pd.Timestamp | None, last: pd.Timestamp) -> pd.Timestamp:
    """The end of data without an extraction time: the forecast time, by default the
    midnight after the last case (so that the day's cases count), never before the last
    case (``last``: see :func:`latest_plausible`)."""
    if pd.isna(last) and as_of is None:
        raise ValueError("the data has no case and no as_of: pass as_of, the time to forecast from")
    stamp = as_of if as_of is not None else last.normalize() + pd.Timedelta(days=1)
    return stamp if pd.isna(last) else max(stamp, last)


def latest_plausible(reported: pd.Series) -> pd.Timestamp:
    """The latest report time up to now plus a day, the bound :func:`~riskmodel.validate`
    applies without an ``as_of``: a case dated in 2204 is then after the data's end and
    refused, instead of moving the forecast to 2204. Works on pandas and Dask series."""
    reported = reported if pd.api.types.is_datetime64_any_dtype(reported) else pd.to_datetime(reported, errors="coerce")
    return reported[reported <= pd.Timestamp.now() + pd.Timedelta(days=1)].max()


def check_as_of(as_of: pd.Timestamp | None, first: pd.Timestamp, end: pd.Timestamp) -> pd.Timestamp:
    """``as_of`` (default ``end``), refused unless after the first case and at most ``end``."""
    if as_of is None:
        return end
    if as_of > end or (pd.notna(first) and as_of <= first):
        raise ValueError(
            f"as_of must be after the data's first case ({first}) and at most its end "
            f"({end}; without an extraction time, the midnight after the last case); got {as_of}"
        )
    return as_of


def check_schema(trained: TrainedModel, X: pd.DataFrame) -> None:
    """Refuse features of another schema than the model's, naming both."""
    found = schema_hash(X)
    if found != trained.schema_hash:
        raise ValueError(
            f"the model was built for feature schema {trained.schema_hash} (riskmodel "
            f"{trained.version}); the features riskmodel {library_version()} builds have schema {found}"
        )


def riskiest_first(probability, expected=None, ids=None) -> np.ndarray:
    """The order of rows from the riskiest: by probability, then by expected count (when
    the model gives one), then by id (``ids``, e.g. ``grid_id``; default: row order).

    The expected count matters when probabilities tie, as they do when they saturate
    at 1.0 (units with a case nearly every period): the unit expecting the most cases
    comes first, not the first in the alphabet. :meth:`TrainedModel.score` tiers on the
    same key, so that tiers never contradict ranks.

    Examples
    --------
    >>> from riskmodel.serving import riskiest_first
    >>> riskiest_first([1.0, 1.0, 0.4], expected=[55.4, 64.6, 0.5], ids=["G1", "G2", "G3"]).tolist()
    [1, 0, 2]
    """
    p = np.asarray(probability, dtype=float)
    keys = [np.arange(len(p)) if ids is None else np.asarray(ids)]
    if expected is not None:
        keys.append(-np.asarray(expected, dtype=float))
    return np.lexsort([*keys, -p])


def score(p: np.ndarray) -> np.ndarray:
    """The probability on a 0-100 scale, to 0.1."""
    return np.round(100 * p, 1)


def top_drivers(trained: TrainedModel, X: pd.DataFrame, order: np.ndarray, drivers: int | None) -> np.ndarray:
    """The three largest contributions, in words, of the first ``drivers`` rows of
    ``order`` (all with None); the other rows of ``X`` get an empty string."""
    explained = order if drivers is None else order[:drivers]
    text = np.full(len(X), "", dtype=object)
    if len(explained):
        text[explained] = explain(trained.estimator, X.iloc[explained])["text"].to_numpy()
    return text


def naive(as_of) -> pd.Timestamp:
    """``as_of`` as a Timestamp, refused when it carries a time zone (the data's times are
    naive wall-clock times)."""
    as_of = pd.Timestamp(as_of)
    if as_of.tz is not None:
        raise ValueError(f"as_of must be a naive wall-clock time like the data, got zone {as_of.tz}")
    return as_of


def _dataset(data) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - set(CONTRACT))
        if unknown or not {"cases", "grids"} <= set(data):
            raise ValueError(
                "data as frames needs 'cases' and 'grids' (optional 'grid_history', 'adjacency', 'visits', 'plans'); "
                f"got {sorted(data)}"
            )
        return Dataset(**{k: v for k, v in data.items() if v is not None})
    raise TypeError(f"data must be a Dataset or a mapping of its frames, got {type(data).__name__}")


def check_inputs(trained: TrainedModel, dataset: Dataset) -> None:
    """The data must hold the optional columns the model was trained with; attributes
    may be absent altogether (no ``grid_history``), then every unit is flagged."""
    tables = dict(trained.inputs)
    if len(dataset.grid_history) == 0:
        tables.pop("grid_history", None)
    for table, columns in tables.items():
        if getattr(dataset, table) is None:
            raise ValueError(
                f"the model was trained on data with a {table} table (its features read {list(columns)}), "
                f"but the data has no {table}: give them (an empty {table} table if there were none)"
            )
        missing = [c for c in columns if c not in getattr(dataset, table).columns]
        if missing:
            raise ValueError(
                f"the data's {table} lack the column(s) {missing} that the model was trained with "
                f"(it needs {list(columns)})"
            )
