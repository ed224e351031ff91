"""visit_effect against synthetic districts whose true visit effect is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import Dataset
from riskmodel.evaluation import visit_effect

START = pd.Timestamp("2024-01-01")  # a Monday
HORIZON = 28


def _grids(n_units: int, n_communities: int) -> pd.DataFrame:
    communities = [f"C{c}" for c in range(n_communities)]
    units = [f"G{i:04d}" for i in range(n_units)]
    return pd.DataFrame(
        {
            "grid_id": communities + units,
            "parent_id": [None] * n_communities + [communities[i % n_communities] for i in range(n_units)],
            "level": ["community"] * n_communities + ["grid"] * n_units,
        }
    )


def _cases(rng, units: np.ndarray, rates: np.ndarray) -> pd.DataFrame:
    """Poisson cases per unit and day at the given daily rates, at random times of the day."""
    counts = rng.poisson(rates)
    unit, day = np.nonzero(counts)
    unit, day = np.repeat(unit, counts[unit, day]), np.repeat(day, counts[unit, day])
    seconds = rng.integers(0, 86400, len(day))
    return pd.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(len(day))],
            "reported_at": START + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s"),
            "grid_id": units[unit],
            "category": "neighbour_noise",
            "origin": "resident",
        }
    )


def _covered(days: int, visits: list[tuple[int, int]], n_units: int) -> np.ndarray:
    """How many visits' effects are active per unit and day (an effect lasts HORIZON days)."""
    active = np.zeros((n_units, days), dtype=int)
    for unit, day in visits:
        active[unit, day : day + HORIZON] += 1
    return active


def randomised_world(seed: int, *, n_units=300, n_communities=6, n_weeks=16, pool=6, draw=2, cut=0.4):
    """Weekly plans: per community, a pool of ``pool`` units around the cut of which ``draw`` are
    explored (probability draw / pool); the rest are controls. The top units are visited by rank
    every week. A visit made lowers its unit's rate by ``cut`` for HORIZON days (overlapping
    visits do not add up); 10% of explore visits are not reached. Returns the dataset and the
    true average effect of ordering an explore visit (cases prevented in its plan's window)."""
    rng = np.random.default_rng(seed)
    grids = _grids(n_units, n_communities)
    units = grids["grid_id"].to_numpy()[n_communities:]
    daily = rng.gamma(2.0, 1.5 / 28 / 2, n_units)  # 1.5 cases per 28 days on average
    days = 7 * n_weeks + HORIZON + 7
    top = set(np.argsort(-daily)[:18])
    plan_rows, visit_rows, made = [], [], []
    for k in range(n_weeks):
        week = START + pd.Timedelta(days=7 * k)
        for c in range(n_communities):
            members = np.array([u for u in range(c, n_units, n_communities) if u not in top])
            chosen = rng.choice(members, pool, replace=False)
            for position, unit in enumerate(chosen):
                explore = position < draw
                assignment = "explore" if explore else "control"
                plan_rows.append((f"P{k:02d}", units[unit], week, f"C{c}", 10 + position, assignment, draw / pool))
                if explore:
                    day = 7 * k + int(rng.integers(0, 7))
                    reached = rng.random() >= 0.1
                    kind = str(rng.choice(["screening", "mediation"]))
                    visit_rows.append((f"P{k:02d}", units[unit], day, kind, reached, "explore"))
                    if reached:
                        made.append((unit, day, k, len(plan_rows) - 1))
        for unit in top:
            plan_rows.append((f"P{k:02d}", units[unit], week, f"C{unit % n_communities}", 1, "rank", np.nan))
            visit_rows.append((f"P{k:02d}", units[unit], 7 * k, "screening", True, "rank"))
            made.append((unit, 7 * k, k, -1))
    active = _covered(days, [(u, d) for u, d, _, _ in made], n_units)
    rates = daily[:, None] * np.where(active > 0, 1 - cut, 1.0)
    prevented = np.zeros(len(plan_rows))
    for unit, day, k, row in made:
        if row >= 0:  # the cases the visit's own days of effect took away within its plan's window
            alone = (active[unit] == 1) & (np.arange(days) >= day) & (np.arange(days) < day + HORIZON)
            window = (np.arange(days) >= 7 * k) & (np.arange(days) < 7 * k + HORIZON)
            prevented[row] = daily[unit] * cut * (alone & window).sum()
    plans = pd.DataFrame(
        plan_rows, columns=["plan_id", "grid_id", "week", "group", "priority", "assignment", "explore_probability"]
    )
    truth = prevented[(plans["assignment"] == "explore").to_numpy()].mean()
    visits = pd.DataFrame(visit_rows, columns=["plan_id", "grid_id", "day", "kind", "reached", "assignment"])
    visits = visits.assign(
        visit_id=[f"v{i}" for i in range(len(visits))],
        visited_at=START + pd.to_timedelta(visits["day"], unit="D") + pd.Timedelta(hours=10),
        outcome=np.where(visits["reached"], "no_issue", "not_reached"),
    ).drop(columns=["day", "reached"])
    data = Dataset(
        cases=_cases(rng, units, rates),
        grids=grids,
        visits=visits,
        plans=plans,
        as_of=START + pd.Timedelta(days=days),
    )
    return data, truth


