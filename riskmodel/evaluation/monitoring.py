"""Scoring what was served: the forecasts a model gave, scored once their windows close, and alarms.

Pure functions of a frame of served forecasts (one row per model version, ``as_of`` and
unit, as :func:`riskmodel.predict` answers them with ``model`` and ``version`` columns
added) and the data that came after; nothing here knows how forecasts are stored.

- :func:`score_served` counts the cases of each forecast's window (the backtest's label:
  :func:`observed_counts`) and scores every model version's week with the backtest's
  metrics (:func:`~riskmodel.evaluation.metrics.score_fold`), saying what it left unscored.
- :mod:`riskmodel.evaluation.alarms` reads the weekly scores (calibration drift, hit rate,
  cold starts) and :mod:`riskmodel.evaluation.drift` the features (input drift).

The thresholds are the fields of :class:`MonitorSettings`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..contract import Dataset
from ..features import Target
from ..features.base import counted_cases, parse_target
from ..features.events import us
from ..features.grid_panel import label_stream
from ..features.visits import select_origins
from . import metrics

__all__ = [
    "FORECAST_COLUMNS",
    "MonitorSettings",
    "check_forecasts",
    "first_weeks",
    "observed_counts",
    "score_served",
]

#: The columns :func:`score_served` needs in the served forecasts.
FORECAST_COLUMNS = (
    "model",
    "version",
    "as_of",
    "horizon_days",
    "grid_id",
    "probability",
    "expected_count",
    "low",
    "high",
    "tier",
    "rank",
    "alerts",
)
#: The columns that name one model version's week.
KEYS = ["model", "version", "as_of"]


@dataclass(frozen=True)
class MonitorSettings:
    """The thresholds of the alarms (``configs/monitoring.yaml`` fills them).

    Parameters
    ----------
    capacity : int or None
        Units a district can visit in a window: the hit rate and PAI at that number of
        units are scored beside those at 5% (None: only at 5%).
    calibration_days : float
        The calibration alarms read the cases of each forecast's first
        ``calibration_days`` days against its expected count's share of them
        (:func:`first_weeks`). With forecasts served weekly and the default 7, these
        slices are disjoint, so each case counts once and a week's calibration is known a
        week after its forecast rather than a whole window after.
    weeks : int
        The ``k`` of "k weeks in a row": O/E outside its control limits, or a hit rate
        below its band, for this many consecutive weeks raises an alarm.
    limit_z : float
        Half-width of O/E's control limits in standard errors: ``1 +- z sqrt(phi m / E)``
        (see ``overdispersion``; ``m`` the windows a case falls in, ``E`` the week's
        expected count).
    cusum_shift : float
        The ratio of observed to expected counts the Poisson CUSUM is tuned to detect
        (and its inverse downwards). It sets the smallest change worth an alarm: a trained
        model's own error over a served year is of about 15% (see
        :func:`~riskmodel.evaluation.alarms.calibration_alarms`), which the default 2 stays
        clear of.
    cusum_h : float
        The CUSUM's decision limit (in log-likelihood-ratio units); higher, fewer false
        alarms and later true ones.
    overdispersion : float
        ``phi``: the variance of a week's observed total over its expected total under
        calibration (1 is Poisson; self-exciting disputes spread more).
    psi_threshold : float
        A feature's population stability index above which its inputs have drifted.
    psi_bins : int
        Quantile bins of the reference in the PSI.
    psi_top : int
        How many drifting features the input-drift sentence names.
    psi_reference : int or None
        The model's last training cutoffs whose feature rows are the input drift's
        reference (None: all of them). A feature's usual movement is read between
        reference cutoffs as far apart as the latest forecast is from training, at most
        the reference's span: fewer cutoffs judge the season and slow trends over less
        time than has passed (:func:`~riskmodel.evaluation.drift.feature_drift`).
    cold_start_share : float
        Share of cold-start units in a week's forecast above which the model is stale.
    band_sigmas : float
        Width of a backtest band in fold standard deviations (:func:`backtest_band`).
    """

    capacity: int | None = None
    calibration_days: float = 7.0
    weeks: int = 4
    limit_z: float = 3.0
    cusum_shift: float = 2.0
    cusum_h: float = 6.0
    overdispersion: float = 2.0
    psi_threshold: float = 0.25
    psi_bins: int = 10
    psi_top: int = 3
    psi_reference: int | None = None
    cold_start_share: float = 0.2
    band_sigmas: float = 2.0

    @classmethod
    def from_dict(cls, options: Mapping | None) -> MonitorSettings:
        """Settings from a mapping (a configuration's ``monitoring`` section), the
        defaults for what it leaves out.

        Raises
        ------
        ValueError
            Naming unknown options and the known ones.

        Examples
        --------
        >>> MonitorSettings.from_dict({"weeks": 3}).weeks
        3
        >>> MonitorSettings.from_dict({"week": 3})
        Traceback (most recent call last):
        ...
        ValueError: unknown monitoring option(s) ['week']; the options are ['capacity', 'calibration_days', ...
        """
        options = dict(options or {})
        known = list(cls.__dataclass_fields__)
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown monitoring option(s) {unknown}; the options are {known}")
        return cls(**options)

    def __post_init__(self) -> None:
        positive = {
            "weeks": self.weeks,
            "calibration_days": self.calibration_days,
            "limit_z": self.limit_z,
            "cusum_h": self.cusum_h,
            "overdispersion": self.overdispersion,
            "psi_threshold": self.psi_threshold,
            "psi_top": self.psi_top,
            "band_sigmas": self.band_sigmas,
        }
        bad = {name: value for name, value in positive.items() if not value > 0}
        if bad:
            raise ValueError(f"monitor settings {sorted(bad)} must be > 0, got {bad}")
        if not self.cusum_shift > 1:
            raise ValueError(f"cusum_shift must be a ratio > 1 (e.g. 2), got {self.cusum_shift}")
        if self.psi_reference is not None and self.psi_reference < 2:
            raise ValueError(f"psi_reference must be None (every training cutoff) or >= 2, got {self.psi_reference}")
        if self.psi_bins < 2 or (self.capacity is not None and self.capacity < 1):
            raise ValueError(f"psi_bins must be >= 2 and capacity None or >= 1, got {self.psi_bins}, {self.capacity}")
        if not 0 < self.cold_start_share < 1:
            raise ValueError(f"cold_start_share must be a share in (0, 1), got {self.cold_start_share}")


def check_forecasts(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The served forecasts with their types checked: :data:`FORECAST_COLUMNS`, one row per
    model, version, ``as_of`` and unit.

    Raises
    ------
    ValueError
        Naming the missing columns, or the first repeated forecasts.

    Examples
    --------
    >>> check_forecasts(pd.DataFrame({"model": ["m"]}))
    Traceback (most recent call last):
    ...
    ValueError: the served forecasts lack the column(s) ['version', 'as_of', ...
    """
    missing = [c for c in FORECAST_COLUMNS if c not in forecasts.columns]
    if missing:
        raise ValueError(
            f"the served forecasts lack the column(s) {missing}; they need {list(FORECAST_COLUMNS)}, "
            "as riskmodel.predict answers them with model and version added"
        )
    out = forecasts.copy()
    out["as_of"] = pd.to_datetime(out["as_of"])
    out[["model", "version", "grid_id"]] = out[["model", "version", "grid_id"]].astype(str)
    out["alerts"] = out["alerts"].fillna("").astype(str)
    twice = out.duplicated([*KEYS, "grid_id"], keep=False)
    if twice.any():
        first = out.loc[twice, [*KEYS, "grid_id"]].head(3).to_dict(orient="records")
        raise ValueError(
            f"{int(twice.sum())} served forecasts repeat a model, version, as_of and grid_id, "
            f"e.g. {first}; each unit is forecast once per model version and as_of"
        )
    return out


def observed_counts(
    dataset: Dataset,
    as_of,
    horizon_days: float,
    *,
    level: str = "grid",
    target=None,
    origins=None,
    count: str = "disputes",
) -> pd.DataFrame:
    """Cases counted in ``[as_of, as_of + horizon)`` for every unit of ``level`` and every ``as_of``:
    the label of the backtest's grid panel (:class:`~riskmodel.features.GridPanelBuilder`'s
    ``y_count``) with the same ``target`` (categories, a minimum severity, or escalations by
    ``escalated_at``; default every reported case), ``origins`` and ``count`` (``disputes``,
    a dispute counted once at its first report, or every report: see
    :func:`riskmodel.first_reports`).

    Returns
    -------
    DataFrame
        ``grid_id``, ``as_of``, ``observed`` (float), ``closed`` (the window closed by
        ``dataset.end``; an open window's count is partial).

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> district = simulate_district("tiny", seed=0)
    >>> counts = observed_counts(district, ["2023-03-06", "2023-12-25"], 28)
    >>> counts.groupby("as_of")["closed"].all().tolist(), int(counts["observed"].sum()) > 0
    ([True, False], True)
    """
    parsed: Target = parse_target(target)
    cases = select_origins(counted_cases(dataset.cases, count), origins)
    units = pd.Index(dataset.grids.loc[dataset.grids["level"] == level, "grid_id"].unique())
    stamps, unit_of = label_stream(cases, units.get_indexer(cases["grid_id"].map(dataset.ancestors(level))), parsed)
    dates = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(as_of)))
    horizon = pd.Timedelta(days=float(horizon_days))
    blocks = []
    for date in dates:
        lo, hi = np.searchsorted(stamps, us([date, date + horizon]))
        blocks.append(np.bincount(unit_of[lo:hi], minlength=len(units)).astype(float))
    return pd.DataFrame(
        {
            "grid_id": np.tile(units.to_numpy(), len(dates)),
            "as_of": np.repeat(dates.to_numpy(), len(units)),
            "observed": np.concatenate(blocks) if blocks else np.array([], dtype=float),
            "closed": np.repeat(dates + horizon <= dataset.end, len(units)),
        }
    )


