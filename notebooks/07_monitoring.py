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
# # Monitoring what was served
#
# A backtest says how a model would have done; a district needs to know how the model it
# actually served is doing. Here a model trained once serves a forecast every Monday for a
# year, each forecast kept in a forecast store (`predict(..., record=...)`), and
# `riskmodel.monitor` scores the stored forecasts as their windows close and raises alarms.
# The simulator runs the same district twice with the same seed: unchanged, and with a new
# reporting platform (an app) that from 3 March 2025 records half as many cases again as
# before. Which world sets off the alarms, and how soon? About a minute on 2 cores.

# %%
# %matplotlib inline
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from riskmodel import monitor, open_store, predict, train
from riskmodel.datasets import NewPlatform, simulate_district
from riskmodel.evaluation import write_monitor_page
from riskmodel.models import GBMCount

PRESET = os.environ.get("RISKMODEL_PRESET", "small")
pd.set_option("display.precision", 3)
pd.set_option("display.max_colwidth", None)  # the alarms' messages in full
CHANGE = pd.Timestamp("2025-03-03")  # the app's first day, a Monday
worlds = {
    "unchanged": simulate_district(PRESET, seed=0, years=3),
    "new platform": simulate_district(
        PRESET, seed=0, years=3, changes=[NewPlatform(start=CHANGE, factor=1.5, source="app")]
    ),
}
after = {name: world.cases[world.cases["reported_at"] >= CHANGE] for name, world in worlds.items()}
pd.DataFrame({name: cases["source"].value_counts() for name, cases in after.items()}).fillna(0).astype(int)

# %% [markdown]
# The cases recorded from the change to the end of 2025, by the channel that recorded them.
# Up to the change the two worlds are the same, case for case; after it both draw their
# disputes from the same process, so the old channels record about as many in each (up to
# chance), and the second also records, through the `app`, disputes that used to go unreported.
# Nothing changed in what happens between neighbours, only in what reaches the record: the
# kind of change a model trained before it cannot know about.
#
# ## A model trained once, served every Monday
#
# The model is trained on the data as it stood on 6 January 2025: two years of cases. A
# service sees each Monday only what was on record that day, so `Dataset.as_it_stood` cuts the
# data there: later reports gone, later resolutions and escalations not yet known, later
# attribute snapshots not yet in force.

# %%
TRAINED = pd.Timestamp("2025-01-06")
model = train(worlds["unchanged"].as_it_stood(TRAINED), model=GBMCount(n_jobs=2), horizon=28, track=False)
model

# %% [markdown]
# One model, trained before the change; the two worlds are identical up to then, so it is the
# same model for both. It forecasts every grid's cases in the next 28 days; `trained_through`
# is its last training cutoff, the last whose 28 days had passed by 6 January.
#
# ## Every forecast on the record
#
# Each Monday of 2025 the service forecasts from the data as it stood and records the answer:
# `record=` takes a SQLite file (as here), any SQLAlchemy URL, or a folder for Parquet. One
# store per world, so that the two can be compared.

# %%
folder = Path(tempfile.mkdtemp())
mondays = pd.date_range(TRAINED, "2025-12-22", freq="W-MON")
stores = {name: folder / f"{name.replace(' ', '_')}.db" for name in worlds}
for name, world in worlds.items():
    for monday in mondays:
        predict(world.as_it_stood(monday), as_of=monday, model=model, record=stores[name], drivers=0)
stored = open_store(stores["unchanged"]).read()
stored[["model_name", "model_version", "as_of", "window_end", "unit", "probability", "expected_count", "low", "high"]]

# %% [markdown]
# What the store keeps: one row per model version, `as_of` and unit, 256 grids times 51
# Mondays. `model_version` is the registry's version for a registered model, else a hash of
# the model's content (as here), so that a forecast is always traced to the model that made
# it. `window_end` is when the forecast can be scored: 28 days after `as_of`. Recording twice
# writes nothing new, so a service can safely retry.
#
# ## Scoring what was served
#
# `monitor` joins every stored forecast whose window has closed by the data's end with the
# cases that happened, and scores each week's forecast with the backtest's metrics. Given the
# served model, it also counts the cases as the model's label counts them and checks its
# inputs for drift.

