"""The prevention loop checked against the simulator's truth.

    cd bench && ../.venv/bin/python prevention.py coverage   # the randomised estimate's interval and bias
    cd bench && ../.venv/bin/python prevention.py policies   # disputes prevented per 100 visits, by policy
    cd bench && ../.venv/bin/python prevention.py equal      # the same with one equal effect for all units
    cd bench && ../.venv/bin/python prevention.py audit      # the feedback loop of the risk policy
    cd bench && ../.venv/bin/python prevention.py ranking    # the uplift model's ranking against the truth
    cd bench && ../.venv/bin/python prevention.py speed      # plan_visits on a province

Each writes its table to bench/results/prevention_<name>.md. Seeds and sizes are the
issue's: coverage over 100 seeds of `small` (the issue asks for at least 20: more pin
the bias down) and 20 of `district` (at least 5 asked); policies over 52 weekly
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
    policy = HistoricalRateVisits(capacity=0.05, explore=1.0, seed=seed)
    district = simulate_district(preset, seed=seed, policy=policy)
    estimate = visit_effect(district, horizon=HORIZON).iloc[0]
    truth = district.truth.visit_effect(horizon=HORIZON, per="visit", window="week")
    plans = district.plans
    explore = plans[(plans["assignment"] == "explore") & (plans["week"] + pd.Timedelta(days=HORIZON) <= district.end)]
    truth = truth.merge(district.visits[["visit_id", "plan_id"]], on="visit_id")
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
    for preset, seeds in (("small", range(100)), ("district", range(20))):
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
        "HistoricalRateVisits(capacity=5% of grids a week, explore=1: every visit drawn at the margin, pool 3) for "
        "the last 52 weeks of each seed; "
        "visit_effect(horizon=28) against the truth's mean over the drawn units (not reached counts as no effect), "
        "in the same window: the 28 days from the plan's Monday. "
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
            "seconds (all seeds)",
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
        "ablation: risk trained on all cases": lambda seed: RiskVisits(capacity=capacity, seed=seed, origins=None),
        "ablation: uplift on all cases": lambda seed: UpliftVisits(
            capacity=capacity, explore=0.3, seed=seed, origins=None
        ),
        "ablation: uplift on all cases, no validation": lambda seed: UpliftVisits(
            capacity=capacity, explore=0.3, seed=seed, origins=None, validate=False
        ),
    }
    seeds = _seeds(3)
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
    policy_table(pd.DataFrame(results), equal)


def policy_table(table: pd.DataFrame, equal: bool) -> None:
    """Write the summary of the runs in ``table`` (one row per seed and policy)."""
    seeds = table["seed"].unique()
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
            _spread(row.true, row.true_spread),
            f"{row.true / oracle:.2f}" if oracle else "-",
            _spread(row.prevented, row.spread),
            f"{row.seconds:.0f}",
        ]
        for name, row in summary.iterrows()
    ]
    name = "prevention_policies_equal" if equal else "prevention_policies"
    write_results(
        name,
        "Resident-reported disputes prevented per 100 visits"
        + (" (one equal effect for all units)" if equal else " (effects differ between units: the default)"),
        f"`district`, {len(seeds)} seed(s), 52 weekly rounds, capacity 2% of grids a week (by=None), risk and uplift "
        "retrained every 4 weeks on the data they shaped (GBMCount on resident reports; uplift: explore 0.3 and "
        "ranking by uplift only where it beats risk on its margin; risk: explore 0.1), "
        "every policy with a 28-day cool-down except random; rows marked ablation change one choice of the default. "
        "'True' is the truth's expected resident-reported cases "
        "prevented by each visit in its unit over 28 days, the table's measure. 'Observed' is the difference in "
        "resident-reported cases over the 52 weeks from the same seed's run without visits: noisy, since runs share "
        "their random numbers only until the first visit. ± is the standard deviation over seeds.",
        [
            "policy",
            "visits",
            "true prevented per 100 visits",
            "share of oracle",
            "observed difference per 100 visits",
            "seconds per run",
        ],
        rows,
    )


def _spread(mean: float, sd: float) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.1f}" if np.isnan(sd) else f"{mean:.1f} ± {sd:.1f}"


def audit() -> None:
    """The risk policy in the loop for 52 weeks, retrained on the data it shaped: where the
    visits go, and how well models trained on all cases or on resident reports forecast."""
    from riskmodel import predict, train
    from riskmodel.evaluation.metrics import expected_calibration_error, hit_rate
    from riskmodel.models import GBMCount

    seeds = _seeds(2)
    loops = {
        "risk, trained on all cases": lambda seed: RiskVisits(capacity=0.02, seed=seed, origins=None),
        "risk, trained on resident reports": lambda seed: RiskVisits(capacity=0.02, seed=seed),
        "oracle uplift": lambda seed: OracleVisits(capacity=0.02),
        "none": lambda seed: NoVisits(),
    }
    rows = []
    for seed in seeds:
        for name, make in loops.items():
            district = simulate_district("district", seed=seed, policy=make(seed))
            row = {"seed": seed, "loop": name, **_where_visits_go(district)}
            for training, features in (("all", None), ("resident", {"origins": ["resident"]})):
                hits, errors = [], []
                for back in (28, 56, 84):
                    cutoff = district.as_of - pd.Timedelta(days=back + HORIZON)
                    past = _before(district, cutoff)
                    start = cutoff - pd.Timedelta(weeks=52)
                    model = GBMCount(n_jobs=1)
                    trained = train(
                        past,
                        model=model,
                        horizon=HORIZON,
                        frequency="2W-MON",
                        train_start=start,
                        features=features,
                        track=False,
                    )
                    risk = predict(past, model=trained, as_of=cutoff, drivers=0).set_index("grid_id")
                    from riskmodel.prevention import resident_counts

                    y = resident_counts(district, risk.index, "grid", cutoff, HORIZON)
                    hits.append(hit_rate(y, risk["expected_count"].to_numpy(), k=0.05))
                    errors.append(expected_calibration_error((y > 0).astype(int), risk["probability"].to_numpy()))
                row[f"hit_{training}"] = float(np.mean(hits))
                row[f"ece_{training}"] = float(np.mean(errors))
            rows.append(row)
            print(row, flush=True)
    audit_table(pd.DataFrame(rows))


def audit_table(runs: pd.DataFrame) -> None:
    """Write the audit's table from its runs (one row per seed and loop)."""
    seeds = runs["seed"].unique()
    table = runs.groupby("loop", sort=False).mean(numeric_only=True)
    none = table.loc["none"]
    out = [
        [
            name,
            f"{row.top_decile:.2f}",
            f"{row.distinct_per_quarter:.0f}",
            f"{row.hit_all:.3f} ({row.hit_all / none.hit_all:.2f})",
            f"{row.hit_resident:.3f} ({row.hit_resident / none.hit_resident:.2f})",
            f"{row.ece_all:.3f}",
            f"{row.ece_resident:.3f}",
        ]
        for name, row in table.iterrows()
    ]
    write_results(
        "prevention_audit",
        "The feedback loop: where the risk policy's visits go, and the forecasts it leaves behind",
        f"`district`, {len(seeds)} seed(s), 52 weekly rounds at 2% of grids a week, the risk policy retrained every 4 "
        "weeks. Top decile: share of visits to units in the true top decile of risk that week. Distinct: units visited "
        "per quarter. Hit rate at 5% on resident-reported disputes (28 days; mean of 3 cutoffs in the last 16 weeks) "
        "of GBMCount trained on all cases or on resident reports only, and its ratio to the same model in the "
        "simulation without visits; ECE of P(at least one resident case).",
        [
            "loop",
            "visits to true top decile",
            "distinct units per quarter",
            "hit rate, all cases (vs none)",
            "hit rate, resident only (vs none)",
            "ECE all",
            "ECE resident",
        ],
        out,
    )