def observational_world(seed: int, *, n_units=800, n_rounds=5, cut=0.4):
    """Rounds eight weeks apart (no effect reaches the next round's window): units are visited
    with a probability that depends only on their expected count, which is the truth."""
    rng = np.random.default_rng(seed)
    grids = _grids(n_units, 4)
    units = grids["grid_id"].to_numpy()[4:]
    daily = rng.gamma(2.0, 1.5 / 28 / 2, n_units)
    expected = daily * HORIZON
    days = 56 * n_rounds
    rows, made, prevented = [], [], []
    for r in range(n_rounds):
        p = 1 / (1 + np.exp(-(-1.5 + 1.5 * np.log(expected / expected.mean()))))
        for unit in np.nonzero(rng.random(n_units) < p)[0]:
            day = 56 * r + int(rng.integers(0, 7))
            made.append((unit, day))
            prevented.append(daily[unit] * cut * (56 * r + HORIZON - day))
        rows += [(units[u], START + pd.Timedelta(days=56 * r), expected[u]) for u in range(n_units)]
    rates = daily[:, None] * np.where(_covered(days, made, n_units) > 0, 1 - cut, 1.0)
    visits = pd.DataFrame(
        {
            "visit_id": [f"v{i}" for i in range(len(made))],
            "grid_id": units[[u for u, _ in made]],
            "visited_at": START + pd.to_timedelta([d for _, d in made], unit="D"),
            "kind": "screening",
        }
    )
    data = Dataset(cases=_cases(rng, units, rates), grids=grids, visits=visits, as_of=START + pd.Timedelta(days=days))
    return data, pd.DataFrame(rows, columns=["grid_id", "week", "expected_count"]), float(np.mean(prevented))


def test_the_randomised_interval_covers_the_true_effect():
    covered, errors, truths = [], [], []
    for seed in range(50):
        data, truth = randomised_world(seed)
        row = visit_effect(data).iloc[0]
        covered.append(row["ci_low"] <= truth <= row["ci_high"])
        errors.append(row["effect"] - truth)
        truths.append(truth)
    assert 0.8 <= np.mean(covered) <= 0.97, np.mean(covered)
    assert abs(np.mean(errors)) < 0.1 * np.mean(truths)  # bias under a tenth of the effect
    assert np.mean(truths) > 0.3  # the worlds do have an effect to find


def test_the_randomised_table_counts_arms_reach_and_subgroups():
    data, truth = randomised_world(0, n_units=600, n_weeks=20)
    table = visit_effect(data, by="kind")
    overall = table.iloc[0]
    plans = data.plans
    assert overall["design"] == "randomised" and overall["by"] == "all"
    assert overall["n_treated"] == (plans["assignment"] == "explore").sum()
    assert overall["n_control"] == (plans["assignment"] == "control").sum()
    assert overall["ci_low"] < overall["effect"] < overall["ci_high"] and overall["effect"] > 0
    not_reached = int((data.visits["outcome"] == "not_reached").sum())
    assert f"{not_reached} of {overall['n_treated']} were not reached" in overall["note"]
    assert "intention to treat" in overall["note"] and "no origin" not in overall["note"]
    assert set(table["value"]) == {"all", "mediation", "screening"}
    kinds = table[table["by"] == "kind"]
    # each kind against the controls of the strata where it was drawn
    assert ((kinds["n_control"] > 0) & (kinds["n_control"] <= overall["n_control"])).all()
    assert kinds["n_treated"].sum() == overall["n_treated"] - not_reached  # reached visits only
    # relative: the effect over the control arm's mean window count
    assert 0 < overall["relative"] < 1
    by_community = visit_effect(data, by="community")
    assert by_community["n_treated"].iloc[1:].sum() == overall["n_treated"]
    assert by_community["effect"].iloc[1:].notna().all()


