"""The champion chosen by evidence: a paired comparison over a backtest's folds.

Every model is scored on the same folds, so two models are compared by their fold-by-fold
differences ``d_t`` (oriented so that positive is better, whatever the metric's direction).
When the horizon is longer than the spacing of the folds, consecutive folds share label
days and their differences are correlated; the standard error of the mean difference is
then Newey-West's (Bartlett weights) with a lag of the number of later folds whose label
window overlaps a fold's, so that the overlap does not pass for independent evidence. The
interval is the mean ± a Student t quantile (``n - 1`` degrees of freedom) times that
standard error. With fewer than two folds there is no estimate of noise: every difference
is within it. No correction is made for comparing several models.

The rule (:func:`choose_champion`):

1. the best baseline is the baseline with the best mean;
2. a model other than it is eligible only if it beats it by more than noise (its
   difference to the best baseline has an interval wholly above 0); when none does, the
   best baseline is chosen. So the champion is never worse than the best baseline by more
   than noise, on any data, and a learned model must earn its place;
3. otherwise the eligible model with the best mean leads, the eligible models within
   noise of it (their difference to it has an interval that holds 0) are the contenders,
   and the simplest contender is chosen (:data:`COMPLEXITY`; ties by the better mean).

Without baselines among the models (the case-escalation target), every model is eligible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..contract import Dataset
from .backtest import LOWER_IS_BETTER, BacktestResult, backtest
from .targets import target_kind

__all__ = [
    "COMPLEXITY",
    "Choice",
    "choose_champion",
    "choose_from_folds",
    "chosen_folds",
    "complexity",
    "newey_west_se",
    "overlap_lag",
    "paired",
    "paired_difference",
    "select_champion",
]

#: Families from the simplest; baselines (names ending in ``Baseline``) come first and
#: unknown families count as the most complex.
COMPLEXITY = ("Baseline", "Scorecard", "LogisticRisk", "GBMRisk", "GBMCount", "EnsembleCount")


def complexity(family: str) -> int:
    """The rank of a family in :data:`COMPLEXITY` (0: a baseline); unknown: ``len(COMPLEXITY)``.

    Examples
    --------
    >>> complexity("HistoricalRateBaseline"), complexity("GBMCount"), complexity("Mystery")
    (0, 4, 6)
    """
    if family.endswith("Baseline"):
        return 0
    return COMPLEXITY.index(family) if family in COMPLEXITY else len(COMPLEXITY)


def newey_west_se(d, lag: int) -> float:
    """The Newey-West standard error of the mean of ``d`` (Bartlett weights up to ``lag``);
    ``inf`` with fewer than two values.

    Examples
    --------
    >>> round(newey_west_se([1.0, 2.0, 3.0, 4.0], 0), 3)
    0.559
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n < 2:
        return math.inf
    e = d - d.mean()
    variance = e @ e / n
    for k in range(1, min(lag, n - 1) + 1):
        variance += 2 * (1 - k / (lag + 1)) * (e[k:] @ e[:-k]) / n
    return math.sqrt(max(variance, 0.0) / n)


def overlap_lag(cutoffs, horizon) -> int:
    """The most later folds whose label window starts before a fold's has closed.

    Examples
    --------
    >>> import pandas as pd
    >>> overlap_lag(pd.date_range("2024-01-01", periods=6, freq="7D"), pd.Timedelta(days=28))
    3
    """
    times = pd.DatetimeIndex(sorted(pd.to_datetime(list(cutoffs))))
    ends = times + horizon if not isinstance(horizon, pd.DateOffset) else pd.DatetimeIndex([t + horizon for t in times])
    return int(max((np.searchsorted(times, end, side="left") - i - 1 for i, end in enumerate(ends)), default=0))


def paired(d, lag: int, confidence: float = 0.95) -> dict:
    """Mean, Newey-West standard error and ``confidence`` interval of the differences ``d``.

    Examples
    --------
    >>> out = paired([0.02, 0.01, 0.03, 0.02], lag=0)
    >>> round(out["mean"], 3), out["low"] > 0
    (0.02, True)
    """
    d = np.asarray(d, dtype=float)
    d = d[~np.isnan(d)]
    mean = float(d.mean()) if len(d) else math.nan
    se = newey_west_se(d, lag)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(d) - 1)) * se if math.isfinite(se) else math.inf
    if half != half:  # 0 * inf with identical differences
        half = 0.0
    return {"mean": mean, "se": se, "low": mean - half, "high": mean + half, "folds": len(d)}


