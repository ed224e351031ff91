"""A first look at a dataset: units, cases by category and month, escalation, hot spots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .contract import Dataset

__all__ = ["summarize"]


def summarize(dataset: Dataset, *, level: str = "grid", top: int = 10) -> dict[str, pd.DataFrame]:
    """Tables that describe a validated dataset.

    Parameters
    ----------
    dataset : Dataset
        Validated data (see :func:`riskmodel.validate`).
    level : str
        The level whose busiest units are listed.
    top : int
        How many busiest units to list.

    Returns
    -------
    dict of DataFrame
        ``units`` (units per level, top-down), ``cases_by_month`` (cases per
        month and category), ``escalation`` (cases, escalated, rate per
        category and overall) and ``busiest`` (the ``top`` units of ``level``
        with most cases, with their parent).

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.summary import summarize
    >>> tables = summarize(simulate_district("tiny", seed=0))
    >>> tables["units"]["units"].to_dict()
    {'street': 1, 'community': 4, 'grid': 25, 'microgrid': 80}
    """
    cases, grids = dataset.cases, dataset.grids
    units = grids["level"].value_counts().reindex(dataset.levels).rename("units").to_frame()
    month = cases["reported_at"].dt.to_period("M").rename("month")
    by_month = pd.crosstab(month, cases["category"])
    if "escalated_at" in cases:
        escalated = cases["escalated_at"].notna()
    elif "outcome" in cases:
        escalated = cases["outcome"] == "escalated"
    else:  # nothing is known of escalations
        escalated = pd.Series(np.nan, index=cases.index)
    escalation = (
        pd.DataFrame({"category": cases["category"], "escalated": escalated})
        .groupby("category")["escalated"]
        .agg(cases="size", escalated=lambda e: e.sum(min_count=1))
    )
    escalation.loc["all"] = escalation.sum(min_count=1)
    escalation["rate"] = escalation["escalated"] / escalation["cases"]
    unit = cases["grid_id"].map(dataset.ancestors(level))
    parent = grids.set_index("grid_id")["parent_id"]
    busiest = unit.value_counts().head(top).rename("cases").rename_axis(level).to_frame()
    busiest.insert(0, "parent_id", parent.reindex(busiest.index).to_numpy())
    return {"units": units, "cases_by_month": by_month, "escalation": escalation, "busiest": busiest}
