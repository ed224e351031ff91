"""The simulator with a policy: visits that work, patrol finds, and the truth about them."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import riskmodel
from riskmodel import first_reports
from riskmodel.datasets import NoVisits, Policy, RandomVisits, simulate_district
from riskmodel.prevention import OracleVisits

from .conftest import simulated_disputes

# Strong, equal-everywhere receptiveness: effects large enough to see in a few runs.
STRONG = dict(visit_mediation=1.0, visit_screening=1.0, visit_receptiveness_a=50.0, visit_receptiveness_b=1.0)


def _grid_of(district) -> pd.Series:
    return district.cases["grid_id"].map(district.ancestors("grid"))


def test_without_a_policy_the_frames_are_those_of_before():
    cases = simulated_disputes(simulate_district("tiny", seed=0))  # the first reports: the disputes
    text = "|".join(
        cases["case_id"]
        + cases["grid_id"]
        + cases["category"]
        + cases["source"]
        + cases["party_key"]
        + cases["outcome"]
        + cases["severity"].astype(str)
        + cases["reported_at"].astype("int64").astype(str)
    )
    # Frozen from the simulator before visits existed.
    assert hashlib.sha256(text.encode()).hexdigest() == (
        "faa720ba51bdf0ee6e49093d55f27eedd8f248328f736c024aa1105f3082cc02"
    )
    assert "origin" not in cases


def test_a_policy_that_visits_nothing_reproduces_the_cases():
    plain = simulate_district("tiny", seed=2)
    none = simulate_district("tiny", seed=2, policy=NoVisits())
    assert (none.cases["origin"] == "resident").all() and len(none.visits) == 0 and none.plans is None
    pd.testing.assert_frame_equal(none.cases.drop(columns="origin"), plain.cases)
    pd.testing.assert_series_equal(
        none.truth.expected_counts("2023-08-07", 28), plain.truth.expected_counts("2023-08-07", 28)
    )
    assert isinstance(NoVisits(), Policy)


def test_same_seed_same_visits_and_cases():
    a, b = (simulate_district("tiny", seed=5, policy=RandomVisits(capacity=3, seed=1)) for _ in range(2))
    for name, frame in a.tables.items():
        pd.testing.assert_frame_equal(frame, b.tables[name], check_exact=True)
    pd.testing.assert_frame_equal(a.truth.visit_effect(28), b.truth.visit_effect(28))


def test_visits_lower_resident_cases_where_they_go():
    policy = RandomVisits(capacity=0.5, seed=3)
    start = "2023-07-03"
    plain = simulate_district("small", seed=1, **STRONG)
    visited = simulate_district("small", seed=1, policy=policy, policy_start=start, **STRONG)
    plain_cases, visited_cases = first_reports(plain.cases), first_reports(visited.cases)  # disputes

    # Until the policy starts the two runs are one and the same (common random numbers):
    # the same cases by day, grid and category (their details are drawn afresh).
    def cells(cases, rows):
        grid = cases["grid_id"].map(plain.ancestors("grid"))
        frame = pd.DataFrame({"day": cases["reported_at"].dt.normalize(), "grid": grid, "c": cases["category"]})
        return frame[rows].sort_values(["day", "grid", "c"]).reset_index(drop=True)

    before = plain_cases["reported_at"] < pd.Timestamp(start)
    pd.testing.assert_frame_equal(
        cells(plain_cases, before), cells(visited_cases, visited_cases["reported_at"] < pd.Timestamp(start))
    )
    after = plain_cases["reported_at"] >= pd.Timestamp(start)
    resident_after = visited_cases["origin"].eq("resident") & (visited_cases["reported_at"] >= pd.Timestamp(start))
    preventable = plain_cases["category"].isin(riskmodel.datasets.PREVENTABLE)
    preventable_visited = visited_cases["category"].isin(riskmodel.datasets.PREVENTABLE)
    assert (resident_after & preventable_visited).sum() < 0.6 * (after & preventable).sum()
    others = (resident_after & ~preventable_visited).sum() / (after & ~preventable).sum()
    assert 0.85 < others < 1.15  # the other categories are untouched (up to noise)
    effect = visited.truth.visit_effect(28)
    assert (effect["prevented"] >= 0).all() and effect["prevented"].sum() > 0


def test_patrol_cases_only_at_visits_and_validation():
    district = simulate_district("tiny", seed=1, policy=RandomVisits(capacity=4, seed=0))
    cases, visits = district.cases, district.visits
    patrol = cases[cases["origin"] == "patrol"]
    assert len(patrol) > 0 and (patrol["source"] == "grid_worker").all()
    reached = visits[visits["outcome"] != "not_reached"]
    at_visit = pd.MultiIndex.from_frame(reached[["grid_id", "visited_at"]])
    found = pd.MultiIndex.from_arrays([_grid_of(district)[patrol.index], patrol["reported_at"]])
    assert found.isin(at_visit).all()
    assert patrol["category"].isin(riskmodel.datasets.PREVENTABLE).all()
    # Visits that found something say so; the others did not find anything.
    finders = set(found.droplevel(1))
    assert set(visits.loc[visits["outcome"].isin(["issue_found", "resolved_on_site"]), "grid_id"]) <= finders
    assert visits["visited_at"].dt.day_of_week.lt(5).all() and visits["visited_at"].dt.hour.between(9, 16).all()
    assert visits["assignment"].eq("ad_hoc").all() and visits["team"].str.fullmatch("[0-9a-f]{32}").all()
    report = riskmodel.validate(district)
    assert report.problems.empty, report.problems


class _Planner:
    """Two ranked visits, one explored and one control unit per week, with a plan id."""

    def __init__(self):
        self.weeks = []

    def plan(self, observed, week, oracle):
        self.weeks.append((week, observed.as_of, observed.cases["reported_at"].max(), len(observed.visits)))
        grids = observed.grids.loc[observed.grids["level"] == "grid", "grid_id"].to_numpy()
        plan_id = f"P{week:%Y%m%d}"
        return pd.DataFrame(
            {
                "plan_id": plan_id,
                "grid_id": grids[:4],
                "group": "C1",
                "priority": [1, 2, 3, 4],
                "assignment": ["rank", "rank", "explore", "control"],
                "explore_probability": [np.nan, np.nan, 0.5, 0.5],
            }
        )


def test_plans_are_kept_and_the_observed_view_stops_at_the_monday():
    planner = _Planner()
    district = simulate_district("tiny", seed=0, policy=planner, policy_start="2023-10-02")
    assert len(planner.weeks) == 13
    for week, as_of, last_case, _ in planner.weeks:
        assert week == as_of and week.day_of_week == 0 and last_case < week
    assert [n for *_, n in planner.weeks] == [3 * i for i in range(13)]
    assert len(district.plans) == 13 * 4 and (district.plans["week"].dt.day_of_week == 0).all()
    visits = district.visits
    assert len(visits) == 13 * 3 and not visits["grid_id"].isin(district.plans["grid_id"].iloc[3:4]).any()
    assert visits["assignment"].value_counts().to_dict() == {"rank": 26, "explore": 13}
    assert visits["plan_id"].isin(district.plans["plan_id"]).all()
    report = riskmodel.validate(district)
    assert report.problems.empty, report.problems


def test_a_policy_naming_unknown_units_is_refused():
    class Bad:
        def plan(self, observed, week, oracle):
            return pd.DataFrame({"grid_id": ["G01", "C1", "nowhere"]})

    with pytest.raises(ValueError, match="not grid-level units.*rows \\[1, 2\\].*'C1', 'nowhere'"):
        simulate_district("tiny", seed=0, policy=Bad())
    with pytest.raises(ValueError, match="policy_start must be a Monday"):
        simulate_district("tiny", seed=0, policy=NoVisits(), policy_start="2023-10-03")


class _OneVisit:
    """The oracle's best grid, once, on the first Monday."""

    def __init__(self):
        self.done = False

    def plan(self, observed, week, oracle):
        if self.done:
            return pd.DataFrame({"grid_id": []})
        self.done = True
        return pd.DataFrame({"grid_id": [oracle.uplift(28).idxmax()]})


