"""The alarms of served forecasts, each a row of :data:`ALARM_COLUMNS` with a sentence saying
why: calibration drift (a Poisson CUSUM and control limits on observed over expected counts),
a hit rate below its backtest band, and a share of cold starts; input drift is in
:mod:`riskmodel.evaluation.drift`. They read :func:`~riskmodel.evaluation.monitoring.score_served`'s
weekly scores (or the served forecasts) and :class:`~riskmodel.evaluation.monitoring.MonitorSettings`."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .monitoring import KEYS, MonitorSettings

__all__ = [
    "ALARM_COLUMNS",
    "backtest_band",
    "calibration_alarms",
    "cold_start_alarms",
    "hit_rate_alarms",
    "served_alarms",
]

#: The columns of every alarm table: ``week`` is the forecasts' ``as_of``, ``known_at`` the
#: first time the alarm could be raised (the week's window end for a score, else ``as_of``).
ALARM_COLUMNS = ["model", "version", "week", "known_at", "kind", "value", "threshold", "message"]


def backtest_band(evidence: Mapping | None, *, metric: str = "hit_rate_at_5pct", sigmas: float = 2.0):
    """The band ``mean +- sigmas x fold std`` of ``metric`` for the chosen model in its backtest evidence.

    ``evidence`` is :attr:`riskmodel.training.TrainedModel.evidence` (a model trained with
    ``model="auto"``: :meth:`~riskmodel.evaluation.selection.Choice.to_dict`), whose
    leaderboard holds each metric's mean over folds and its ``<metric>_fold_std``.

    Returns
    -------
    tuple of float or None
        ``(low, high)``, or None without evidence (a model trained on a given estimator).

    Examples
    --------
    >>> evidence = {"chosen": "GBMCount", "leaderboard": [
    ...     {"model": "GBMCount", "hit_rate_at_5pct": 0.30, "hit_rate_at_5pct_fold_std": 0.05}]}
    >>> [round(x, 2) for x in backtest_band(evidence)]
    [0.2, 0.4]
    """
    if not evidence:
        return None
    board = {row["model"]: row for row in evidence.get("leaderboard", [])}
    row = board.get(evidence.get("chosen"))
    if row is None or row.get(metric) is None:
        raise ValueError(
            f"the evidence's leaderboard has no {metric!r} for the chosen model {evidence.get('chosen')!r}; "
            f"it has models {sorted(board)}"
        )
    spread = row.get(f"{metric}_fold_std") or 0.0
    return row[metric] - sigmas * spread, row[metric] + sigmas * spread


def _alarm(row: pd.Series, kind: str, value: float, threshold: float, message: str) -> dict:
    return {
        "model": row["model"],
        "version": row["version"],
        "week": row["as_of"],
        "known_at": row.get("window_end", row["as_of"]),
        "kind": kind,
        "value": float(value),
        "threshold": float(threshold),
        "message": message,
    }


def _alarms(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=ALARM_COLUMNS)


def _runs(flags: np.ndarray) -> np.ndarray:
    """The length of the run of True ending at each position."""
    out = np.zeros(len(flags), dtype=int)
    for i, flag in enumerate(flags):
        out[i] = (out[i - 1] + 1 if i else 1) if flag else 0
    return out


def calibration_alarms(scores: pd.DataFrame, settings: MonitorSettings | None = None) -> pd.DataFrame:
    """Calibration drift: a two-sided Poisson CUSUM on the weekly observed and expected
    totals, and O/E outside its control limits for ``settings.weeks`` weeks in a row.

    For each model version, weeks in order, with ``O_t`` and ``E_t`` the week's observed
    and expected totals and ``r`` = ``settings.cusum_shift``, the upper and lower sums are

    ``S+_t = max(0, S+_{t-1} + (O_t ln r - E_t (r - 1)) / s)`` and
    ``S-_t = max(0, S-_{t-1} + (-O_t ln r - E_t (1/r - 1)) / s)``,

    the log-likelihood ratio of a rate ``r`` (or ``1/r``) times the forecast against the
    forecast (Lucas 1985), divided by ``s = phi m``: ``phi`` =
    ``settings.overdispersion`` (the counts' variance over the Poisson one) and ``m`` the
    number of weekly windows one case falls in (``horizon_days`` over the weeks' spacing,
    at least 1), since overlapping windows count each case ``m`` times. A sum above
    ``settings.cusum_h`` raises an alarm and restarts at 0. The control limits of O/E are
    ``1 +- limit_z sqrt(s / E_t)``.

    Run lengths with the defaults (``r`` = 1.5, ``h`` = 5), by Monte Carlo (2,000 runs of
    Poisson weekly cases, weeks summed into windows): with 28-day windows served weekly
    (``m`` = 4, ``phi`` = 2) and 250 expected cases a window, no false signal in 3,000
    weeks, and a 1.5-fold rise signalled after 2.1 weeks on average (8.7 weeks with 50
    expected cases); with ``s`` = 1 and 50 expected a week, the two-sided in-control
    average run length is about 430 weeks. The target is an in-control run length of
    several model-years from noise alone, so that an alarm is about the model, not chance
    (on the ``small`` simulator a historical-rate baseline, blind to the season, sees O/E
    fall to 0.6 in September, and the sum rightly signals it).

    Examples
    --------
    >>> scores = pd.DataFrame({"model": "m", "version": "1", "horizon_days": 7.0,
    ...     "as_of": pd.date_range("2024-01-01", periods=6, freq="W-MON"),
    ...     "observed": [50, 52, 48, 70, 75, 80], "expected": 50.0})
    >>> calibration_alarms(scores)[["week", "kind"]].astype(str).values.tolist()
    [['2024-02-05', 'calibration_cusum']]
    """
    settings = settings or MonitorSettings()
    r = settings.cusum_shift
    rows = []
    for _, weeks in scores.sort_values(KEYS).groupby(["model", "version"], sort=False):
        spacing = weeks["as_of"].diff().median() / pd.Timedelta(days=1) if len(weeks) > 1 else 7.0
        s = settings.overdispersion * max(1.0, float(weeks["horizon_days"].iloc[0]) / (spacing or 7.0))
        up = down = 0.0
        ratio = weeks["observed"] / weeks["expected"]
        width = settings.limit_z * np.sqrt(s / weeks["expected"])
        outside = _runs(((ratio - 1).abs() > width).to_numpy())
        for i, (_, week) in enumerate(weeks.iterrows()):
            o, e = float(week["observed"]), float(week["expected"])
            up = max(0.0, up + (o * math.log(r) - e * (r - 1)) / s)
            down = max(0.0, down + (-o * math.log(r) - e * (1 / r - 1)) / s)
            if max(up, down) > settings.cusum_h:
                way = "more" if up > down else "fewer"
                rows.append(
                    _alarm(
                        week,
                        "calibration_cusum",
                        max(up, down),
                        settings.cusum_h,
                        f"{way} cases than forecast: the CUSUM of observed against expected counts crossed "
                        f"{settings.cusum_h:g} (observed {o:.0f}, expected {e:.1f}, O/E {o / e:.2f} this week)",
                    )
                )
                up = down = 0.0
            if outside[i] == settings.weeks:
                rows.append(
                    _alarm(
                        week,
                        "calibration_limits",
                        ratio.iloc[i],
                        1 + np.sign(ratio.iloc[i] - 1) * width.iloc[i],
                        f"observed over expected counts outside its control limits for {settings.weeks} weeks "
                        f"in a row (O/E {ratio.iloc[i]:.2f} this week; limits 1 +- {width.iloc[i]:.2f})",
                    )
                )
    return _alarms(rows)


def hit_rate_alarms(
    scores: pd.DataFrame,
    bands: Mapping,
    settings: MonitorSettings | None = None,
    *,
    metric: str = "hit_rate_at_5pct",
) -> pd.DataFrame:
    """A hit rate below its backtest band for ``settings.weeks`` weeks in a row.

    Parameters
    ----------
    scores : DataFrame
        :func:`score_served`'s scores.
    bands : mapping
        ``(model, version)`` (or ``model``) to ``(low, high)``, as :func:`backtest_band`
        gives it; model versions without a band are not checked.
    metric : str
        The weekly score compared with the band.

    Examples
    --------
    >>> scores = pd.DataFrame({"model": "m", "version": "1",
    ...     "as_of": pd.date_range("2024-01-01", periods=5, freq="W-MON"),
    ...     "hit_rate_at_5pct": [0.3, 0.1, 0.1, 0.1, 0.1]})
    >>> alarms = hit_rate_alarms(scores, {"m": (0.2, 0.4)})
    >>> alarms["week"].astype(str).tolist(), alarms["kind"].tolist()
    (['2024-01-29'], ['hit_rate'])
    """
    settings = settings or MonitorSettings()
    rows = []
    for (model, version), weeks in scores.sort_values(KEYS).groupby(["model", "version"], sort=False):
        band = bands.get((model, version), bands.get(model))
        if band is None:
            continue
        low = float(band[0])
        below = _runs((weeks[metric] < low).to_numpy())
        for i in np.flatnonzero(below == settings.weeks):
            week = weeks.iloc[i]
            rows.append(
                _alarm(
                    week,
                    "hit_rate",
                    week[metric],
                    low,
                    f"{metric} below its backtest band [{low:.3f}, {float(band[1]):.3f}] for {settings.weeks} "
                    f"weeks in a row ({week[metric]:.3f} this week)",
                )
            )
    return _alarms(rows)


def cold_start_alarms(forecasts: pd.DataFrame, settings: MonitorSettings | None = None) -> pd.DataFrame:
    """A week whose share of cold-start units (``cold_start`` in ``alerts``: units the model
    was not trained on) is above ``settings.cold_start_share``: the model no longer knows
    the district's units. Read on the served forecasts, so the latest week counts too.

    Examples
    --------
    >>> forecasts = pd.DataFrame({"model": "m", "version": "1", "as_of": pd.Timestamp("2024-01-01"),
    ...     "alerts": ["cold_start;no_history", "cold_start", "", "", "no_history"]})
    >>> cold_start_alarms(forecasts)["message"].tolist()
    ['40% of the units (2 of 5) are cold starts the model was not trained on, above 20%: retrain it']
    """
    settings = settings or MonitorSettings()
    cold = forecasts["alerts"].fillna("").astype(str).str.split(";").map(lambda alerts: "cold_start" in alerts)
    weeks = cold.groupby([forecasts[k] for k in KEYS]).agg(["mean", "sum", "size"]).reset_index()
    rows = [
        _alarm(
            week,
            "cold_start",
            week["mean"],
            settings.cold_start_share,
            f"{week['mean']:.0%} of the units ({week['sum']} of {week['size']}) are cold starts the model "
            f"was not trained on, above {settings.cold_start_share:.0%}: retrain it",
        )
        for _, week in weeks[weeks["mean"] > settings.cold_start_share].iterrows()
    ]
    return _alarms(rows)


def served_alarms(
    scores: pd.DataFrame,
    forecasts: pd.DataFrame,
    *,
    bands: Mapping | None = None,
    settings: MonitorSettings | None = None,
) -> pd.DataFrame:
    """Every alarm of the served forecasts but input drift (which needs the features:
    :func:`~riskmodel.evaluation.drift.input_drift_alarms`): :func:`calibration_alarms`,
    :func:`hit_rate_alarms` (with ``bands``) and :func:`cold_start_alarms`, by ``known_at``.

    Examples
    --------
    >>> forecasts = pd.DataFrame({"model": "m", "version": "1", "as_of": pd.Timestamp("2024-01-01"),
    ...     "alerts": ["cold_start", "cold_start", ""]})
    >>> scores = pd.DataFrame({"model": ["m"], "version": "1", "as_of": pd.Timestamp("2024-01-01"),
    ...     "horizon_days": 28.0, "observed": 10.0, "expected": 10.0, "hit_rate_at_5pct": 0.3})
    >>> served_alarms(scores, forecasts, bands={"m": (0.2, 0.4)})["kind"].tolist()
    ['cold_start']
    """
    settings = settings or MonitorSettings()
    found = [calibration_alarms(scores, settings), cold_start_alarms(forecasts, settings)]
    if bands:
        found.append(hit_rate_alarms(scores, bands, settings))
    found = [table for table in found if len(table)]
    if not found:
        return _alarms([])
    return pd.concat(found, ignore_index=True).sort_values(["known_at", "model", "version", "kind"], ignore_index=True)
