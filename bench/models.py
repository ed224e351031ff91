"""Benchmark of the models: GBMRisk's speed on the `district` panel, and every family's
ROC AUC and hit rate at 5% on the `small` preset with a simple time split, next to the
simulator's oracle; and the SpikeDetector on the injected waves.

    make bench            # or: cd bench && ../.venv/bin/python models.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from common import measure, simulated, write_results
from sklearn.base import is_regressor
from sklearn.metrics import roc_auc_score

from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, metrics
from riskmodel.features import build_case_features, build_grid_panel
from riskmodel.models import EscalationClassifier, LogisticRisk, SpikeDetector, grid_models

SPEED = """
from riskmodel.io import read_dataset
from riskmodel.features import build_grid_panel
from riskmodel.models import GBMRisk
panel = build_grid_panel(read_dataset({folder!r}), cutoffs={{"start": "2024-01-01", "end": "2025-12-29",
                                                             "freq": "W-MON"}}, horizon=28)
known = panel.label_known.to_numpy()
X, y = panel.X[known], panel.y[known]
"""
FIT = "model = GBMRisk().fit(X, y); facts = {'rows': len(X), 'features': X.shape[1]}"
PREDICT = """
model = GBMRisk().fit(X, y)
t0 = time.perf_counter()  # only the prediction is timed
model.predict_proba(panel.X)
facts = {'rows': len(panel.X)}
"""


def hit_rate(score: np.ndarray, count: np.ndarray, cutoffs: np.ndarray) -> float:
    """Mean over cutoffs of :func:`riskmodel.evaluation.metrics.hit_rate` at 5% of units."""
    return float(
        np.nanmean([metrics.hit_rate(count[cutoffs == c], score[cutoffs == c], k=0.05) for c in np.unique(cutoffs)])
    )


def families(seed: int = 0) -> list[list[str]]:
    district = simulate_district("small", seed=seed)
    panel = build_grid_panel(
        district, cutoffs={"start": "2023-04-03", "end": "2024-12-02", "freq": "W-MON"}, horizon=28
    )
    cutoffs = panel.X.index.get_level_values("cutoff").to_numpy()
    split = np.datetime64("2024-06-03")
    train = (cutoffs + np.timedelta64(28, "D") <= split) & panel.label_known.to_numpy()
    test = (cutoffs >= split) & panel.label_known.to_numpy()
    y, count = panel.y.to_numpy()[test], panel.y_count.to_numpy()[test]
    rows = []
    for name, model in grid_models().items():
        label = panel.y_count if is_regressor(model) else panel.y
        model.fit(panel.X[train], label[train])
        p, expected = model.predict_proba(panel.X[test])[:, 1], model.predict_expected(panel.X[test])
        rows.append([name, f"{roc_auc_score(y, p):.3f}", f"{hit_rate(expected, count, cutoffs[test]):.3f}"])
    oracle = np.concatenate(
        [
            district.truth.expected_counts(c, 28)
            .reindex(panel.X.index[test & (cutoffs == c)].get_level_values("grid_id"))
            .to_numpy()
            for c in np.unique(cutoffs[test])
        ]
    )
    order = np.argsort(cutoffs[test], kind="stable")  # the oracle was built cutoff by cutoff
    rows.append(
        [
            "oracle (simulator truth)",
            f"{roc_auc_score(y[order], oracle):.3f}",
            f"{hit_rate(oracle, count[order], cutoffs[test][order]):.3f}",
        ]
    )
    return rows


def escalation(seed: int = 0) -> list[list[str]]:
    """ROC AUC of escalation within 30 days: trained on cases reported before 2024-05-01,
    tested on those from 2024-06-01 whose label is known; the oracle is the truth."""
    district = simulate_district("small", seed=seed)
    cases = build_case_features(district, escalation_days=30)
    reported = cases.X.index.get_level_values("reported_at")
    known = cases.label_known.to_numpy()
    train = known & np.asarray(reported < pd.Timestamp("2024-05-01"))
    test = known & np.asarray(reported >= pd.Timestamp("2024-06-01"))
    y = cases.y.to_numpy()[test]
    rows = []
    for model in (EscalationClassifier(), LogisticRisk()):
        p = model.fit(cases.X[train], cases.y[train]).predict_proba(cases.X[test])[:, 1]
        rows.append([type(model).__name__, f"{roc_auc_score(y, p):.3f}"])
    truth = district.truth.escalation_probability.to_numpy()[test]
    rows.append([f"oracle (true probabilities), {test.sum():,} test cases", f"{roc_auc_score(y, truth):.3f}"])
    return rows


WATCH = ["2023-04-03", "2024-12-16"]  # one fold: waves starting after 91 days of history, alarms to 2024-12-29


def waves(seed: int = 0) -> dict:
    """The default SpikeDetector watching every grid and community of the `small` preset daily,
    scored by the backtest's waves target (one fold)."""
    district = simulate_district("small", seed=seed)
    result = backtest(district, [SpikeDetector()], cutoffs=WATCH, target="waves", track=False, progress=False)
    return result.folds.iloc[0].to_dict() | {"all_waves": len(district.truth.waves)}


