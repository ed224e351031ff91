"""Benchmark of many platforms, one dispute (issue 20): how well and how fast raw platform exports
are ingested and linked into disputes, and what linkage changes downstream.

    make bench    # or: cd bench && ../.venv/bin/python linkage.py [accuracy|province|effects] [--seeds 5] [--jobs 2]

accuracy: ``district`` (seeds 0 and 1, the default duplication) simulated and written as raw
platform exports by ``export_platforms`` (setup, not timed), then, in a fresh process,
``ingest`` of its ``sources.yaml`` and ``link_reports`` on the ingested dataset, scored against
``truth_disputes.csv`` (pairwise and B-cubed). province: the same pipeline on ``province`` (seed
0), its setup timed too. effects: over seeds of ``small`` (3 years), the spike detector (target
``"waves"``) and a GBMCount's hit rate @5% on the true disputes, with no duplicates, with
duplicates and linkage off (every report counts) and with duplicates linked by ``link_reports``.
Tables: bench/results/linkage.md, linkage_province.md and linkage_effects.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from common import DATA, measure, write_results

TARGET_SCORE = 0.95
TARGETS_S = {"district": 60.0, "province": 15 * 60.0}
PROVINCE_GIB = 12.0

EXPORT = """
import json, sys, time
from riskmodel.datasets import export_platforms, simulate_district
t0 = time.perf_counter()
district = simulate_district({preset!r}, seed={seed})
simulate_s = time.perf_counter() - t0
t0 = time.perf_counter()
export_platforms(district, {folder!r})
export_s = time.perf_counter() - t0
facts = {{"simulate_s": simulate_s, "export_s": export_s, "reports": len(district.cases),
         "disputes": int(district.cases["dispute_id"].nunique())}}
open({out!r}, "w").write(json.dumps(facts))
"""

PIPELINE = """
import pandas as pd
from riskmodel import link_reports
from riskmodel.evaluation import bcubed_scores, pairwise_scores
from riskmodel.io import ingest
started = time.perf_counter()
ingested = ingest({config!r})
ingest_s = time.perf_counter() - started
started = time.perf_counter()
linked = link_reports(ingested.dataset)
link_s = time.perf_counter() - started
truth = pd.read_csv({truth!r}, dtype=str)
truth.index = truth["source"] + ":" + truth["source_case_id"]
cases = linked.dataset.cases
true = truth["dispute_id"].reindex(cases["case_id"]).to_numpy()
facts = {{"ingest_s": ingest_s, "link_s": link_s, "reports": len(cases),
         "rejected": int(ingested.counts["rejected"].sum()),
         "true_disputes": int(pd.Series(true).nunique()), "found_disputes": linked.disputes,
         "comparisons": linked.comparisons, "threshold": linked.threshold,
         "pairwise": pairwise_scores(true, cases["dispute_id"]), "bcubed": bcubed_scores(true, cases["dispute_id"])}}
"""


def exported(preset: str, seed: int) -> tuple[Path, dict]:
    """The raw exports of ``preset`` (seed) under data/bench, written once in a fresh process, and
    the setup's facts (simulation and export seconds, reports, disputes)."""
    folder = DATA / f"linkage-{preset}-seed{seed}"
    facts = folder / "setup.json"
    if not facts.exists():
        code = EXPORT.format(preset=preset, seed=seed, folder=str(folder), out=str(facts))
        subprocess.run([sys.executable, "-c", code], check=True)
    return folder, json.loads(facts.read_text())


def pipeline(preset: str, seed: int) -> list[str]:
    """One table row: ingest and link ``preset`` (seed) in a fresh process, scored against the truth."""
    folder, setup = exported(preset, seed)
    code = PIPELINE.format(config=str(folder / "sources.yaml"), truth=str(folder / "truth_disputes.csv"))
    try:
        f = measure(code)
    except subprocess.CalledProcessError as error:
        print(error.stderr, flush=True)
        last = (error.stderr or "").strip().splitlines()[-1:] or [f"exit code {error.returncode} (killed?)"]
        failed = f"failed: {last[0][:120]}".replace("|", "/")
        return (
            [preset, str(seed), f"{setup['reports']:,}", f"{setup['disputes']:,} / -", "", failed]
            + [""] * 4
            + [f"{setup['simulate_s']:.0f} + {setup['export_s']:.0f}"]
        )
    print(f, flush=True)
    total = f["ingest_s"] + f["link_s"]
    scores = [f["pairwise"][k] for k in ("precision", "recall")] + [f["bcubed"][k] for k in ("precision", "recall")]
    fast = total <= TARGETS_S[preset] and (preset != "province" or f["peak_gib"] <= PROVINCE_GIB)
    return [
        preset,
        str(seed),
        f"{f['reports']:,}" + (f" ({f['rejected']} rejected)" if f["rejected"] else ""),
        f"{f['true_disputes']:,} / {f['found_disputes']:,}",
        f"{f['comparisons']:,}",
        f"{f['ingest_s']:.1f} + {f['link_s']:.1f} = {total:.1f}",
        f"{f['peak_gib']:.2f}",
        " / ".join(f"{f['pairwise'][k]:.3f}" for k in ("precision", "recall", "f1")),
        " / ".join(f"{f['bcubed'][k]:.3f}" for k in ("precision", "recall", "f1")),
        ("yes" if min(scores[:2]) >= TARGET_SCORE else "NO") + " / " + ("yes" if fast else "NO"),
        f"{setup['simulate_s']:.0f} + {setup['export_s']:.0f}",
    ]


