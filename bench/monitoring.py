"""Benchmark of the monitor (issue 19): how soon its alarm fires after the simulated world changes,
how often it fires when nothing changed, and how long monitoring a year of `district` forecasts takes.

    make bench            # or: cd bench && ../.venv/bin/python monitoring.py [--seeds 6] [--jobs 2]

Alarms: for each seed, ``small`` is simulated over 3 years unchanged and with each change of
``WORLDS`` from ``CHANGE``; one GBMCount is trained on the data as it stood on ``TRAINED``
(the same in every world: the days before a change are those of the unchanged simulation),
serves a forecast every Monday from ``TRAINED`` to the last one whose 28-day window closes
by the data's end (each on the data as it stood that day, recorded into a SQLite store), and
``riskmodel.monitor`` reads the store at the end of the data. The unchanged world is each
seed's control.

Speed: ``district`` (seed 0), a GBMCount trained on the data as it stood 52 weeks before
the last closed window, 52 weekly forecasts recorded into SQLite (not the target), then
``monitor(store, district, model=trained)`` timed in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from common import measure, simulated, write_results

from riskmodel import monitor, predict, train
from riskmodel.datasets import CategorySurge, NewPlatform, simulate_district
from riskmodel.evaluation import MonitorSettings, first_weeks
from riskmodel.evaluation.alarms import calibration_alarms
from riskmodel.models import GBMCount

TRAINED = pd.Timestamp("2025-01-06")  # two years of history: the simulation starts on 2023-01-01
CHANGE = pd.Timestamp("2025-03-03")
WITHIN = pd.Timedelta(weeks=4)
HORIZON = 28
WORLDS = {
    "unchanged": [],
    "new platform x1.5": [NewPlatform(start=CHANGE, factor=1.5)],
    "new platform x2": [NewPlatform(start=CHANGE, factor=2.0)],
    "neighbour_noise x2 in one street": [CategorySurge(start=CHANGE, category="neighbour_noise", factor=2.0)],
}
KINDS = ["calibration_cusum", "calibration_limits", "hit_rate", "input_drift", "cold_start"]
#: The calibration settings compared (the CUSUM's shift and limit; the others the defaults): the first the defaults.
SETTINGS = [(2.0, 6.0), (1.5, 5.0), (2.0, 5.0), (2.0, 8.0)]
#: The worlds whose exact forecasts are a model trained before the change (a new platform changes the
#: record, not the process, so the simulator's expected counts are those of the world without it).
EXACT = ["unchanged", "new platform x1.5", "new platform x2"]


def exact_weeks(district, weeks) -> pd.DataFrame:
    """The first weeks of the simulator's exact expected counts served every Monday: a perfect forecaster."""
    rows = []
    for as_of in weeks:
        expected = district.truth.expected_counts(as_of, HORIZON)
        rows.append(pd.DataFrame({"grid_id": expected.index, "expected_count": expected.to_numpy(), "as_of": as_of}))
    served = pd.concat(rows).assign(model="exact", version="1", horizon_days=float(HORIZON), probability=0.5)
    served = served.assign(low=np.nan, high=np.nan, tier="", rank=1, alerts="")
    return first_weeks(served, district)


def seed_runs(seed: int) -> list[dict]:
    """Every world of one seed: its alarms (kind and ``known_at``) and the forecasts served."""
    base = simulate_district("small", seed=seed, years=3)
    trained = train(base.as_it_stood(TRAINED), model=GBMCount(), horizon=HORIZON, track=False)
    weeks = pd.date_range(TRAINED, base.end - pd.Timedelta(days=HORIZON), freq="W-MON")
    out = []
    for world, changes in WORLDS.items():
        district = simulate_district("small", seed=seed, years=3, changes=changes) if changes else base
        before = district.as_it_stood(TRAINED).cases.reset_index(drop=True)
        pd.testing.assert_frame_equal(before, base.as_it_stood(TRAINED).cases.reset_index(drop=True))
        with tempfile.TemporaryDirectory() as folder:
            store = os.path.join(folder, "forecasts.db")
            for as_of in weeks:
                predict(district.as_it_stood(as_of), as_of=as_of, model=trained, record=store)
            report = monitor(store, district, model=trained)
        alarms = report.alarms[["kind", "known_at", "message"]].to_dict("records")
        firsts = {"GBMCount": report.weeks}
        if world in EXACT:
            firsts["exact"] = exact_weeks(district, weeks)
        out.append({"seed": seed, "world": world, "weeks": list(weeks), "alarms": alarms, "firsts": firsts})
        print(f"seed {seed} {world}: {[(a['kind'], str(a['known_at'].date())) for a in alarms]}", flush=True)
    return out


