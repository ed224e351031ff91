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
# # Anomaly detection on a dispute wave
#
# The simulator injects dispute waves (a burst of one category in a grid or a whole
# community). `SpikeDetector` watches every unit daily; here is how it does on the
# injected waves, and what one wave looked like.

# %%
# %matplotlib inline
import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.features import build_grid_panel
from riskmodel.models import SpikeDetector

PRESET = os.environ.get("RISKMODEL_PRESET", "small")
district = simulate_district(PRESET, seed=0)
district.truth.waves.head()

# %% [markdown]
# The waves the simulator injected: which unit (a grid or a whole community), which category,
# when, and how many extra cases a day. The detector does not see this table; it is the truth
# the detections are scored against.

# %%
start = district.cases["reported_at"].min().normalize() + pd.Timedelta(days=91)
result = backtest(district, [SpikeDetector()], cutoffs=[start, district.end.normalize() - pd.Timedelta(days=14)],
                  target="waves", track=False, progress=False)
result.leaderboard[["wave_detection_rate", "wave_median_delay_days", "false_alarms_per_1000_unit_weeks"]]

# %% [markdown]
# The share of waves detected within their first 14 days, the median days from a wave's start
# to its first alarm, and the alarms no wave explains, per 1,000 units watched for a week. The
# targets are at least 80% detected and at most 5 false alarms; a lower `alpha` trades
# detections for fewer false alarms.

# %% [markdown]
# ## One wave, day by day: the unit's cases of the wave's category and the alarms

# %%
waves = district.truth.waves
wave = waves[(waves["level"] == "grid") & (waves["start"] > start)].iloc[0]
days = pd.date_range(wave["start"] - pd.Timedelta(days=28), wave["end"] + pd.Timedelta(days=14), freq="D")
panel = build_grid_panel(district, cutoffs=list(days), horizon=1, level="grid")
unit = panel.X.xs(wave["unit_id"], level="grid_id")
alarms = SpikeDetector().fit(panel.X).alarms(panel.X).xs(wave["unit_id"], level="grid_id")[wave["category"]]
figure = Figure(figsize=(8, 3), layout="constrained")
axes = figure.add_subplot()
axes.bar(days, unit[f"count_7d_{wave['category']}"], color="lightgrey", label="cases in the last 7 days")
axes.scatter(days[np.asarray(alarms)], unit[f"count_7d_{wave['category']}"][np.asarray(alarms)], color="red",
             label="alarm", zorder=3)
axes.axvspan(wave["start"], wave["end"], alpha=0.15, label=f"wave {wave['wave_id']}")
axes.set(title=f"{wave['category']} in {wave['unit_id']}", ylabel="cases")
axes.legend()
figure

# %% [markdown]
# The grey bars are the unit's cases of the wave's category in the last 7 days, the shaded span
# is the wave, and the red dots the days the detector raised an alarm. Look at the delay from
# the wave's start to the first red dot, and at whether alarms stop once the wave ends. In
# `riskmodel.predict` the same detector puts `anomaly:<category>` in a unit's `alerts`.
