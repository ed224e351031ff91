"""Benchmark of the foundation: simulating districts and validating them.

Each measurement runs in a fresh Python process so that its peak memory (the
process's maximum resident set size) is its own. Writes bench/results/foundation.md.

    make bench            # or: .venv/bin/python bench/foundation.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "foundation.md"

# (name, code that does the work and returns a dict of facts, target seconds, target GiB)
CASES = [
    ("simulate `district`", "d = simulate_district('district', seed=0); facts = size(d)", 20, None),
    ("simulate `province`", "d = simulate_district('province', seed=0); facts = size(d)", 300, 8),
    ("validate `province`", "d = simulate_district('province', seed=0)\n"
                            "t0 = time.perf_counter(); r = validate(d); facts = size(r.dataset)", 30, None),
]

RUNNER = """
import json, resource, time
from riskmodel import validate
from riskmodel.datasets import simulate_district
def size(d):
    return {{"grids": int((d.grids["level"] == "grid").sum()), "units": len(d.grids), "cases": len(d.cases)}}
t0 = time.perf_counter()
{code}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({{"seconds": seconds, "peak_gib": peak, **facts}}))
"""


def measure(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", RUNNER.format(code=code)], check=True,
                         capture_output=True, text=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for name, code, target_s, target_gib in CASES:
        facts = measure(code)
        target = f"<= {target_s} s" + (f", <= {target_gib} GiB" if target_gib else "")
        met = facts["seconds"] <= target_s and (target_gib is None or facts["peak_gib"] <= target_gib)
        rows.append(f"| {name} | {facts['grids']:,} | {facts['units']:,} | {facts['cases']:,} | "
                    f"{facts['seconds']:.1f} | {facts['peak_gib']:.2f} | {target} | {'yes' if met else 'NO'} |")
        print(rows[-1], flush=True)
    header = [
        "# Foundation benchmark",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}. "
        "Command: `make bench`. Seconds are wall-clock; peak memory is the process's maximum "
        "resident set size (for `validate`, the process also holds the simulated province).",
        "",
        "| step | grids | units | cases | seconds | peak GiB | target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(header + rows) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