def paired_difference(
    a: pd.Series, b: pd.Series, *, metric: str, lag: int = 0, confidence: float = 0.95
) -> tuple[pd.DataFrame, dict]:
    """``b - a`` fold by fold on the folds both have, and its mean with a paired interval.

    The interval is :func:`paired`'s (Newey-West standard error with ``lag``, Student t),
    as :func:`choose_champion` uses it; the verdict reads it in ``metric``'s direction.

    Parameters
    ----------
    a, b : Series
        One metric per fold, indexed by the fold's cutoff (a NaN is a fold it lacks).
    metric : str
        The metric's name (lower is better for those in ``LOWER_IS_BETTER``).
    lag : int
        Newey-West lag (:func:`overlap_lag` of the shared cutoffs and the horizon).
    confidence : float

    Returns
    -------
    folds : DataFrame
        One row per shared fold, by cutoff: ``a``, ``b`` and ``difference`` (``b - a``).
    summary : dict
        ``mean``, ``se``, ``low``, ``high``, ``folds`` and ``lag`` of the differences, and
        ``verdict``: ``"better"`` or ``"worse"`` (``b`` than ``a``, by more than noise: the
        interval excludes 0) or ``"within noise"``.

    Raises
    ------
    ValueError
        When fewer than two folds are shared (no estimate of noise).

    Examples
    --------
    >>> import pandas as pd
    >>> cutoffs = pd.to_datetime(["2024-01-01", "2024-01-29", "2024-02-26", "2024-03-25"])
    >>> a = pd.Series([0.20, 0.22, 0.21, 0.25], index=cutoffs)
    >>> b = pd.Series([0.23, 0.24, 0.24, 0.27], index=cutoffs)
    >>> folds, summary = paired_difference(a, b, metric="hit_rate_at_5pct")
    >>> folds["difference"].round(2).tolist(), round(summary["mean"], 3), summary["verdict"]
    ([0.03, 0.02, 0.03, 0.02], 0.025, 'better')
    """
    folds = pd.DataFrame({"a": a, "b": b}).dropna().sort_index()
    if len(folds) < 2:
        raise ValueError(
            f"the two share {len(folds)} fold(s) with a value of {metric}; a paired comparison "
            "needs at least 2 (the same cutoffs in both)"
        )
    folds["difference"] = folds["b"] - folds["a"]
    summary = paired(folds["difference"].to_numpy(), lag, confidence) | {"lag": lag}
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    low, high = sorted((sign * summary["low"], sign * summary["high"]))
    summary["verdict"] = "better" if low > 0 else "worse" if high < 0 else "within noise"
    return folds, summary


@dataclass
class Choice:
    """What :func:`choose_champion` found.

    Attributes
    ----------
    chosen : str
        The chosen model's name.
    reason : str
        One sentence saying why.
    metric : str
    leaderboard : DataFrame
        One row per model, best mean first: ``mean``, ``family``, ``complexity``, the
        difference to the best baseline (``vs_baseline`` with ``vs_baseline_low``/``_high``),
        ``eligible`` (the best baseline, or better than it by more than noise) and ``contender``.
    differences : DataFrame
        One row per fold: ``cutoff``, ``vs_runner_up`` and ``vs_best_baseline`` (the chosen
        model's metric minus theirs, positive = the chosen is better).
    versus_runner_up, versus_best_baseline : dict
        ``model``, ``mean``, ``se``, ``low``, ``high``, ``folds`` of those differences (empty
        when there is no such model; only ``model`` when the chosen is the best baseline).
    """

    chosen: str
    reason: str
    metric: str
    leaderboard: pd.DataFrame
    differences: pd.DataFrame
    versus_runner_up: dict
    versus_best_baseline: dict

    def to_dict(self) -> dict:
        """JSON-ready (NaN and infinities as None)."""
        board = self.leaderboard.reset_index()
        folds = self.differences.assign(cutoff=self.differences["cutoff"].astype(str))
        return _clean(
            {
                "chosen": self.chosen,
                "reason": self.reason,
                "metric": self.metric,
                "versus_runner_up": self.versus_runner_up,
                "versus_best_baseline": self.versus_best_baseline,
                "leaderboard": board.to_dict(orient="records"),
                "differences": folds.to_dict(orient="records"),
            }
        )


