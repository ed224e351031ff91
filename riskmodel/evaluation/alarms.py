"""The alarms of served forecasts, each a row of :data:`ALARM_COLUMNS` with a sentence saying
why: calibration drift (a Poisson CUSUM and control limits on observed over expected counts),
a hit rate below its backtest band, and a share of cold starts; input drift is in
:mod:`riskmodel.evaluation.drift`. They read the forecasts' first weeks
(:func:`~riskmodel.evaluation.monitoring.first_weeks`), the weekly scores of whole windows
(:func:`~riskmodel.evaluation.monitoring.score_served`) or the served forecasts, and
:class:`~riskmodel.evaluation.monitoring.MonitorSettings`."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .monitoring import KEYS, MonitorSettings

__all__ = [
    "ALARM_COLUMNS",
    "backtest_band",
    "backtest_expectation",
    "calibration_alarms",
    "cold_start_alarms",
    "hit_rate_alarms",
    "served_alarms",
]

#: The columns of every alarm table: ``week`` is the forecasts' ``as_of``, ``known_at`` the
#: first time the alarm could be raised (the week's window end for a score, else ``as_of``).
ALARM_COLUMNS = ["model", "version", "week", "known_at", "kind", "value", "threshold", "message"]


def backtest_expectation(evidence: Mapping | None, *, sigmas: float = 2.0) -> pd.DataFrame:
    """What the model's backtest expects of each watched metric: its mean over folds, the
    folds' standard deviation and the band ``mean +- sigmas x std``.

    ``evidence`` is :attr:`riskmodel.training.TrainedModel.evidence` (a model trained with
    ``model="auto"``), whose ``folds`` hold the chosen model's score at each fold
    (:func:`~riskmodel.evaluation.selection.chosen_folds`).

    Returns
    -------
    DataFrame
        Indexed by metric: ``mean``, ``std``, ``low``, ``high``, ``folds``; empty without
        evidence (a model trained on a given estimator) or without fold scores (a model
        saved before they were kept).

    Examples
    --------
    >>> evidence = {"folds": [{"cutoff": "2024-01-01", "hit_rate_at_5pct": 0.25, "brier": 0.1},
    ...                       {"cutoff": "2024-01-08", "hit_rate_at_5pct": 0.35, "brier": 0.1}]}
    >>> backtest_expectation(evidence).round(2).to_dict(orient="index")["hit_rate_at_5pct"]
    {'mean': 0.3, 'std': 0.07, 'low': 0.16, 'high': 0.44, 'folds': 2}
    """
    folds = pd.DataFrame((evidence or {}).get("folds") or [])
    table = folds.drop(columns="cutoff", errors="ignore").astype(float)
    out = pd.DataFrame({"mean": table.mean(), "std": table.std().fillna(0.0), "folds": table.count()})
    out.insert(2, "low", out["mean"] - sigmas * out["std"])
    out.insert(3, "high", out["mean"] + sigmas * out["std"])
    return out.rename_axis("metric")


def backtest_band(evidence: Mapping | None, *, metric: str = "hit_rate_at_5pct", sigmas: float = 2.0):
    """The band ``(low, high)`` of ``metric`` in :func:`backtest_expectation`, or None
    when the evidence has no fold scores of it.

    Examples
    --------
    >>> evidence = {"folds": [{"hit_rate_at_5pct": 0.25}, {"hit_rate_at_5pct": 0.35}]}
    >>> [round(x, 2) for x in backtest_band(evidence)]
    [0.16, 0.44]
    >>> backtest_band(None) is None
    True
    """
    expected = backtest_expectation(evidence, sigmas=sigmas)
    if metric not in expected.index or not expected.loc[metric, "folds"]:
        return None
    return float(expected.loc[metric, "low"]), float(expected.loc[metric, "high"])


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


def calibration_alarms(weeks: pd.DataFrame, settings: MonitorSettings | None = None) -> pd.DataFrame:
    """Calibration drift: a two-sided Poisson CUSUM on the observed and expected counts of
    the forecasts' first weeks, and O/E outside its control limits for ``settings.weeks``
    weeks in a row.

    ``weeks`` is :func:`~riskmodel.evaluation.monitoring.first_weeks`'s table: each
    forecast's first ``days`` days, which forecasts served weekly make disjoint, so one
    case counts once and a week is known a week after its forecast. For each model
    version, weeks in order, with ``O_t`` and ``E_t`` the week's observed and expected
    counts and ``r`` = ``settings.cusum_shift``, the upper and lower sums are

    ``S+_t = max(0, S+_{t-1} + (O_t ln r - E_t (r - 1)) / s)`` and
    ``S-_t = max(0, S-_{t-1} + (-O_t ln r - E_t (1/r - 1)) / s)``,

    the log-likelihood ratio of a rate ``r`` (or ``1/r``) times the forecast against the
    forecast (Lucas 1985), divided by ``s = phi m``: ``phi`` = ``settings.overdispersion``
    (the counts' variance over the Poisson one) and ``m`` the slices one case falls in
    (``days`` over the forecasts' spacing, at least 1: 1 when served weekly). A sum above
    ``settings.cusum_h`` raises an alarm and restarts at 0. The control limits of O/E are
    ``1 +- limit_z sqrt(s / E_t)``.

    The defaults come from ``bench/monitoring.py`` (``small`` district, 10 seeds, a year
    of weekly forecasts, ``bench/results/monitoring.md``). Weekly slices of the
    simulator's exact expected counts have ``phi`` of 1.45 and no correlation from one
    week to the next; a GBMCount trained two years in has ``phi`` of 2.4 and a bias over
    its served year of 0.83 to 1.12 (observed over expected, per seed). With ``r`` = 1.5
    (reference values ``(r - 1) / ln r`` = 1.23 upwards and 0.82 downwards) that bias
    alone raised 1.5 false alarms per model-year; ``r`` = 2 (1.44 and 0.72) and ``h`` = 6
    raise 0.3 on the GBMCount and none on the exact forecasts, and still catch a doubled
    record within 1 to 3 weeks in every seed. A 1.5-fold change is caught later (median 5
    weeks on the GBMCount, whose features absorb part of it): the price of the quiet.

    Examples
    --------
    >>> weeks = pd.DataFrame({"model": "m", "version": "1", "days": 7.0,
    ...     "as_of": pd.date_range("2024-01-01", periods=6, freq="W-MON"),
    ...     "observed": [50, 52, 48, 80, 85, 60], "expected": 50.0})
    >>> calibration_alarms(weeks)[["week", "kind"]].astype(str).values.tolist()
    [['2024-01-29', 'calibration_cusum']]
    """
    settings = settings or MonitorSettings()
    r = settings.cusum_shift
    rows = []
    for _, version in weeks.sort_values(KEYS).groupby(["model", "version"], sort=False):
        spacing = version["as_of"].diff().median() / pd.Timedelta(days=1) if len(version) > 1 else 7.0
        s = settings.overdispersion * max(1.0, float(version["days"].iloc[0]) / (spacing or 7.0))
        up = down = 0.0
        ratio = version["observed"] / version["expected"]
        width = settings.limit_z * np.sqrt(s / version["expected"])
        outside = _runs(((ratio - 1).abs() > width).to_numpy())
        for i, (_, week) in enumerate(version.iterrows()):
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
    weeks: pd.DataFrame,
    forecasts: pd.DataFrame,
    *,
    bands: Mapping | None = None,
    settings: MonitorSettings | None = None,
) -> pd.DataFrame:
    """Every alarm of the served forecasts but input drift (which needs the features:
    :func:`~riskmodel.evaluation.drift.input_drift_alarms`): :func:`calibration_alarms` on
    the first ``weeks`` (:func:`~riskmodel.evaluation.monitoring.first_weeks`),
    :func:`hit_rate_alarms` on the ``scores`` (with ``bands``) and
    :func:`cold_start_alarms` on the ``forecasts``, by ``known_at``.

    Examples
    --------
    >>> forecasts = pd.DataFrame({"model": "m", "version": "1", "as_of": pd.Timestamp("2024-01-01"),
    ...     "alerts": ["cold_start", "cold_start", ""]})
    >>> weeks = pd.DataFrame({"model": ["m"], "version": "1", "as_of": pd.Timestamp("2024-01-01"),
    ...     "days": 7.0, "observed": 10.0, "expected": 10.0})
    >>> scores = weeks.assign(hit_rate_at_5pct=0.3)
    >>> served_alarms(scores, weeks, forecasts, bands={"m": (0.2, 0.4)})["kind"].tolist()
    ['cold_start']
    """
    settings = settings or MonitorSettings()
    found = [calibration_alarms(weeks, settings), cold_start_alarms(forecasts, settings)]
    if bands and len(scores):
        found.append(hit_rate_alarms(scores, bands, settings))
    found = [table for table in found if len(table)]
    if not found:
        return _alarms([])
    return pd.concat(found, ignore_index=True).sort_values(["known_at", "model", "version", "kind"], ignore_index=True)
