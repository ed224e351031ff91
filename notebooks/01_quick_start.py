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
# # Quick start
#
# Simulate a district whose truth is known, look at its cases, build point-in-time
# features, evaluate two models against the oracle, train the final model, forecast the
# next 28 days for every grid, and map that forecast. `RISKMODEL_PRESET` picks the
# district's size (default `small`: 256 grids, two years).

# %%
# %matplotlib inline
import os

import pandas as pd
from matplotlib.figure import Figure

import riskmodel
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, plots
from riskmodel.features import build_grid_panel
from riskmodel.models import GBMCount, HistoricalRateBaseline

PRESET = os.environ.get("RISKMODEL_PRESET", "small")
district = simulate_district(PRESET, seed=0)
district

# %% [markdown]
# The summary counts what a `Dataset` holds: the cases, the units of every level (street >
# community > grid > microgrid), the attribute snapshots, and the time span. A simulated
# district also carries `.truth`, the real risk, which no model sees.
#
# ## The data: one row per case, units in a hierarchy

# %%
district.cases.head()

# %% [markdown]
# Each case has a report time, the unit it happened in, a category and a severity, and
# (when known) when it was resolved or escalated. These are the columns of the data
# contract; your own data needs at least `case_id`, `reported_at`, `grid_id` and `category`.

# %%
district.cases["category"].value_counts()

# %% [markdown]
# Neighbour noise and property management dominate; the rarer categories still get their
# own features. Forecasts below count every category; a `target` can select some.

# %%
district.grids["level"].value_counts()

# %% [markdown]
# Forecasts are made at the `grid` level; the streets and communities above give each grid
# its parents' aggregates as features, and the microgrids are where cases happen.
#
# ## Point-in-time features: every grid at every cutoff, the next 28 days as the label

# %%
first = district.cases["reported_at"].min().normalize() + pd.Timedelta(days=91)  # 91 days of history
end = district.end.normalize() - pd.Timedelta(days=28)  # the last label window closed
panel = build_grid_panel(district, cutoffs={"start": first, "end": end, "freq": "4W-MON"}, horizon=28)
panel.X.shape, float(panel.y.mean())

# %% [markdown]
# One row per grid and cutoff, about a hundred features computed only from what was on
# record before the cutoff, and the label: whether the grid had a case in the 28 days after
# it. The mean label is the share of grid-periods with at least one case: the rate a model
# has to beat.
#
# ## Evaluate against the oracle on the last three four-week folds

# %%
cutoffs = pd.date_range(end=end, periods=3, freq="4W-MON")
models = {"GBMCount": GBMCount(n_estimators=100), "HistoricalRateBaseline": HistoricalRateBaseline()}
result = backtest(district, models, cutoffs=cutoffs, horizon=28, track=False, progress=False)
result.leaderboard[["roc_auc", "hit_rate_at_5pct", "hit_rate_at_5pct_oracle_ratio", "ece"]]

# %% [markdown]
# Read `hit_rate_at_5pct`: the share of the next 28 days' cases that fell in the 5% of grids
# each model ranked riskiest. `hit_rate_at_5pct_oracle_ratio` divides it by the oracle's
# (the simulator's true risk, the best any model could do): close to 1 is as good as it
# gets. `ece` is the calibration error of the probabilities (lower is better). With three
# folds on a small district the differences between the two models are mostly noise; the
# notebook *Comparing families* (02) shows the spread.

# %%
plots.hit_rate_curve(result)

# %% [markdown]
# The curve extends the hit rate to every share of grids visited: the higher the curve, the
# more cases a team that visits that share of grids would have met. The dashed oracle is
# the ceiling, and the diagonal is a random choice of grids.
#
# ## Train the final model and forecast the next 28 days

# %%
model = riskmodel.train(district, model=GBMCount(n_estimators=100), horizon=28, track=False)
risk = riskmodel.predict(district, model=model)
risk.head(10)[["grid_id", "probability", "expected_count", "low", "high", "tier", "top_drivers", "alerts"]]

# %% [markdown]
# The forecast for the 28 days after the end of the data, one row per grid, riskiest first:
# the `probability` of at least one case, the `expected_count` with its 80% interval
# (`low` to `high`), the `tier` a team would act on, the three `top_drivers` of the score in
# words, and `alerts` (for instance `anomaly:<category>` when the last week was improbably
# busy). Look at whether the drivers make sense for the top grids: long-run rates and
# recent counts usually lead.
#
# ## Where the risk is: the forecast on the map

# %%
at = risk.merge(district.grids[["grid_id", "lon", "lat"]], on="grid_id")
figure = Figure(figsize=(6, 5), layout="constrained")
axes = figure.add_subplot()
dots = axes.scatter(at["lon"], at["lat"], c=at["probability"], cmap="Reds", s=60, marker="s")
top = at.nsmallest(10, "rank")
axes.scatter(top["lon"], top["lat"], facecolors="none", edgecolors="black", s=140, marker="s", label="top 10")
axes.set(title=f"P(at least one case) in the 28 days from {risk['as_of'].iloc[0]:%Y-%m-%d}", xlabel="longitude",
         ylabel="latitude")
axes.legend(loc="upper right")
figure.colorbar(dots, label="probability")
figure

# %% [markdown]
# Each square is a grid, coloured by the forecast's probability; the outlined ones are the
# ten riskiest, the first a team would visit. Where risky grids sit together one team can
# cover several; where they are spread over the district, as the top ten often are, plans
# share the visits out by community (notebook 06, the prevention loop). Next: compare every
# model family (notebook 02), or read the user guide (`docs/guide/`).