def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def choose_champion(
    result: BacktestResult, *, metric: str | None = None, confidence: float = 0.95, lag: int | None = None
) -> Choice:
    """The champion of a backtest by the rule of the module's docstring.

    Parameters
    ----------
    result : BacktestResult
    metric : str, optional
        A column of ``result.folds`` (default: the kind's headline, ``hit_rate_at_5pct`` for grids).
    confidence : float
        Of the paired intervals.
    lag : int, optional
        Newey-West lag (default: :func:`overlap_lag` of the folds and the horizon).

    Returns
    -------
    Choice

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation import backtest
    >>> from riskmodel.evaluation.selection import choose_champion
    >>> from riskmodel.models import HistoricalRateBaseline, LastPeriodBaseline
    >>> result = backtest(simulate_district("tiny", seed=0), [HistoricalRateBaseline(), LastPeriodBaseline()],
    ...                   cutoffs=["2023-10-02", "2023-10-30"], horizon=28, track=False, progress=False)
    >>> choose_champion(result).chosen in ("HistoricalRateBaseline", "LastPeriodBaseline")
    True
    """
    metric = metric or result.kind.headline
    folds = result.folds[result.folds["model"] != "oracle"]
    if metric not in folds.columns:
        raise ValueError(f"the backtest has no metric {metric!r}; it has {list(folds.columns[4:])[:10]}")
    table = folds.pivot_table(index="fold", columns="model", values=metric, aggfunc="first", dropna=False)
    cutoffs = folds.groupby("fold")["cutoff"].first().reindex(table.index)
    if lag is None:
        lag = overlap_lag(cutoffs, result.horizon)
    families = {name: str(result.config.get(f"model.{name}", name)).split("(")[0] for name in table.columns}
    return choose_from_folds(table, families=families, metric=metric, confidence=confidence, lag=lag, cutoffs=cutoffs)


def choose_from_folds(
    table: pd.DataFrame,
    *,
    families: dict | None = None,
    metric: str = "hit_rate_at_5pct",
    confidence: float = 0.95,
    lag: int = 0,
    cutoffs=None,
) -> Choice:
    """:func:`choose_champion` on a table of one metric, one row per fold and one column per model.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"HistoricalRateBaseline": [0.20, 0.22, 0.21], "GBMCount": [0.21, 0.22, 0.20]})
    >>> choose_from_folds(table).chosen
    'HistoricalRateBaseline'
    """
    if table.shape[1] == 0 or len(table) == 0:
        raise ValueError("no models or no folds to choose from")
    families = {name: (families or {}).get(name, name) for name in table.columns}
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    scores = table.astype(float) * sign  # higher is better from here on
    means = scores.mean().sort_values(ascending=False, kind="stable")
    board = pd.DataFrame({"mean": means * sign, "family": pd.Series(families), "better": means})
    board = board.loc[means.index]
    board["complexity"] = [complexity(families[n]) for n in board.index]

    def versus(a, b):
        return paired((scores[a] - scores[b]).to_numpy(), lag, confidence) if a != b else {}

    baselines = [n for n in board.index if board.loc[n, "complexity"] == 0]
    best_baseline = baselines[0] if baselines else None
    if best_baseline is not None:
        vs = {n: versus(n, best_baseline) or paired(np.zeros(len(scores)), lag, confidence) for n in board.index}
        board["vs_baseline"] = [vs[n]["mean"] for n in board.index]
        board["vs_baseline_low"] = [vs[n]["low"] for n in board.index]
        board["vs_baseline_high"] = [vs[n]["high"] for n in board.index]
        board["eligible"] = [n == best_baseline or vs[n]["low"] > 0 for n in board.index]
    else:
        board["eligible"] = True
    eligible = [n for n in board.index if board.loc[n, "eligible"]]
    leader = eligible[0]
    board["contender"] = [n in eligible and (n == leader or versus(n, leader)["high"] >= 0) for n in board.index]
    contenders = board[board["contender"]].sort_values(["complexity", "better"], ascending=[True, False], kind="stable")
    chosen = str(contenders.index[0])
    others = [n for n in board.index if n != chosen]
    runner_up = others[0] if others else None
    reason = _reason(chosen, leader, best_baseline, board, metric, confidence, means.index[0])
    differences = pd.DataFrame(
        {
            "cutoff": list(cutoffs) if cutoffs is not None else list(table.index),
            "vs_runner_up": (scores[chosen] - scores[runner_up]).to_numpy() if runner_up else np.nan,
            "vs_best_baseline": (scores[chosen] - scores[best_baseline]).to_numpy() if best_baseline else np.nan,
        },
        index=table.index,
    ).rename_axis("fold")
    return Choice(
        chosen=chosen,
        reason=reason,
        metric=metric,
        leaderboard=board.drop(columns="better").rename_axis("model"),
        differences=differences.reset_index(),
        versus_runner_up={"model": runner_up, **versus(chosen, runner_up)} if runner_up else {},
        versus_best_baseline={"model": best_baseline, **versus(chosen, best_baseline)} if best_baseline else {},
    )