def test_visit_effect_agrees_with_monte_carlo():
    """Runs with and without the visit share their history up to it; the truth's
    expected counts with and without it match the cases seen after it."""
    rows = []
    for seed in range(60):
        visited = simulate_district("tiny", seed=seed, policy=_OneVisit(), policy_start="2023-11-27", **STRONG)
        plain = simulate_district("tiny", seed=seed, **STRONG)
        effect = visited.truth.visit_effect(21).iloc[0]
        first = effect["visited_at"].normalize() + pd.Timedelta(days=1)
        window = (first, first + pd.Timedelta(days=21))

        def seen(d, origin=None, effect=effect, window=window):
            inside = d.cases["reported_at"].between(*window, inclusive="left") & _grid_of(d).eq(effect["grid_id"])
            return (inside & d.cases.get("origin", pd.Series("resident", index=d.cases.index)).eq("resident")).sum()

        rows.append([effect["expected_without"], effect["expected_with"], seen(plain), seen(visited)])
    without, with_, seen_without, seen_with = np.array(rows, dtype=float).T
    assert (without - with_).mean() > 0.5  # a strong effect at the oracle's best grid
    assert abs(seen_without.mean() - without.mean()) < 3 * seen_without.std() / np.sqrt(len(rows))
    assert abs(seen_with.mean() - with_.mean()) < 3 * seen_with.std() / np.sqrt(len(rows))
    difference = seen_without - seen_with
    assert abs(difference.mean() - (without - with_).mean()) < 3 * difference.std() / np.sqrt(len(rows))


