"""Rolling-origin backtest: every model on the same folds, scored by the same metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..contract import Dataset
from ..features.base import parse_horizon
from ..threads import limit_threads
from ..trackers import Tracker, default
from . import metrics
from .metrics import score_fold
from .targets import TARGETS, TargetKind, target_kind

__all__ = ["BacktestResult", "backtest", "score_fold"]

#: Metrics where lower is better; their oracle ratio reads "how many times the oracle's".
LOWER_IS_BETTER = ("brier", "log_loss", "ece", "ece_pooled", "poisson_deviance", "crps")
#: Metrics whose spread over streets the leaderboard reports.
STREET_METRICS = ("roc_auc", "hit_rate_at_5pct")


@dataclass
class BacktestResult:
    """What a backtest found.

    Attributes
    ----------
    leaderboard : DataFrame
        One row per model (and ``oracle`` on simulated data), best first by
        ``rank_by``: each metric's mean over folds, ``<metric>_fold_std`` its
        spread over folds, ``<metric>_street_std`` (for roc_auc and
        hit_rate_at_5pct) the mean over folds of its spread over streets,
        ``psi_score`` the population stability index of the scores at the
        fold's cutoff against those at the last training cutoff (drift), and
        ``<metric>_oracle_ratio`` = model / oracle; ``ece_pooled`` is the
        calibration error of all folds' predictions together (with a few
        thousand units a fold, the per-fold ``ece`` carries sampling noise of
        about 0.01-0.02 even for perfect probabilities).
    folds : DataFrame
        One row per model and fold: the fold's test cutoff, its training rows and
        every metric.
    predictions : DataFrame
        One row per model, unit (or case) and test cutoff: ``probability``,
        ``expected``, the label ``y`` and, for grids, ``y_count`` and the
        ``dispersion`` of the fold's negative binomial forecast (see
        :func:`~riskmodel.evaluation.targets.holdout_dispersion`; the grid folds
        score it by ``crps`` and ``coverage_50/80/90``, see
        :func:`~riskmodel.evaluation.metrics.score_distribution`).
    config : dict
        The backtest's configuration (what MLflow logs as parameters).
    target : str
        ``"grid"`` (unit risk), ``"escalation"`` (case escalation) or ``"waves"``.
    horizon : Timedelta or DateOffset
        The label window the folds were scored on.
    run_id : str or None
        The MLflow parent run, when the backtest was tracked.
    """

    leaderboard: pd.DataFrame
    folds: pd.DataFrame
    predictions: pd.DataFrame
    config: dict
    target: str
    horizon: pd.Timedelta | pd.DateOffset
    run_id: str | None = field(default=None)

    @property
    def kind(self) -> TargetKind:
        """The kind of target (see :mod:`riskmodel.targets`)."""
        return TARGETS[self.target]

    @property
    def best(self) -> str:
        """The best model other than the oracle by the leaderboard's order."""
        return next(name for name in self.leaderboard.index if name != "oracle")


def _test_cutoffs(cutoffs, start, end, frequency) -> pd.DatetimeIndex:
    if cutoffs is not None and (start is not None or end is not None):
        raise ValueError("give either cutoffs or start/end (with frequency), not both")
    if cutoffs is None:
        if start is None or end is None:
            raise ValueError("the test cutoffs are required: cutoffs=[...] or start=..., end=... (and frequency)")
        cutoffs = pd.date_range(start, end, freq=frequency)
    index = pd.DatetimeIndex(pd.to_datetime(list(cutoffs))).unique().sort_values().as_unit("us")
    if len(index) == 0:
        raise ValueError(f"no test cutoffs between {start} and {end} at frequency {frequency!r}")
    return index


def _check_models(models) -> dict:
    if not isinstance(models, dict):
        models = {type(m).__name__: m for m in models}
    if not models:
        raise ValueError("no models to compare")
    if "oracle" in models:
        raise ValueError("'oracle' is the name of the simulator's truth; name the model otherwise")
    return models


