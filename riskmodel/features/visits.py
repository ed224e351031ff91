"""What grid workers did and found, as point-in-time features of the panel's units; and the
choice of cases by origin (resident-reported or found on patrol).

A visit counts for the units of the panel's level it covers: a visit to a unit of the
level counts for it, a visit to a unit below the level for its ancestor at the level, and a
visit to a unit above the level for each of its descendants at the level. At cutoff ``c``
only visits with ``visited_at < c`` are seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import CASE_ORIGINS, VISIT_OUTCOMES, Dataset
from ..problems import shown_value
from .events import DAY, EventIndex, us

__all__ = ["PATROL_WINDOWS", "VISIT_DAYS_CAP", "VISIT_WINDOWS", "VisitEvents", "check_origins", "select_origins"]

#: Windows in days of the visit counts (``visits_{w}d``).
VISIT_WINDOWS = (28, 91)
#: Windows in days of the counts of cases found on patrol (``patrol_count_{w}d``).
PATROL_WINDOWS = (28, 91)
#: ``days_since_visit`` is capped here, and is this when the unit was never visited.
VISIT_DAYS_CAP = 365


def visit_catalog() -> list[tuple[str, str, int | None, str]]:
    """The visit features: (name, family, window, description)."""
    rows: list[tuple[str, str, int | None, str]] = [
        (
            "days_since_visit",
            "visits",
            None,
            f"days since the last visit covering the unit before the cutoff, at most {VISIT_DAYS_CAP} "
            f"({VISIT_DAYS_CAP} when none); a visit to a unit above counts for each unit below it",
        )
    ]
    rows += [
        (f"visits_{w}d", "visits", w, f"visits covering the unit in the {w} days before the cutoff")
        for w in VISIT_WINDOWS
    ]
    rows += [
        (
            f"last_visit_{outcome}",
            "visits",
            None,
            f"1 when the last visit before the cutoff found {outcome} (0 without a visit or an outcome)",
        )
        for outcome in VISIT_OUTCOMES
    ]
    return rows


def patrol_catalog() -> list[tuple[str, str, int | None, str]]:
    """The features of cases found on patrol: (name, family, window, description)."""
    return [
        (
            f"patrol_count_{w}d",
            "patrol",
            w,
            f"cases of origin patrol (found on a visit) in the unit in the {w} days before the cutoff",
        )
        for w in PATROL_WINDOWS
    ]


class VisitEvents:
    """The visits covering each unit of ``units`` (the panel's level), sorted by time.

    Ties in time are broken by ``visit_id``: of two visits at the same time, the one with
    the greater id is the later.

    Parameters
    ----------
    data : Dataset
        Validated data with a ``visits`` table.
    units : pandas.Index
        The units of ``level``, in the panel's order.
    level : str
        The panel's level.
    """

    def __init__(self, data: Dataset, units: pd.Index, level: str):
        visits = data.visits if data.visits is not None else pd.DataFrame(columns=["visit_id", "grid_id", "visited_at"])
        cover = _cover(data, units, level)
        events = visits.reset_index(drop=True).merge(cover, on="grid_id", how="inner")
        events = events.sort_values(["visited_at", "visit_id"], kind="stable")
        self.n = len(units)
        self.time = us(events["visited_at"])
        self.unit = events["unit"].to_numpy(np.int64)
        outcome = events["outcome"] if "outcome" in events.columns else pd.Series(np.nan, index=events.index)
        self.outcome = pd.Index(VISIT_OUTCOMES).get_indexer(outcome.astype(object))
        self.index = EventIndex(self.unit, self.time)

    def features(self, c: int) -> dict[str, np.ndarray]:
        """The visit features of every unit at cutoff ``c`` (microseconds)."""
        n = self.n
        out: dict[str, np.ndarray] = {}
        for w in VISIT_WINDOWS:
            window = slice(np.searchsorted(self.time, c - w * DAY), np.searchsorted(self.time, c))
            out[f"visits_{w}d"] = np.bincount(self.unit[window], minlength=n)
        last = self.index.last(np.arange(n), c)
        seen = last >= 0
        days = np.full(n, float(VISIT_DAYS_CAP))
        days[seen] = np.minimum((c - self.time[last[seen]]) / DAY, VISIT_DAYS_CAP)
        out["days_since_visit"] = days
        outcome = np.append(self.outcome, -1)[np.where(seen, last, -1)]  # -1: no visit, or no outcome
        for k, name in enumerate(VISIT_OUTCOMES):
            out[f"last_visit_{name}"] = (outcome == k).astype(float)
        return out


def _cover(data: Dataset, units: pd.Index, level: str) -> pd.DataFrame:
    """Pairs (``grid_id`` of any unit, ``unit``: position in ``units``) of the units of the
    level each unit covers: itself and its descendants cover their ancestor at the level;
    a unit above the level covers each of its descendants at the level."""
    below = data.ancestors(level)
    parts = [pd.DataFrame({"grid_id": below.index, "unit": units.get_indexer(below)})]
    levels = data.levels
    for upper in levels[: levels.index(level)]:
        ancestor = data.ancestors(upper).reindex(units)
        parts.append(pd.DataFrame({"grid_id": ancestor.to_numpy(), "unit": np.arange(len(units))}))
    cover = pd.concat(parts, ignore_index=True)
    cover = cover[(cover["unit"] >= 0) & cover["grid_id"].notna()]
    return cover.astype({"grid_id": "str"}).drop_duplicates()


def check_origins(origins) -> tuple[str, ...] | None:
    """``origins`` as a tuple of known origins, or None (every case).

    Raises
    ------
    ValueError
        When it is empty or names an origin other than resident or patrol.
    """
    if origins is None:
        return None
    origins = (origins,) if isinstance(origins, str) else tuple(origins)
    unknown = [o for o in origins if o not in CASE_ORIGINS]
    if not origins or unknown:
        raise ValueError(f"origins must be None (every case) or some of {', '.join(CASE_ORIGINS)}; got {list(origins)}")
    return origins


def select_origins(cases: pd.DataFrame, origins) -> pd.DataFrame:
    """The cases whose ``origin`` is among ``origins`` (all of them when None).

    Raises
    ------
    ValueError
        With ``origins`` given, when the cases have no ``origin`` column or some case has
        none (an unknown origin cannot be counted or left out): naming the column and
        example cases.

    Examples
    --------
    >>> import pandas as pd
    >>> cases = pd.DataFrame({"case_id": ["c1", "c2"], "origin": ["resident", "patrol"]})
    >>> select_origins(cases, ("resident",))["case_id"].tolist()
    ['c1']
    """
    origins = check_origins(origins)
    if origins is None:
        return cases
    if "origin" not in cases.columns:
        raise ValueError(
            f"origins={list(origins)} counts cases by their origin, but the cases have no origin column "
            "(give cases.origin, resident or patrol, or leave origins None)"
        )
    missing = cases["origin"].isna().to_numpy()
    if missing.any():
        shown = ", ".join(shown_value(c) for c in cases["case_id"].to_numpy()[missing][:5])
        raise ValueError(
            f"origins={list(origins)} counts cases by their origin, but {int(missing.sum())} case(s) have no "
            f"cases.origin (e.g. case_id {shown}); an unknown origin can be neither counted nor left out"
        )
    return cases[cases["origin"].isin(origins).to_numpy()]