def test_uplift_and_equal_effects():
    district = simulate_district("small", seed=0)
    uplift = district.truth.uplift("2024-06-03", 28)
    risk = district.truth.expected_counts("2024-06-03", 28)
    assert uplift.index.equals(risk.index) and (uplift >= 0).all()
    assert 0.6 < uplift.std() / uplift.mean() < 1.6 and 0.2 < np.corrcoef(uplift, risk)[0, 1] < 0.7
    equal = simulate_district("small", seed=0, visit_effect="equal").truth.uplift("2024-06-03", 28)
    # One relative reduction everywhere: the uplift follows the risk more closely.
    assert np.corrcoef(equal, risk)[0, 1] > np.corrcoef(uplift, risk)[0, 1] + 0.1
    assert district.truth.uplift("2024-06-03", 28, level="community").sum() == pytest.approx(uplift.sum())
    oracle = simulate_district(
        "tiny", seed=0, policy=OracleVisits(capacity=2, cooldown_days=0), policy_start="2023-12-04"
    )
    assert len(oracle.visits) == 8
    with pytest.raises(ValueError, match="per must be"):
        district.truth.visit_effect(28, per="grid")
    in_week = oracle.truth.visit_effect(28, window="week")  # from the visit's Monday: a shorter window
    by_visit = oracle.truth.visit_effect(28)
    assert (in_week["prevented"] <= by_visit["prevented"] + 1e-12).all()
    assert in_week["prevented"].sum() < by_visit["prevented"].sum()
    with pytest.raises(ValueError, match="window must be"):
        oracle.truth.visit_effect(28, window="day")
    per_unit = oracle.truth.visit_effect(28, per="unit")
    assert per_unit["visits"].sum() == 8
    np.testing.assert_allclose(per_unit["prevented_per_visit"] * per_unit["visits"], per_unit["prevented"])


def test_visit_effect_with_the_visit_is_the_expected_count_after_it():
    """With one visit a week, a visit's expected count with it is the truth's expected
    count from the next day (which includes the visit), but for the tiny share that
    returns through the neighbours."""
    district = simulate_district("small", seed=4, policy=RandomVisits(capacity=1, seed=2), **STRONG)
    effect = district.truth.visit_effect(28).iloc[::5]
    assert (effect["prevented"] > 0).mean() > 0.8
    for row in effect.itertuples():
        after = district.truth.expected_counts(row.visited_at.normalize() + pd.Timedelta(days=1), 28)[row.grid_id]
        assert row.expected_with == pytest.approx(after, rel=0.01)
        assert row.expected_without > after or row.prevented == 0
