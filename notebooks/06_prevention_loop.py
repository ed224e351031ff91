# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The prevention loop
#
# A forecast is only useful if someone acts on it. Here the district's grid workers visit
# the units the model ranks highest each week, a share of the visits goes at random to
# units just below the cut (the randomised margin), and the data tell us what the visits
# prevented. The simulator knows the truth, so every estimate is checked against it.
# `RISKMODEL_PRESET` picks the district's size (default and tests: `small`; about 30 s on 2 cores).

# %%
# %matplotlib inline
import os

import pandas as pd

from riskmodel import predict, train
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import assess, plots, visit_effect
from riskmodel.models import GBMCount
from riskmodel.prevention import RiskVisits, fit_uplift, plan_visits, predict_uplift

PRESET = os.environ.get("RISKMODEL_PRESET", "small")
RESIDENT = {"origins": ["resident"]}  # forecast the disputes residents report, not those visits find
district = simulate_district(PRESET, seed=0)
start = (district.end - pd.Timedelta(weeks=13)).to_period("W-SUN").start_time  # a Monday, a quarter before the end
before = district.replace(cases=district.cases[district.cases["reported_at"] < start], as_of=start)
model = train(before, model=GBMCount(n_jobs=2), horizon=28, track=False)  # no visits yet: every case is a resident's
start.date(), model

# %% [markdown]
# The Monday the loop starts, and the risk model trained on everything recorded before it:
# no visits have happened yet, so every case so far was reported by a resident.
#
# ## One week's plan
#
# `plan_visits` turns the forecast into the week's visits: two per community, the riskiest
# first, except that a fifth of them are drawn at random from a pool of units ranked just
# below the cut. The pool's other units are kept as `control` rows: they are the comparison.

# %%
forecast = predict(before, model=model, as_of=start, drivers=3)
plan = plan_visits(forecast, capacity=2, by="community", explore=0.2, seed=0)
plan[["group", "grid_id", "priority", "assignment", "explore_probability", "expected_count", "reason"]].head(8)

# %% [markdown]
# Each row of the plan is a unit with its `assignment`: `rank` (visited because it is among the
# riskiest of its community), `explore` (drawn at random from the margin just below the cut,
# with the `explore_probability` it had of being drawn), or `control` (in that margin, left
# unvisited). `reason` says it in words for the team.

# %%
plan["assignment"].value_counts()

# %% [markdown]
# About a fifth of the visits are explore draws, each with control units beside it from the same
# pool. Only the explore and control rows are used to measure what visits prevent: they were
# decided by a coin, not by the forecast.

# %% [markdown]
# ## A quarter of the loop
#
# The simulator now runs the quarter week by week: each Monday the policy retrains (every
# four weeks) on what has been recorded so far, forecasts, and plans; the workers visit,
# the visits lower the rate of the preventable categories for a while, and they bring
# latent disputes to light (cases with `origin="patrol"`). Half the visits are drawn at the
# margin here, so that one quarter is enough to measure them.

# %%
policy = RiskVisits(capacity=2, by="community", explore=0.5, seed=0, features=RESIDENT)
looped = simulate_district(PRESET, seed=0, policy=policy, policy_start=start)
looped.visits["assignment"].value_counts(), looped.cases["origin"].value_counts()

# %% [markdown]
# The quarter's visits by how they were chosen, and the cases by who reported them. The
# `patrol` cases are disputes the visiting workers found: they are real, but they exist
# because of the visits, which is why the policy's models count only resident reports
# (`RESIDENT` above), or the forecast would chase its own visits.

# %% [markdown]
# ## What did the visits prevent?
#
# `visit_effect` compares the units drawn for a visit with the pool's units left unvisited,
# in the 28 days after their plan's week: resident-reported cases only, positive = fewer.
# The simulator knows what each visit really prevented; the randomised comparison
# estimates the effect of *ordering* a visit, so a visit that did not reach its unit counts
# as one that prevented nothing.

# %%
effect = visit_effect(looped, horizon=28, by="kind")
effect[["by", "value", "design", "n_treated", "n_control", "effect", "ci_low", "ci_high", "relative"]]