def detection_summary(runs: list[dict]) -> list[str]:
    """Detection rate, median delay (median of the runs' medians) and false alarms per 1,000
    unit-weeks of pooled runs (the same units and weeks in every run)."""
    watched = sum(r["waves"] for r in runs)
    detected = sum(r["waves"] * r["wave_detection_rate"] for r in runs)
    return [
        f"{sum(r['all_waves'] for r in runs)} ({watched} watched)",
        f"{detected / watched:.0%}",
        f"{np.median([r['wave_median_delay_days'] for r in runs]):.0f} days",
        f"{np.mean([r['false_alarms_per_1000_unit_weeks'] for r in runs]):.1f}",
    ]


def main() -> None:
    folder = str(simulated("district"))
    fit = measure(FIT, SPEED.format(folder=folder))
    predict = measure(PREDICT, SPEED.format(folder=folder))
    speed = [
        [
            "GBMRisk fit, `district` weekly panel",
            f"{fit['rows']:,} rows x {fit['features']}",
            f"{fit['seconds']:.1f} s",
            "<= 60 s",
            "yes" if fit["seconds"] <= 60 else "NO",
        ],
        [
            "GBMRisk predict_proba",
            f"{predict['rows']:,} rows",
            f"{predict['rows'] / predict['seconds']:,.0f} rows/s",
            ">= 500,000 rows/s",
            "yes" if predict["rows"] / predict["seconds"] >= 500_000 else "NO",
        ],
    ]
    print(speed)
    scores = families()
    print(scores)
    cases = escalation()
    print(cases)
    runs = [waves(seed) for seed in range(6)]
    detection = [["0", *detection_summary(runs[:1])], ["0-5 pooled", *detection_summary(runs)]]
    print(detection)
    spike = "\n".join(
        [
            "| seed | waves | detected within 14 days | median delay | false alarms per 1,000 unit-weeks |",
            "| --- | --- | --- | --- | --- |",
        ]
        + ["| " + " | ".join(r) + " |" for r in detection]
    )
    families_table = "\n".join(
        ["| model | ROC AUC | hit rate at 5% |", "| --- | --- | --- |"] + ["| " + " | ".join(r) + " |" for r in scores]
    )
    escalation_table = "\n".join(
        ["| case model | ROC AUC |", "| --- | --- |"] + ["| " + " | ".join(r) + " |" for r in cases]
    )
    write_results(
        "models",
        "Model benchmark",
        "Command: `make bench`. Speed: wall-clock on a dataset read from Parquet; rows/s of "
        "`predict_proba` on the whole panel.\n\n"
        "Families on the `small` preset, seed 0, weekly cutoffs, 28-day horizon, trained on cutoffs "
        "whose label window closed by 2024-06-03, tested on the cutoffs from 2024-06-03 on "
        f"(hit rate at 5% of units, ties at the boundary shared, mean over cutoffs):\n\n{families_table}\n\n"
        "Escalation within 30 days on the `small` preset, trained on cases reported before 2024-05-01, "
        f"tested on those from 2024-06-01:\n\n{escalation_table}\n\n"
        "SpikeDetector (defaults) watching every grid and community of the `small` preset daily "
        '(`backtest(..., target="waves")`, one fold: waves that start from 2023-04-03, after 91 days '
        "of history, to 2024-12-15; alarms to 2024-12-29); target: >= 80% of waves detected within "
        f"their first 14 days with <= 5 false alarms per 1,000 unit-weeks:\n\n{spike}",
        ["step", "size", "measured", "target", "met"],
        speed,
    )


if __name__ == "__main__":
    main()
