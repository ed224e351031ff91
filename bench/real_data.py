"""Real-data backtests: `configs/chicago.yaml` and `configs/lancashire.yaml`, every family
with the spread over folds, its forecast distribution's CRPS and PIT coverage, and the
champion `riskmodel.evaluation.choose_champion` picks against the best of the historical and
time-weighted rates (`results/real_data_champion.md`); and how long
they take (`results/real_data_speed.md`): the Chicago configuration, a four-family weekly
year on Chicago, and a backtest on `small` with and without another process busy on a core.

    make bench            # or: cd bench && ../.venv/bin/python real_data.py

Reads ../shared/data/real/ (relative to the repository); skipped when it is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import measure, write_results

from riskmodel.config import load_config, run_backtest
from riskmodel.evaluation import metrics
from riskmodel.evaluation.selection import choose_champion, overlap_lag, paired

ROOT = Path(__file__).parents[1]
METRICS = ["hit_rate_at_1pct", "hit_rate_at_5pct", "pai_at_1pct", "pai_at_5pct", "pei_star_at_1pct", "pei_star_at_5pct"]

#: Four families over Chicago's 2019 weekly cutoffs (the configuration's data, cutoffs and
#: refits), 28-day horizon, not logged.
FOUR_FAMILIES = """
import os
os.chdir({root!r})
from riskmodel import models
from riskmodel.config import load_config
from riskmodel.evaluation import backtest
config = load_config("configs/chicago.yaml")
data = config.dataset()
families = [models.HistoricalRateBaseline(), models.TimeWeightedRateBaseline(), models.LogisticRisk(),
            models.GBMCount()]
t0, cpu0 = time.perf_counter(), time.process_time()  # the data read is not timed
result = backtest(data, families, cutoffs=config.test_cutoffs(data), horizon=28, train_start=config.training.start,
                  train_frequency=config.training.frequency, refit_every=config.training.refit_every,
                  track=False, progress=False)
