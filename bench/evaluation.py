"""Benchmark of the evaluation harness: the quality targets on the `district` preset (weekly
cutoffs over the last year, 28-day horizon, every family refitted at every fold, against the
oracle), case escalation on `district`, and the time of a tracked backtest of every family on
`small` with 6 folds.

    make bench            # or: cd bench && ../.venv/bin/python evaluation.py
"""

from __future__ import annotations

import os
import tempfile
import time

import pandas as pd
from common import write_results

from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.models import case_models, grid_models

HORIZON = 28
LAST_YEAR = {"start": "2024-12-02", "end": "2025-12-01", "frequency": "W-MON"}  # 53 weekly folds


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def grid_quality() -> tuple[list[list[str]], str]:
    district = simulate_district("district", seed=0)
    result = backtest(district, grid_models(), horizon=HORIZON, track=False, **LAST_YEAR)
    board, folds = result.leaderboard, result.folds
    hits = folds.pivot(index="fold", columns="model", values="hit_rate_at_5pct")
    rows = []
    for name, row in board.iterrows():
        above = "" if name == "HistoricalRateBaseline" else \
            f"{int((hits[name] > hits['HistoricalRateBaseline']).sum())} of {len(hits)}"
        rows.append([str(name), _fmt(row["roc_auc"]), _fmt(row["roc_auc"] - board.loc["oracle", "roc_auc"]),
                     _fmt(row["hit_rate_at_5pct"]), _fmt(row["hit_rate_at_5pct_oracle_ratio"]), above,
                     _fmt(row["ece"]), _fmt(row["ece_pooled"])])
    best = result.best
    summary = (f"Best model by hit rate at 5%: {best}, {board.loc[best, 'hit_rate_at_5pct_oracle_ratio']:.3f} x the "
               f"oracle's hit rate (target >= 0.95), above HistoricalRateBaseline in "
               f"{int((hits[best] > hits['HistoricalRateBaseline']).sum())} of {len(hits)} folds (target: all), "
               f"ROC AUC {board.loc[best, 'roc_auc'] - board.loc['oracle', 'roc_auc']:+.3f} from the oracle's "
               f"(target within 0.02), ECE {board.loc[best, 'ece']:.3f} per fold and "
               f"{board.loc[best, 'ece_pooled']:.3f} pooled (target <= 0.02).")
    return rows, summary


def case_quality() -> list[list[str]]:
    district = simulate_district("district", seed=0)
    # The last week's cases need their 30 days to close by the end of the data (2025-12-31).
    result = backtest(district, case_models(), target="escalation", track=False,
                      **(LAST_YEAR | {"start": "2024-11-04", "end": "2025-11-03"}))
    board = result.leaderboard
    return [[str(name), _fmt(row["roc_auc"]), _fmt(row["roc_auc"] - board.loc["oracle", "roc_auc"]),
             _fmt(row["ece_pooled"])] for name, row in board.iterrows()]


def small_speed() -> float:
    district = simulate_district("small", seed=0)
    last = (pd.Timestamp(district.end) - pd.Timedelta(days=HORIZON)).normalize()
    cutoffs = pd.date_range(end=last, periods=6, freq="4W-MON")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        started = time.perf_counter()
        backtest(district, grid_models(), cutoffs=cutoffs, horizon=HORIZON, progress=False)
        seconds = time.perf_counter() - started
        del os.environ["MLFLOW_TRACKING_URI"]
    return seconds


def main() -> None:
    seconds = small_speed()
    print(f"small, 6 folds, tracked: {seconds:.1f} s")
    cases = case_quality()
    print(cases)
    grid, summary = grid_quality()
    print(grid, summary)
    grid_table = "\n".join(
        ["| model | ROC AUC | minus oracle | hit rate at 5% | / oracle | folds above HistoricalRateBaseline "
         "| ECE per fold | ECE pooled |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        + ["| " + " | ".join(r) + " |" for r in grid])
    case_table = "\n".join(["| case model | ROC AUC | minus oracle | ECE pooled |", "| --- | --- | --- | --- |"]
                           + ["| " + " | ".join(r) + " |" for r in cases])
    write_results(
        "evaluation", "Evaluation benchmark",
        "Command: `make bench`. `district` preset, seed 0, weekly test cutoffs from 2024-12-02 to 2025-12-01 "
        "(53 folds), 28-day horizon, every model refitted at every fold on the rows whose label closed before "
        f"the fold (means over folds):\n\n{grid_table}\n\n{summary}\n\n"
        "Escalation within 30 days on `district`, 53 weekly folds from 2024-11-04 to 2025-11-03 (the cases "
        "reported in each week; the last week's windows close by the end of the data):\n\n"
        f"{case_table}",
        ["step", "measured", "target", "met"],
        [["backtest of the 7 grid families on `small`, 6 folds, logged to MLflow", f"{seconds:.1f} s", "<= 60 s",
          "yes" if seconds <= 60 else "NO"]])


if __name__ == "__main__":
    main()
