"""Rolling-origin backtest: every model on the same folds, scored by the same metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_regressor
from tqdm.auto import tqdm

from ..dataset import Dataset
from ..features import GridPanelBuilder, build_case_features
from ..features.options import Target, parse_horizon, parse_target, training_cutoffs
from ..models.protocol import poisson_probability
from . import metrics

__all__ = ["BacktestResult", "backtest", "score_fold"]

#: Metrics where lower is better; their oracle ratio reads "how many times the oracle's".
LOWER_IS_BETTER = ("brier", "log_loss", "ece", "ece_pooled", "poisson_deviance")
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
        ``expected``, the label ``y`` and, for grids, ``y_count``.
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
    def best(self) -> str:
        """The best model other than the oracle by the leaderboard's order."""
        return next(name for name in self.leaderboard.index if name != "oracle")


def score_fold(y_count, probability, expected, *, area=None, capacity=None, street=None) -> dict[str, float]:
    """Every grid metric of one fold (see :mod:`riskmodel.evaluation.metrics` for the formulas).

    Examples
    --------
    >>> scores = score_fold([2, 0, 0, 1], [0.8, 0.1, 0.3, 0.5], [1.6, 0.1, 0.4, 0.7])
    >>> scores["roc_auc"], round(scores["hit_rate_at_5pct"], 4)  # 5% of 4 units: a fifth of the top one
    (1.0, 0.1333)
    """
    y_count = np.asarray(y_count, dtype=float)
    out = {
        "roc_auc": metrics.roc_auc(y_count, probability),
        "average_precision": metrics.average_precision(y_count, probability),
        "brier": metrics.brier(y_count, probability),
        "log_loss": metrics.log_loss(y_count, probability),
        "ece": metrics.expected_calibration_error(y_count, probability),
        "poisson_deviance": metrics.poisson_deviance(y_count, expected),
        "hit_rate_at_1pct": metrics.hit_rate(y_count, probability, k=0.01),
        "hit_rate_at_5pct": metrics.hit_rate(y_count, probability, k=0.05),
        "pai_at_1pct": metrics.pai(y_count, probability, k=0.01),
        "pai_at_5pct": metrics.pai(y_count, probability, k=0.05),
        "pei_star_at_1pct": metrics.pei_star(y_count, probability, k=0.01),
        "pei_star_at_5pct": metrics.pei_star(y_count, probability, k=0.05),
        "rri_at_5pct": metrics.rri(y_count, expected, k=0.05),
    }
    if area is not None:
        out["hit_rate_at_5pct_area"] = metrics.hit_rate(y_count, probability, k=0.05, area=area)
        out["pai_at_5pct_area"] = metrics.pai(y_count, probability, k=0.05, area=area)
    if capacity is not None:
        out["precision_at_capacity"] = metrics.precision_at_capacity(y_count, probability,
                                                                     capacity=min(capacity, len(y_count)))
    if street is not None:
        frame = pd.DataFrame({"y": y_count, "p": probability, "street": np.asarray(street)})
        by = frame.groupby("street", sort=True)
        out["roc_auc_street_std"] = by.apply(lambda g: metrics.roc_auc(g["y"], g["p"])).std()
        out["hit_rate_at_5pct_street_std"] = by.apply(lambda g: metrics.hit_rate(g["y"], g["p"], k=0.05)).std()
    return out


def _score_cases(y, probability) -> dict[str, float]:
    return {
        "roc_auc": metrics.roc_auc(y, probability),
        "average_precision": metrics.average_precision(y, probability),
        "brier": metrics.brier(y, probability),
        "log_loss": metrics.log_loss(y, probability),
        "ece": metrics.expected_calibration_error(y, probability),
    }


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


def backtest(dataset: Dataset, models, *, cutoffs=None, start=None, end=None, frequency: str = "W-MON",
             horizon=28, target=None, level: str = "grid", train_start=None, train_frequency: str = "W-MON",
             refit_every: int = 1,
             capacity: int | None = None, features: dict | None = None, escalation_days: int = 30,
             track: bool = True, experiment: str = "riskmodel", progress: bool = True) -> BacktestResult:
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
    config = {"models": sorted(models), "cutoffs": [str(c.date()) for c in test_cutoffs], "frequency": frequency,
              "horizon": str(horizon), "target": str(target), "level": level, "refit_every": refit_every,
              "train_start": str(train_start), "train_frequency": train_frequency, "capacity": capacity,
              "features": features or {},
              "escalation_days": escalation_days}
    for name, model in models.items():
        config[f"model.{name}"] = repr(model)
    kind = target if target in ("escalation", "waves") else "grid"
    runs: dict[str, Callable[..., Any]] = {"grid": _grid, "escalation": _cases, "waves": _waves}
    run = runs[kind]
    folds, predictions = run(dataset, models, test_cutoffs, config=config, horizon=horizon, target=target,
                             level=level, train_start=train_start, train_frequency=train_frequency,
                             refit_every=refit_every,
                             capacity=capacity, features=features or {}, escalation_days=escalation_days,
                             progress=progress)
    result = BacktestResult(_leaderboard(folds, predictions), folds, predictions, config, kind,
                            parse_horizon(horizon))
    if track:
        from ..tracking import log_backtest, log_safely

        result.run_id = log_safely(log_backtest, result, dataset, experiment=experiment, what="the backtest")
    return result


