"""Benchmark of the Dask path: the `province` preset's features, training and batch
prediction on a LocalCluster of 2 worker processes (one thread each), at two numbers
of partitions.

    make bench            # or: cd bench && ../.venv/bin/python scaleout.py

Every step runs in a fresh process with a fresh cluster, so that each worker's peak
memory (its maximum resident set size) is that step's. The data is a folder written by
`write_partitioned` (16 Parquet files of cases); the cluster and the lazy read are set up
before the clock starts.
"""

from __future__ import annotations

import json
import sys

from common import DATA, measure, simulated, write_results

PARTITIONS = (8, 32)
FEATURE_CUTOFFS = {"start": "2024-01-01", "end": "2025-12-01", "freq": "MS"}  # as in features.py
TRAIN = dict(horizon=28, frequency="4W-MON")  # from a year before the end, every 4 weeks

SETUP = """
import resource
from distributed import Client, LocalCluster, get_task_stream, wait
from riskmodel.scaleout import read_partitioned
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
client = Client(cluster)
data = read_partitioned({folder!r})
partitions = {partitions}

def worker_peaks():
    return sorted(v / 2**20 for v in client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).values())

def task_seconds(stream, prefix):
    spans = [s["stop"] - s["start"] for t in stream for s in t["startstops"]
             if (t["key"][0] if isinstance(t["key"], tuple) else t["key"]).startswith(prefix)
             and s["action"] == "compute"]
    return sum(spans) / max(len(spans), 1), len(spans)
"""
FEATURES = """
from riskmodel.features import GridPanelBuilder
from riskmodel.scaleout import build_panel, fit_builder
with get_task_stream() as stream:
    builder = fit_builder(GridPanelBuilder(cutoffs={cutoffs!r}, horizon=28), data)
    panel = client.persist(build_panel(builder, data, partitions=partitions))
    wait(panel)
    rows = int(panel.map_partitions(len).sum().compute())
per_task, tasks = task_seconds(stream.data, "_panel_part")
facts = {{"rows": rows, "workers": worker_peaks(), "per_task": per_task, "tasks": tasks}}
"""
TRAINING = """
import pandas as pd
from riskmodel.models import GBMCount
from riskmodel.scaleout import train
start = data.span[1] - pd.Timedelta(days=365)
trained = train(data, model=GBMCount(), train_start=start, partitions=partitions, track=False, **{train!r})
trained.save({model!r})
cutoffs = trained.builder.cutoffs
facts = {{"rows": len(cutoffs) * len(trained.units), "workers": worker_peaks()}}
"""
BATCH = """
import pandas as pd
from riskmodel.scaleout import predict_partitioned
with get_task_stream() as stream:
    folder = predict_partitioned(data, {out!r}, model={model!r}, partitions=partitions)
per_task, tasks = task_seconds(stream.data, "_score_part")
rows = len(pd.read_parquet(folder, columns=["grid_id"]))
facts = {{"rows": rows, "workers": worker_peaks(), "per_task": per_task, "tasks": tasks}}
"""


def partitioned(source) -> str:
    """The province as a folder of 16 case files, written once."""
    folder = DATA / "province-partitioned"
    if not (folder / "dataset.json").exists():
        measure(
            f"from riskmodel.io import read_dataset\nfrom riskmodel.scaleout import write_partitioned\n"
            f"write_partitioned(read_dataset({str(source)!r}), {str(folder)!r}, partitions=16)\nfacts = {{}}"
        )
    return str(folder)


def main() -> None:
    folder = partitioned(simulated("province"))
    rows, raw = [], {}
    for partitions in PARTITIONS:
        setup = SETUP.format(folder=folder, partitions=partitions)
        model = str(DATA / f"province-dask-{partitions}")
        steps = [
            ("features: panel monthly over 2 years", FEATURES.format(cutoffs=FEATURE_CUTOFFS)),
            ("training: GBMCount, last year every 4 weeks", TRAINING.format(train=TRAIN, model=model)),
            ("batch prediction: every unit", BATCH.format(out=str(DATA / "province-risk"), model=model)),
        ]
        for step, code in steps:
            facts = measure(code, setup)
            raw[f"{step} / {partitions}"] = facts
            per_task = f"{facts['per_task']:.1f} s x {facts['tasks']}" if "per_task" in facts else ""
            rows.append(
                [
                    step,
                    str(partitions),
                    f"{facts['rows']:,}",
                    f"{facts['seconds']:.1f}",
                    per_task,
                    " / ".join(f"{w:.2f}" for w in facts["workers"]),
                    f"{facts['peak_gib']:.2f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    json.dump(raw, sys.stdout, indent=1)
    write_results(
        "scaleout",
        "Scale-out benchmark (Dask)",
        "Command: `make bench`. Data: the `province` preset (100,000 grids, 2,987,453 cases), read lazily "
        "from a folder of 16 Parquet files of cases. Cluster: `LocalCluster(n_workers=2, "
        "threads_per_worker=1)` on this machine. Seconds are wall-clock for the step; a task is one "
        "partition's share (mean seconds x tasks); worker GiB is each worker process's peak resident "
        "memory; client GiB is the calling process's (it holds the units and plans the partitions).",
        ["step", "partitions", "rows", "seconds", "per task", "worker peak GiB", "client peak GiB"],
        rows,
    )


if __name__ == "__main__":
    main()
