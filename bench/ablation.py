"""Why each of issue 17's parts helps: the same backtest with one part at a time.

On Chicago (`configs/chicago.yaml`'s data, weekly 2019 folds, 28 days, one fit at the first
fold) and on the `district` simulator (seed 0, the last 26 weekly folds, 28 days, refitted
every 13 folds), hit rate at 5% and CRPS of:

- the 364-day count (the old historical rate) and the all-history rate (half-life infinity);
- the time-weighted rate with its half-life chosen on the training rows, and its
  empirical-Bayes smoothed variant;
- GBMCount on the panel without the long-run features (decays of 180, 365 and 730 days,
  all-history, last-period and shrunk rates), and with them;
- EnsembleCount, the blend;
- GBMCount's forecast distribution with dispersion 0 (Poisson) instead of its fitted one.

    make bench            # or: cd bench && ../.venv/bin/python ablation.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from common import write_results
from sklearn.base import BaseEstimator, RegressorMixin

from riskmodel.config import load_config
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, metrics
from riskmodel.models import (
    EnsembleCount,
    GBMCount,
    HistoricalRateBaseline,
    SmoothedRateBaseline,
    TimeWeightedRateBaseline,
)

ROOT = Path(__file__).parents[1]
LONG_RUN = re.compile(r"(rate_all|shrunk_rate|history_days|last_period|decay_(180|365|730)d)")


class WithoutLongRun(RegressorMixin, BaseEstimator):
    """GBMCount on the panel without its long-run columns (the ablation's "before")."""

    def _columns(self, X):
        return [c for c in X.columns if not LONG_RUN.search(c)]

    def fit(self, X, y):
        self.model_ = GBMCount().fit(X[self._columns(X)], y)
        self.holdout_ = self.model_.holdout_
        return self

    def predict_expected(self, X):
        return self.model_.predict_expected(X[self._columns(X)])

    def predict_proba(self, X):
        return self.model_.predict_proba(X[self._columns(X)])


def _models() -> dict:
    return {
        "364-day count (HistoricalRateBaseline)": HistoricalRateBaseline(),
        "all-history rate (half-life infinity)": TimeWeightedRateBaseline(half_lives=[np.inf]),
        "TimeWeightedRateBaseline (half-life chosen)": TimeWeightedRateBaseline(),
        "SmoothedRateBaseline (empirical Bayes)": SmoothedRateBaseline(),
        "GBMCount without the long-run features": WithoutLongRun(),
        "GBMCount": GBMCount(),
        "EnsembleCount": EnsembleCount(),
    }


def _coverage(predictions: pd.DataFrame, dispersion: float | None = None) -> str:
    """The PIT coverage of the central 50/80/90% intervals, means over folds (the fold's
    fitted dispersion, or ``dispersion``)."""
    folds = [
        metrics.score_distribution(
            g["y_count"], g["expected"], g["dispersion"].iloc[0] if dispersion is None else dispersion
        )
        for _, g in predictions.groupby("fold")
    ]
    return " / ".join(f"{np.mean([f[f'coverage_{level}'] for f in folds]):.3f}" for level in (50, 80, 90))


def _rows(name: str, result) -> list[list[str]]:
    rows = []
    predictions = result.predictions
    for model, row in result.leaderboard.iterrows():
        part = predictions[predictions["model"] == model]
        rows.append([name, model, f"{row['hit_rate_at_5pct']:.4f}", f"{row['crps']:.4f}", _coverage(part)])
    for model in ("GBMCount", "364-day count (HistoricalRateBaseline)"):
        part = predictions[predictions["model"] == model]
        crps = metrics.crps(part["y_count"], part["expected"], 0.0)
        rows.append([name, f"{model}, Poisson (dispersion 0)", "", f"{crps:.4f}", _coverage(part, 0)])
    return rows


def main() -> None:
    rows = []
    district = simulate_district("district", seed=0)
    last = (pd.Timestamp(district.end) - pd.Timedelta(days=28)).normalize()
    cutoffs = pd.date_range(end=last, periods=26, freq="W-MON")
    result = backtest(district, _models(), cutoffs=cutoffs, horizon=28, refit_every=13, track=False, progress=False)
    rows += _rows("district", result)
    if (ROOT.parent / "shared" / "data" / "real").is_dir():
        os.chdir(ROOT)
        config = load_config("configs/chicago.yaml")
        data = config.dataset()
        result = backtest(
            data,
            _models(),
            cutoffs=config.test_cutoffs(data),
            horizon=28,
            train_start=config.training.start,
            train_frequency=config.training.frequency,
            refit_every=config.training.refit_every,
            track=False,
            progress=False,
        )
        rows += _rows("chicago", result)
    write_results(
        "ablation",
        "Ablation: what each part adds",
        "Command: `make bench` (`bench/ablation.py`). Hit rate at 5% (mean over folds), CRPS (pooled) and the "
        "PIT coverage of the central 50/80/90% intervals (means over folds) "
        "of each variant on the same folds: `district` seed 0, the last 26 weekly folds, 28 days, refitted "
        "every 13 folds; Chicago, the configuration's 2019 weekly folds, 28 days, one fit.",
        ["data", "variant", "hit rate 5%", "CRPS", "PIT coverage 50/80/90"],
        rows,
    )


if __name__ == "__main__":
    main()