facts = {{"folds": int(result.leaderboard["folds"].max()), "cpu": time.process_time() - cpu0}}
"""

#: Every grid family on `small`, 6 folds 4 weeks apart, logged (as bench/evaluation.py's speed step).
SMALL = """
import os, tempfile
import pandas as pd
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.models import grid_models
district = simulate_district("small", seed=0)
last = (pd.Timestamp(district.end) - pd.Timedelta(days=28)).normalize()
cutoffs = pd.date_range(end=last, periods=6, freq="4W-MON")
tmp = tempfile.mkdtemp()
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
t0, cpu0 = time.perf_counter(), time.process_time()
backtest(district, grid_models(), cutoffs=cutoffs, horizon=28, progress=False)
facts = {"cpu": time.process_time() - cpu0}
"""


def _horizon(result) -> str:
    return f"{result.horizon.days} days" if hasattr(result.horizon, "days") else "1 month"


def _rows(name: str, result) -> list[list[str]]:
    return [
        [name, _horizon(result), str(model), str(int(row["folds"]))]
        + [f"{row[m]:.3f} ± {row[f'{m}_fold_std']:.3f}" for m in METRICS]
        + [f"{row['crps']:.4f}", f"{row['coverage_50']:.3f} / {row['coverage_80']:.3f} / {row['coverage_90']:.3f}"]
        for model, row in result.leaderboard.iterrows()
    ]


def champion_row(name: str, result) -> list[str]:
    """The chosen champion, its hit rate at 5% over the best of the historical and the
    time-weighted rates (fold by fold, Newey-West interval), and its CRPS against a Poisson
    law around the historical rate."""
    choice = choose_champion(result)
    folds = result.folds.pivot(index="cutoff", columns="model", values="hit_rate_at_5pct")
    rates = ["HistoricalRateBaseline", "TimeWeightedRateBaseline"]
    reference = max(rates, key=lambda m: folds[m].mean())
    lag = overlap_lag(folds.index, result.horizon)
    diff = paired(folds[choice.chosen] - folds[reference], lag)
    ratio = folds[choice.chosen].mean() / folds[reference].mean()
    predictions = result.predictions
    historical = predictions[predictions["model"] == "HistoricalRateBaseline"]
    chosen = predictions[predictions["model"] == choice.chosen]
    poisson = metrics.crps_poisson(historical["y_count"], historical["expected"])
    return [
        name,
        _horizon(result),
        choice.chosen,
        f"{folds[choice.chosen].mean():.4f}",
        f"{reference} {folds[reference].mean():.4f}",
        f"{ratio:.3f}",
        f"{diff['mean']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]",
        f"{metrics.crps(chosen['y_count'], chosen['expected'], float(chosen['dispersion'].iloc[-1])):.4f}",
        f"{poisson:.4f}",
        choice.reason,
    ]


def _timed(code: str) -> dict:
    """``code`` in a fresh process, timed from where it resets ``t0``: its seconds and facts."""
    return measure(code)


def busy_and_quiet() -> tuple[dict, dict]:
    """The `small` backtest alone, then with another process spinning on one core."""
    quiet = _timed(SMALL)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _timed(SMALL)
    finally:
        spinner.kill()
        spinner.wait()
    return quiet, busy


def _time(found: dict) -> str:
    return f"{found['seconds']:.1f} s (CPU {found['cpu']:.1f} s)"


def speed_rows(chicago: dict) -> list[list[str]]:
    four = _timed(FOUR_FAMILIES.format(root=str(ROOT)))
    quiet, busy = busy_and_quiet()
    ratio = busy["seconds"] / quiet["seconds"]
    return [
        [
            "`configs/chicago.yaml`: 10 families, 48 weekly 2019 folds, 7 and 28 days, logged",
            _time(chicago),
            "<= 60 s",
            "yes" if chicago["seconds"] <= 60 else "NO",
        ],
        [
            f"Chicago, 4 families (historical and time-weighted rates, LogisticRisk, GBMCount), {four['folds']} "
            "weekly 2019 folds, 28 days",
            _time(four),
            "<= 90 s",
            "yes" if four["seconds"] <= 90 else "NO",
        ],
        ["`small`, 10 families, 6 folds, logged: quiet", _time(quiet), "", ""],
        [
            "the same with another process busy on one core",
            f"{_time(busy)}, {ratio:.2f} x quiet",
            "<= 2 x quiet",
            "yes" if ratio <= 2 else "NO",
        ],
    ]


def main() -> None:
    if not (ROOT.parent / "shared" / "data" / "real").is_dir():
        print("skipped: ../shared/data/real is absent")
        return
    os.chdir(ROOT)  # the configurations name their files relative to the repository
    rows, champions, seconds, cpu = [], [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        for name in ("chicago", "lancashire"):
            started, cpu[name] = time.perf_counter(), time.process_time()
            results = run_backtest(load_config(f"configs/{name}.yaml"), progress=False)
            seconds[name], cpu[name] = time.perf_counter() - started, time.process_time() - cpu[name]
            for result in results:
                rows += _rows(name, result)
                champions.append(champion_row(name, result))
        del os.environ["MLFLOW_TRACKING_URI"]
    print(seconds)
    write_results(
        "real_data",
        "Real-data backtests",
        "Command: `make bench` (`bench/real_data.py`), which runs what `riskmodel backtest --config "
        "configs/chicago.yaml` and `--config configs/lancashire.yaml` run, logged to a temporary MLflow store. "
        f"Chicago took {seconds['chicago']:.0f} s (target 60 s), Lancashire {seconds['lancashire']:.0f} s. "
        "Means over folds ± their standard deviation over folds; each leaderboard sorted by hit rate at 5%. "
        "CRPS of the negative-binomial forecast (lower is better) and the PIT coverage of its central 50%, "
        "80% and 90% intervals, pooled over folds.",
        [
            "data",
            "horizon",
            "model",
            "folds",
            "hit rate 1%",
            "hit rate 5%",
            "PAI 1%",
            "PAI 5%",
            "PEI* 1%",
            "PEI* 5%",
            "CRPS",
            "coverage 50/80/90",
        ],
        rows,
    )
    write_results(
        "real_data_champion",
        "The champion chosen by evidence on real data",
        "Command: `make bench` (`bench/real_data.py`): `choose_champion` on the backtests above. The ratio "
        "and the difference compare the champion's hit rate at 5% with the better of HistoricalRateBaseline "
        "and TimeWeightedRateBaseline, fold by fold (95% interval, Newey-West with the folds' overlap). "
        "Poisson CRPS: a Poisson law around the historical rate, the reference the distributions must beat.",
        [
            "data",
            "horizon",
            "champion",
            "hit rate 5%",
            "best rate baseline",
            "ratio",
            "difference [95% interval]",
            "CRPS",
            "Poisson CRPS",
            "why",
        ],
        champions,
    )
    write_results(
        "real_data_speed",
        "Real-data backtest times",
        "Command: `make bench` (`bench/real_data.py`). Wall-clock seconds and the process's CPU seconds "
        "(all its threads); the Chicago configuration's row includes reading the data and the panel, the "
        "four families' row the panel, not the data read. Other work on the machine slows every row: the "
        f"load average (1 minute) at the end was {os.getloadavg()[0]:.1f}. The busy row runs "
        "`python -c 'while True: pass'` beside the backtest.",
        ["run", "measured", "target", "met"],
        speed_rows({"seconds": seconds["chicago"], "cpu": cpu["chicago"]}),
    )


if __name__ == "__main__":
    main()