def _seeds(default: int) -> range:
    """The seeds of the command line's second argument: ``N`` (0 to N-1) or ``A:B``."""
    if len(sys.argv) <= 2:
        return range(default)
    first, _, last = sys.argv[2].rpartition(":")
    return range(int(first or 0), int(last))


def _where_visits_go(district) -> dict:
    visits = district.visits
    if visits is None or visits.empty:
        return {"top_decile": np.nan, "distinct_per_quarter": np.nan}
    week = visits["visited_at"].dt.to_period("W-SUN").dt.start_time
    shares = []
    for monday, grids in visits.groupby(week)["grid_id"]:
        risk = district.truth.expected_counts(monday, HORIZON)
        shares.append(grids.isin(risk[risk >= risk.quantile(0.9)].index).mean())
    distinct = visits.groupby(visits["visited_at"].dt.to_period("Q"))["grid_id"].nunique()
    return {"top_decile": float(np.mean(shares)), "distinct_per_quarter": float(distinct.mean())}


def _before(district, cutoff):
    """The data as it was recorded before ``cutoff``."""
    return district.replace(
        cases=district.cases[district.cases["reported_at"] < cutoff],
        visits=None if district.visits is None else district.visits[district.visits["visited_at"] < cutoff],
        plans=None if district.plans is None else district.plans[district.plans["week"] < cutoff],
        grid_history=district.grid_history[district.grid_history["valid_from"] < cutoff],
        as_of=cutoff,
    )