def _fits(models, fold: int, refit_every: int, fitted: dict, X, y, y_count):
    if fold % refit_every == 0 or not fitted:
        for name, model in models.items():
            fitted[name] = clone(model).fit(X, y_count if is_regressor(model) else y)
    return fitted


def _grid(dataset, models, test_cutoffs, *, config, horizon, target, level, train_start, train_frequency,
          refit_every, capacity, features, progress, **_):
    horizon = parse_horizon(horizon)
    parsed = parse_target(target)
    train_cutoffs = training_cutoffs(dataset.cases["reported_at"].min(), train_start, test_cutoffs[-1], train_frequency)
    builder = GridPanelBuilder(cutoffs=train_cutoffs.union(test_cutoffs), horizon=horizon, level=level,
                               target=parsed, **features)
    panel = builder.fit(dataset).build(dataset)
    unknown = [str(c.date()) for c in test_cutoffs if not panel.label_known.xs(c, level="cutoff").all()]
    if unknown:
        raise ValueError(f"test cutoff(s) {unknown[:5]} have label windows of {horizon} that had not closed by "
                         f"the end of the data ({dataset.end}); end the backtest earlier")
    cutoff = panel.X.index.get_level_values("cutoff")
    units = panel.X.index.get_level_values(0)
    streets = _streets(dataset, level, units)
    area = dataset.grids.set_index("grid_id")["area_km2"] if "area_km2" in dataset.grids else None
    oracle = _oracle(dataset, horizon, level, parsed)
    rows, predictions, fitted = [], [], {}
    for fold, c in enumerate(tqdm(test_cutoffs, desc="backtest", disable=not progress)):
        train = np.asarray(cutoff + horizon <= c) & panel.label_known.to_numpy()
        test = np.asarray(cutoff == c)
        if not train.any():
            raise ValueError(f"fold {fold} (test cutoff {c.date()}) has no training rows whose label window closed "
                             f"before it; start the test cutoffs later or train_start earlier")
        y, y_count = panel.y[train], panel.y_count[train]
        fitted = _fits(models, fold, refit_every, fitted, panel.X[train], y, y_count)
        X = panel.X[test]
        outputs = {name: (m.predict_proba(X)[:, 1], m.predict_expected(X)) for name, m in fitted.items()}
        latest = panel.X[np.asarray(cutoff == cutoff[train].max())]  # drift: the last training cutoff's scores
        drift = {name: metrics.population_stability_index(m.predict_proba(latest)[:, 1], outputs[name][0])
                 for name, m in fitted.items()}
        if oracle is not None:
            expected = oracle(c).reindex(units[test]).to_numpy()
            outputs = {"oracle": (poisson_probability(expected), expected)} | outputs
        truth = panel.y_count[test].to_numpy()
        for name, (p, e) in outputs.items():
            scores = score_fold(truth, p, e, area=None if area is None else area.reindex(units[test]).to_numpy(),
                                capacity=capacity, street=None if streets is None else streets[test])
            scores["psi_score"] = drift.get(name, np.nan)
            rows.append({"model": name, "fold": fold, "cutoff": c, "train_rows": int(train.sum())} | scores)
            predictions.append(pd.DataFrame({"model": name, "fold": fold, "probability": p, "expected": e,
                                             "y": panel.y[test].to_numpy(), "y_count": truth}, index=X.index))
    return pd.DataFrame(rows), pd.concat(predictions)


def _streets(dataset, level, units):
    if "street" not in dataset.levels or dataset.levels.index("street") >= dataset.levels.index(level):
        return None
    return pd.Index(units).map(dataset.ancestors("street")).to_numpy()


def _oracle(dataset, horizon, level, target: Target):
    truth = getattr(dataset, "truth", None)
    if truth is None or not isinstance(horizon, pd.Timedelta) or target.escalations:
        return None
    days = horizon.days

    def expected(c):
        return truth.expected_counts(c, days, level=level, categories=target.categories,
                                     min_severity=target.min_severity)
    return expected


