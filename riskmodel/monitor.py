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
from .evaluation.alarms import ALARM_COLUMNS, backtest_band, served_alarms
from .evaluation.monitoring import MonitorSettings, score_served
from .io import read_dataset
from .serving import model_for

if TYPE_CHECKING:
    from .store import ForecastStore

__all__ = ["MonitorReport", "monitor"]

#: The store's columns renamed to those :func:`~riskmodel.evaluation.monitoring.score_served` reads.
RENAMED = {"model_name": "model", "model_version": "version", "unit": "grid_id"}
#: The columns of :attr:`MonitorReport.drift`.
DRIFT_COLUMNS = ["model", "version", "as_of", "feature", "psi", "usual", "drifted"]


@dataclass(frozen=True)
class MonitorReport:
    """What :func:`monitor` found.

    Attributes
    ----------
    scores : DataFrame
        One row per model version and week (``as_of``) whose windows closed: the
        backtest's metrics (:func:`~riskmodel.evaluation.monitoring.score_served`).
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
    bands : dict
        ``(model, version)`` to the ``(low, high)`` band of the hit rate at 5% in the
        model's backtest (:func:`~riskmodel.evaluation.alarms.backtest_band`).
    """

    scores: pd.DataFrame
    alarms: pd.DataFrame
    unscored: pd.DataFrame
    drift: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DRIFT_COLUMNS))
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
    drift, a hit rate below its backtest band and cold starts
    (:func:`~riskmodel.evaluation.alarms.served_alarms`). The store keeps no ``alerts``
    column, so the cold-start alarm, which counts the ``cold_start`` alerts, never fires
    here; input drift needs the features and is not checked.

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
        gives the hit rate's band for its version. Without it, or without evidence, the
        hit rate is not checked.

    Returns
    -------
    MonitorReport

    Raises
    ------
    FileNotFoundError
        When ``store`` is a path or SQLite URL with no file or folder there.
    ValueError
        When the store holds no forecast, or none of grid units.

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
    bands = {}
    if model is not None:
        from .store import model_identity

        trained = model_for(model, None)
        band = backtest_band(trained.evidence, sigmas=settings.band_sigmas)
        if band is not None:
            bands[model_identity(trained)] = band
    scores, unscored = score_served(forecasts, data, capacity=settings.capacity)
    alarms = served_alarms(scores, forecasts, bands=bands, settings=settings) if len(scores) else _no_alarms()
    return MonitorReport(scores=scores, alarms=alarms, unscored=unscored, bands=bands)


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
    # The store keeps no alerts: "" (the cold-start alarm then has nothing to count).
    forecasts = grid.rename(columns=RENAMED).assign(alerts="")
    if forecasts["level"].isna().all():
        forecasts = forecasts.drop(columns="level")  # each unit's level is then the data's
    return forecasts


def _no_alarms() -> pd.DataFrame:
    return pd.DataFrame(columns=ALARM_COLUMNS)
