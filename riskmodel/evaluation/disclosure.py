"""Disclosure control: what a report, a plot or a table for a wider audience may show.

A reader must not be able to pick out a household. Counts of fewer than ``k`` cases
(default 3) of the lowest level of ``dataset.grids`` (the micro-grid level) or of a
sensitive category (default ``family``) are shown as ``"< k"``, and a map of the
micro-grid level is drawn at the level above. Pure functions: no MLflow, no files.
A service's answer (:func:`riskmodel.predict`) is not changed by any of this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["SENSITIVE", "map_level", "suppress_small_counts", "suppress_small_counts_in_text"]

#: The categories whose counts are suppressed at every level.
SENSITIVE = ("family",)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number >= 1 (e.g. 3: counts 1 and 2 are hidden), got {k!r}")
    return int(k)


def suppress_small_counts(frame: pd.DataFrame, columns: Sequence[str], *, k: int = 3) -> pd.DataFrame:
    """A copy of ``frame`` whose counts from 1 to ``k - 1`` in ``columns`` read ``"< k"``.

    Zero stays (it names nobody), as do missing values and counts of ``k`` or more;
    the columns become text where a count is hidden.

    Parameters
    ----------
    frame : DataFrame
    columns : list of str
        Columns of counts (whole numbers) in ``frame``.
    k : int, default 3
        The smallest count shown.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.evaluation.disclosure import suppress_small_counts
    >>> table = pd.DataFrame({"grid_id": ["A", "B", "C"], "cases": [0, 2, 7]})
    >>> suppress_small_counts(table, ["cases"], k=3)["cases"].tolist()
    [0, '< 3', 7]
    """
    k = _check_k(k)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"suppress_small_counts: no column {missing} in the frame; it has {list(frame.columns)}")
    out = frame.copy()
    for column in columns:
        values = pd.to_numeric(out[column], errors="coerce")
        small = (values > 0) & (values < k)
        if small.any():
            out[column] = out[column].astype(object).where(~small, f"< {k}")
    return out


_COUNT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?= ([a-z][\w ]*?)?cases?\b(?! a day))")  # counts, not rates


def suppress_small_counts_in_text(
    text: str, *, k: int = 3, everything: bool = True, sensitive: Sequence[str] = SENSITIVE
) -> str:
    """``text`` with every count of cases below ``k`` (a number before "case(s)", not a
    rate "cases a day") read ``"< k"``.

    With ``everything=False`` only counts of a sensitive category ("2 family cases")
    are hidden: the rule for units above the micro-grid level.

    Examples
    --------
    >>> from riskmodel.evaluation.disclosure import suppress_small_counts_in_text
    >>> suppress_small_counts_in_text("2 family cases in 28 days; 9 cases in 91 days")
    '< 3 family cases in 28 days; 9 cases in 91 days'
    >>> suppress_small_counts_in_text("1 noise case, 2 family cases", everything=False)
    '1 noise case, < 3 family cases'
    """
    k = _check_k(k)
    words = {s.replace("_", " ") for s in sensitive}

    def hide(match: re.Match) -> str:
        value, category = float(match.group(1)), (match.group(2) or "").strip()
        if 0 < value < k and (everything or category in words):
            return f"< {k}"
        return match.group(0)

    return _COUNT.sub(hide, text)


def map_level(dataset, level: str, *, aggregate: bool = True) -> str:
    """The level a map of ``level`` is drawn at: the level above when ``level`` is the
    micro-grid level (the lowest of ``dataset.levels``), ``aggregate`` is on, and at
    least two units above have coordinates; else ``level`` itself.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation.disclosure import map_level
    >>> district = simulate_district("tiny", seed=0)
    >>> map_level(district, "microgrid"), map_level(district, "grid"), map_level(district, "microgrid", aggregate=False)
    ('grid', 'grid', 'microgrid')
    """
    if level not in dataset.levels:
        raise ValueError(f"unknown level {level!r}; the data has levels {dataset.levels}")
    parent = dataset.parent_level(level)
    if not aggregate or level != dataset.levels[-1] or parent is None:
        return level
    grids = dataset.grids
    if not {"lon", "lat"} <= set(grids.columns):
        return level
    above = grids.loc[grids["level"] == parent, ["lon", "lat"]].dropna()
    return parent if len(above) >= 2 else level