def test_small_subgroups_get_nan_and_the_reason():
    data, _ = randomised_world(1, n_weeks=4)
    table = visit_effect(data, by="group")
    groups = table[table["by"] == "group"]
    assert len(groups) == 6 and groups["effect"].isna().all() and groups["ci_low"].isna().all()
    assert groups["note"].str.contains("at least 30 in each arm").all()
    assert np.isfinite(table["effect"].iloc[0])


def test_patrol_cases_are_not_counted_and_a_missing_origin_is_said():
    data, _ = randomised_world(2)
    base = visit_effect(data).iloc[0]
    visited = data.visits[data.visits["outcome"] != "not_reached"]
    patrol = pd.DataFrame(
        {
            "case_id": [f"p{i}" for i in range(len(visited))],
            "reported_at": visited["visited_at"].to_numpy(),
            "grid_id": visited["grid_id"].to_numpy(),
            "category": "family",
            "origin": "patrol",
        }
    )
    with_patrol = data.replace(cases=pd.concat([data.cases, patrol], ignore_index=True))
    assert visit_effect(with_patrol).iloc[0]["effect"] == pytest.approx(base["effect"])
    no_origin = visit_effect(with_patrol.replace(cases=with_patrol.cases.drop(columns="origin"))).iloc[0]
    assert "all cases counted" in no_origin["note"]
    assert no_origin["effect"] < base["effect"]  # the patrol finds make visits look worse


def test_rows_whose_window_has_not_closed_are_left_out():
    data, _ = randomised_world(3)
    early = data.replace(as_of=START + pd.Timedelta(days=7 * 10))
    row = visit_effect(early).iloc[0]
    closed = data.plans[data.plans["week"] + pd.Timedelta(days=HORIZON) <= early.as_of]
    assert row["n_treated"] == (closed["assignment"] == "explore").sum()
    assert "had not closed" in row["note"]


def test_the_observational_estimate_recovers_the_effect_when_visits_follow_the_expected_count():
    estimates, truths, covered = [], [], []
    for seed in range(5):
        data, expected, truth = observational_world(seed)
        row = visit_effect(data, expected=expected).iloc[0]
        estimates.append(row["effect"])
        truths.append(truth)
        covered.append(row["ci_low"] <= truth <= row["ci_high"])
    assert row["design"] == "observational" and "confounds" in row["note"]
    assert abs(np.mean(estimates) - np.mean(truths)) < 0.1 * np.mean(truths)
    assert sum(covered) >= 4
    # Without the adjustment, the visited (riskier) units look as though the visits caused cases.
    counts = visit_effect(data, expected=expected.assign(expected_count=1.0)).iloc[0]
    assert counts["effect"] < 0 < truth


def test_bad_input_is_refused_clearly():
    data, _ = randomised_world(4, n_weeks=3)
    with pytest.raises(ValueError, match="no visits"):
        visit_effect(data.replace(visits=None))
    with pytest.raises(ValueError, match="no visits"):
        visit_effect(data.replace(visits=data.visits.iloc[:0]))
    odd = data.plans.assign(assignment=data.plans["assignment"].replace({"control": "holdout"}))
    with pytest.raises(ValueError, match=r"plans.assignment must be one of \['rank', 'explore', 'control'\].*holdout"):
        visit_effect(data, plans=odd)
    for horizon in (0, -7):
        with pytest.raises(ValueError, match="horizon must be a positive"):
            visit_effect(data, horizon=horizon)
    with pytest.raises(ValueError, match="by='team' names no column or level"):
        visit_effect(data, by="team")
    with pytest.raises(ValueError, match="confidence must be in"):
        visit_effect(data, confidence=90)
    with pytest.raises(ValueError, match="explore_probability must be in"):
        visit_effect(data, plans=data.plans.assign(explore_probability=1.0))
    rank_only = data.plans[data.plans["assignment"] == "rank"]
    with pytest.raises(ValueError, match="pass expected="):
        visit_effect(data, plans=rank_only)
    expected = rank_only[["grid_id", "week"]].assign(expected_count=0.0)
    with pytest.raises(ValueError, match="expected_count must be > 0"):
        visit_effect(data, plans=rank_only, expected=expected)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['expected_count'\]"):
        visit_effect(data, plans=rank_only, expected=expected.drop(columns="expected_count"))
    with pytest.raises(ValueError, match=r"units at the level 'grid'; these are not: \['C0'\]"):
        visit_effect(data, plans=rank_only, expected=expected.assign(grid_id="C0", expected_count=1.0))
