"""Monitoring what was served: the forecast store's forecasts scored against the data and the alarms.

:func:`monitor` wires :mod:`riskmodel.store` (what was served) to the pure scoring of
:mod:`riskmodel.evaluation.monitoring` and :mod:`riskmodel.evaluation.alarms`;
``riskmodel monitor`` prints its report and exits 3 on an alarm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .contract import Dataset
from .evaluation.alarms import ALARM_COLUMNS, backtest_band, backtest_expectation, served_alarms
from .evaluation.drift import drift_features, input_drift_alarms
from .evaluation.monitoring import MonitorSettings, first_weeks, score_served
from .io import read_dataset
from .serving import model_for

if TYPE_CHECKING:
    from .store import ForecastStore

__all__ = ["MonitorReport", "monitor"]

#: The store's columns renamed to those :func:`~riskmodel.evaluation.monitoring.score_served` reads.
RENAMED = {"model_name": "model", "model_version": "version", "unit": "grid_id"}
#: The columns of :attr:`MonitorReport.drift`.
DRIFT_COLUMNS = ["model", "version", "as_of", "feature", "psi", "usual", "drifted"]
#: The columns of :attr:`MonitorReport.backtest`.
BACKTEST_COLUMNS = ["model", "version", "metric", "mean", "std", "low", "high", "folds"]


@dataclass(frozen=True)
class MonitorReport:
    """What :func:`monitor` found.

    Attributes
    ----------
    scores : DataFrame
        One row per model version and week (``as_of``) whose windows closed: the
        backtest's metrics (:func:`~riskmodel.evaluation.monitoring.score_served`).
    weeks : DataFrame
        The cases of each forecast's first week against its expected share of them, for
        every forecast whose first week closed
        (:func:`~riskmodel.evaluation.monitoring.first_weeks`): what the calibration
        alarms read.
    alarms : DataFrame
        One row per alarm (:data:`~riskmodel.evaluation.alarms.ALARM_COLUMNS`), each with
        a ``message`` saying why.
    unscored : DataFrame
        The forecasts left unscored, counted per model version, week and ``reason``
        (``window_open``, ``unknown_unit``).
    drift : DataFrame
        The input drift of each model version checked (given ``model``), at its latest
        ``as_of``: ``model``, ``version``, ``as_of``, ``feature``, ``psi``, ``usual`` and
        ``drifted`` (:func:`~riskmodel.evaluation.drift.feature_drift`); empty otherwise.
    backtest : DataFrame
        What the served model's backtest expects of each watched metric, beside which the
        weekly scores are read: ``model``, ``version``, ``metric``, ``mean``, ``std``,
        ``low``, ``high``, ``folds``
        (:func:`~riskmodel.evaluation.alarms.backtest_expectation`); empty without the
        model's evidence.
    bands : dict
        ``(model, version)`` to the ``(low, high)`` band of the hit rate at 5% in the
        model's backtest: the hit-rate alarm's.
    """

    scores: pd.DataFrame
    weeks: pd.DataFrame
    alarms: pd.DataFrame
    unscored: pd.DataFrame
    drift: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DRIFT_COLUMNS))
    backtest: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BACKTEST_COLUMNS))
    bands: dict = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when no alarm was raised."""
        return self.alarms.empty


