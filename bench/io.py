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
    seconds = {True: [], False: []}
    for _ in range(RUNS):  # alternated, so that neither side has the warmer caches
        for verify in (False, True):
            read = f"d = read_dataset({str(province)!r}, verify={verify})"
            facts = measure(f"{read}; facts = {{'grids': len(d.grids), 'cases': len(d.cases)}}",
                            setup=f"from riskmodel.io import read_dataset; {read}; del d")
            seconds[verify].append(facts["seconds"])
            print(f"verify={verify}: {facts['seconds']:.2f} s", flush=True)
    size = f"{facts['grids']:,} units, {facts['cases']:,} cases"
    off = statistics.median(seconds[False])
    on = statistics.median(seconds[True])
    overhead = 100 * (on / off - 1)
    rows = [["`read_dataset(verify=False)`", size, f"{off:.2f}", "", ""],
            ["`read_dataset()` (SHA-256 checked)", size, f"{on:.2f}", f"{overhead:+.1f}%",
             f"<= {TARGET}%: {'yes' if overhead <= TARGET else 'NO'}"]]
    write_results("io", "Reading a dataset folder",
                  f"Command: `make bench`. The `province` folder in Parquet; median wall-clock seconds of {RUNS} "
                  "runs each, alternated, each in a fresh process after one untimed read of the same kind (on a "
                  "VM, the first read of a process mostly measures the host handing it memory: 0.4-1.2 s at "
                  "random, with or without hashes). Row counts are checked in both; the hashes are computed in a "
                  "thread while the files are parsed.",
                  ["step", "data", "seconds", "overhead", "target"], rows)


if __name__ == "__main__":
    main()
