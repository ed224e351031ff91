"""The policies of the prevention loop on the simulator, the uplift model in the loop, and `riskmodel plan`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import train, validate
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.io import write_dataset
from riskmodel.models import HistoricalRateBaseline, UpliftRegressor
from riskmodel.prevention import (
    HistoricalRateVisits,
    RiskVisits,
    UpliftVisits,
    fit_uplift,
    plan_visits,
    predict_uplift,
    uplift_rows,
    validate_uplift,
)

FAST = {"n_estimators": 20, "min_child_samples": 5, "n_jobs": 1}


@pytest.fixture(scope="module")
def looped():
    """`tiny` with half a year of weekly plans by historical rate, half of the visits explored."""
    policy = HistoricalRateVisits(capacity=2, explore=0.5, seed=1)
    return simulate_district("tiny", seed=0, policy=policy, policy_start="2023-07-03")


def test_a_planner_keeps_its_capacity_cool_down_and_randomised_margin(looped):
    assert not validate(looped).problems.shape[0]
    plans, visits = looped.plans, looped.visits
    made = plans[plans["assignment"] != "control"]
    assert (made.groupby("week").size() <= 2).all()
    assert set(visits["assignment"]) == {"rank", "explore"}
    pairs = visits.merge(plans, on=["plan_id", "grid_id"], suffixes=("", "_plan"))
    assert len(pairs) == len(visits) and (pairs["assignment"] == pairs["assignment_plan"]).all()
    assert not plans["grid_id"].isin(visits.loc[visits["plan_id"].isna(), "grid_id"]).any()
    gaps = plans.sort_values("week").groupby("grid_id")["week"].diff().dropna()
    assert (gaps >= pd.Timedelta(days=28)).all()  # no unit in two plans within the cool-down
    assert ((plans["assignment"] == "control").sum()) == 2 * (plans["assignment"] == "explore").sum()


def test_the_risk_policy_retrains_on_the_data_it_shaped():
    policy = RiskVisits(HistoricalRateBaseline(), capacity=3, retrain_every=4, explore=0.0)
    district = simulate_district("tiny", seed=0, policy=policy, policy_start="2023-10-02")
    weeks = district.plans["week"].drop_duplicates()
    assert len(weeks) == 13 and policy.trained_at_ == pd.Timestamp("2023-12-25")  # trained weeks 0, 4, 8, 12
    assert len(policy.model_.feature_names) > 0
    assert (district.plans["assignment"] == "rank").all()
    served = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    fixed = RiskVisits(served, capacity=3, explore=0.0)
    simulate_district("tiny", seed=0, policy=fixed, policy_start="2023-10-02")
    assert fixed.model_ is served  # a trained model is served as it is


def test_the_uplift_model_learns_from_the_margin_without_looking_ahead(looped):
    trained = train(looped, model=HistoricalRateBaseline(), horizon=28, track=False)
    X, y, treated = uplift_rows(looped, trained, horizon=28)
    closed = looped.plans[
        looped.plans["assignment"].isin(["explore", "control"])
        & (looped.plans["week"] + pd.Timedelta(days=28) <= looped.end)
    ]
    assert (
        len(X) == len(y) == len(treated) == len(closed) and treated.sum() == (closed["assignment"] == "explore").sum()
    )
    # The features of a week are those of the data before it: cutting the data after it changes nothing.
    week = closed["week"].min()
    cut = looped.replace(
        cases=looped.cases[looped.cases["reported_at"] < week],
        visits=looped.visits[looped.visits["visited_at"] < week],
        plans=looped.plans[looped.plans["week"] < week],
        as_of=week,
    )
    first = trained.features(cut, week).droplevel("cutoff").reindex(X.index[: (closed["week"] == week).sum()])
    pd.testing.assert_frame_equal(first, X.iloc[: len(first)])
    uplift = fit_uplift(looped, trained, model=UpliftRegressor(**FAST))
    forecast = predict_uplift(looped, trained, uplift)
    assert forecast["uplift"].notna().all() and len(forecast) == 25
    plan = plan_visits(forecast, capacity=2, by=None, rank_by="uplift", explore=0.0)
    assert plan["grid_id"].tolist() == forecast.nlargest(2, "uplift")["grid_id"].tolist()


def test_uplift_is_preferred_to_risk_only_where_it_finds_more_on_the_margin():
    rng = np.random.default_rng(0)
    n = 6000
    X = pd.DataFrame({"x0": rng.gamma(2.0, 1.0, n), "x1": rng.random(n)})
    treated = rng.random(n) < 1 / 3
    rate = 1 + X["x0"].to_numpy()
    model = UpliftRegressor(**FAST)
    # A visit prevents most where x1 is high, whatever the risk: uplift finds more.
    y = rng.poisson(rate * np.where(treated, 1 - 0.8 * (X["x1"].to_numpy() > 0.7), 1))
    check = validate_uplift(X, y, treated, risk=rate, model=model)
    assert check["better"] and check["uplift"] > check["risk"] > 0
    # One relative effect for all: the riskiest units are where a visit prevents most.
    y = rng.poisson(rate * np.where(treated, 0.8, 1))
    check = validate_uplift(X, y, treated, risk=rate, model=model)
    assert not check["better"] and check["risk"] > check["uplift"]


def test_uplift_needs_a_randomised_margin():
    district = simulate_district("tiny", seed=0, policy=HistoricalRateVisits(capacity=2), policy_start="2023-10-02")
    trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    with pytest.raises(ValueError, match="explore and control units of past plans"):
        fit_uplift(district, trained)


def test_the_uplift_policy_plans_by_risk_until_its_margin_has_closed_windows():
    policy = UpliftVisits(HistoricalRateBaseline(), capacity=6, explore=0.5, min_rows=12, seed=0, retrain_every=2)
    district = simulate_district("tiny", seed=0, policy=policy, policy_start="2023-09-04")
    by_uplift = district.plans.groupby("week")["reason"].apply(lambda r: r.str.contains("prevent").any())
    assert not by_uplift.iloc[:4].any()  # risk while learning
    assert policy.checks_ and {"uplift", "risk", "difference", "se", "better"} <= set(policy.checks_[-1])
    assert by_uplift.iloc[-1] == policy.checks_[-1]["better"]  # then uplift only where it validated
    unchecked = UpliftVisits(
        HistoricalRateBaseline(), capacity=6, explore=0.5, min_rows=12, retrain_every=2, validate=False
    )
    district = simulate_district("tiny", seed=0, policy=unchecked, policy_start="2023-09-04")
    assert district.plans.groupby("week")["reason"].apply(lambda r: r.str.contains("prevent").any()).iloc[-1]


def test_riskmodel_plan_writes_the_plan_and_logs_it_for_a_registry_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    district = simulate_district("tiny", seed=0)
    folder = write_dataset(district, tmp_path / "data")
    train(district, model=HistoricalRateBaseline(), horizon=28, register=True, experiment="exp")
    runner = CliRunner()
    out = tmp_path / "plan.csv"
    model = "models:/dispute-risk-grid@champion"
    result = runner.invoke(app, ["plan", "--data", str(folder), "--capacity", "1", "--out", str(out), "--model", model])
    assert result.exit_code == 0, result.output
    plan = pd.read_csv(out)
    assert (plan.loc[plan["assignment"] != "control"].groupby("group").size() <= 1).all()
    assert "logged to MLflow run" in result.output

    import mlflow

    runs = mlflow.search_runs(experiment_names=["riskmodel-plans"])
    assert runs["tags.plan_id"].tolist() == [plan["plan_id"].iloc[0]]
    assert runs["tags.model"].tolist() == [model]
    bad = runner.invoke(app, ["plan", "--data", str(folder), "--capacity", "-2", "--model", model])
    assert bad.exit_code == 1 and "whole number of visits >= 0" in bad.output
