"""The rows of the forecast store: which model, which forecast, and the checks of a forecast to record."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..training import TrainedModel

__all__ = [
    "COLUMNS",
    "OPTIONAL",
    "SCHEMA_VERSION",
    "StoreSchemaError",
    "forecast_rows",
    "horizon_text",
    "model_identity",
    "refuse_version",
    "times_as_text",
    "typed",
]

#: The version of the store's layout; a store of another version is refused.
SCHEMA_VERSION = 1
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
    "alerts": "str",
    "recorded_at": "datetime64[us]",
}
OPTIONAL = ("level", "expected_count", "low", "high", "alerts")


class StoreSchemaError(ValueError):
    """A store written by another schema version (or not a forecast store); the message names both."""


# -- which model --------------------------------------------------------------------------


def model_identity(trained: TrainedModel) -> tuple[str, str]:
    """The model's name and version as the store keys them.

    The name is the registered name (``dispute-risk-grid``); the version is the
    registry's version when the model was loaded from ``models:/<name>/<version>``
    (or an alias of it), else :attr:`~riskmodel.training.TrainedModel.fingerprint`: a
    hash of the model's content, saved with it, so the model served from memory and
    every load of its folder are one version.

    Examples
    --------
    >>> from riskmodel import train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.store import model_identity
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
    return name, trained.fingerprint


def horizon_text(window: pd.Timedelta | pd.DateOffset) -> str:
    """A forecast window as the store keeps it: ``"28D"`` for days, the offset's name for
    months (``"ME"``, read back by ``pandas.tseries.frequencies.to_offset``, or
    ``"<DateOffset: months=1>"``, read back by :func:`riskmodel.features.base.logged_horizon`).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.store import horizon_text
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
    >>> from riskmodel.store import forecast_rows
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
            **{c: frame[c] if c in frame else None for c in OPTIONAL},
            "probability": frame["probability"],
            "tier": frame["tier"].astype(str),
            "rank": frame["rank"],
            "recorded_at": pd.Timestamp.now("UTC").tz_localize(None).floor("us"),
        }
    )
    keys = zip(times_as_text(out["as_of"], "%Y-%m-%dT%H:%M:%S.%f"), out["unit"].tolist(), strict=True)
    prefix = f"{name}\x1f{version}\x1f{unit_kind}\x1f"
    out.insert(0, "forecast_id", [hashlib.sha256(f"{prefix}{t}\x1f{u}".encode()).hexdigest()[:32] for t, u in keys])
    return typed(out)


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


def typed(frame: pd.DataFrame) -> pd.DataFrame:
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


def times_as_text(times: pd.Series, layout: str) -> list[str]:
    """Times as text, each distinct time formatted once (a forecast has one ``as_of``)."""
    codes, uniques = pd.factorize(times)
    return np.asarray(uniques.strftime(layout), dtype=object)[codes].tolist()


def refuse_version(where, found) -> None:
    """Raise :class:`StoreSchemaError` for the store ``where`` written with schema version ``found``."""
    raise StoreSchemaError(
        f"the forecast store {where} was written with schema version {found}; this riskmodel reads and writes "
        f"schema version {SCHEMA_VERSION}: record to a new store, or read it with the riskmodel that wrote it"
    )
