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
# features, train a model, evaluate it against the oracle, and map tomorrow's risk.
# `RISKMODEL_PRESET` picks the district's size (the tests run `tiny`).

# %%
# %matplotlib inline
import os

import pandas as pd

import riskmodel
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, plots
from riskmodel.features import build_grid_panel
from riskmodel.models import GBMCount, HistoricalRateBaseline

PRESET = os.environ.get("RISKMODEL_PRESET", "small")
district = simulate_district(PRESET, seed=0)
district

# %% [markdown]
# ## The data: one row per case, units in a hierarchy

# %%
district.cases.head()

# %%
district.cases["category"].value_counts()

# %%
district.grids["level"].value_counts()

# %% [markdown]
# ## Point-in-time features: every grid at every cutoff, the next 28 days as the label

# %%
first = district.cases["reported_at"].min().normalize() + pd.Timedelta(days=91)  # 91 days of history
end = district.end.normalize() - pd.Timedelta(days=28)  # the last label window closed
panel = build_grid_panel(district, cutoffs={"start": first, "end": end, "freq": "4W-MON"}, horizon=28)
panel.X.shape, float(panel.y.mean())

# %% [markdown]
# ## Evaluate against the oracle on the last three four-week folds

# %%
cutoffs = pd.date_range(end=end, periods=3, freq="4W-MON")
models = {"GBMCount": GBMCount(n_estimators=100), "HistoricalRateBaseline": HistoricalRateBaseline()}
result = backtest(district, models, cutoffs=cutoffs, horizon=28, track=False, progress=False)
result.leaderboard[["roc_auc", "hit_rate_at_5pct", "hit_rate_at_5pct_oracle_ratio", "ece"]]

# %%
plots.hit_rate_curve(result)

# %% [markdown]
# ## Train the final model and score every grid as of the end of the data

# %%
model = riskmodel.train(district, model=GBMCount(n_estimators=100), horizon=28, track=False)
risk = riskmodel.predict(district, model=model)
risk.head(10)[["grid_id", "probability", "expected_count", "tier", "top_drivers", "flags"]]

# %%
plots.risk_map(result, district, model="GBMCount")
