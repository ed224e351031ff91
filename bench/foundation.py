"""Benchmark of the foundation: simulating districts and validating them.

make bench            # or: .venv/bin/python bench/foundation.py
"""

from __future__ import annotations

from common import measure, simulated, write_results

SIZE = 'facts = {"grids": int((d.grids["level"] == "grid").sum()), "units": len(d.grids), "cases": len(d.cases)}'
SIMULATE = "from riskmodel.datasets import simulate_district"


def main() -> None:
    province = simulated("province")
    steps = [
        ("simulate `district`", SIMULATE, f"d = simulate_district('district', seed=0); {SIZE}", 20, None),
        ("simulate `province`", SIMULATE, f"d = simulate_district('province', seed=0); {SIZE}", 300, 8),
        (
            "validate `province`",
            "from riskmodel import validate; from riskmodel.io import read_dataset; "
            f"d = read_dataset({str(province)!r})",
            f"validate(d); {SIZE}",
            30,
            None,
        ),
    ]
    rows = []
    for name, setup, code, target_s, target_gib in steps:
        facts = measure(code, setup)
        met = facts["seconds"] <= target_s and (target_gib is None or facts["peak_gib"] <= target_gib)
        rows.append(
            [
                name,
                f"{facts['grids']:,}",
                f"{facts['units']:,}",
                f"{facts['cases']:,}",
                f"{facts['seconds']:.1f}",
                f"{facts['peak_gib']:.2f}",
                f"<= {target_s} s" + (f", <= {target_gib} GiB" if target_gib else ""),
                "yes" if met else "NO",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    write_results(
        "foundation",
        "Foundation benchmark",
        "Command: `make bench`. Seconds are wall-clock; peak memory is the process's maximum resident "
        "set size (for `validate`, the process also holds the province read from Parquet).",
        ["step", "grids", "units", "cases", "seconds", "peak GiB", "target", "met"],
        rows,
    )


if __name__ == "__main__":
    main()
