"""Benchmark of the forecast store: recording 100,000 units' forecast (issue 19's target: <= 2 s)
into SQLite and into Parquet, recording it again (every row already there), and reading it back.

    cd bench && ../.venv/bin/python forecast_store.py

Each step runs in a fresh process: a small model is trained and a forecast of 100,000
grids built first (not timed), then the step runs ``RUNS`` times, each into a new store
(or the same one, for the second recording); the table gives the median and the worst.
"""

from __future__ import annotations

import os

from common import measure, write_results

UNITS = 100_000
RUNS = 5
SETUP = """
import tempfile
import numpy as np
import pandas as pd
from riskmodel import train
from riskmodel.datasets import simulate_district
from riskmodel.store import ForecastStore
from riskmodel.models import HistoricalRateBaseline
trained = train(simulate_district("tiny", seed=0), model=HistoricalRateBaseline(), track=False)
rng = np.random.default_rng(0)
p = rng.uniform(0, 1, {units})
expected = -np.log1p(-p * 0.999)
frame = pd.DataFrame({{
    "grid_id": [f"G{{i:06d}}" for i in range({units})], "level": "grid",
    "as_of": pd.Timestamp("2024-06-03"), "horizon_days": 28.0, "probability": p,
    "expected_count": expected, "low": np.floor(expected / 3), "high": np.ceil(expected * 3), "tier": "amber",
}}).sort_values("probability", ascending=False, ignore_index=True)
frame["rank"] = np.arange(1, len(frame) + 1)
def store(kind):
    folder = tempfile.mkdtemp()
    return ForecastStore(folder + "/forecasts.db" if kind == "sqlite" else folder + "/parquet/")
"""
STEP = """
import numpy as np
times, written = [], []
for _ in range({runs}):
    target = store({kind!r})
    if {again}:
        target.record(frame, model=trained)
    started = time.perf_counter()
    written.append(target.record(frame, model=trained))
    times.append(time.perf_counter() - started)
    if {read}:
        started = time.perf_counter()
        read = target.read()
        times[-1] = time.perf_counter() - started
        written[-1] = len(read)
facts = {{"median": float(np.median(times)), "worst": max(times), "rows": written[-1]}}
"""


def main() -> None:
    load = os.getloadavg()[0]
    rows = []
    for kind in ("sqlite", "parquet"):
        for what, again, read, target in (
            ("record 100,000 units' forecast into a new store", False, False, 2.0),
            ("record it again (every row already there: 0 written)", True, False, None),
            ("read it back", False, True, None),
        ):
            facts = measure(STEP.format(runs=RUNS, kind=kind, again=again, read=read), SETUP.format(units=UNITS))
            met = "" if target is None else ("yes" if facts["worst"] <= target else "NO")
            rows.append(
                [
                    "SQLite" if kind == "sqlite" else "Parquet",
                    what,
                    f"{facts['rows']:,}",
                    f"{facts['median']:.2f} s median, {facts['worst']:.2f} s worst of {RUNS}",
                    f"{facts['peak_gib']:.2f}",
                    "" if target is None else f"<= {target:g} s",
                    met,
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    load = max(load, os.getloadavg()[0])
    cores = os.cpu_count() or 1
    shared = f"Load average up to {load:.1f} on {cores} cores" + (
        ": other jobs shared the machine, so the times are longer than on an idle one." if load > cores - 0.5 else "."
    )
    write_results(
        "forecast_store",
        "Forecast store benchmark",
        "Command: `cd bench && ../.venv/bin/python forecast_store.py`. A fresh process per step trains a "
        "small model and builds a forecast of 100,000 grids like `riskmodel.predict`'s (not timed), then "
        "calls `ForecastStore(...).record(frame, model=trained)` (the rows checked, keyed and written in one "
        "transaction; SQLite in WAL mode on the local disk) or `.read()`; rows: written, or read. " + shared,
        ["store", "step", "rows", "measured", "peak GiB", "target", "met"],
        rows,
    )


if __name__ == "__main__":
    main()
