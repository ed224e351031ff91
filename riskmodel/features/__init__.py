"""Point-in-time features: the grid panel and case features."""

from __future__ import annotations

import pandas as pd

from .base import Target
from .case_features import CaseFeatureBuilder, CaseFeatures, build_case_features
from .grid_panel import GridPanel, GridPanelBuilder, build_grid_panel

__all__ = [
    "CaseFeatureBuilder",
    "CaseFeatures",
    "GridPanel",
    "GridPanelBuilder",
    "Target",
    "build_case_features",
    "build_grid_panel",
    "describe",
]


def describe(kind: str = "grid") -> pd.DataFrame:
    """The features' names, families, windows (days) and descriptions.

    Built with the default options on the simulated district (its eight
    categories and nine attributes); per-category and attribute names follow
    the data's own vocabulary.

    Parameters
    ----------
    kind : {"grid", "case"}
        The grid panel's features or the case features.

    Returns
    -------
    DataFrame
        ``name``, ``family``, ``window``, ``description``.

    Examples
    --------
    >>> from riskmodel.features import describe
    >>> table = describe()
    >>> len(table) >= 80, table.loc[0, "name"]
    (True, 'count_7d')
    """
    from ..datasets import simulate_district

    district = simulate_district("tiny", seed=0)
    if kind == "grid":
        return GridPanelBuilder().fit(district).catalog()
    if kind == "case":
        return CaseFeatureBuilder().fit(district).catalog()
    raise ValueError(f"kind must be 'grid' or 'case', got {kind!r}")
