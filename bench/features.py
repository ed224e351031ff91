"""Benchmark of the point-in-time features: the grid panel at two presets and two
sizes, and the window counts against a plain pandas groupby/rolling version.

    make bench            # or: .venv/bin/python bench/features.py
"""

from __future__ import annotations

from common import measure, simulated, write_results

SETUP = """
from riskmodel.io import read_dataset
from riskmodel.features import build_grid_panel
d = read_dataset({folder!r})
"""
PANEL = """
panel = build_grid_panel(d, cutoffs={cutoffs!r}, horizon=28)
facts = {{"grids": int((d.grids["level"] == "grid").sum()), "cases": len(d.cases),
          "rows": panel.X.shape[0], "features": panel.X.shape[1]}}
"""
# The same four window counts two ways: the builder's kernel (cases sorted by time, one
# bincount per cutoff and window) and plain pandas (events and probe rows, one per unit and
# cutoff, in one frame; a time-based rolling sum per unit, read at the probes).
PANDAS = """
import numpy as np, pandas as pd
from riskmodel import validate
from riskmodel.features.events import DAY, us
from riskmodel.features.grid_panel import _Cases
v = validate(d).dataset
units = np.sort(v.grids.loc[v.grids["level"] == "grid", "grid_id"].to_numpy())
cutoffs = pd.date_range(**{cutoffs!r})
windows = (7, 28, 91, 364)
t0 = time.perf_counter()
cases = _Cases(v.cases, pd.Index(units).get_indexer(v.cases["grid_id"].map(v.ancestors("grid"))), [])
ours = {{f"count_{{w}}d": np.concatenate([np.bincount(cases.unit[cases.span(c - w * DAY, c)], minlength=len(units))
                                        for c in us(cutoffs)]) for w in windows}}
ours_seconds = time.perf_counter() - t0
t0 = time.perf_counter()
events = pd.DataFrame({{"unit": v.cases["grid_id"].map(v.ancestors("grid")), "time": v.cases["reported_at"],
                       "n": 1.0, "probe": False}})
probes = pd.DataFrame({{"unit": np.tile(units, len(cutoffs)), "time": np.repeat(cutoffs, len(units)),
                       "n": 0.0, "probe": True}})
both = pd.concat([events, probes], ignore_index=True).sort_values(["unit", "time"], kind="stable")
theirs = {{}}
for w in windows:
    rolled = both.groupby("unit").rolling(f"{{w}}D", on="time", closed="left")["n"].sum()
    theirs[f"count_{{w}}d"] = rolled.fillna(0).to_numpy()[both["probe"].to_numpy()]  # empty windows: NaN
at = both.loc[both["probe"], ["unit", "time"]]
theirs = pd.DataFrame(theirs, index=pd.MultiIndex.from_frame(at, names=["grid_id", "cutoff"]))
pandas_seconds = time.perf_counter() - t0
index = pd.MultiIndex.from_arrays([np.tile(units, len(cutoffs)), np.repeat(cutoffs, len(units))])
assert np.array_equal(theirs.reindex(index).to_numpy(), pd.DataFrame(ours).to_numpy()), "window counts differ"
panel = build_grid_panel(v, cutoffs={cutoffs!r}, horizon=28).X
assert np.array_equal(panel[list(ours)].to_numpy(), pd.DataFrame(ours).to_numpy()), "the panel differs"
facts = {{"ours": ours_seconds, "pandas": pandas_seconds, "rows": len(index)}}
"""

DISTRICT_CUTOFFS = {"start": "2024-01-01", "end": "2025-12-29", "freq": "W-MON"}  # its last two years
PROVINCE_CUTOFFS = {"start": "2024-01-01", "end": "2025-12-01", "freq": "MS"}


def main() -> None:
    rows = []
    steps = [
        ("`district`, weekly over 2 years", simulated("district"), DISTRICT_CUTOFFS, 15, 3),
        (
            "`province` with 25,000 grids, monthly over 2 years",
            simulated("province", n_grids=25_000),
            PROVINCE_CUTOFFS,
            None,
            None,
        ),
        ("`province`, monthly over 2 years", simulated("province"), PROVINCE_CUTOFFS, 300, 12),
    ]
    timings = {}
    for name, folder, cutoffs, target_s, target_gib in steps:
        facts = measure(PANEL.format(cutoffs=cutoffs), SETUP.format(folder=str(folder)))
        timings[name] = facts
        target = f"<= {target_s} s, <= {target_gib} GiB" if target_s else "(size for the ratio)"
        met = (
            ""
            if target_s is None
            else ("yes" if facts["seconds"] <= target_s and facts["peak_gib"] <= target_gib else "NO")
        )
        rows.append(
            [
                name,
                f"{facts['grids']:,}",
                f"{facts['cases']:,}",
                f"{facts['rows']:,}",
                str(facts["features"]),
                f"{facts['seconds']:.1f}",
                f"{facts['peak_gib']:.2f}",
                target,
                met,
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    small, large = (timings[s[0]] for s in steps[1:])
    growth = (
        f"From {small['rows']:,} to {large['rows']:,} rows ({large['rows'] / small['rows']:.1f}x) the time "
        f"grows {large['seconds'] / small['seconds']:.1f}x."
    )
    versus = measure(PANDAS.format(cutoffs=DISTRICT_CUTOFFS), SETUP.format(folder=str(simulated("district"))))
    comparison = (
        f"Window counts of the `district` panel ({versus['rows']:,} rows, windows of 7, 28, 91 and "
        f"364 days): the builder's kernel {versus['ours']:.2f} s, plain pandas groupby/rolling "
        f"{versus['pandas']:.2f} s ({versus['pandas'] / versus['ours']:.0f}x), the same values."
    )
    print(growth, comparison, sep="\n")
    write_results(
        "features",
        "Feature benchmark",
        "Command: `make bench`. Seconds are wall-clock for `build_grid_panel` (validation included) on a "
        "dataset read from Parquet; peak memory is the process's maximum resident set size, dataset "
        f"included.\n\n{growth}\n\n{comparison}",
        ["panel", "grids", "cases", "rows", "features", "seconds", "peak GiB", "target", "met"],
        rows,
    )


if __name__ == "__main__":
    main()
