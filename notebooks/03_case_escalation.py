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

# %% [markdown]
# One row per case with its features at report time (category, severity, the party's earlier
# cases, the unit's backlog, ...) and the label: escalated within 30 days. About one case in
# eight escalates, so a probability well above that marks a case to watch.

# %%
last = district.end.normalize() - pd.Timedelta(days=30 + 28)
cutoffs = pd.date_range(end=last, periods=3, freq="4W-MON")
models = {"LogisticRisk": LogisticRisk(), "EscalationClassifier": EscalationClassifier(n_estimators=100)}
result = backtest(district, models, cutoffs=cutoffs, target="escalation", track=False, progress=False)
result.leaderboard[["roc_auc", "average_precision", "brier", "ece"]]

# %% [markdown]
# The oracle row scores the simulator's true escalation probabilities: no model can do better
# on average. Look at how close the logistic model comes to it in ROC AUC (ranking) and in
# Brier score and ECE (the probabilities themselves): escalation depends on a few observable
# things, so a simple model is enough.

# %%
plots.calibration_curve(result)

# %% [markdown]
# Predicted probability against the observed share of escalations, in bins of equal counts.
# Points near the diagonal mean a probability of 0.4 escalates about 40% of the time, so the
# tiers and thresholds built on it mean what they say.

# %% [markdown]
# ## The cases open at the end of the data, riskiest first, with their drivers

# %%
model = riskmodel.train(district, model=LogisticRisk(), target="escalation", track=False)
open_cases = riskmodel.predict(district, model=model)
open_cases.head(10)[["case_id", "grid_id", "probability", "tier", "top_drivers"]]

# %% [markdown]
# The open cases a mediator should look at first. The drivers say why: here the severity and
# the category (unpaid wages, land and housing compensation) lead, which is how the simulator
# makes escalation happen. On real data, drivers that make no sense are a reason to doubt the
# model before acting on it.

# %% [markdown]
# `explain` gives the same drivers as data: the feature, its value and its contribution.

# %%
X = model.features(district, open_cases["as_of"].iloc[0])
explain(model.estimator, X, top=3).head()

# %% [markdown]
# Each driver with the case's value and its contribution to the score (in log-odds for the
# logistic model): the numbers behind the words of `top_drivers`.