def summary(world: str, runs: list[dict]) -> list[str]:
    """One table row: false alarms per model-year by kind, detections within 4 weeks, delays."""
    control = world == "unchanged"
    # Forecasts watched for false alarms: all of them in the control, those known by the change otherwise.
    watched = sum(sum(1 for w in r["weeks"] if control or w + pd.Timedelta(weeks=1) <= CHANGE) for r in runs) / 52
    false = [a for r in runs for a in r["alarms"] if control or a["known_at"] <= CHANGE]
    counts = {k: sum(a["kind"] == k for a in false) for k in KINDS}
    kinds = [f"{k} {n / watched:.2f}" for k, n in counts.items() if n]
    delays = []
    for r in runs:
        after = [a["known_at"] for a in r["alarms"] if a["known_at"] > CHANGE]
        delays.append((min(after) - CHANGE).days if after else None)
    found = [d for d in delays if d is not None]
    within = sum(d is not None and d <= WITHIN.days for d in delays)
    never = "" if len(found) == len(runs) else f" ({len(runs) - len(found)} never)"
    return [
        world,
        str(len(runs)),
        f"{watched:.2f}",
        f"{len(false) / watched:.2f}" + (f" ({', '.join(kinds)})" if kinds else ""),
        f"{within}/{len(runs)}",
        f"{np.median(found):.0f}{never}" if found else "none",
        f"{max(found)}{never}" if found else "none",
    ]


SPEED_SETUP = """
import tempfile
import pandas as pd
from riskmodel import monitor, predict, train
from riskmodel.io import read_dataset
from riskmodel.models import GBMCount
district = read_dataset({data!r})
weeks = pd.date_range(end=district.end - pd.Timedelta(days=28), periods=52, freq="W-MON")
started = time.perf_counter()
trained = train(district.as_it_stood(weeks[0]), model=GBMCount(), horizon=28, track=False)
train_s = time.perf_counter() - started
store = tempfile.mkdtemp() + "/forecasts.db"
started = time.perf_counter()
for as_of in weeks:
    predict(district.as_it_stood(as_of), as_of=as_of, model=trained, record=store)
serve_s = time.perf_counter() - started
"""
SPEED = """
import tracemalloc
report = monitor(store, district, model=trained)
seconds_monitor = time.perf_counter() - t0
tracemalloc.start()
monitor(store, district, model=trained)
traced = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
facts = {"monitor_s": seconds_monitor, "train_s": train_s, "serve_s": serve_s, "traced_mib": traced,
         "grids": int((district.grids["level"] == "grid").sum()), "forecasts": 52,
         "first": str(weeks[0].date()), "last": str(weeks[-1].date()), "alarms": len(report.alarms),
         "scored": len(report.scores)}
"""


def speed() -> list[list[str]]:
    facts = measure(SPEED, SPEED_SETUP.format(data=str(simulated("district"))))
    print(facts, flush=True)
    met = "yes" if facts["monitor_s"] <= 30 else "NO"
    size = f"{facts['grids']:,} grids x 52 weekly forecasts ({facts['first']} to {facts['last']})"
    return [
        ["train GBMCount (weekly cutoffs to the first forecast)", "", f"{facts['train_s']:.1f} s", "", ""],
        ["serve and record 52 weekly forecasts (SQLite)", size, f"{facts['serve_s']:.1f} s", "", ""],
        [
            "`monitor(store, district, model=trained)`",
            size + f": {facts['scored']} weeks scored, {facts['alarms']} alarms",
            f"{facts['monitor_s']:.1f} s; peak {facts['traced_mib']:.0f} MiB traced, "
            f"{facts['peak_gib']:.2f} GiB process",
            "<= 30 s",
            met,
        ],
    ]


def calibration_settings(runs: list[dict]) -> list[list[str]]:
    """The calibration alarms alone, recomputed on every run's first weeks under each of ``SETTINGS``,
    for the GBMCount and the exact forecasts: false alarms per model-year, and the changes caught."""
    rows = []
    for model in ("GBMCount", "exact"):
        for shift, limit in SETTINGS:
            settings = MonitorSettings(cusum_shift=shift, cusum_h=limit)
            row = [model, f"{shift:g}", f"{limit:g}"]
            for world in EXACT:
                found = [(r, calibration_alarms(r["firsts"][model], settings)) for r in runs if r["world"] == world]
                if world == "unchanged":
                    watched = sum(len(r["firsts"][model]) for r, _ in found) / 52
                    row.append(f"{sum(len(a) for _, a in found) / watched:.2f}")
                    continue
                after = [a.loc[a["known_at"] > CHANGE, "known_at"] for _, a in found]
                caught = [(known.min() - CHANGE).days for known in after if len(known)]
                within = sum(d <= WITHIN.days for d in caught)
                row.append(f"{within}/{len(found)}, median {np.median(caught):.0f} d" if caught else "never")
            rows.append(row)
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]


def _short(alarm: dict) -> str:
    """An alarm as ``MM-DD what``: the day it was known and its kind (a calibration alarm: its direction)."""
    what = alarm["kind"].replace("_", " ")
    if alarm["kind"].startswith("calibration"):
        what = alarm["message"].split(" than forecast")[0] + (" (limits)" if alarm["kind"].endswith("limits") else "")
    return f"{alarm['known_at']:%m-%d} {what}"


