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
# # Case escalation, with explanations
#
# Which open cases are about to escalate? A classifier over case features, backtested
# against the simulator's true escalation probabilities, then asked about the cases
# open today, each with the drivers of its score.

# %%
# %matplotlib inline
import os

import pandas as pd

import riskmodel
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, plots
from riskmodel.features import build_case_features
from riskmodel.models import EscalationClassifier, LogisticRisk, explain

PRESET = os.environ.get("RISKMODEL_PRESET", "small")
district = simulate_district(PRESET, seed=0)
cases = build_case_features(district, escalation_days=30)
cases.X.shape, float(cases.y.mean())

# %%
last = district.end.normalize() - pd.Timedelta(days=30 + 28)
cutoffs = pd.date_range(end=last, periods=3, freq="4W-MON")
models = {"LogisticRisk": LogisticRisk(), "EscalationClassifier": EscalationClassifier(n_estimators=100)}
result = backtest(district, models, cutoffs=cutoffs, target="escalation", track=False, progress=False)
result.leaderboard[["roc_auc", "average_precision", "brier", "ece"]]

# %%
plots.calibration_curve(result)

# %% [markdown]
# ## The cases open at the end of the data, riskiest first, with their drivers

# %%
model = riskmodel.train(district, model=LogisticRisk(), target="escalation", track=False)
open_cases = riskmodel.predict(district, model=model)
open_cases.head(10)[["case_id", "grid_id", "probability", "tier", "top_drivers"]]

# %% [markdown]
# `explain` gives the same drivers as data: the feature, its value and its contribution.

# %%
X = model.features(district, open_cases["as_of"].iloc[0])
explain(model.estimator, X, top=3).head()
