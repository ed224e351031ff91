"""Shared by the benchmarks: run a step in a fresh process, write a results table.

Each step runs in its own Python process so that its peak memory (the process's
maximum resident set size) is its own. ``setup`` runs first and is not timed; the
peak covers the whole process, setup included.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).parents[1] / "data" / "bench"

_RUNNER = """
import json, resource, time
{setup}
t0 = time.perf_counter()
{code}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({{"seconds": seconds, "peak_gib": peak, **facts}}))
"""


def measure(code: str, setup: str = "") -> dict:
    """Run ``setup`` then ``code`` (which sets a dict ``facts``) in a new process."""
    script = _RUNNER.format(setup=setup, code=code)
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def simulated(preset: str, **overrides) -> Path:
    """A simulated dataset folder under data/bench, written once and reused."""
    name = "-".join([preset] + [f"{k}={v}" for k, v in sorted(overrides.items())])
    folder = DATA / name
    if not (folder / "dataset.json").exists():
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from riskmodel.datasets import simulate_district; from riskmodel.io import write_dataset; "
                f"write_dataset(simulate_district({preset!r}, seed=0, **{overrides!r}), {str(folder)!r})",
            ],
            check=True,
        )
    return folder


def write_results(name: str, title: str, note: str, header: list[str], rows: list[list[str]]) -> Path:
    lines = [
        f"# {title}",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}. {note}",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ] + ["| " + " | ".join(row) + " |" for row in rows]
    path = RESULTS / f"{name}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"written to {path}")
    return path