def backtest(
    dataset: Dataset,
    models,
    *,
    cutoffs=None,
    start=None,
    end=None,
    frequency: str = "W-MON",
    horizon=28,
    target=None,
    level: str = "grid",
    train_start=None,
    train_frequency: str = "W-MON",
    refit_every: int = 1,
    capacity: int | None = None,
    features: dict | None = None,
    escalation_days: int = 30,
    track: bool = True,
    experiment: str = "riskmodel",
    progress: bool = True,
    tracker: Tracker | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of several models on the same folds.

    Each test cutoff ``c`` is a fold. Grid target: the models are fitted on the
    panel rows whose label window has closed by ``c`` (cutoff + horizon <= c,
    the embargo: no training label overlaps the test window) and score every
    unit at ``c``; the features of all rows are point-in-time, so one panel
    serves every fold. Escalation target (``target="escalation"``): fitted on
    the cases whose ``escalation_days`` had passed by ``c``, scored on the cases
    reported in ``[c, next c)`` (the last fold as long as the one before), whose
    windows must all have closed by the end of the data. On simulated data the simulator's truth is
    scored on the same folds as the row ``oracle`` (expected counts, through
    the Poisson law for probabilities; or the true escalation probabilities).

    Parameters
    ----------
    dataset : Dataset
        The data (a simulated district adds the oracle).
    models : dict of name to estimator, or list of estimators
        Unfitted models; each fold fits a clone. A regressor (``GBMCount``) is
        fitted on the counts, the others on 0/1 labels.
    cutoffs : list of times, optional
        The test cutoffs; or ``start``, ``end`` and ``frequency`` (a pandas
        frequency, default weekly on Mondays).
    horizon : int, str or offset
        Label window (days, ``"28D"`` or a pandas offset).
    target : None, dict, Target, "escalation" or "waves"
        What the grid label counts (see :class:`~riskmodel.features.Target`),
        ``"escalation"`` for the case-escalation target, or ``"waves"`` for the
        anomaly target: the models are detectors (:class:`~riskmodel.models.SpikeDetector`)
        watching ``level`` and its parent level daily, scored by
        :func:`~riskmodel.evaluation.metrics.wave_detection` against the
        simulator's injected waves (fold ``i`` holds the waves that start in
        ``[c_i, c_i+1)``; no oracle row: the waves are the truth).
    level : str
        Units of the grid target, or the unit whose history describes a case.
    train_start : time, optional
        First training cutoff (default: 91 days after the first case).
    train_frequency : str
        Spacing of the training cutoffs from there (default weekly on Mondays),
        whatever the spacing of the test cutoffs.
    refit_every : int
        Refit the models every this many folds (1: every fold); in between the
        last fit is reused, which only ever makes the embargo longer.
    capacity : int, optional
        Units a grid team can visit per cutoff: adds ``precision_at_capacity``.
    features : dict, optional
        Options of :class:`~riskmodel.features.GridPanelBuilder`.
    escalation_days : int
        The escalation target's window.
    track : bool
        Log the backtest to MLflow (:func:`riskmodel.tracking.log_backtest`). A
        failure to log is a warning naming it and the store: the result is returned,
        with ``run_id`` None.
    tracker : Tracker, optional
        Logs instead of the default MLflow tracker (:mod:`riskmodel.trackers`).
    experiment : str
        The MLflow experiment.
    progress : bool
        Show a progress bar over the folds.

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation import backtest
    >>> from riskmodel.models import HistoricalRateBaseline, LastPeriodBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> result = backtest(district, [HistoricalRateBaseline(), LastPeriodBaseline()],
    ...                   cutoffs=["2023-10-02", "2023-10-30"], horizon=28, track=False, progress=False)
    >>> sorted(result.leaderboard.index), len(result.folds)
    (['HistoricalRateBaseline', 'LastPeriodBaseline', 'oracle'], 6)
    >>> "hit_rate_at_5pct_oracle_ratio" in result.leaderboard
    True
    """
    models = _check_models(models)
    if not (isinstance(refit_every, int) and refit_every >= 1):
        raise ValueError(f"refit_every must be a whole number >= 1, got {refit_every!r}")
    test_cutoffs = _test_cutoffs(cutoffs, start, end, frequency)
    config = {
        "models": sorted(models),
        "cutoffs": [str(c.date()) for c in test_cutoffs],
        "frequency": frequency,
        "horizon": str(horizon),
        "target": str(target),
        "level": level,
        "refit_every": refit_every,
        "train_start": str(train_start),
        "train_frequency": train_frequency,
        "capacity": capacity,
        "features": features or {},
        "escalation_days": escalation_days,
    }
    for name, model in models.items():
        config[f"model.{name}"] = repr(model)
    kind, label = target_kind(target)
    with limit_threads():  # the models' threads fit the cores given (riskmodel.threads)
        folds, predictions = kind.run_folds(
            dataset,
            models,
            test_cutoffs,
            horizon=horizon,
            target=label,
            level=level,
            train_start=train_start,
            train_frequency=train_frequency,
            refit_every=refit_every,
            capacity=capacity,
            features=features or {},
            escalation_days=escalation_days,
            progress=progress,
        )
    result = BacktestResult(
        _leaderboard(folds, predictions, kind.headline), folds, predictions, config, kind.name, parse_horizon(horizon)
    )
    if track:
        result.run_id = (tracker or default()).log_backtest(result, dataset, experiment=experiment)
    return result


def _leaderboard(folds: pd.DataFrame, predictions: pd.DataFrame, rank_by: str) -> pd.DataFrame:
    names = [
        c for c in folds.columns if c not in ("model", "fold", "cutoff", "train_rows") and not c.endswith("_street_std")
    ]
    by = folds.groupby("model", sort=False)
    board = by[names].mean()
    board = board.join(by[names].std(ddof=0).add_suffix("_fold_std"))
    street = [c for c in folds.columns if c.endswith("_street_std")]
    if street:
        board = board.join(by[street].mean())
    if "probability" in predictions:
        board["ece_pooled"] = predictions.groupby("model", sort=False).apply(
            lambda g: metrics.expected_calibration_error(g["y"], g["probability"])
        )
        names.append("ece_pooled")
    if "oracle" in board.index:
        ratio = board[names] / board.loc["oracle", names]
        board = board.join(ratio.add_suffix("_oracle_ratio"))
    board["folds"] = by.size()
    return board.sort_values(rank_by, ascending=rank_by in LOWER_IS_BETTER, kind="stable").rename_axis("model")
