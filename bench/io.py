"""Benchmark of reading a dataset folder: what checking the files' SHA-256 costs.

    make bench            # or: .venv/bin/python bench/io.py
"""

from __future__ import annotations

import statistics

from common import measure, simulated, write_results

RUNS = 3
TARGET = 10  # per cent: the most the checksums may add to a read


def main() -> None:
    province = simulated("province")
    setup = "from riskmodel.io import read_dataset"

    def code(verify: bool) -> str:
        return (f"d = read_dataset({str(province)!r}, verify={verify}); "
                "facts = {'grids': len(d.grids), 'cases': len(d.cases)}")

    seconds = {True: [], False: []}
    for _ in range(RUNS):  # alternated, so that neither side has the warmer disk cache
        for verify in (False, True):
            facts = measure(code(verify), setup)
            seconds[verify].append(facts["seconds"])
            print(f"verify={verify}: {facts['seconds']:.2f} s", flush=True)
    off, on = statistics.median(seconds[False]), statistics.median(seconds[True])
    overhead = 100 * (on - off) / off
    size = f"{facts['grids']:,} units, {facts['cases']:,} cases"
    rows = [["`read_dataset(verify=False)`", size, f"{off:.2f}", "", ""],
            ["`read_dataset()` (SHA-256 checked)", size, f"{on:.2f}", f"{overhead:+.1f}%",
             f"<= {TARGET}%: {'yes' if overhead <= TARGET else 'NO'}"]]
    write_results("io", "Reading a dataset folder",
                  f"Command: `make bench`. The `province` folder in Parquet; median wall-clock seconds of {RUNS} "
                  "runs each, alternated, each in a fresh process. Row counts are checked in both.",
                  ["step", "data", "seconds", "overhead", "target"], rows)


if __name__ == "__main__":
    main()
