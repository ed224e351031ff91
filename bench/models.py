"""Benchmark of the models: GBMRisk's speed on the `district` panel, and every family's
ROC AUC and hit rate at 5% on the `small` preset with a simple time split, next to the
simulator's oracle; and the SpikeDetector on the injected waves.

    make bench            # or: cd bench && ../.venv/bin/python models.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from common import measure, simulated, write_results
from sklearn.metrics import roc_auc_score

from riskmodel.datasets import simulate_district
from riskmodel.features import build_case_features, build_grid_panel
from riskmodel.models import (
    EscalationClassifier,
    GBMCount,
    GBMRisk,
    HistoricalRateBaseline,
    KDEBaseline,
    LastPeriodBaseline,
    LogisticRisk,
    Scorecard,
    SpikeDetector,
)

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


def hit_rate(score: np.ndarray, count: np.ndarray, cutoffs: np.ndarray, share: float = 0.05) -> float:
    """Mean over cutoffs of the share of next-period cases inside the top ``share`` of units."""
    rates = []
    for c in np.unique(cutoffs):
        rows = cutoffs == c
        top = np.argsort(-score[rows], kind="stable")[: max(1, int(round(rows.sum() * share)))]
        rates.append(count[rows][top].sum() / max(count[rows].sum(), 1))
    return float(np.mean(rates))


def families(seed: int = 0) -> list[list[str]]:
    district = simulate_district("small", seed=seed)
    panel = build_grid_panel(district, cutoffs={"start": "2023-04-03", "end": "2024-12-02", "freq": "W-MON"},
                             horizon=28)
    cutoffs = panel.X.index.get_level_values("cutoff").to_numpy()
    split = np.datetime64("2024-06-03")
    train = (cutoffs + np.timedelta64(28, "D") <= split) & panel.label_known.to_numpy()
    test = (cutoffs >= split) & panel.label_known.to_numpy()
    y, count = panel.y.to_numpy()[test], panel.y_count.to_numpy()[test]
    models = {"HistoricalRateBaseline": HistoricalRateBaseline(), "LastPeriodBaseline": LastPeriodBaseline(),
              "KDEBaseline": KDEBaseline(bandwidth_m=700, half_life=60), "LogisticRisk": LogisticRisk(),
              "GBMRisk": GBMRisk(), "GBMCount": GBMCount(), "Scorecard": Scorecard()}
    rows = []
    for name, model in models.items():
        label = panel.y_count if name == "GBMCount" else panel.y
        model.fit(panel.X[train], label[train])
        p, expected = model.predict_proba(panel.X[test])[:, 1], model.predict_expected(panel.X[test])
        rows.append([name, f"{roc_auc_score(y, p):.3f}", f"{hit_rate(expected, count, cutoffs[test]):.3f}"])
    oracle = np.concatenate([district.truth.expected_counts(c, 28).reindex(
        panel.X.index[test & (cutoffs == c)].get_level_values("grid_id")).to_numpy() for c in np.unique(cutoffs[test])])
    order = np.argsort(cutoffs[test], kind="stable")  # the oracle was built cutoff by cutoff
    rows.append(["oracle (simulator truth)", f"{roc_auc_score(y[order], oracle):.3f}",
                 f"{hit_rate(oracle, count[order], cutoffs[test][order]):.3f}"])
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


def waves(seed: int = 0, alpha: float = 1e-3) -> dict:
    """Share of injected waves with an alarm of their category, in their unit (or a unit inside it),
    within their first 14 days; median delay; alarms outside any wave per 1,000 unit-weeks."""
    district = simulate_district("small", seed=seed)
    communities = district.ancestors("community")
    alarms, unit_weeks = [], 0
    for level in ("grid", "community"):
        panel = build_grid_panel(district, cutoffs={"start": "2023-04-03", "end": "2024-12-30", "freq": "W-MON"},
                                 horizon=7, level=level)
        flags = SpikeDetector(alpha=alpha).fit(panel.X).alarms(panel.X)
        unit_weeks += len(flags)
        hits = flags.stack()
        for (unit, cutoff, category) in hits[hits].index:
            alarms.append((unit, cutoff, category, communities.get(unit, unit)))
    found = pd.DataFrame(alarms, columns=["unit", "cutoff", "category", "community"])
    explained = np.zeros(len(found), dtype=bool)
    delays = []
    for wave in district.truth.waves.itertuples():
        same = (found["category"] == wave.category).to_numpy()
        place = (found["community"] == wave.unit_id) if wave.level == "community" else (
            (found["unit"] == wave.unit_id) | (found["unit"] == communities[wave.unit_id]))
        during = ((found["cutoff"] > wave.start) & (found["cutoff"] <= wave.end + pd.Timedelta(days=7))).to_numpy()
        mine = same & place.to_numpy() & during
        explained |= mine
        early = found.loc[mine & (found["cutoff"] <= wave.start + pd.Timedelta(days=14)).to_numpy(), "cutoff"]
        if len(early):
            delays.append((early.min() - wave.start).days)
    false_weeks = found[~explained].groupby(["unit", "cutoff"]).ngroups
    n = len(district.truth.waves)
    return {"waves": n, "detected": len(delays) / n, "delay": float(np.median(delays)) if delays else np.nan,
            "false_per_1000": 1000 * false_weeks / unit_weeks}


def main() -> None:
    folder = str(simulated("district"))
    fit = measure(FIT, SPEED.format(folder=folder))
    predict = measure(PREDICT, SPEED.format(folder=folder))
    speed = [["GBMRisk fit, `district` weekly panel", f"{fit['rows']:,} rows x {fit['features']}",
              f"{fit['seconds']:.1f} s", "<= 60 s", "yes" if fit["seconds"] <= 60 else "NO"],
             ["GBMRisk predict_proba", f"{predict['rows']:,} rows",
              f"{predict['rows'] / predict['seconds']:,.0f} rows/s", ">= 500,000 rows/s",
              "yes" if predict["rows"] / predict["seconds"] >= 500_000 else "NO"]]
    print(speed)
    scores = families()
    print(scores)
    cases = escalation()
    print(cases)
    detection = waves()
    print(detection)
    spike = (f"SpikeDetector (alpha 0.001, at least 3 cases, grid and community panels) on the `small` preset, seed 0: "
             f"{detection['detected']:.0%} of {detection['waves']} injected waves detected within their first 14 "
             f"days, median delay {detection['delay']:.0f} days, {detection['false_per_1000']:.1f} false alarms per "
             "1,000 unit-weeks (target: >= 80% with <= 5).")
    families_table = "\n".join(["| model | ROC AUC | hit rate at 5% |", "| --- | --- | --- |"]
                               + ["| " + " | ".join(r) + " |" for r in scores])
    escalation_table = "\n".join(["| case model | ROC AUC |", "| --- | --- |"]
                                  + ["| " + " | ".join(r) + " |" for r in cases])
    write_results("models", "Model benchmark",
                  "Command: `make bench`. Speed: wall-clock on a dataset read from Parquet; rows/s of "
                  "`predict_proba` on the whole panel.\n\n"
                  "Families on the `small` preset, seed 0, weekly cutoffs, 28-day horizon, trained on cutoffs "
                  "whose label window closed by 2024-06-03, tested on the cutoffs from 2024-06-03 on "
                  f"(hit rate at 5% of units, mean over cutoffs):\n\n{families_table}\n\n"
                  "Escalation within 30 days on the `small` preset, trained on cases reported before 2024-05-01, "
                  f"tested on those from 2024-06-01:\n\n{escalation_table}\n\n{spike}",
                  ["step", "size", "measured", "target", "met"], speed)


if __name__ == "__main__":
    main()