PIPELINE_HEADER = [
    "preset",
    "seed",
    "reports",
    "disputes (true / found)",
    "comparisons",
    "ingest + link = total (s)",
    "peak GiB",
    "pairwise P / R / F1",
    "B-cubed P / R / F1",
    "met: accuracy / speed",
    "setup: simulate + export (s)",
]


# ----- effects -----

HORIZON = 28
FOLDS = 13  # test cutoffs every 4 weeks over the last year
WORLDS = ["(a) no duplicates", "(b) duplicates, linkage off", "(c) duplicates, linkage on"]
METRICS = ["false alarms per 1,000 unit-weeks", "wave detection rate", "hit rate @5% on true disputes"]


def _cutoffs(end: pd.Timestamp) -> pd.DatetimeIndex:
    last = (end - pd.Timedelta(days=HORIZON)).to_period("W-SUN").start_time
    return pd.date_range(end=last, periods=FOLDS, freq="4W-MON")


def world_metrics(data, truth_data, cutoffs) -> list[float]:
    """The spike detector's false alarms and detection rate, and a GBMCount's hit rate @5% on the
    true disputes of ``truth_data`` (its labels joined on unit and cutoff)."""
    from riskmodel.evaluation import backtest
    from riskmodel.evaluation.metrics import hit_rate
    from riskmodel.features import GridPanelBuilder
    from riskmodel.models import GBMCount, SpikeDetector

    waves = backtest(data, [SpikeDetector()], cutoffs=cutoffs, target="waves", track=False, progress=False).folds
    waves = waves[waves["model"] == "SpikeDetector"]
    detected = (waves["wave_detection_rate"] * waves["waves"]).sum() / waves["waves"].sum()
    counts = backtest(data, [GBMCount()], cutoffs=cutoffs, horizon=HORIZON, track=False, progress=False)
    scored = counts.predictions.query("model == 'GBMCount'")
    labels = GridPanelBuilder(cutoffs=cutoffs, horizon=HORIZON).fit(truth_data).build(truth_data).y_count
    joined = scored.join(labels.rename("true_count"), how="left")
    if joined["true_count"].isna().any():
        raise RuntimeError("effects: a scored unit and cutoff without a true-dispute label")
    hits = [hit_rate(g["true_count"], g["expected"], k=0.05) for _, g in joined.groupby(level="cutoff")]
    return [float(waves["false_alarms_per_1000_unit_weeks"].mean()), float(detected), float(np.nanmean(hits))]


def seed_effects(seed: int) -> dict:
    """The three worlds of one seed: their metrics, and the linkage's own scores and time."""
    from riskmodel import link_reports
    from riskmodel.datasets import simulate_district
    from riskmodel.evaluation import pairwise_scores

    base = simulate_district("small", seed=seed, years=3)
    clean = simulate_district("small", seed=seed, years=3, duplicate_share=0)
    raw = dataclasses.replace(base, cases=base.cases.drop(columns="dispute_id"))
    started = time.perf_counter()
    linked = link_reports(raw)
    link_s = time.perf_counter() - started
    cutoffs = _cutoffs(base.end)
    out = {
        "seed": seed,
        "cutoffs": [str(c.date()) for c in (cutoffs[0], cutoffs[-1])],
        "reports": len(base.cases),
        "disputes": int(base.cases["dispute_id"].nunique()),
        "link_s": link_s,
        "pairwise_f1": pairwise_scores(base.cases["dispute_id"], linked.dataset.cases["dispute_id"])["f1"],
        WORLDS[0]: world_metrics(clean, clean, cutoffs),
        WORLDS[1]: world_metrics(raw, base, cutoffs),
        WORLDS[2]: world_metrics(linked.dataset, base, cutoffs),
    }
    print(json.dumps(out), flush=True)
    return out


def _paired(runs: list[dict], world: str, metric: int) -> tuple[float, float]:
    """Mean difference from (a) over seeds and its standard error (paired by seed)."""
    diffs = np.array([r[world][metric] - r[WORLDS[0]][metric] for r in runs])
    return float(diffs.mean()), float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")


