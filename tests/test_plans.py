"""plan_visits: capacity per group, a reproducible randomised margin, and clear errors."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.prevention import plan_visits


def forecast(n_groups=20, per_group=30, seed=0):
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    return pd.DataFrame(
        {
            "grid_id": [f"G{i:04d}" for i in range(n)],
            "level": "grid",
            "community_id": [f"C{i // per_group:02d}" for i in range(n)],
            "as_of": pd.Timestamp("2024-06-05 00:00"),
            "probability": rng.random(n),
            "expected_count": rng.gamma(1.0, 2.0, n),
            "top_drivers": "12 cases in 364 days (+0.8)",
        }
    )


def visits(plan):
    return plan[plan["assignment"].isin(["rank", "explore"])]


def test_each_group_gets_its_capacity_the_riskiest_first():
    risk = forecast()
    plan = plan_visits(risk, capacity=3, explore=0.0)
    assert (visits(plan).groupby("group").size() == 3).all()
    top = risk.sort_values("expected_count", ascending=False).groupby("community_id").head(3)
    assert set(plan["grid_id"]) == set(top["grid_id"])
    assert (plan["week"] == pd.Timestamp("2024-06-10")).all()  # the first Monday after as_of
    assert plan["reason"].str.contains("ranked 1 in its group by risk: 12 cases").any()


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(0, 12),
    explore=st.floats(0, 1),
    pool=st.integers(2, 5),
    per_group=st.integers(1, 25),
    seed=st.integers(0, 10),
)
def test_no_group_gets_more_than_its_capacity_and_the_draw_stays_in_the_margin(
    capacity, explore, pool, per_group, seed
):
    plan = plan_visits(
        forecast(n_groups=4, per_group=per_group), capacity=capacity, explore=explore, pool=pool, seed=seed
    )
    made = visits(plan).groupby("group").size()
    assert (made <= capacity).all() and (made == min(capacity, per_group)).all() if capacity else made.empty
    for _, group in plan.groupby("group"):
        ranked = group.loc[group["assignment"] == "rank", "priority"]
        drawn = group.loc[group["assignment"] == "explore", "priority"]
        pooled = group.loc[group["assignment"].isin(["explore", "control"]), "priority"]
        assert list(ranked) == list(range(1, len(ranked) + 1))  # rank visits are the top of the group
        assert len(pooled) == pool * len(drawn)
        if len(pooled):
            assert sorted(pooled) == list(range(len(ranked) + 1, len(ranked) + len(pooled) + 1))
    probability = plan.loc[plan["assignment"] != "rank", "explore_probability"]
    assert (
        np.allclose(probability, 1 / pool)
        and plan.loc[plan["assignment"] == "rank", "explore_probability"].isna().all()
    )


def test_the_explore_share_holds_on_average_and_the_draw_is_reproducible():
    risk = forecast(n_groups=200, per_group=40)
    plan = plan_visits(risk, capacity=5, explore=0.3, seed=7)
    share = (visits(plan)["assignment"] == "explore").mean()
    assert abs(share - 0.3) < 0.03
    pd.testing.assert_frame_equal(plan, plan_visits(risk, capacity=5, explore=0.3, seed=7))
    other = plan_visits(risk, capacity=5, explore=0.3, seed=8)
    assert set(visits(other)["grid_id"]) != set(visits(plan)["grid_id"])
    assert other["plan_id"].iloc[0] != plan["plan_id"].iloc[0]


def test_capacity_by_table_and_by_none():
    risk = forecast(n_groups=3, per_group=10)
    table = pd.DataFrame({"community_id": ["C00", "C01"], "capacity": [4, 1]})
    plan = plan_visits(risk, capacity=table, explore=0.0)
    assert visits(plan).groupby("group").size().to_dict() == {"C00": 4, "C01": 1}  # C02 is not in the table
    series = plan_visits(risk, capacity=pd.Series({"C02": 2}), explore=0.0)
    assert visits(series)["group"].unique().tolist() == ["C02"]
    whole = plan_visits(risk, capacity=5, by=None, explore=0.0)
    assert set(whole["grid_id"]) == set(risk.nlargest(5, "expected_count")["grid_id"])
    assert (whole["group"] == "all").all()


def test_rank_by_uplift_orders_by_what_a_visit_prevents():
    risk = forecast(n_groups=1, per_group=10).assign(uplift=np.arange(10.0))
    plan = plan_visits(risk, capacity=2, explore=0.0, rank_by="uplift")
    assert plan["grid_id"].tolist() == ["G0009", "G0008"]
    assert plan["reason"].str.contains("cases a visit can prevent").all()


def test_ties_in_probability_are_broken_by_expected_count():
    risk = forecast(n_groups=1, per_group=4).assign(probability=1.0, expected_count=[1.0, 9.0, 3.0, 5.0])
    plan = plan_visits(risk, capacity=2, explore=0.0)
    assert plan["grid_id"].tolist() == ["G0001", "G0003"]


@pytest.mark.parametrize(
    ("change", "arguments", "message"),
    [
        (None, {"capacity": -1}, r"whole number of visits >= 0 per group; got C00: -1"),
        (None, {"capacity": 1.5}, r"whole number"),
        (None, {"capacity": pd.Series({"C99": 2})}, r"group\(s\) with no unit in the forecast.*C99"),
        (None, {"capacity": 1, "by": "street"}, r"no column 'street_id'.*grouped by \['community'\]"),
        (None, {"capacity": 1, "rank_by": "uplift"}, r"lacks column\(s\) \['uplift'\].*predict_uplift"),
        (None, {"capacity": 1, "explore": 1.5}, r"explore must be a share"),
        (None, {"capacity": 1, "pool": 1}, r"pool must be an integer >= 2"),
        (None, {"capacity": 1, "week": "2024-06-11"}, r"week must be a Monday"),
        ("duplicate", {"capacity": 1}, r"one row per unit.*G0000"),
        ("no community", {"capacity": 1}, r"have no community_id.*G0000"),
    ],
)
def test_bad_input_names_the_rule(change, arguments, message):
    risk = forecast(n_groups=2, per_group=5)
    if change == "duplicate":
        risk = pd.concat([risk, risk.head(1)])
    elif change == "no community":
        risk.loc[0, "community_id"] = None
    with pytest.raises(ValueError, match=message):
        plan_visits(risk, **arguments)
