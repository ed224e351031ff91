"""The prevention loop checked against the simulator's truth.

    cd bench && ../.venv/bin/python prevention.py coverage   # the randomised estimate's interval and bias
    cd bench && ../.venv/bin/python prevention.py policies   # disputes prevented per 100 visits, by policy
    cd bench && ../.venv/bin/python prevention.py audit      # the feedback loop of the risk policy

Each writes its table to bench/results/prevention_<name>.md. Seeds and sizes are the
issue's: coverage over 20 seeds of `small` and 5 of `district`; policies over 52 weekly
rounds on `district` with a capacity of 2% of grids a week and retraining every 4 weeks.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from common import write_results

from riskmodel.datasets import NoVisits, RandomVisits, simulate_district
from riskmodel.evaluation import visit_effect
from riskmodel.prevention import HistoricalRateVisits, OracleVisits, RiskVisits, UpliftVisits

HORIZON = 28


def randomised(preset: str, seed: int) -> dict:
    """One simulation with a randomised margin; the estimate against the truth."""
    policy = HistoricalRateVisits(capacity=0.05, explore=0.5, seed=seed)
    district = simulate_district(preset, seed=seed, policy=policy)
    estimate = visit_effect(district, horizon=HORIZON).iloc[0]
    truth = district.truth.visit_effect(horizon=HORIZON, per="visit")
    plans = district.plans
    explore = plans[(plans["assignment"] == "explore") & (plans["week"] + pd.Timedelta(days=HORIZON) <= district.end)]
    drawn = truth.merge(explore[["plan_id", "grid_id"]], on=["plan_id", "grid_id"])
    true = drawn["prevented"].sum() / len(explore)  # intention to treat: a visit not made prevents nothing
    return {
        "effect": estimate["effect"],
        "low": estimate["ci_low"],
        "high": estimate["ci_high"],
        "true": true,
        "treated": estimate["n_treated"],
    }


def coverage() -> None:
    rows = []
    for preset, seeds in (("small", range(20)), ("district", range(5))):
        started = time.perf_counter()
        runs = pd.DataFrame([randomised(preset, seed) for seed in seeds])
        covered = (runs["low"] <= runs["true"]) & (runs["true"] <= runs["high"])
        bias = (runs["effect"] - runs["true"]).mean() / runs["true"].mean()
        se = (runs["effect"] - runs["true"]).std() / np.sqrt(len(runs)) / runs["true"].mean()
        rows.append(
            [
                preset,
                str(len(runs)),
                f"{runs['true'].mean():.3f}",
                f"{runs['effect'].mean():.3f}",
                f"{covered.mean():.2f}",
                f"{bias:+.1%} ± {se:.1%}",
                f"{(runs['high'] - runs['low']).mean():.3f}",
                f"{runs['treated'].mean():.0f}",
                f"{time.perf_counter() - started:.0f}",
            ]
        )
        print(rows[-1], flush=True)
    write_results(
        "prevention_coverage",
        "Randomised visit-effect estimate against the truth",
        "HistoricalRateVisits(capacity=5% of grids a week, explore=0.5) for the last 52 weeks of each seed; "
        "visit_effect(horizon=28) against the truth's mean over the drawn units (not reached counts as no effect). "
        "Bias: mean error over seeds / mean true effect, ± its standard error.",
        [
            "preset",
            "seeds",
            "true effect",
            "mean estimate",
            "90% CI coverage",
            "bias",
            "mean CI width",
            "treated per seed",
            "seconds",
        ],
        rows,
    )


def policies(equal: bool = False) -> None:
    """Disputes prevented per 100 visits on `district`, 52 rounds, 2% of grids a week."""
    capacity = 0.02
    makers = {
        "none": lambda seed: NoVisits(),
        "random": lambda seed: RandomVisits(capacity=capacity, seed=seed),
        "historical rate": lambda seed: HistoricalRateVisits(capacity=capacity, seed=seed),
        "risk": lambda seed: RiskVisits(capacity=capacity, seed=seed),
        "uplift": lambda seed: UpliftVisits(capacity=capacity, explore=0.3, seed=seed),
        "oracle uplift": lambda seed: OracleVisits(capacity=capacity),
    }
    seeds = range(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    overrides = {"visit_effect": "equal"} if equal else {}
    results = []
    for seed in seeds:
        baseline = None
        for name, make in makers.items():
            started = time.perf_counter()
            district = simulate_district("district", seed=seed, policy=make(seed), **overrides)
            seconds = time.perf_counter() - started
            resident = _resident_in_policy_period(district)
            baseline = resident if name == "none" else baseline
            visits = 0 if district.visits is None else len(district.visits)
            truth = district.truth.visit_effect(horizon=HORIZON, per="visit") if visits else None
            results.append(
                {
                    "seed": seed,
                    "policy": name,
                    "visits": visits,
                    "prevented_per_100": 100 * (baseline - resident) / visits if visits else 0.0,
                    "true_per_100": 100 * truth["prevented"].mean() if visits else 0.0,
                    "seconds": seconds,
                }
            )
            print(results[-1], flush=True)
    table = pd.DataFrame(results)
    summary = table.groupby("policy", sort=False).agg(
        visits=("visits", "mean"),
        prevented=("prevented_per_100", "mean"),
        spread=("prevented_per_100", "std"),
        true=("true_per_100", "mean"),
        true_spread=("true_per_100", "std"),
        seconds=("seconds", "mean"),
    )
    oracle = summary.loc["oracle uplift", "true"]
    rows = [
        [
            name,
            f"{row.visits:.0f}",
            f"{row.prevented:.1f} ± {row.spread:.1f}",
            f"{row.true:.1f} ± {row.true_spread:.1f}",
            f"{row.true / oracle:.2f}" if oracle else "-",
            f"{row.seconds:.0f}",
        ]
        for name, row in summary.iterrows()
    ]
    name = "prevention_policies_equal" if equal else "prevention_policies"
    write_results(
        name,
        "Resident-reported disputes prevented per 100 visits"
        + (" (one equal effect for all units)" if equal else " (effects differ between units: the default)"),
        f"`district`, {len(seeds)} seeds, 52 weekly rounds, capacity 2% of grids a week, risk and uplift retrained "
        "every 4 weeks. 'Prevented' compares the resident-reported cases of the 52 weeks with the same seed's run "
        "without visits (common random numbers); 'true' is the truth's expected cases prevented by each visit "
        "(28 days, own unit). ± is the standard deviation over seeds.",
        [
            "policy",
            "visits",
            "prevented per 100 visits",
            "true per 100 visits",
            "share of oracle (true)",
            "seconds per run",
        ],
        rows,
    )


def _resident_in_policy_period(district) -> int:
    cases = district.cases
    start = district.as_of - pd.Timedelta(weeks=52)
    resident = cases["origin"] == "resident" if "origin" in cases else True
    return int((resident & (cases["reported_at"] >= start)).sum())


if __name__ == "__main__":
    task = sys.argv[1] if len(sys.argv) > 1 else "coverage"
    {"coverage": coverage, "policies": policies, "equal": lambda: policies(equal=True)}[task]()
