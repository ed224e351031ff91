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
# # Comparing model families, and reading the runs back from MLflow
#
# Every family is backtested on the same folds against the oracle; the backtest logs
# itself to MLflow (`MLFLOW_TRACKING_URI`, else `mlflow.db` in the working directory),
# and `riskmodel.tracking.compare` reads the runs back.

# %%
# %matplotlib inline
import os

import pandas as pd

from riskmodel import tracking
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, plots
from riskmodel.models import grid_models

PRESET = os.environ.get("RISKMODEL_PRESET", "small")
district = simulate_district(PRESET, seed=0)
end = district.end.normalize() - pd.Timedelta(days=28)
cutoffs = pd.date_range(end=end, periods=3, freq="4W-MON")
result = backtest(district, grid_models(n_estimators=100), cutoffs=cutoffs, horizon=28,
                  experiment="notebook-families", progress=False)
result.leaderboard[["roc_auc", "hit_rate_at_5pct", "hit_rate_at_5pct_oracle_ratio", "pai_at_5pct", "ece"]]

# %% [markdown]
# The spread over folds says how much of a difference is noise:

# %%
result.leaderboard[["hit_rate_at_5pct", "hit_rate_at_5pct_fold_std", "roc_auc", "roc_auc_fold_std"]]

# %%
plots.metrics_by_fold(result)

# %% [markdown]
# ## The same leaderboard, read back from MLflow

# %%
board = tracking.compare("notebook-families")
board[board["backtest"] == result.run_id][["model", "roc_auc", "hit_rate_at_5pct"]]