def per_seed(runs: list[dict]) -> list[list[str]]:
    """One row per seed: the control's alarms, and each changed world's delay to its first alarm after the change."""
    rows = []
    for seed in sorted({r["seed"] for r in runs}):
        mine = {r["world"]: r for r in runs if r["seed"] == seed}
        row = [str(seed), ", ".join(_short(a) for a in mine["unchanged"]["alarms"]) or "none"]
        for world in list(WORLDS)[1:]:
            after = [a["known_at"] for a in mine[world]["alarms"] if a["known_at"] > CHANGE]
            row.append(str((min(after) - CHANGE).days) if after else "never")
        rows.append(row)
    return rows


def describe(runs: list[dict], seeds: int, jobs: int, load: float) -> str:
    """The results' note: the command, the machine's load, the scenario and the columns."""
    cores = os.cpu_count() or 1
    shared = f"Load average {load:.1f} on {cores} cores when the run started" + (
        ": other jobs shared the machine, so the times are longer than on an idle one."
        if load > 0.5
        else " (the run's own processes aside, the machine was idle)."
    )
    weeks = runs[0]["weeks"]
    note = (
        f"Command: `cd bench && ../.venv/bin/python monitoring.py --seeds {seeds} --jobs {jobs}`. {shared}\n\n"
        f"Alarms: per seed (0 to {seeds - 1}), the `small` district simulated over 3 years, unchanged and with "
        f"each change from {CHANGE.date()}; one GBMCount trained on the data as it stood on {TRAINED.date()} "
        f"serves {len(weeks)} weekly forecasts ({weeks[0].date()} to {weeks[-1].date()}, horizon {HORIZON} days, "
        "each on the data as it stood that day, recorded in SQLite), then `monitor(store, district, model=trained)` "
        "with the default `MonitorSettings` reads them at the data's end (input drift once, at the last forecast; "
        "no hit-rate band: a model trained on a given estimator has no backtest evidence). Columns: *runs*, seeds; "
        "*model-years watched*, the forecasts over which false alarms are counted / 52 (the control: all of them; a "
        f"changed world: those whose first week closed by {CHANGE.date()}); *false alarms per model-year*, the "
        "alarms known in those weeks (by kind); *alarmed within 4 weeks*, runs with an alarm known after the "
        f"change and by {(CHANGE + WITHIN).date()} (for the control, the same weeks); *delay*, the days from the "
        "change to the first alarm known after it (a week's calibration is known a week after its forecast, so 7 "
        "is the earliest)."
    )
    for kind in KINDS:
        example = next((a for r in runs if r["world"] == "unchanged" for a in r["alarms"] if a["kind"] == kind), None)
        if example is not None:
            note += (
                f' A false {kind} alarm of the control, known on {example["known_at"].date()}: "{example["message"]}".'
            )
    return note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 of each world (default 10)")
    parser.add_argument("--jobs", type=int, default=2, help="seeds run at once, one process each (default 2)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = [run for seed in pool.map(seed_runs, range(args.seeds)) for run in seed]
    alarms = [summary(world, [r for r in runs if r["world"] == world]) for world in WORLDS]
    for row in alarms:
        print(" | ".join(row), flush=True)
    speeds = speed()
    header = ["world", "runs", "model-years watched", "false alarms per model-year", "alarmed within 4 weeks"]
    path = write_results(
        "monitoring",
        "Monitor benchmark",
        describe(runs, args.seeds, args.jobs, load),
        header + ["median delay (days)", "max delay (days)"],
        alarms,
    )
    lines = (
        [
            "",
            "Per seed: the control's alarms (the day each was known, 2025) and the delay in days to each changed "
            "world's first alarm after the change.",
            "",
        ]
        + _table(["seed", "unchanged: alarms"] + [f"{w}: delay" for w in list(WORLDS)[1:]], per_seed(runs))
        + [
            "",
            "Calibration settings: the calibration alarms alone, recomputed on the same runs' first weeks (what "
            "`MonitorReport.weeks` holds) under other CUSUM settings, for the GBMCount and for the simulator's exact "
            "expected counts served the same Mondays (a perfect forecaster, not knowing of the platform). The first "
            "row of each is the default. *shift* is `cusum_shift`, *limit* `cusum_h`; a platform's column: runs "
            "alarmed within 4 weeks of the change, and the median delay of those alarmed at all.",
            "",
        ]
        + _table(
            ["forecasts", "shift", "limit", "false alarms per model-year (unchanged)"]
            + [f"{w}: within 4 weeks" for w in EXACT[1:]],
            calibration_settings(runs),
        )
        + [
            "",
            "Speed: `district` (seed 0, 3 years), a GBMCount trained on the data as it stood on the first forecast "
            "(weekly cutoffs), 52 weekly forecasts recorded into a SQLite store (not timed by the target), then the "
            "monitor timed in the same fresh process; its peak memory is that of a second call under `tracemalloc` "
            "(the process's maximum resident set size covers the training too).",
            "",
        ]
        + _table(["step", "size", "measured", "target", "met"], speeds)
    )
    with path.open("a") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
