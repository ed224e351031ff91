"""Benchmark of riskmodel.predict for services: one nightly call on `district` and on
`province` with the model loaded, and 8 threads calling it on `small` for 30 seconds.

    make bench            # or: cd bench && ../.venv/bin/python serving.py

Every step runs in a fresh process that reads the dataset folder and loads the saved
GBMCount model first (not timed); its peak memory covers all of that.
"""

from __future__ import annotations

from common import DATA, measure, simulated, write_results

# The province model is trained on its last half year (a panel of 100,000 grids x 7 cutoffs);
# the others on their whole history. Training is not what is measured here.
TRAIN = """
import pandas as pd
from riskmodel import train
from riskmodel.io import read_dataset
from riskmodel.models import GBMCount
d = read_dataset({data!r})
recent = {recent!r}  # the last 180 days every 4 weeks, or the whole history weekly
start, frequency = (d.end - pd.Timedelta(days=180), "4W-MON") if recent else (None, "W-MON")
train(d, model=GBMCount(), horizon=28, train_start=start, frequency=frequency, track=False).save({model!r})
facts = {{}}
"""
LOADED = """
from riskmodel import load_model, predict
from riskmodel.io import read_dataset
d = read_dataset({data!r})
model = load_model({model!r})
"""
ONCE = """
import numpy as np
times = []
for _ in range({repeat}):
    started = time.perf_counter()
    risk = predict(d, model=model)
    times.append(time.perf_counter() - started)
facts = {{"units": len(risk), "median": float(np.median(times)), "worst": max(times)}}
"""
LOAD = """
import threading
import numpy as np
latencies, errors, stop = [], [], time.perf_counter() + 30
def worker():
    while time.perf_counter() < stop:
        started = time.perf_counter()
        try:
            predict(d, model=model)
        except Exception as error:
            errors.append(repr(error))
        latencies.append(time.perf_counter() - started)
threads = [threading.Thread(target=worker) for _ in range(8)]
began = time.perf_counter()
[t.start() for t in threads]
[t.join() for t in threads]
facts = {"calls": len(latencies), "per_second": len(latencies) / (time.perf_counter() - began),
         "p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
         "errors": len(errors)}
"""


def _model(preset: str) -> str:
    folder = DATA / f"{preset}-GBMCount"
    if not (folder / "model.json").exists():
        measure(TRAIN.format(data=str(simulated(preset)), model=str(folder), recent=preset == "province"))
    return str(folder)


def main() -> None:
    rows = []
    for preset, repeat, target_s, target_gib in (("district", 5, 1, None), ("province", 1, 30, 8)):
        facts = measure(ONCE.format(repeat=repeat), LOADED.format(data=str(simulated(preset)), model=_model(preset)))
        met = facts["worst"] <= target_s and (target_gib is None or facts["peak_gib"] <= target_gib)
        rows.append(
            [
                f"`predict` on `{preset}`, model loaded",
                f"{facts['units']:,} units",
                f"{facts['median']:.2f} s median, {facts['worst']:.2f} s worst of {repeat}",
                f"{facts['peak_gib']:.2f}",
                f"<= {target_s} s" + (f", <= {target_gib} GiB" if target_gib else ""),
                "yes" if met else "NO",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    facts = measure(LOAD, LOADED.format(data=str(simulated("small")), model=_model("small")))
    rows.append(
        [
            "8 threads calling `predict` on `small` for 30 s",
            f"{facts['calls']:,} calls",
            f"{facts['per_second']:.1f} calls/s, p50 {facts['p50']:.2f} s, p95 {facts['p95']:.2f} s, "
            f"{facts['errors']} errors",
            f"{facts['peak_gib']:.2f}",
            "no error",
            "yes" if facts["errors"] == 0 else "NO",
        ]
    )
    print(" | ".join(rows[-1]), flush=True)
    write_results(
        "serving",
        "Serving benchmark",
        "Command: `make bench`. A fresh process reads the dataset folder (Parquet) and loads the saved "
        "GBMCount model, then calls `riskmodel.predict(data, model=model)` (as of the end of the data: "
        "features, probability, expected count, tier and alerts of every grid, drivers of the 200 riskiest); "
        "peak memory is that process's maximum resident set size.",
        ["step", "size", "measured", "peak GiB", "target", "met"],
        rows,
    )


if __name__ == "__main__":
    main()