def _cases(dataset, models, test_cutoffs, *, config, level, refit_every, escalation_days, progress, **_):
    cases = build_case_features(dataset, escalation_days=escalation_days, level=level)
    reported = cases.X.index.get_level_values("reported_at")
    known_by = reported + pd.Timedelta(days=escalation_days)
    truth = getattr(dataset, "truth", None)
    bounds = list(test_cutoffs[1:]) + [test_cutoffs[-1] + (test_cutoffs[-1] - test_cutoffs[-2] if len(
        test_cutoffs) > 1 else pd.Timedelta(days=7))]
    closes = bounds[-1] + pd.Timedelta(days=escalation_days)
    if closes > pd.Timestamp(dataset.end):
        raise ValueError(f"the last fold's cases (reported until {bounds[-1].date()}) have escalation windows of "
                         f"{escalation_days} days that close on {closes.date()}, after the end of the data "
                         f"({dataset.end}); end the backtest earlier")
    rows, predictions, fitted = [], [], {}
    for fold, (c, until) in enumerate(tqdm(list(zip(test_cutoffs, bounds, strict=True)), desc="backtest",
                                           disable=not progress)):
        train = np.asarray(known_by <= c) & cases.label_known.to_numpy()
        test = np.asarray((reported >= c) & (reported < until)) & cases.label_known.to_numpy()
        if not train.any() or not test.any():
            raise ValueError(f"fold {fold} (test cutoff {c.date()}) has no {'training' if not train.any() else 'test'}"
                             " cases with a known label")
        fitted = _fits(models, fold, refit_every, fitted, cases.X[train], cases.y[train], cases.y[train])
        X, y = cases.X[test], cases.y[test].to_numpy()
        outputs = {name: m.predict_proba(X)[:, 1] for name, m in fitted.items()}
        if truth is not None:
            outputs = {"oracle": truth.escalation_probability.reindex(
                X.index.get_level_values("case_id")).to_numpy()} | outputs
        for name, p in outputs.items():
            rows.append({"model": name, "fold": fold, "cutoff": c, "train_rows": int(train.sum())}
                        | _score_cases(y, p))
            predictions.append(pd.DataFrame({"model": name, "fold": fold, "probability": p, "y": y}, index=X.index))
    return pd.DataFrame(rows), pd.concat(predictions)


def _leaderboard(folds: pd.DataFrame, predictions: pd.DataFrame, rank_by: str = "hit_rate_at_5pct") -> pd.DataFrame:
    names = [c for c in folds.columns if c not in ("model", "fold", "cutoff", "train_rows")
             and not c.endswith("_street_std")]
    by = folds.groupby("model", sort=False)
    board = by[names].mean()
    board = board.join(by[names].std(ddof=0).add_suffix("_fold_std"))
    street = [c for c in folds.columns if c.endswith("_street_std")]
    if street:
        board = board.join(by[street].mean())
    if "probability" in predictions:
        board["ece_pooled"] = predictions.groupby("model", sort=False).apply(
            lambda g: metrics.expected_calibration_error(g["y"], g["probability"]))
        names.append("ece_pooled")
    if "oracle" in board.index:
        ratio = board[names] / board.loc["oracle", names]
        board = board.join(ratio.add_suffix("_oracle_ratio"))
    board["folds"] = by.size()
    key = next(k for k in (rank_by, "roc_auc", "wave_detection_rate") if k in board)
    return board.sort_values(key, ascending=key in LOWER_IS_BETTER, kind="stable").rename_axis("model")


def _waves(dataset, models, test_cutoffs, *, level, progress, **_):
    truth = getattr(dataset, "truth", None)
    if truth is None:
        raise ValueError("the waves target needs a simulated district: the injected waves are its truth")
    if len(test_cutoffs) < 2:
        raise ValueError("the waves target needs at least two test cutoffs: fold i watches [c_i, c_i+1)")
    levels = [lv for lv in (level, dataset.parent_level(level)) if lv is not None]
    watch = pd.date_range(test_cutoffs[0], test_cutoffs[-1] + pd.Timedelta(days=13), freq="D")
    panels = {lv: GridPanelBuilder(cutoffs=watch, horizon=1, level=lv).fit(dataset).build(dataset).X for lv in levels}
    parent = dataset.ancestors(levels[-1]) if len(levels) > 1 else None
    units = sum(X.index.get_level_values(0).nunique() for X in panels.values())
    rows, predictions = [], []
    for name, model in models.items():
        alarms = pd.concat([clone(model).fit(X).alarm_table(X) for X in panels.values()])
        predictions.append(alarms.assign(model=name))
        for fold, (c, until) in enumerate(zip(test_cutoffs[:-1], test_cutoffs[1:], strict=True)):
            unit_weeks = units * (until - c).days / 7
            waves = truth.waves[(truth.waves["start"] >= c) & (truth.waves["start"] < until)]
            seen = alarms[(alarms["time"] >= c) & (alarms["time"] < until + pd.Timedelta(days=14))]
            found = metrics.wave_detection(seen, waves, unit_weeks=unit_weeks, parent=parent)
            inside = alarms[(alarms["time"] >= c) & (alarms["time"] < until)]
            false = metrics.wave_detection(inside, truth.waves, unit_weeks=unit_weeks, parent=parent)
            rows.append({"model": name, "fold": fold, "cutoff": c, "train_rows": 0, "waves": len(waves),
                         "wave_detection_rate": found["wave_detection_rate"],
                         "wave_median_delay_days": found["wave_median_delay_days"],
                         "false_alarms_per_1000_unit_weeks": false["false_alarms_per_1000_unit_weeks"]})
    return pd.DataFrame(rows), pd.concat(predictions, ignore_index=True)