def speed() -> None:
    """plan_visits on a forecast of `province`'s size (100,000 grids, 36 to a community)."""
    from common import measure

    setup = """
import numpy as np, pandas as pd
from riskmodel.prevention import plan_visits
rng = np.random.default_rng(0)
n = 100_000
forecast = pd.DataFrame({"grid_id": [f"G{i:06d}" for i in range(n)],
    "community_id": [f"C{i // 36:05d}" for i in range(n)], "as_of": pd.Timestamp("2025-12-01"),
    "probability": rng.random(n), "expected_count": rng.gamma(1.0, 1.0, n),
    "top_drivers": "14 cases in 364 days (+1.2)"})
"""
    code = """
import time
times = []
for _ in range(5):
    started = time.perf_counter()
    plan = plan_visits(forecast, capacity=2, explore=0.1, seed=0)
    times.append(time.perf_counter() - started)
facts = {"median": float(np.median(times)), "worst": max(times), "rows": len(plan)}
"""
    facts = measure(code, setup)
    write_results(
        "prevention_speed",
        "plan_visits on a province",
        "A forecast of 100,000 grids in communities of 36 (province's layout), capacity 2 a community, explore 0.1; "
        "5 calls in one process. The 52 weekly rounds on `district` are timed in prevention_policies.md.",
        ["units", "plan rows", "median seconds", "worst seconds", "peak GiB"],
        [["100000", str(facts["rows"]), f"{facts['median']:.2f}", f"{facts['worst']:.2f}", f"{facts['peak_gib']:.2f}"]],
    )


def ranking() -> None:
    """The uplift model's ranking against the risk ranking and the oracle's, scored by the
    truth's uplift in each one's top 2% of grids; and a ceiling: a model fitted to the true
    uplift of the other cutoffs (what the features could tell with noiseless outcomes)."""
    import lightgbm as lgb

    from riskmodel import train
    from riskmodel.models import GBMCount, UpliftRegressor
    from riskmodel.prevention import uplift_rows

    district = simulate_district("district", seed=1, policy=HistoricalRateVisits(capacity=0.03, explore=1.0, seed=1))
    end = district.as_of
    trained = train(
        district,
        model=GBMCount(n_jobs=2),
        horizon=HORIZON,
        frequency="2W-MON",
        train_start=end - pd.Timedelta(weeks=52),
        features={"origins": ["resident"]},
        track=False,
    )
    X, y, treated = uplift_rows(district, trained, horizon=HORIZON)
    learned = UpliftRegressor(n_jobs=2).fit(X, y, treated)
    cutoffs = [end - pd.Timedelta(weeks=w) for w in (3, 7, 11)]
    cutoffs = [c - pd.Timedelta(days=c.day_of_week) for c in cutoffs]
    frames = [
        (c, trained.features(district, c).droplevel("cutoff"), district.truth.uplift(c, HORIZON)) for c in cutoffs
    ]
    k = int(0.02 * len(frames[0][2]))

    def top(score, truth):
        return float(truth.to_numpy()[np.argsort(-np.asarray(score), kind="stable")[:k]].sum())

    rows = []
    for i, (cutoff, features, truth) in enumerate(frames):
        features = features.reindex(truth.index)
        others = [f for j, f in enumerate(frames) if j != i]
        ceiling = lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, verbose=-1, n_jobs=2).fit(
            pd.concat([f[1].reindex(f[2].index) for f in others]), np.concatenate([f[2].to_numpy() for f in others])
        )
        uplift = learned.predict(features)
        rows.append(
            [
                str(cutoff.date()),
                f"{top(uplift, truth):.1f}",
                f"{top(trained.score(features)['expected_count'], truth):.1f}",
                f"{top(ceiling.predict(features), truth):.1f}",
                f"{top(truth, truth):.1f}",
                f"{pd.Series(uplift).corr(pd.Series(truth.to_numpy()), method='spearman'):+.2f}",
            ]
        )
        print(rows[-1], flush=True)
    write_results(
        "prevention_ranking",
        "Where would a visit prevent most? Rankings scored by the truth",
        f"`district` seed 1, HistoricalRateVisits(capacity=3% of grids a week, explore=1) for 52 weeks: "
        f"{int(treated.sum())} explored and {int((~treated).sum())} control units with a closed window fit the "
        "UpliftRegressor (X-learner, defaults) on the features of GBMCount trained on resident reports. "
        f"At 3 cutoffs in the last 12 weeks, the true "
        f"uplift (expected resident cases prevented in 28 days) summed over each ranking's top {k} grids (2%). "
        "Ceiling: LightGBM fitted to the true uplift of the other two cutoffs. Spearman: learned uplift against the "
        "true uplift over all grids.",
        ["cutoff", "uplift model", "risk (expected count)", "ceiling", "oracle", "Spearman (uplift model)"],
        rows,
    )


def _resident_in_policy_period(district) -> int:
    cases = district.cases
    start = district.as_of - pd.Timedelta(weeks=52)
    resident = cases["origin"] == "resident" if "origin" in cases else True
    return int((resident & (cases["reported_at"] >= start)).sum())


if __name__ == "__main__":
    task = sys.argv[1] if len(sys.argv) > 1 else "coverage"
    tasks = {"coverage": coverage, "policies": policies, "equal": lambda: policies(equal=True), "audit": audit}
    tasks |= {"ranking": ranking, "speed": speed}
    tasks[task]()