def monitor(store, dataset, *, settings: MonitorSettings | None = None, model=None) -> MonitorReport:
    """Score every stored grid forecast whose window has closed and raise the alarms.

    The store's forecasts (recorded by ``predict(..., record=store)``) are scored per
    model version and week against the cases of ``dataset``
    (:func:`~riskmodel.evaluation.monitoring.score_served`), then read for calibration
    drift on each forecast's first week
    (:func:`~riskmodel.evaluation.monitoring.first_weeks`) and cold starts
    (:func:`~riskmodel.evaluation.alarms.served_alarms`). Given the served ``model``, its
    forecasts are also checked for a hit rate below its backtest band and, at the latest
    ``as_of`` it served, for input drift against its last training cutoffs
    (:func:`~riskmodel.evaluation.drift.input_drift_alarms`), and the cases are counted as
    its label counts them (its target's categories and severity).

    Parameters
    ----------
    store : ForecastStore, str or path
        The forecast store (see :func:`riskmodel.open_store`); a path must exist.
    dataset : Dataset, str or path
        The data up to its ``end`` (a dataset folder is read with
        :func:`riskmodel.io.read_dataset`).
    settings : MonitorSettings, optional
        The alarms' thresholds (default: :class:`MonitorSettings`'s).
    model : TrainedModel, str or path, optional
        The served model (a folder or registry URI is loaded): its backtest evidence
        gives the hit rate's band for its version (not checked without evidence: a
        model trained on a given estimator) and its feature builder the input drift.
        Without it, neither is checked and every case counts.

    Returns
    -------
    MonitorReport

    Raises
    ------
    FileNotFoundError
        When ``store`` is a path or SQLite URL with no file or folder there.
    ValueError
        When the store holds no forecast, or none of grid units, or none of ``model``.

    Examples
    --------
    >>> import tempfile
    >>> from riskmodel import predict, train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> store = tempfile.mkdtemp() + "/forecasts.db"
    >>> for as_of in ["2023-10-02", "2023-12-18"]:
    ...     _ = predict(district, as_of=as_of, model=trained, record=store)
    >>> report = monitor(store, district)
    >>> report.scores["as_of"].astype(str).tolist(), report.unscored["reason"].tolist()
    (['2023-10-02'], ['window_open'])
    """
    settings = settings or MonitorSettings()
    data = dataset if isinstance(dataset, Dataset) else read_dataset(dataset)
    forecasts = _grid_forecasts(_existing(store))
    trained = None if model is None else model_for(model, None)
    if trained is not None and trained.kind != "grid":
        raise ValueError(f"monitoring scores grid models' forecasts; the model given is a {trained.kind} model")
    # What the model's label counts (its categories, severity, origins, disputes or reports); without
    # it, every dispute.
    builder = None if trained is None else trained.builder
    target = {} if builder is None else {"target": builder.target, "origins": builder.origins, "count": builder.count}
    scores, unscored = score_served(forecasts, data, capacity=settings.capacity, **target)
    weeks = first_weeks(forecasts, data, days=settings.calibration_days, **target)
    bands: dict = {}
    drift = pd.DataFrame(columns=DRIFT_COLUMNS)
    backtest = pd.DataFrame(columns=BACKTEST_COLUMNS)
    found = []
    if trained is not None:
        key, latest = _served_by(trained, forecasts)
        expected = backtest_expectation(trained.evidence, sigmas=settings.band_sigmas)
        backtest = expected.reset_index().assign(model=key[0], version=key[1])[BACKTEST_COLUMNS]
        band = backtest_band(trained.evidence, sigmas=settings.band_sigmas)
        if band is not None:
            bands[key] = band
        reference, current = drift_features(trained.builder, data, latest, last=settings.psi_reference)
        named = {"model": key[0], "version": key[1], "as_of": latest}
        alarm, table = input_drift_alarms(reference, current, **named, settings=settings)
        drift = table.rename_axis("feature").reset_index().assign(**named)
        found.append(alarm)
    found.append(served_alarms(scores, weeks, forecasts, bands=bands, settings=settings))
    alarms = pd.concat([t for t in found if len(t)] or [_no_alarms()], ignore_index=True)
    alarms = alarms.sort_values(["known_at", "model", "version", "kind"], ignore_index=True)
    return MonitorReport(
        scores=scores,
        weeks=weeks,
        alarms=alarms,
        unscored=unscored,
        drift=drift[DRIFT_COLUMNS],
        backtest=backtest,
        bands=bands,
    )


def _served_by(trained, forecasts: pd.DataFrame) -> tuple[tuple[str, str], pd.Timestamp]:
    """The model's ``(name, version)`` and the latest ``as_of`` it served, refusing a model the store lacks."""
    from .store import model_identity

    key = model_identity(trained)
    mine = forecasts[(forecasts["model"] == key[0]) & (forecasts["version"] == key[1])]
    if mine.empty:
        served = forecasts[["model", "version"]].drop_duplicates().head(5).to_records(index=False).tolist()
        raise ValueError(
            f"the model given ({key[0]} version {key[1]}) served no forecast in the store, which holds "
            f"{served}: give the model that made them"
        )
    return key, mine["as_of"].max()


def _existing(store) -> ForecastStore:
    """The store, refusing a path (or SQLite URL) where there is nothing: opening it would create it."""
    if isinstance(store, (str, os.PathLike)):
        text = os.fspath(store)
        path = text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else None if "://" in text else text
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"no forecast store at {text}: record forecasts there with predict(record=...)")
    from .store import open_store  # SQLAlchemy is imported only to read a store

    return open_store(store)


def _grid_forecasts(store: ForecastStore) -> pd.DataFrame:
    stored = store.read()
    if stored.empty:
        raise ValueError(f"the forecast store {store.url} holds no forecast: record some with predict(record=...)")
    grid = stored[stored["unit_kind"] == "grid_id"]
    if grid.empty:
        kinds = sorted(stored["unit_kind"].unique())
        raise ValueError(
            f"the forecast store {store.url} holds no grid forecast (only unit kinds {kinds}); "
            "monitoring scores the forecasts of grid models"
        )
    forecasts = grid.rename(columns=RENAMED)
    if forecasts["level"].isna().all():
        forecasts = forecasts.drop(columns="level")  # each unit's level is then the data's
    return forecasts


def _no_alarms() -> pd.DataFrame:
    return pd.DataFrame(columns=ALARM_COLUMNS)