def effects_rows(runs: list[dict]) -> list[list[str]]:
    rows = []
    for m, metric in enumerate(METRICS):
        row = [metric]
        for world in WORLDS:
            values = np.array([r[world][m] for r in runs])
            row.append(f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}")
        b, b_se = _paired(runs, WORLDS[1], m)
        c, c_se = _paired(runs, WORLDS[2], m)
        row += [
            f"{b:+.3f} ± {b_se:.3f}: " + ("departs" if abs(b) > 2 * b_se else "within noise"),
            f"{c:+.3f} ± {c_se:.3f}: " + ("within noise" if abs(c) <= 2 * c_se else "departs"),
        ]
        rows.append(row)
    return rows


def effects(seeds: int, jobs: int, load: float) -> None:
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        runs = list(pool.map(seed_effects, range(seeds)))
    wall = time.perf_counter() - started
    first = runs[0]
    note = (
        f"Command: `cd bench && ../.venv/bin/python linkage.py effects --seeds {seeds} --jobs {jobs}` "
        f"({wall / 60:.0f} min). {_load(load)}\n\n"
        f"Per seed (0 to {seeds - 1}), `small` simulated over 3 years ({first['reports']:,} reports of "
        f"{first['disputes']:,} disputes for seed 0) three ways: (a) `duplicate_share=0` (the same disputes, "
        "one report each); (b) the default duplication with `dispute_id` dropped, so every report counts; (c) "
        "the same reports linked by `link_reports` (defaults; pairwise F1 against the truth "
        f"{np.mean([r['pairwise_f1'] for r in runs]):.3f} on average, "
        f"{np.mean([r['link_s'] for r in runs]):.0f} s a seed). The same {FOLDS} test cutoffs, every 4 weeks "
        f"({first['cutoffs'][0]} to {first['cutoffs'][1]}), for every row: the spike detector's backtest (target "
        '`"waves"`; false alarms per 1,000 unit-weeks averaged over folds, detection rate over all the waves '
        "started in them) and a GBMCount's backtest (horizon 28 days), whose expected counts are scored per fold "
        "by `hit_rate` @5% against the true disputes (labels of a `GridPanelBuilder` on the simulation with its "
        "true `dispute_id`, joined on unit and cutoff), averaged over folds. Cells: mean ± standard deviation over "
        "seeds; the differences from (a) are paired by seed, ± their standard error; *departs* when the mean "
        "difference exceeds 2 standard errors, else *within noise*."
    )
    header = ["metric"] + WORLDS + ["(b) − (a)", "(c) − (a)"]
    write_results(
        "linkage_effects", "Linkage benchmark: what duplicates and linkage change", note, header, effects_rows(runs)
    )


def _load(load: float) -> str:
    cores = os.cpu_count() or 1
    return f"Load average {load:.1f} on {cores} cores when the run started" + (
        ": other jobs shared the machine, so the times are longer than on an idle one."
        if load > 0.5
        else " (the run's own processes aside, the machine was idle)."
    )


def accuracy(load: float) -> None:
    rows = [pipeline("district", seed) for seed in (0, 1)]
    note = (
        "Command: `cd bench && ../.venv/bin/python linkage.py accuracy`. " + _load(load) + "\n\n"
        "Setup (not timed): `simulate_district(preset, seed)` with the default duplication, then "
        "`export_platforms` writes each platform's raw export (CSV, Parquet, an Excel workbook, one CSV a year), "
        "a `sources.yaml` and `truth_disputes.csv` under data/bench. Timed in a fresh process: `ingest` of the "
        "YAML, then `link_reports` (defaults) on the ingested dataset; peak GiB is that process's maximum resident "
        "set size. Scores against the true dispute of every report (the ingested `case_id` is "
        '`"<source>:<source_case_id>"`). Targets: pairwise precision and recall >= 0.95 each; `district` '
        "ingested and linked in <= 60 s on 2 cores."
    )
    write_results("linkage", "Linkage benchmark: ingest and link raw platform exports", note, PIPELINE_HEADER, rows)


def province(load: float) -> None:
    row = pipeline("province", 0)
    note = (
        "Command: `cd bench && ../.venv/bin/python linkage.py province`. " + _load(load) + "\n\n"
        "The pipeline of `linkage.md` on `province` (seed 0, the default duplication): setup (simulate and "
        "export, timed but not part of the target), then `ingest` and `link_reports` in a fresh process. "
        "Targets: <= 15 min and <= 12 GiB on 2 cores."
    )
    write_results("linkage_province", "Linkage benchmark: province", note, PIPELINE_HEADER, [row])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", default=["accuracy", "effects"], help="accuracy, province, effects")
    parser.add_argument("--seeds", type=int, default=5, help="effects: seeds 0 .. N-1 (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="effects: seeds run at once (default 2)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    for task in args.tasks:
        if task == "accuracy":
            accuracy(load)
        elif task == "province":
            province(load)
        elif task == "effects":
            effects(args.seeds, args.jobs, load)
        else:
            parser.error(f"unknown task {task!r}: accuracy, province or effects")


if __name__ == "__main__":
    main()