def _reason(chosen, leader, best_baseline, board, metric, confidence, best) -> str:
    level = f"{confidence:.0%} paired interval over folds"

    def vs_baseline(name):
        row = board.loc[name]
        return f"{row['vs_baseline']:+.4f} [{row['vs_baseline_low']:+.4f}, {row['vs_baseline_high']:+.4f}]"

    mean = f"{chosen} ({board.loc[chosen, 'mean']:.4f} mean {metric})"
    if chosen == best_baseline and leader == best_baseline:
        why = f"{mean}, the best baseline: no model beats it by more than noise"
        if best != chosen:
            why += f"; the best mean, {best} ({board.loc[best, 'mean']:.4f}), differs by {vs_baseline(best)} ({level})"
        return why + "."
    if best_baseline is None:
        why = f"{mean} has the best mean" if chosen == leader else f"{mean} is"
    else:
        why = f"{mean} beats the best baseline {best_baseline} by more than noise ({vs_baseline(chosen)}, {level})"
        why += " and has the best mean of those that do" if chosen == leader else " and is"
    if chosen == leader:
        return why + ("; no simpler model is within noise of it." if board["contender"].sum() == 1 else ".")
    return f"{why} within noise of the best mean ({leader}, {board.loc[leader, 'mean']:.4f}) and simpler."


#: The backtest's metrics a served model is watched on, by the names the monitor gives them.
WATCHED = {
    "hit_rate_at_5pct": "hit_rate_at_5pct",
    "pai_at_5pct": "pai_at_5pct",
    "brier": "brier",
    "ece": "ece",
    "interval_coverage_80": "interval_coverage",
}


def chosen_folds(result: BacktestResult, model: str) -> list[dict]:
    """The chosen model's score at every fold of its backtest, JSON-ready: ``cutoff`` and
    the metrics a served model is watched on (``hit_rate_at_5pct``, ``pai_at_5pct``,
    ``brier``, ``ece``, ``interval_coverage``: the 80% interval's), as
    :func:`riskmodel.train` keeps them in the evidence for the monitor's bands
    (:func:`~riskmodel.evaluation.alarms.backtest_expectation`).

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation import backtest
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> result = backtest(simulate_district("tiny", seed=0), [HistoricalRateBaseline()],
    ...                   cutoffs=["2023-10-02", "2023-10-30"], horizon=28, track=False, progress=False)
    >>> folds = chosen_folds(result, "HistoricalRateBaseline")
    >>> len(folds), sorted(folds[0])[:3]
    (2, ['brier', 'cutoff', 'ece'])
    """
    folds = result.folds[result.folds["model"] == model]
    if folds.empty:
        raise ValueError(f"the backtest has no model {model!r}; it has {sorted(result.folds['model'].unique())}")
    table = folds[["cutoff", *[c for c in WATCHED if c in folds]]].rename(columns=WATCHED)
    return _clean(table.assign(cutoff=table["cutoff"].astype(str)).to_dict(orient="records"))


def select_champion(
    dataset: Dataset,
    models: dict,
    *,
    folds: int = 12,
    refit_every: int = 4,
    metric: str | None = None,
    confidence: float = 0.95,
    horizon=28,
    target=None,
    level: str = "grid",
    train_start=None,
    train_frequency: str = "W-MON",
    features: dict | None = None,
    escalation_days: int = 30,
    progress: bool = False,
) -> tuple[Choice, BacktestResult]:
    """Backtest ``models`` on the last ``folds`` cutoffs of the data (spaced by
    ``train_frequency``, the last one whose labels closed by the end of the data; the models
    refitted every ``refit_every`` folds) and choose the champion (:func:`choose_champion`).
    The other options are :func:`~riskmodel.evaluation.backtest`'s; nothing is tracked.

    Returns
    -------
    (Choice, BacktestResult)

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation.selection import select_champion
    >>> from riskmodel.models import HistoricalRateBaseline, LastPeriodBaseline
    >>> models = {"rate": HistoricalRateBaseline(), "last": LastPeriodBaseline()}
    >>> choice, result = select_champion(simulate_district("tiny", seed=0), models, folds=4)
    >>> choice.chosen in models, len(result.config["cutoffs"])
    (True, 4)
    """
    if not (isinstance(folds, int) and folds >= 1):
        raise ValueError(f"folds must be a whole number >= 1, got {folds!r}")
    kind, _ = target_kind(target)
    last = kind.last_cutoff(
        pd.Timestamp(dataset.end), horizons=[horizon], frequency=train_frequency, escalation_days=escalation_days
    ).normalize()
    cutoffs = pd.date_range(end=last, periods=folds, freq=train_frequency)
    result = backtest(
        dataset,
        models,
        cutoffs=cutoffs,
        horizon=horizon,
        target=target,
        level=level,
        train_start=train_start,
        train_frequency=train_frequency,
        refit_every=min(refit_every, folds),
        features=features,
        escalation_days=escalation_days,
        track=False,
        progress=progress,
    )
    return choose_champion(result, metric=metric, confidence=confidence), result
