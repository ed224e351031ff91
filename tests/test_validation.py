from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskmodel import Dataset, ValidationError, validate

from .conftest import make_dataset, make_plans, make_visits


def _with(dataset: Dataset, table: str, change) -> Dataset:
    frame = getattr(dataset, table).copy()
    change(frame)
    return dataset.replace(**{table: frame})


def _set(column, row, value):
    def change(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value

    return change


def _copy_row(row):
    def change(frame):
        frame.loc[len(frame) + 100] = frame.loc[row]

    return change


def _own_levels(change):
    """Levels of the user's own names (no built-in order), then ``change``."""

    def both(frame):
        frame["level"] = frame["level"].map({"street": "L0", "community": "L1", "grid": "L2", "microgrid": "L3"})
        change(frame)

    return both


# (table, change, expected table, column, rule)
VIOLATIONS = [
    ("cases", _set("case_id", 1, "c1"), "cases", "case_id", "unique"),
    ("cases", _set("case_id", 1, None), "cases", "case_id", "missing"),
    ("cases", _set("reported_at", 1, None), "cases", "reported_at", "missing"),
    ("cases", _set("reported_at", 1, "next tuesday"), "cases", "reported_at", "type"),
    ("cases", _set("reported_at", 1, "2025-03-01"), "cases", "reported_at", "after_as_of"),
    ("cases", _set("grid_id", 1, "G9"), "cases", "grid_id", "unknown_grid"),
    ("cases", _set("grid_id", 1, " "), "cases", "grid_id", "missing"),
    ("cases", _set("category", 1, None), "cases", "category", "missing"),
    ("cases", _set("severity", 1, 7), "cases", "severity", "range"),
    ("cases", _set("severity", 1, 2.5), "cases", "severity", "range"),
    ("cases", _set("severity", 1, "high"), "cases", "severity", "type"),
    ("cases", _set("resolved_at", 0, "2024-01-01"), "cases", "resolved_at", "before_report"),
    ("cases", _set("escalated_at", 2, "2024-03-01"), "cases", "escalated_at", "before_report"),
    ("cases", _set("outcome", 1, "forgotten"), "cases", "outcome", "vocabulary"),
    ("cases", _set("lon", 1, 200.0), "cases", "lon", "range"),
    ("cases", _set("lat", 1, "north"), "cases", "lat", "type"),
    ("grids", _set("grid_id", 3, "G1"), "grids", "grid_id", "unique"),
    ("grids", _set("grid_id", 3, None), "grids", "grid_id", "missing"),
    ("grids", _set("level", 3, None), "grids", "level", "missing"),
    ("grids", _set("parent_id", 3, "C9"), "grids", "parent_id", "unknown_parent"),
    ("grids", _own_levels(_set("parent_id", 0, "M1")), "grids", "parent_id", "cycle"),
    ("grids", _own_levels(_set("parent_id", 3, "G2")), "grids", "parent_id", "cycle"),
    ("grids", _set("parent_id", 3, "S1"), "grids", "level", "level_depth"),
    ("grids", _set("level", 2, "street"), "grids", "level", "level_order"),
    ("grids", _own_levels(_set("level", 4, "L2")), "grids", "level", "level_depth"),
    ("grids", _set("area_km2", 1, -2.0), "grids", "area_km2", "range"),
    ("grids", _set("lat", 1, 95.0), "grids", "lat", "range"),
    ("grid_history", _set("grid_id", 1, "G9"), "grid_history", "grid_id", "unknown_grid"),
    ("grid_history", _set("valid_from", 1, None), "grid_history", "valid_from", "missing"),
    ("grid_history", _set("valid_from", 2, "2024-01-01"), "grid_history", "grid_id, valid_from", "duplicate_snapshot"),
    ("grid_history", _set("population", 1, "many"), "grid_history", "population", "type"),
    ("grid_history", _set("population", 1, np.inf), "grid_history", "population", "type"),
    (
        "grid_history",
        lambda f: f.__setitem__("population", pd.Series(["1", "x", "3"], dtype="str")),
        "grid_history",
        "population",
        "type",
    ),
    ("adjacency", _set("neighbour_id", 0, "G1"), "adjacency", "neighbour_id", "self_neighbour"),
    ("adjacency", _set("neighbour_id", 0, "G7"), "adjacency", "neighbour_id", "unknown_grid"),
    ("adjacency", _copy_row(0), "adjacency", "grid_id, neighbour_id", "unique"),
    (
        "cases",
        lambda f: f.__setitem__("origin", ["resident", "neighbour", None, "patrol"]),
        "cases",
        "origin",
        "vocabulary",
    ),
]

# The same, on the dataset with a visits table.
VISIT_VIOLATIONS = [
    ("visits", _set("visit_id", 1, "v1"), "visits", "visit_id", "unique"),
    ("visits", _set("visit_id", 1, None), "visits", "visit_id", "missing"),
    ("visits", _set("grid_id", 1, " "), "visits", "grid_id", "missing"),
    ("visits", _set("grid_id", 1, "G9"), "visits", "grid_id", "unknown_grid"),
    ("grids", _set("grid_id", 3, "G1"), "visits", "grid_id", "grid_rejected"),
    ("visits", _set("visited_at", 1, None), "visits", "visited_at", "missing"),
    ("visits", _set("visited_at", 1, "after lunch"), "visits", "visited_at", "type"),
    ("visits", _set("visited_at", 1, "2025-03-01"), "visits", "visited_at", "after_as_of"),
    ("visits", _set("visited_at", 1, "1900-01-01"), "visits", "visited_at", "before_earliest"),
    ("visits", _set("kind", 1, None), "visits", "kind", "missing"),
    ("visits", _set("kind", 1, "gossip"), "visits", "kind", "vocabulary"),
    ("visits", _set("outcome", 1, "maybe"), "visits", "outcome", "vocabulary"),
    ("visits", _set("assignment", 1, "random"), "visits", "assignment", "vocabulary"),
    ("visits", _set("assignment", 0, None), "visits", "assignment", "assignment_missing"),
    ("visits", _set("plan_id", 0, None), "visits", "assignment", "assignment_without_plan"),
    ("visits", _set("assignment", 3, "explore"), "visits", "assignment", "assignment_without_plan"),
    ("visits", _set("plan_id", 4, "P9"), "visits", "plan_id", "unknown_plan"),
    ("visits", _set("visited_at", 4, "2024-05-26"), "visits", "visited_at, plan_id", "before_plan"),
    ("visits", _set("visited_at", 0, "2024-01-07 23:00"), "visits", "visited_at, plan_id", "before_plan"),
    ("plans", _set("week", 3, "2024-07-01"), "visits", "visited_at, plan_id", "before_plan"),
    ("plans", _set("grid_id", 3, "G9"), "visits", "plan_id", "plan_rejected"),
    ("plans", _set("grid_id", 1, "G1"), "plans", "plan_id, grid_id", "unique"),
    ("plans", _set("plan_id", 1, None), "plans", "plan_id", "missing"),
    ("plans", _set("grid_id", 1, "G9"), "plans", "grid_id", "unknown_grid"),
    ("grids", _set("grid_id", 0, "S9"), "plans", "grid_id", "grid_rejected"),
    ("plans", _set("week", 1, None), "plans", "week", "missing"),
    ("plans", _set("week", 1, "next monday"), "plans", "week", "type"),
    ("plans", _set("week", 1, "2025-01-06"), "plans", "week", "after_as_of"),
    ("plans", _set("week", 1, "1900-01-01"), "plans", "week", "before_earliest"),
    ("plans", _set("group", 1, None), "plans", "group", "missing"),
    ("plans", _set("priority", 1, 0), "plans", "priority", "range"),
    ("plans", _set("priority", 1, 1.5), "plans", "priority", "range"),
    ("plans", _set("priority", 1, "first"), "plans", "priority", "type"),
    ("plans", _set("assignment", 1, None), "plans", "assignment", "missing"),
    ("plans", _set("assignment", 1, "ad_hoc"), "plans", "assignment", "vocabulary"),
    ("plans", _set("explore_probability", 1, 1.5), "plans", "explore_probability", "range"),
    ("plans", _set("explore_probability", 2, 0.0), "plans", "explore_probability", "range"),
    ("plans", _set("explore_probability", 2, None), "plans", "explore_probability", "explore_probability_missing"),
    ("plans", _set("explore_probability", 0, 0.5), "plans", "explore_probability", "explore_probability_for_rank"),
    ("plans", lambda f: f.__setitem__("uplift", [0.1, "lots", None, 0.2]), "plans", "uplift", "type"),
]


def test_valid_dataset_passes_and_gets_contract_types(dataset):
    report = validate(dataset)
    cases = report.dataset.cases
    assert report.counts["rejected"].sum() == 0 and report.rejected.empty and report.problems.empty
    assert cases["reported_at"].dtype == "datetime64[us]"
    assert cases["resolved_at"].dtype == "datetime64[us]"
    assert cases["severity"].tolist() == [1, 2, 3, 1]  # missing severity means 1
    assert cases["case_id"].dtype == "str"
    assert report.dataset.grid_history["valid_from"].dtype == "datetime64[us]"


def test_a_validated_dataset_is_not_checked_again(dataset):
    report = validate(dataset)
    again = validate(report.dataset)
    assert again.dataset is report.dataset and again.problems.empty and len(again.rejected) == 0
    assert (again.counts["input"] == report.counts["valid"]).all() and (again.counts["rejected"] == 0).all()
    # A new dataset built from its frames is checked: here a case after the new as_of.
    with pytest.raises(ValidationError, match="as_of"):
        validate(report.dataset.replace(as_of="2024-02-01"))


@pytest.mark.parametrize(
    "table, change, p_table, p_column, rule", VIOLATIONS, ids=[f"{v[2]}.{v[3]}-{v[4]}" for v in VIOLATIONS]
)
def test_each_rule_is_named(dataset, table, change, p_table, p_column, rule):
    _assert_named(_with(dataset, table, change), p_table, p_column, rule)


@pytest.mark.parametrize(
    "table, change, p_table, p_column, rule",
    VISIT_VIOLATIONS,
    ids=[f"{v[2]}.{v[3]}-{v[4]}" for v in VISIT_VIOLATIONS],
)
def test_each_visits_rule_is_named(dataset, table, change, p_table, p_column, rule):
    with_visits = dataset.replace(visits=make_visits(), plans=make_plans())
    _assert_named(_with(with_visits, table, change), p_table, p_column, rule)


def _assert_named(broken, p_table, p_column, rule):
    with pytest.raises(ValidationError) as caught:
        validate(broken)
    problems = caught.value.problems
    named = problems[(problems["table"] == p_table) & (problems["column"] == p_column) & (problems["rule"] == rule)]
    assert len(named) == 1, problems
    assert f"{p_table}.{p_column} [{rule}]" in str(caught.value)
    assert named["count"].iloc[0] >= 1 and "row " in named["examples"].iloc[0]

    report = validate(broken, errors="quarantine")
    assert (report.counts["valid"] + report.counts["rejected"] == report.counts["input"]).all()
    assert report.rejected["reason"].str.contains(f"{p_column}: {rule}", regex=False).any()


def test_visits_are_checked_and_typed(dataset):
    visits = make_visits()
    report = validate(dataset.replace(visits=visits, plans=make_plans()))
    assert report.problems.empty and report.counts.loc["visits"].tolist() == [5, 5, 0]
    assert report.dataset.visits["visited_at"].dtype == "datetime64[us]"
    assert report.dataset.visits["visit_id"].dtype == "str"
    # Optional columns may be absent; without plan_id, ad_hoc is the only assignment allowed.
    bare = visits[["visit_id", "grid_id", "visited_at", "kind"]].assign(assignment=["ad_hoc", None, None, None, None])
    assert validate(dataset.replace(visits=bare)).problems.empty
    origin = dataset.cases.assign(origin=["resident", "patrol", None, "resident"])  # missing stays missing
    assert validate(dataset.replace(cases=origin)).dataset.cases["origin"].isna().tolist() == [
        False,
        False,
        True,
        False,
    ]


def test_plans_are_checked_and_typed(dataset):
    report = validate(dataset.replace(visits=make_visits(), plans=make_plans()))
    assert report.problems.empty and report.counts.loc["plans"].tolist() == [4, 4, 0]
    plans = report.dataset.plans
    assert plans["week"].dtype == "datetime64[us]" and plans["priority"].dtype == "int64"
    assert plans["explore_probability"].isna().tolist() == [True, False, False, True]


def test_a_plan_id_without_a_plans_table_says_what_to_do(dataset):
    with pytest.raises(ValidationError) as caught:
        validate(dataset.replace(visits=make_visits()))
    message = str(caught.value)
    assert "visits.plan_id [unknown_plan] 3 row(s)" in message
    assert "give the plans (Dataset(plans=...)) or leave plan_id empty" in message
    assert "row 0 (visit_id='v1', plan_id='P1')" in message
    # Without plan ids the visits need no plans.
    unplanned = make_visits().assign(plan_id=None, assignment=None)
    assert validate(dataset.replace(visits=unplanned)).problems.empty


def test_a_visit_before_its_plan_names_both(dataset):
    visits = make_visits()
    visits.loc[4, "visited_at"] = "2024-05-20"  # P2 is for the week of 2024-05-27
    with pytest.raises(ValidationError) as caught:
        validate(dataset.replace(visits=visits, plans=make_plans()))
    message = str(caught.value)
    assert "visits.visited_at, plan_id [before_plan] 1 row(s)" in message and "plans.week" in message
    assert "row 4 (visit_id='v5', visited_at='2024-05-20', plan_id='P2')" in message


def test_a_missing_visits_column_raises_in_both_modes(dataset):
    broken = dataset.replace(visits=make_visits().drop(columns=["kind"]))
    for errors in ("raise", "quarantine"):
        with pytest.raises(ValidationError, match=r"visits.kind \[required_column\]"):
            validate(broken, errors=errors)


def test_visits_quarantine_cascades_and_reconciles(dataset):
    # A duplicated grid G1 rejects its visits and those of the building under it; a
    # second visit with v2's id rejects both copies; a visit after the as-of is alone.
    visits = make_visits()
    visits.loc[4, "visit_id"] = "v2"
    visits.loc[3, "visited_at"] = "2025-01-02"
    broken = _with(dataset.replace(visits=visits, plans=make_plans()), "grids", _set("grid_id", 3, "G1"))
    report = validate(broken, errors="quarantine")
    counts = report.counts
    assert (counts["valid"] + counts["rejected"] == counts["input"]).all()
    assert counts.loc["visits"].tolist() == [5, 0, 5]
    rejected = report.rejected[report.rejected["table"] == "visits"]
    assert rejected[["position", "visit_id", "reason"]].values.tolist() == [
        [0, "v1", "grid_id: grid_rejected"],
        [1, "v2", "visit_id: unique"],
        [2, "v3", "grid_id: grid_rejected"],
        [3, "v4", "visited_at: after_as_of"],
        # Its G2 is now named G1, and so is the only unit of its plan P2: the plan is rejected too.
        [4, "v2", "visit_id: unique; grid_id: unknown_grid; plan_id: plan_rejected"],
    ]
    plans = report.rejected[report.rejected["table"] == "plans"]
    assert plans[["plan_id", "grid_id", "reason"]].values.tolist() == [
        ["P1", "G1", "grid_id: grid_rejected"],
        ["P1", "G2", "grid_id: unknown_grid"],
        ["P2", "G2", "grid_id: unknown_grid"],
    ]
    assert report.dataset.visits.empty and len(report.rejected) == counts["rejected"].sum()


def test_teams_never_appear_in_messages(dataset):
    visits = make_visits().assign(team=["team-east", "team-west", "team-east", 7, None])
    broken = _with(dataset.replace(visits=visits, plans=make_plans()), "visits", _set("kind", 0, "gossip"))
    with pytest.raises(ValidationError) as caught:
        validate(broken)
    assert "team-" not in str(caught.value)


def test_reversed_standard_levels_are_refused(dataset):
    grids = dataset.grids.assign(level=["microgrid", "grid", "community", "community", "street"])
    report = validate(dataset.replace(grids=grids), errors="quarantine")
    assert report.dataset.grids["grid_id"].tolist() == ["S1"]
    assert "level: level_order" in set(report.rejected["reason"])


def test_a_level_split_evenly_between_depths_is_rejected_whole(dataset):
    grids = dataset.grids.copy()
    grids.loc[3, "level"] = "microgrid"  # G2 at depth 2 beside M1 at depth 3: which is right?
    report = validate(dataset.replace(grids=grids), errors="quarantine")
    rejected = report.rejected[report.rejected["table"] == "grids"]
    assert rejected["grid_id"].tolist() == ["G2", "M1"]
    assert set(rejected["reason"]) == {"level: level_depth"}


def test_duplicate_column_names_and_header_names(dataset):
    doubled = pd.concat([dataset.cases, dataset.cases[["category"]]], axis=1)
    with pytest.raises(ValidationError, match=r"cases.category \[duplicate_column\]"):
        validate(dataset.replace(cases=doubled), errors="quarantine")
    cases = dataset.cases.assign(reason="neighbours", table="t1", severity=[1, 9, 2, 3])
    rejected = validate(dataset.replace(cases=cases), errors="quarantine").rejected
    assert rejected[["reason", "reason_input", "table_input"]].values.tolist() == [
        ["severity: range", "neighbours", "t1"]
    ]


def test_failed_type_is_not_also_missing(dataset):
    broken = _with(dataset, "cases", _set("reported_at", 1, "next tuesday"))
    with pytest.raises(ValidationError) as caught:
        validate(broken)
    assert caught.value.problems["rule"].tolist() == ["type"]


def test_report_repr_hides_rows(dataset):
    broken = _with(dataset, "cases", _set("severity", 0, 11))
    text = repr(validate(broken, errors="quarantine"))
    assert text.startswith("DataReport(cases: 3 valid, 1 rejected") and "p-alpha" not in text


def test_every_problem_is_listed_at_once(dataset):
    broken = _with(dataset, "cases", _set("severity", 0, 9))
    broken = _with(broken, "cases", _set("outcome", 3, "lost"))
    broken = _with(broken, "grid_history", _set("grid_id", 0, "nowhere"))
    with pytest.raises(ValidationError) as caught:
        validate(broken)
    message = str(caught.value)
    assert message.startswith("3 problem(s)")
    for expected in (
        "cases.severity [range] 1 row(s)",
        "cases.outcome [vocabulary]",
        "grid_history.grid_id [unknown_grid]",
        "row 0 (case_id='c1', severity=9)",
    ):
        assert expected in message


def test_missing_columns_raise_even_in_quarantine(dataset):
    broken = dataset.replace(cases=dataset.cases.drop(columns=["category", "reported_at"]))
    with pytest.raises(ValidationError) as caught:
        validate(broken, errors="quarantine")
    assert set(caught.value.problems["column"]) == {"category", "reported_at"}
    assert set(caught.value.problems["rule"]) == {"required_column"}


def test_quarantine_cascades_and_reconciles(dataset):
    # A duplicated grid id rejects both copies, their children and their cases.
    broken = _with(dataset, "grids", _set("grid_id", 3, "G1"))
    report = validate(broken, errors="quarantine")
    counts = report.counts
    assert (counts["valid"] + counts["rejected"] == counts["input"]).all()
    rejected = report.rejected.set_index(["table", "row"])["reason"]
    assert rejected[("grids", 2)] == "grid_id: unique"
    assert rejected[("grids", 4)] == "parent_id: parent_rejected"  # the building under G1
    assert rejected[("cases", 2)] == "grid_id: grid_rejected"
    assert set(report.dataset.grids["grid_id"]) == {"S1", "C1"}
    assert len(report.dataset.cases) + counts.loc["cases", "rejected"] == len(dataset.cases)
    # The original rows are returned as they were given, with their index label.
    assert report.rejected.loc[report.rejected["table"] == "cases", "case_id"].tolist() == ["c1", "c2", "c3", "c4"]


def test_rejected_rows_keep_their_index_labels(dataset):
    cases = dataset.cases.set_axis([10, 20, 30, 40])
    cases.loc[30, "outcome"] = "unknown"
    report = validate(dataset.replace(cases=cases), errors="quarantine")
    assert report.rejected["row"].tolist() == [30]
    assert report.dataset.cases.index.tolist() == [10, 20, 40]


def test_time_zone_policy(dataset):
    cases = dataset.cases.copy()
    cases["reported_at"] = pd.to_datetime(cases["reported_at"]).dt.tz_localize("Asia/Shanghai")
    converted = validate(dataset.replace(cases=cases)).dataset.cases["reported_at"]
    assert converted.iloc[0] == pd.Timestamp("2024-01-05 02:00")  # to UTC, zone dropped
    shanghai = validate(dataset.replace(cases=cases), tz="Asia/Shanghai").dataset.cases["reported_at"]
    assert shanghai.iloc[0] == pd.Timestamp("2024-01-05 10:00")
    offsets = dataset.cases.assign(
        reported_at=["2024-01-05T10:00+08:00", "2024-02-01T21:30+01:00", "2024-03-03 08:15", "2024-06-01 12:00"]
    )
    parsed = validate(dataset.replace(cases=offsets)).dataset.cases["reported_at"]
    assert parsed.tolist()[:2] == [pd.Timestamp("2024-01-05 02:00"), pd.Timestamp("2024-02-01 20:30")]
    assert parsed.dtype == "datetime64[us]"


def test_zoned_as_of_follows_the_policy(dataset):
    zoned = dataset.replace(as_of=pd.Timestamp("2024-06-01 20:00", tz="Asia/Shanghai"))
    report = validate(zoned, errors="quarantine")
    assert report.dataset.as_of == pd.Timestamp("2024-06-01 12:00")
    assert report.rejected.empty  # c4 at 12:00 is not after 12:00 UTC
    earlier = validate(zoned.replace(as_of=pd.Timestamp("2024-06-01 19:00", tz="Asia/Shanghai")), errors="quarantine")
    assert earlier.rejected["case_id"].tolist() == ["c4"]
    assert earlier.rejected["reason"].tolist() == ["reported_at: after_as_of"]
    report = validate(zoned, errors="quarantine", tz="Asia/Shanghai")
    assert report.dataset.as_of == pd.Timestamp("2024-06-01 20:00")


def test_numbers_are_not_times(dataset):
    cases = dataset.cases.assign(reported_at=[1.7e9, 1.7e9, 1.7e9, 1.7e9])
    with pytest.raises(ValidationError, match=r"cases.reported_at \[type\] 4 row\(s\)"):
        validate(dataset.replace(cases=cases))


def test_party_keys_never_appear_in_messages(dataset):
    broken = _with(dataset, "cases", _set("case_id", 2, "c1"))
    broken = _with(broken, "cases", _set("severity", 0, 11))
    with pytest.raises(ValidationError) as caught:
        validate(broken)
    assert "p-alpha" not in str(caught.value) and "p-beta" not in str(caught.value)
    assert "p-alpha" not in str(validate(broken, errors="quarantine"))


def test_bad_arguments(dataset):
    with pytest.raises(ValueError, match="errors must be"):
        validate(dataset, errors="ignore")
    with pytest.raises(TypeError, match="riskmodel.Dataset"):
        validate({"cases": dataset.cases})


def test_simulated_district_is_valid(small_district):
    report = validate(small_district)
    assert report.counts["rejected"].sum() == 0


# -- property: random corruption gives a valid result or a ValidationError ------------
_GARBAGE = st.one_of(
    st.none(),
    st.just(np.nan),
    st.text(max_size=5),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just("2024-02-30"),
    st.just("2031-01-01"),
    st.just(pd.Timestamp("2024-05-01", tz="UTC")),
    st.booleans(),
    st.just(["a"]),
    st.sampled_from(["S1", "C1", "G1", "G2", "M1", "c1", "c2"]),
)


@st.composite
def corruptions(draw, tables=None):
    dataset = make_dataset() if tables is None else make_dataset().replace(visits=make_visits(), plans=make_plans())
    frames = {name: frame.copy() for name, frame in dataset.tables.items()}
    for _ in range(draw(st.integers(1, 6))):
        name = draw(st.sampled_from(sorted(tables or frames)))
        frame = frames[name]
        action = draw(st.sampled_from(["set", "drop_row", "duplicate_row", "drop_column", "retype", "shuffle"]))
        if action == "set" and len(frame) and len(frame.columns):
            column = draw(st.sampled_from(list(frame.columns)))
            row = draw(st.integers(0, len(frame) - 1))
            frame[column] = frame[column].astype(object)
            frame.iat[row, frame.columns.get_loc(column)] = draw(_GARBAGE)
        elif action == "drop_row" and len(frame):
            frames[name] = frame.drop(index=frame.index[draw(st.integers(0, len(frame) - 1))])
        elif action == "duplicate_row" and len(frame):
            frames[name] = pd.concat([frame, frame.iloc[[draw(st.integers(0, len(frame) - 1))]]])
        elif action == "drop_column" and len(frame.columns):
            frames[name] = frame.drop(columns=[draw(st.sampled_from(list(frame.columns)))])
        elif action == "retype" and len(frame.columns):
            column = draw(st.sampled_from(list(frame.columns)))
            dtype = draw(st.sampled_from(["str", "object", "category"]))
            if dtype != "category" or not any(isinstance(v, list) for v in frame[column]):  # lists don't hash
                frame[column] = frame[column].astype(dtype)
        elif action == "shuffle":
            frames[name] = frame.sample(frac=1, random_state=draw(st.integers(0, 99)))
    return dataset.replace(**frames)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corruptions(), st.sampled_from(["raise", "quarantine"]))
def test_corruption_gives_a_result_or_a_validation_error(corrupted, errors):
    _result_or_error(corrupted, errors)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corruptions(tables=["visits", "visits", "visits", "grids"]), st.sampled_from(["raise", "quarantine"]))
def test_corrupted_visits_give_a_result_or_a_validation_error(corrupted, errors):
    _result_or_error(corrupted, errors)


def _result_or_error(corrupted, errors):
    try:
        report = validate(corrupted, errors=errors)
    except ValidationError as error:
        assert len(error.problems) >= 1
        return
    counts = report.counts
    assert (counts["valid"] + counts["rejected"] == counts["input"]).all()
    assert len(report.rejected) == counts["rejected"].sum()
    # What is kept passes again, unchanged.
    again = validate(report.dataset)
    for name, frame in report.dataset.tables.items():
        pd.testing.assert_frame_equal(again.dataset.tables[name], frame)