# %%
reports = {name: monitor(stores[name], world, model=model) for name, world in worlds.items()}
shown = ["as_of", "window_end", "observed", "expected", "oe_ratio", "hit_rate_at_5pct", "brier", "interval_coverage"]
reports["unchanged"].scores[shown].head(8)

# %% [markdown]
# The unchanged world's first weeks of forecasts, each scored over its whole 28-day window:
# `observed` cases against the `expected` count summed over the grids (their ratio
# `oe_ratio`), the share of cases in the riskiest 5% of grids (`hit_rate_at_5pct`), the Brier
# score of the probabilities and the share of grids whose count fell in its 80% interval
# (`interval_coverage`). Windows overlap (a case counts in four weekly forecasts), so these
# are for reading, not for alarms.
#
# ## A year, one week at a time
#
# The calibration alarms read `report.weeks` instead: each forecast's *first* week, its
# observed cases against a quarter of its expected count. Forecasts served weekly make these
# weeks disjoint, so each case counts once, and a week is known a week after its forecast,
# not four.

# %%
fig, ax = plt.subplots(figsize=(10, 4))
for (name, report), colour in zip(reports.items(), ["tab:blue", "tab:red"], strict=True):
    weeks = report.weeks
    ax.plot(weeks["as_of"], weeks["oe_ratio"], color=colour, label=f"{name}: observed / expected")
    raised = report.alarms[report.alarms["kind"].str.startswith("calibration")]
    at = weeks.set_index("as_of").loc[raised["week"], "oe_ratio"]
    ax.scatter(raised["known_at"], at, color=colour, marker="v", s=60, zorder=3, label=f"{name}: alarm raised")
ax.axhline(1, color="grey", lw=0.8)
ax.axvline(CHANGE, color="black", ls="--", lw=1)
ax.annotate("the app starts", (CHANGE, ax.get_ylim()[0]), xytext=(4, 4), textcoords="offset points")
ax.set(ylabel="first week's observed / expected", title="Each Monday's forecast, scored on its first week")
ax.legend(loc="upper right", fontsize=8)
fig.tight_layout()

# %% [markdown]
# Before the change the two lines are one: the same forecasts, the same cases. From the first
# Monday of March the red line jumps above 1.5 and stays well above 1: the app's cases are real
# records that the model, trained before the app existed, does not expect. Each triangle is an
# alarm, drawn on the day it could be raised (`known_at`): the first, two weeks after the change.
# In the autumn the red line comes down towards 1 without any retraining: the count features
# see the app's cases as a busier district and raise the forecasts, slowly and only in part.
# The blue line wanders around 1 and sinks in the autumn, as the unchanged district has a
# quieter end of year than the model learnt from 2023 and 2024.
#
# ## The alarms, and why
#
# Every alarm comes with a sentence. The calibration CUSUM adds up, week after week, the
# evidence that cases run at twice the forecast (or half of it) rather than at the
# forecast, and alarms when that evidence crosses its limit (`cusum_h` in
# `configs/monitoring.yaml`); it then starts again, so a lasting change alarms again.

# %%
alarms = reports["new platform"].alarms
alarms[["week", "known_at", "kind", "value", "threshold", "message"]]

# %% [markdown]
# In the world with the app: the first calibration alarm two weeks after the change, known
# from the cases of the app's second week (on the `small` district, 86 against 59 expected):
# the CUSUM adds that week's evidence to the first week's. A second follows in May, while the
# forecast still falls short, and one `input_drift` alarm at the latest Monday served. Read
# `message`: "more cases than forecast" says which way, and the week's observed and expected
# counts say by how much. Under the default settings a calibration alarm also fires when the
# weekly O/E stays outside its control limits (`limit_z`) for `weeks` weeks in a row; a jump
# as sharp as this one trips the CUSUM first.

# %%
reports["unchanged"].alarms[["week", "known_at", "kind", "message"]]