# %% [markdown]
# `effect` is the resident-reported cases prevented per ordered visit in the 28 days after its
# week, with a 90% interval (`ci_low` to `ci_high`), and `relative` the same as a share of the
# control units' cases. With one quarter of a small district the interval is wide and usually
# includes zero: a visit changes a unit's 28-day count by about a tenth of a case, against a
# spread of about one. The benchmarks run a year on larger districts for that reason.

# %%
truth = looped.truth.visit_effect(28, per="visit", window="week")
truth = truth.merge(looped.visits[["visit_id", "plan_id"]], on="visit_id")
plans = looped.plans
closed = plans[(plans["assignment"] == "explore") & (plans["week"] + pd.Timedelta(days=28) <= looped.end)]
drawn = truth.merge(closed[["plan_id", "grid_id"]], on=["plan_id", "grid_id"])
true_effect = drawn["prevented"].sum() / len(closed)
low, high = effect.loc[0, ["ci_low", "ci_high"]]
estimate = effect.loc[0, "effect"]
f"true effect {true_effect:.3f} per ordered visit; estimate {estimate:.3f}, 90% interval {low:.3f} to {high:.3f}"

# %% [markdown]
# The check only a simulator allows: the effect the drawn visits really had, against the
# estimate from the data. What matters is that the interval covers the truth; over many seeds
# it does in about 90% of runs (`bench/results/prevention_coverage.md`).

# %% [markdown]
# ## Where would a visit prevent most?
#
# The riskiest units are not always those where a visit helps most. An uplift model
# learns, from the randomised margin, how the effect varies with a unit's features; plans
# can then rank by the cases a visit is expected to prevent. The truth's uplift scores
# the ranking: the cases the top units by each ranking would be spared.

# %%
monday = (looped.end - pd.Timedelta(days=28)).to_period("W-SUN").start_time
uplift = fit_uplift(looped, policy.model_, horizon=28)
ranked = predict_uplift(looped, policy.model_, uplift, as_of=monday)
by_uplift = plan_visits(ranked, capacity=2, by="community", explore=0.0, rank_by="uplift", seed=0)
by_risk = plan_visits(ranked, capacity=2, by="community", explore=0.0, rank_by="risk", seed=0)
oracle = looped.truth.uplift(monday, 28)
top = len(by_uplift)
pd.Series(
    {
        "uplift model": oracle.reindex(by_uplift["grid_id"]).sum(),
        "risk": oracle.reindex(by_risk["grid_id"]).sum(),
        "oracle (best possible)": oracle.nlargest(top).sum(),
        "random": oracle.mean() * top,
    },
    name=f"true cases prevented by {top} visits",
).round(2)

# %% [markdown]
# Cases the same number of visits would truly prevent, planned four ways. Ranking by risk
# usually beats the uplift model learnt from one quarter's margin, and both beat random visits;
# the oracle shows how much a perfect ranking by effect would add. `UpliftVisits` therefore
# ranks by uplift only when a cross-fitted check shows the uplift ranking doing better.
#
# ## Communities judged against their own risk
#
# `assess` compares each community's resident-reported disputes in the quarter with what
# the model, trained before it, expected of that community. The funnel plot's limits
# widen as the expected count falls: a small community needs a larger ratio to stand out.

# %%
table = assess(looped, model, (start, looped.end), level="community")
table[["grid_id", "observed", "expected", "ratio", "flag"]].head()

# %% [markdown]
# Each community's observed cases against what the model expected of it, with a `flag` when the
# ratio lies outside the 95% or 99.8% limits of chance (`above_998`: far more than expected, a
# community to ask about; `below_95`: fewer). A flag is a question for the district, not a
# verdict: the limits assume the model is right for every community.

# %%
plots.funnel_plot(table)

# %% [markdown]
# Each dot is a community: its expected count across, its ratio of observed to expected up. The
# funnel's limits narrow as the expected count grows, since a large count varies less in
# relative terms; dots outside the funnel are the flagged communities.