def score_served(
    forecasts: pd.DataFrame,
    dataset: Dataset,
    *,
    capacity: int | None = None,
    target=None,
    origins=None,
    count: str = "disputes",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every served forecast whose window closed by ``dataset.end``, per model version and week.

    Each forecast of a unit at ``as_of`` is joined with the cases of its window
    ``[as_of, as_of + horizon_days)`` (:func:`observed_counts`, the backtest's label) and
    every model version's forecasts at one ``as_of`` (its week) are scored as one backtest
    fold: :func:`~riskmodel.evaluation.metrics.score_fold` ranks by ``probability``, so the
    hit rate and PAI at 5% are the backtest's own; the same at ``capacity`` units
    (``hit_rate_at_capacity``, ``pai_at_capacity``), the interval coverage (share of
    counts in ``[low, high]``, over the rows that have an interval) and the observed over
    expected ratio are added.

    Parameters
    ----------
    forecasts : DataFrame
        The served forecasts (:data:`FORECAST_COLUMNS`; a ``level`` column is read when
        present, else each unit's level is the data's).
    dataset : Dataset
        The data up to its ``end``: the cases that happened.
    capacity : int, optional
        Units a district can visit in a window.
    target, origins, count : optional
        What the model's label counts (as in :func:`riskmodel.train`); default every case,
        each dispute once.

    Returns
    -------
    scores : DataFrame
        One row per ``model``, ``version`` and ``as_of``: ``window_end``,
        ``horizon_days``, ``units``, ``observed``, ``expected``, ``expected_sq`` (the sum
        of squared expected counts), ``oe_ratio``, ``hit_rate_at_5pct``, ``pai_at_5pct``,
        ``hit_rate_at_capacity``, ``pai_at_capacity`` (NaN without a capacity),
        ``brier``, ``ece``, ``interval_coverage``, ``cold_start_share``, then the other
        metrics of ``score_fold``. Sorted by model, version and ``as_of``.
    unscored : DataFrame
        ``model``, ``version``, ``as_of``, ``reason`` and ``forecasts`` (a count), one row
        per reason that left forecasts unscored: ``window_open`` (the window closes
        after the data's end) or ``unknown_unit`` (the data lacks the unit). Empty when
        every forecast was scored.

    Warns
    -----
    UserWarning
        When no forecast could be scored (the scores are then empty).

    Examples
    --------
    >>> from riskmodel import predict, train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> served = pd.concat([predict(district, as_of=d, model=trained) for d in ["2023-10-02", "2023-12-18"]])
    >>> scores, unscored = score_served(served.assign(model="rate", version="1"), district)
    >>> scores[["as_of", "units"]].astype(str).values.tolist()
    [['2023-10-02', '25']]
    >>> unscored[["as_of", "reason", "forecasts"]].astype(str).values.tolist()
    [['2023-12-18', 'window_open', '25']]
    """
    served = _with_levels(check_forecasts(forecasts), dataset)
    known = served["level"].notna()
    keys = ["level", "horizon_days", "grid_id", "as_of"]
    counts = [
        observed_counts(
            dataset, group["as_of"].unique(), horizon, level=level, target=target, origins=origins, count=count
        ).assign(level=level, horizon_days=horizon)
        for (level, horizon), group in served[known].groupby(["level", "horizon_days"])
    ]
    labels = pd.concat(counts, ignore_index=True) if counts else pd.DataFrame(columns=[*keys, "observed"])
    joined = served.merge(labels[[*keys, "observed"]], on=keys, how="left")
    window_end = joined["as_of"] + pd.to_timedelta(joined["horizon_days"], unit="D")
    joined["reason"] = np.where(
        joined["observed"].isna(), "unknown_unit", np.where(window_end > dataset.end, "window_open", "")
    )
    unscored = joined[joined["reason"] != ""].groupby([*KEYS, "reason"]).size().rename("forecasts").reset_index()
    rows = [_score_week(key, week, capacity) for key, week in joined[joined["reason"] == ""].groupby(KEYS)]
    if not rows:
        warnings.warn(
            f"no served forecast could be scored by the data's end ({dataset.end}): {_reasons(unscored)}",
            stacklevel=2,
        )
    scores = pd.DataFrame(rows, columns=None if rows else [*KEYS, "window_end", "units", "observed", "expected"])
    return scores, unscored


def first_weeks(
    forecasts: pd.DataFrame,
    dataset: Dataset,
    *,
    days: float = 7.0,
    target=None,
    origins=None,
    count: str = "disputes",
) -> pd.DataFrame:
    """The cases of each served forecast's first ``days`` days against its expected share of them.

    For every model version and ``as_of`` whose slice ``[as_of, as_of + days)`` closed by
    ``dataset.end``, ``observed`` counts the cases of the slice over the forecast's units
    the data knows (:func:`observed_counts`, the backtest's label) and ``expected`` is
    the sum of their expected counts times ``days / horizon_days``: a window's cases
    spread evenly over it. Forecasts served every ``days`` days give disjoint slices,
    each known ``days`` after its forecast, which
    :func:`~riskmodel.evaluation.alarms.calibration_alarms` reads.

    Returns
    -------
    DataFrame
        One row per ``model``, ``version`` and ``as_of``: ``window_end`` (the slice's
        end), ``days``, ``units``, ``observed``, ``expected``, ``oe_ratio``.

    Examples
    --------
    >>> from riskmodel import predict, train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> served = pd.concat([predict(district, as_of=d, model=trained) for d in ["2023-10-02", "2023-12-18"]])
    >>> weeks = first_weeks(served.assign(model="rate", version="1"), district)
    >>> weeks[["as_of", "window_end", "units"]].astype(str).values.tolist()
    [['2023-10-02', '2023-10-09', '25'], ['2023-12-18', '2023-12-25', '25']]
    """
    served = _with_levels(check_forecasts(forecasts), dataset)
    served = served[served["as_of"] + pd.Timedelta(days=days) <= dataset.end]
    counts = [
        observed_counts(
            dataset, group["as_of"].unique(), days, level=level, target=target, origins=origins, count=count
        ).assign(level=level)
        for level, group in served.groupby("level")
    ]
    if not counts:
        columns = [*KEYS, "window_end", "days", "units", "observed", "expected", "oe_ratio"]
        return pd.DataFrame(columns=columns).astype({"as_of": "datetime64[us]", "window_end": "datetime64[us]"})
    keys = ["level", "grid_id", "as_of"]
    labels = pd.concat(counts, ignore_index=True)
    joined = served.merge(labels[[*keys, "observed"]], on=keys, how="inner")
    joined["expected"] = joined["expected_count"] * days / joined["horizon_days"]
    out = joined.groupby(KEYS, as_index=False).agg(
        units=("grid_id", "size"), observed=("observed", "sum"), expected=("expected", "sum")
    )
    out.insert(3, "window_end", out["as_of"] + pd.Timedelta(days=days))
    out.insert(4, "days", float(days))
    out["oe_ratio"] = out["observed"] / out["expected"].where(out["expected"] > 0)
    return out


def _with_levels(served: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Each forecast's unit level: its ``level`` column, else the data's; units the data lacks get NaN."""
    if "level" not in served:
        served["level"] = served["grid_id"].map(dataset.grids.drop_duplicates("grid_id").set_index("grid_id")["level"])
    served.loc[~served["level"].isin(dataset.levels), "level"] = np.nan
    return served


def _reasons(unscored: pd.DataFrame) -> str:
    if unscored.empty:
        return "there was no forecast"
    by = unscored.groupby("reason")["forecasts"].sum()
    words = {"window_open": "whose window had not closed", "unknown_unit": "of a unit the data lacks"}
    return "; ".join(f"{n} forecast(s) {words[reason]}" for reason, n in by.items())


def _score_week(key: tuple, week: pd.DataFrame, capacity: int | None) -> dict:
    """One model version's week: the metrics of its forecasts against the counts."""
    y = week["observed"].to_numpy(float)
    p = week["probability"].to_numpy(float)
    e = week["expected_count"].to_numpy(float)
    n = len(week)
    ranged = week[["low", "high"]].notna().all(axis=1).to_numpy()
    scores = metrics.score_fold(y, p, e, capacity=capacity)
    take = min(capacity, n) / n if capacity is not None else None
    head = {
        **dict(zip(KEYS, key, strict=True)),
        "window_end": key[2] + pd.Timedelta(days=float(week["horizon_days"].iloc[0])),
        "horizon_days": float(week["horizon_days"].iloc[0]),
        "units": n,
        "observed": float(y.sum()),
        "expected": float(e.sum()),
        "expected_sq": float(np.sum(e**2)),
        "oe_ratio": float(y.sum() / e.sum()) if e.sum() > 0 else float("nan"),
        "hit_rate_at_5pct": scores.pop("hit_rate_at_5pct"),
        "pai_at_5pct": scores.pop("pai_at_5pct"),
        "hit_rate_at_capacity": metrics.hit_rate(y, p, k=take) if take else float("nan"),
        "pai_at_capacity": metrics.pai(y, p, k=take) if take else float("nan"),
        "brier": scores.pop("brier"),
        "ece": scores.pop("ece"),
        "interval_coverage": (
            metrics.interval_coverage(y[ranged], week["low"][ranged], week["high"][ranged])
            if ranged.any()
            else float("nan")
        ),
        "cold_start_share": float(week["alerts"].str.split(";").map(lambda a: "cold_start" in a).mean()),
    }
    return head | scores