# %% [markdown]
# The unchanged world raises no alarm all year, through the weeks where the other world
# alarmed: the same model, the same settings. The CUSUM is tuned to a doubling
# (`cusum_shift: 2`), above the 15% or so by which a trained model's forecasts drift over a
# year on their own, so that a district is not called out for nothing; the price is that a
# smaller change, like this one of 1.5, takes two weeks or more to be sure of
# (`bench/results/monitoring.md` measures both over ten seeds).
#
# ## Which inputs moved
#
# Given the model, `monitor` rebuilds its features at the latest Monday served and at every
# cutoff it was trained on, and compares each feature's distribution at that Monday with its
# distribution at the last training cutoff by the population stability index (PSI). A feature
# has drifted when its PSI is above `psi_threshold` (0.25) *and* above `usual`: the largest PSI
# between two training cutoffs as far apart as that Monday is from training. So what always
# moves that much in a year (the season, a clock like `days_to_holiday`, the counts of the few
# parents, which move together) is not drift; a feature moved by more than that is.

# %%
drift = reports["new platform"].drift
drift[["feature", "psi", "usual", "drifted"]].head(8)

# %% [markdown]
# The drifted features come first: in the world with the app, the neighbours' counts of the
# last 91 days and the units' shrunk rates of the last year, pulled up by the app's cases. The
# parents' counts moved more in PSI, but no more than they moved within a year of training.
# The named features say which part of the record moved. In the unchanged world none has
# drifted:

# %%
quiet = reports["unchanged"].drift
f"{quiet['drifted'].sum()} of {len(quiet)} features drifted in the unchanged world"

# %% [markdown]
# Not one of the model's inputs has drifted in the unchanged world: they look like its
# training data, and with no calibration alarm either, the model is still fit to serve.
#
# ## What was not scored
#
# A forecast is scored only when its window has closed by the data's end; the last weeks'
# forecasts are left for a later run, and counted rather than skipped in silence.

# %%
reports["new platform"].unscored

# %% [markdown]
# The three Mondays whose 28-day windows run past 31 December 2025: 256 forecasts each, left
# `window_open`. A forecast of a unit the data does not know would be counted here as
# `unknown_unit`.
#
# ## The same, as a page
#
# `write_monitor_page` draws a report as an offline HTML page in the style of `riskmodel
# report`: the verdict in a sentence, the alarms and why, each week's scores beside what the
# model's backtest expects, the drifted inputs and what was left unscored
# (`riskmodel monitor ... --html monitor.html` writes it from the command line).

# %%
page = write_monitor_page(reports["new platform"], folder / "monitor.html")
f"{page.name}: {page.stat().st_size / 1e3:.0f} kB, no request to the network"

# %% [markdown]
# One self-contained file with its figures inline, to open in any browser or attach to a
# message; a scheduler can write it on every run beside the exit code.
#
# ## What a district does on an alarm
#
# - **More cases than forecast, from one week on** (the app's world): ask what changed in
#   the recording before blaming the model. Here the cases by `source` answer it: the new
#   channel. Check that the app's cases are not the hotline's cases entered twice (the same
#   parties, grid and day); if they are duplicates, remove them at the source, and the alarm
#   was right about the data, not the model. If they are new, real disputes, the model
#   under-forecasts every unit: retrain it on data that includes enough weeks of the app,
#   then serve the new version; its forecasts are scored as a version of their own.
# - **Fewer cases than forecast**: look at the season and at any channel that stopped
#   recording; a model a year old is due for retraining.
# - **Input drift**: read the named features; they tell which part of the record moved.
# - **Hit rate below its band** and **cold starts**: the ranking itself is worse than its
#   backtest, or the district has units the model never saw; both say retrain. (A model
#   trained with `model="auto"` carries its backtest band; this one, named by hand, does not,
#   so its hit rate is scored but not alarmed on.)
#
# On a schedule, `riskmodel monitor --store forecasts.db --data DIR --model MODEL` does all of
# this and exits 3 on an alarm (0 when healthy); the thresholds are in
# `configs/monitoring.yaml`. See the user guide's monitoring page.
