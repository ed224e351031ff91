"""How a visit's true effect varies between units, on the simulator's defaults.

    make bench            # or: cd bench && ../.venv/bin/python visit_effects.py

At each cutoff (every 8 weeks over the last year of the period) the truth's uplift
(expected resident cases a visit now would prevent in its grid over 28 days) and
risk (expected resident cases in the next 28 days without a visit) per grid: the
uplift's coefficient of variation across grids and its Pearson correlation with
the risk, by preset, averaged over cutoffs and seeds (with their range).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from common import write_results

from riskmodel.datasets import simulate_district

RUNS = {"district": range(3), "small": range(5)}


def measure(preset: str, seed: int, **overrides) -> pd.DataFrame:
    district = simulate_district(preset, seed=seed, **overrides)
    end = district.as_of.normalize()
    cutoffs = pd.date_range(end - pd.Timedelta(weeks=52), end - pd.Timedelta(weeks=4), freq="8W-MON")
    rows = []
    for cutoff in cutoffs:
        uplift = district.truth.uplift(cutoff, 28).to_numpy()
        risk = district.truth.expected_counts(cutoff, 28).to_numpy()
        rows.append(
            {
                "preset": preset,
                "seed": seed,
                "cutoff": cutoff.date(),
                "cv": uplift.std() / uplift.mean(),
                "correlation": np.corrcoef(uplift, risk)[0, 1],
                "mean_uplift": uplift.mean(),
                "mean_risk": risk.mean(),
            }
        )
    return pd.DataFrame(rows)


def main(overrides: dict) -> pd.DataFrame:
    runs = pd.concat([measure(p, s, **overrides) for p, seeds in RUNS.items() for s in seeds], ignore_index=True)
    summary = runs.groupby("preset", sort=False).agg(
        cutoffs=("cv", "size"),
        cv=("cv", "mean"),
        cv_min=("cv", "min"),
        cv_max=("cv", "max"),
        correlation=("correlation", "mean"),
        correlation_min=("correlation", "min"),
        correlation_max=("correlation", "max"),
        uplift_per_grid=("mean_uplift", "mean"),
        risk_per_grid=("mean_risk", "mean"),
    )
    return summary.reset_index()


if __name__ == "__main__":
    overrides = dict(arg.split("=", 1) for arg in sys.argv[1:])
    overrides = {k: (v if k == "visit_effect" else float(v)) for k, v in overrides.items()}
    summary = main(overrides)
    print(summary.to_string())
    if not overrides:
        write_results(
            "visit_effects",
            "Visit effects on the simulator (defaults)",
            "Per grid at 7 cutoffs (every 8 weeks over the last year) of each seed: the true uplift (expected resident "
            "cases a visit prevents in its grid over 28 days) and the risk (expected resident cases over 28 days "
            "without a visit). cv: the uplift's coefficient of variation across grids; correlation: Pearson's, "
            "uplift against risk; both averaged over cutoffs and seeds (district: seeds 0-2, small: seeds 0-4), "
            "with their range.",
            list(summary.columns),
            [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in summary.itertuples(index=False)],
        )
