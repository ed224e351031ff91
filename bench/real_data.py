"""Real-data backtests: `configs/chicago.yaml` and `configs/lancashire.yaml`, every family
against KDEBaseline and HistoricalRateBaseline, with the spread over folds.

    make bench            # or: cd bench && ../.venv/bin/python real_data.py

Reads ../shared/data/real/ (relative to the repository); skipped when it is absent.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import write_results

from riskmodel.config import load_config, run_backtest

ROOT = Path(__file__).parents[1]
METRICS = ["hit_rate_at_1pct", "hit_rate_at_5pct", "pai_at_1pct", "pai_at_5pct", "pei_star_at_1pct", "pei_star_at_5pct"]


def _rows(name: str, result) -> list[list[str]]:
    board = result.leaderboard
    horizon = result.horizon
    horizon = f"{horizon.days} days" if hasattr(horizon, "days") else "1 month"
    return [
        [name, horizon, str(model), str(int(row["folds"]))]
        + [f"{row[m]:.3f} ± {row[f'{m}_fold_std']:.3f}" for m in METRICS]
        for model, row in board.iterrows()
    ]


def main() -> None:
    if not (ROOT.parent / "shared" / "data" / "real").is_dir():
        print("skipped: ../shared/data/real is absent")
        return
    os.chdir(ROOT)  # the configurations name their files relative to the repository
    rows, seconds = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        for name in ("chicago", "lancashire"):
            started = time.perf_counter()
            results = run_backtest(load_config(f"configs/{name}.yaml"), progress=False)
            seconds[name] = time.perf_counter() - started
            for result in results:
                rows += _rows(name, result)
        del os.environ["MLFLOW_TRACKING_URI"]
    print(seconds)
    write_results(
        "real_data",
        "Real-data backtests",
        "Command: `make bench` (`bench/real_data.py`), which runs what `riskmodel backtest --config "
        "configs/chicago.yaml` and `--config configs/lancashire.yaml` run, logged to a temporary MLflow store. "
        f"Chicago took {seconds['chicago']:.0f} s (target 180 s), Lancashire {seconds['lancashire']:.0f} s. "
        "Means over folds ± their standard deviation over folds; each leaderboard sorted by hit rate at 5%.",
        ["data", "horizon", "model", "folds", "hit rate 1%", "hit rate 5%", "PAI 1%", "PAI 5%", "PEI* 1%", "PEI* 5%"],
        rows,
    )


if __name__ == "__main__":
    main()
