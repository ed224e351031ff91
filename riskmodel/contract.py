"""The data contract's tables held together: cases, units and their attribute history."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "Dataset",
    "STANDARD_LEVELS",
    "CASE_OUTCOMES",
    "CASE_ORIGINS",
    "VISIT_KINDS",
    "VISIT_OUTCOMES",
    "ASSIGNMENTS",
    "PLAN_ASSIGNMENTS",
    "empty_history",
    "first_reports",
    "level_column",
    "unit_depths",
]

#: The simulator's unit levels, top-down. Users may name their own levels; their
#: order is then read from the hierarchy (roots are the top level).
STANDARD_LEVELS = ("street", "community", "grid", "microgrid")

#: The outcomes a case may carry (column ``outcome``).
CASE_OUTCOMES = ("resolved", "withdrawn", "open", "escalated")

#: Where a case came from (column ``origin``): ``resident`` (hotline, police, walk-in) or
#: ``patrol`` (found by a worker on a visit). A missing origin stays missing: unknown.
CASE_ORIGINS = ("resident", "patrol")

#: What a visit was for (``visits.kind``).
VISIT_KINDS = ("screening", "mediation", "follow_up", "publicity")

#: What a visit found (``visits.outcome``).
VISIT_OUTCOMES = ("issue_found", "resolved_on_site", "no_issue", "not_reached")

#: Why a planned visit was made (``visits.assignment``): by ``rank``, to ``explore`` at the
#: capacity margin, or ``ad_hoc`` (the only one a visit without a ``plan_id`` may carry).
ASSIGNMENTS = ("rank", "explore", "ad_hoc")

#: A plan's rows (``plans.assignment``): a visit to make by ``rank`` or to ``explore`` (drawn at
#: random at the capacity margin), or a ``control``: a unit of the explore draw's pool left
#: unvisited, kept so that the visits' effect can be estimated by a randomised comparison.
PLAN_ASSIGNMENTS = ("rank", "explore", "control")


def level_column(level: str) -> str:
    """The column of a forecast that holds each unit's parent at ``level``: ``<level>_id``,
    but ``parent_grid_id`` for a level named ``grid``, whose ``grid_id`` would be the
    unit's own id (a forecast of micro-grids has a ``grid`` level above it).

    Examples
    --------
    >>> from riskmodel.contract import level_column
    >>> level_column("community"), level_column("grid")
    ('community_id', 'parent_grid_id')
    """
    return "parent_grid_id" if level == "grid" else f"{level}_id"


def empty_history() -> pd.DataFrame:
    """An empty ``grid_history`` with the contract's columns: a dataset without attributes."""
    return pd.DataFrame(
        {
            "grid_id": pd.Series(dtype="str"),
            "valid_from": pd.Series(dtype="datetime64[us]"),
        }
    )


@dataclass(frozen=True, eq=False)
class Dataset:
    """Cases, units and unit attributes, as the data contract defines them.

    A ``Dataset`` only holds its frames; :func:`riskmodel.validate` checks them
    against the contract and converts their types. Frames are not copied.

    Parameters
    ----------
    cases : DataFrame
        One row per case: ``case_id``, ``reported_at``, ``grid_id``, ``category``
        and the optional columns of the contract. A case is one report on one
        platform; reports of one dispute share a ``dispute_id`` once linked
        (:func:`riskmodel.link_reports`), and ingested cases keep their platform's
        id in ``source_case_id`` and its free text in ``description``.
    grids : DataFrame
        One row per unit at any level: ``grid_id``, ``parent_id`` (missing at the
        top), ``level`` and optional ``lon``, ``lat``, ``area_km2``, ``name``.
    grid_history : DataFrame, optional
        Attribute snapshots: ``grid_id``, ``valid_from`` and numeric attribute
        columns. The value in force at time t is the latest snapshot with
        ``valid_from <= t``. Empty when not given.
    adjacency : DataFrame, optional
        Pairs ``grid_id``, ``neighbour_id`` of neighbouring units. When absent,
        neighbours are derived from centroids.
    as_of : Timestamp or str, optional
        The time the data was extracted; no case may be reported (and no visit
        made) after it. When absent, :attr:`end` is the latest time in the data.
    visits : DataFrame, optional
        What grid workers did, one row per visit: ``visit_id``, ``grid_id`` (a
        unit at any level), ``visited_at``, ``kind`` and optional ``team``,
        ``outcome``, ``plan_id``, ``assignment``. None when absent.
    plans : DataFrame, optional
        The visit plans that :func:`riskmodel.plan_visits` made, one row per unit
        of a plan: ``plan_id``, ``grid_id``, ``week`` (the Monday from which the
        visit is due), ``group`` (whose capacity it uses), ``priority`` (1 first
        within the group), ``assignment`` (rank, explore or control),
        ``explore_probability`` (a pool unit's chance of being drawn) and optional
        ``reason``, ``probability``, ``expected_count``, ``uplift``. None when absent.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel import Dataset
    >>> grids = pd.DataFrame({"grid_id": ["S1", "G1"], "parent_id": [None, "S1"],
    ...                       "level": ["street", "grid"]})
    >>> cases = pd.DataFrame({"case_id": ["c1"], "reported_at": ["2024-05-01 10:00"],
    ...                       "grid_id": ["G1"], "category": ["neighbour_noise"]})
    >>> Dataset(cases=cases, grids=grids)
    Dataset(cases=1, grids=2, grid_history=0, adjacency=None, as_of=None)
    """

    cases: pd.DataFrame
    grids: pd.DataFrame
    grid_history: pd.DataFrame = field(default_factory=empty_history)
    adjacency: pd.DataFrame | None = None
    as_of: pd.Timestamp | None = None
    visits: pd.DataFrame | None = None
    plans: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for name in ("cases", "grids", "grid_history"):
            if not isinstance(getattr(self, name), pd.DataFrame):
                raise TypeError(f"Dataset.{name} must be a pandas DataFrame, got {type(getattr(self, name)).__name__}")
        for name in ("adjacency", "visits", "plans"):
            frame = getattr(self, name)
            if frame is not None and not isinstance(frame, pd.DataFrame):
                raise TypeError(f"Dataset.{name} must be a pandas DataFrame or None, got {type(frame).__name__}")
        if self.as_of is not None:
            object.__setattr__(self, "as_of", pd.Timestamp(self.as_of))

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The frames by table name; ``adjacency``, ``visits`` and ``plans`` only when present."""
        tables = {"cases": self.cases, "grids": self.grids, "grid_history": self.grid_history}
        if self.adjacency is not None:
            tables["adjacency"] = self.adjacency
        if self.visits is not None:
            tables["visits"] = self.visits
        if self.plans is not None:
            tables["plans"] = self.plans
        return tables

    @property
    def end(self) -> pd.Timestamp:
        """``as_of`` when set, else the latest report time in ``cases``."""
        if self.as_of is not None:
            return self.as_of
        return pd.Timestamp(pd.to_datetime(self.cases["reported_at"]).max())

    @property
    def levels(self) -> list[str]:
        """Unit levels ordered top-down by their depth in the hierarchy."""
        depth = unit_depths(self.grids)
        order = depth.groupby(self.grids["level"].to_numpy()).median().sort_values(kind="stable")
        return [str(level) for level in order.index]

    def parent_level(self, level: str) -> str | None:
        """The level just above ``level`` (None at the top)."""
        levels = self.levels
        position = levels.index(level)
        return levels[position - 1] if position > 0 else None

    def ancestors(self, level: str) -> pd.Series:
        """Each unit's ancestor at ``level`` (itself when at that level), indexed
        by ``grid_id``; missing for units above the level."""
        grids = self.grids
        if level not in set(grids["level"]):
            raise ValueError(f"unknown level {level!r}; the data has levels {self.levels}")
        ids = pd.Index(grids["grid_id"])
        parent = ids.get_indexer(grids["parent_id"])
        at_level = (grids["level"] == level).to_numpy()
        current = np.arange(len(ids))
        found = np.where(at_level, current, -1)
        for _ in range(len(self.levels)):
            current = np.where(current >= 0, parent[np.maximum(current, 0)], -1)
            hit = (found < 0) & (current >= 0) & at_level[np.maximum(current, 0)]
            found[hit] = current[hit]
        values = ids.to_numpy()[np.maximum(found, 0)]
        return pd.Series(values, index=ids, name=level, dtype="str").where(found >= 0)

    def replace(self, **changes) -> Dataset:
        """A copy with some fields replaced (frames are shared, not copied)."""
        return dataclasses.replace(self, **changes)

    def as_it_stood(self, as_of) -> Dataset:
        """The data as a service saw it at ``as_of``: to replay what was served.

        The cases reported before ``as_of``, with the resolutions and escalations known by
        then (a later one is not known yet: its time is missing and the case is
        ``open``), the attribute snapshots in force by then, the visits made before it
        and the plans of the weeks up to it; ``as_of`` is set.

        Examples
        --------
        >>> from riskmodel.datasets import simulate_district
        >>> district = simulate_district("tiny", seed=0)
        >>> then = district.as_it_stood("2023-07-03")
        >>> then.end, bool((then.cases["reported_at"] < then.end).all())
        (Timestamp('2023-07-03 00:00:00'), True)
        >>> bool((then.cases["resolved_at"].dropna() < then.end).all())
        True
        """
        as_of = pd.Timestamp(as_of)
        cases = self.cases[self.cases["reported_at"] < as_of].copy()
        for column in ("resolved_at", "escalated_at"):
            if column in cases:
                cases[column] = cases[column].where(cases[column] < as_of)
        if "outcome" in cases:
            resolved = cases["resolved_at"].notna() if "resolved_at" in cases else True
            escalated = cases["escalated_at"].notna() if "escalated_at" in cases else False
            cases["outcome"] = np.where(escalated, "escalated", np.where(resolved, cases["outcome"], "open"))
        history = self.grid_history[self.grid_history["valid_from"] <= as_of]
        visits = None if self.visits is None else self.visits[self.visits["visited_at"] < as_of]
        plans = None if self.plans is None else self.plans[self.plans["week"] <= as_of]
        return self.replace(cases=cases, grid_history=history, visits=visits, plans=plans, as_of=as_of)

    def __repr__(self) -> str:  # visits are shown only when present: most data has none yet
        adjacency = None if self.adjacency is None else len(self.adjacency)
        as_of = None if self.as_of is None else str(self.as_of)
        visits = "" if self.visits is None else f", visits={len(self.visits)}"
        visits += "" if self.plans is None else f", plans={len(self.plans)}"
        return (
            f"{type(self).__name__}(cases={len(self.cases)}, grids={len(self.grids)}, "
            f"grid_history={len(self.grid_history)}, adjacency={adjacency}{visits}, as_of={as_of})"
        )


def first_reports(cases: pd.DataFrame) -> pd.DataFrame:
    """One row per dispute: the first report of each ``dispute_id``, what counts as the dispute.

    A dispute's first report is its earliest ``reported_at`` (ties broken by the smaller
    ``case_id``); the row keeps that report's columns (its unit, category, severity, party,
    ``resolved_at``, ...), but its ``escalated_at`` is the earliest of all the dispute's
    reports' and its ``outcome`` is ``escalated`` when any of its reports escalated (an
    ``escalated`` outcome or an ``escalated_at``): a dispute escalated once any platform
    saw it escalate. A report without a ``dispute_id`` is a dispute of its own, and cases
    without a ``dispute_id`` column are returned unchanged (every report its own dispute).
    The rows keep their index and their order in ``cases``.

    Parameters
    ----------
    cases : DataFrame
        Case rows (reports) with ``case_id`` and ``reported_at``; optionally ``dispute_id``,
        ``escalated_at`` and ``outcome``.

    Returns
    -------
    DataFrame
        The first report of every dispute (``cases`` itself without ``dispute_id``).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel import first_reports
    >>> cases = pd.DataFrame({
    ...     "case_id": ["hotline:1", "app:7", "hotline:2", "police:3"],
    ...     "reported_at": pd.to_datetime(["2024-05-02", "2024-05-01", "2024-05-03", "2024-05-04"]),
    ...     "dispute_id": ["app:7", "app:7", None, "app:7"],
    ...     "outcome": ["resolved", "resolved", "open", "escalated"],
    ...     "escalated_at": pd.to_datetime([None, None, None, "2024-05-06"]),
    ... })
    >>> first_reports(cases)[["case_id", "outcome", "escalated_at"]]
         case_id    outcome escalated_at
    1      app:7  escalated   2024-05-06
    2  hotline:2       open          NaT
    """
    if "dispute_id" not in cases.columns:
        return cases
    dispute = pd.factorize(cases["dispute_id"])[0].copy()
    alone = dispute < 0  # no dispute_id: a dispute of its own
    dispute[alone] = dispute.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    first = np.zeros(len(cases), dtype=bool)
    first[_earliest(dispute, _stamps(cases["reported_at"]), cases["case_id"])] = True
    out = cases[first].copy()
    kept = dispute[first]
    escalated = np.zeros(len(cases), dtype=bool)
    if "escalated_at" in cases.columns:
        stamp = _stamps(cases["escalated_at"])
        earliest = np.full(len(cases), _NEVER)
        np.minimum.at(earliest, dispute, stamp)
        value = pd.Series(earliest[kept].view("datetime64[us]"), index=out.index).where(earliest[kept] != _NEVER)
        kind = cases["escalated_at"].dtype
        out["escalated_at"] = value.astype(kind) if kind.kind == "M" else value
        escalated = stamp != _NEVER
    if "outcome" in cases.columns:
        escalated = escalated | (cases["outcome"] == "escalated").to_numpy(dtype=bool, na_value=False)
        ever = np.bincount(dispute, weights=escalated, minlength=len(cases))[kept] > 0
        out["outcome"] = out["outcome"].where(~ever, "escalated")
    return out


#: A missing time, as microseconds: after every other time.
_NEVER = np.iinfo(np.int64).max


def _stamps(times: pd.Series) -> np.ndarray:
    """Times as microseconds since the epoch; a missing time is ``_NEVER``."""
    stamp = pd.to_datetime(times).to_numpy("datetime64[us]").view(np.int64).copy()
    stamp[pd.isna(times).to_numpy()] = _NEVER
    return stamp


def _earliest(group: np.ndarray, stamp: np.ndarray, ids: pd.Series) -> np.ndarray:
    """The position of each group's earliest row (the smallest id among rows at that time): a sort
    on the integer group and time, then the ids compared only where the earliest time is tied.
    ``group`` holds codes ``0 <= code < len(group)``; ``stamp`` the times (`_stamps`)."""
    rank = np.empty(len(stamp), dtype=np.int64)
    rank[np.argsort(stamp)] = np.arange(len(stamp))
    order = np.argsort(group.astype(np.int64) * len(stamp) + rank)  # by group, then time: one integer sort
    in_order, at = group[order], stamp[order]
    start = np.r_[True, in_order[1:] != in_order[:-1]] if len(order) else np.zeros(0, dtype=bool)
    which = np.cumsum(start) - 1
    tied = at == at[start][which]  # rows at their group's earliest time
    chosen = order[start]
    several = tied & (np.bincount(which, weights=tied)[which] > 1)
    if several.any():
        rows = order[several]
        ties = pd.DataFrame({"group": which[several], "id": ids.to_numpy()[rows], "row": rows})
        ties = ties.sort_values(["group", "id"], kind="stable").drop_duplicates("group")
        chosen[ties["group"].to_numpy()] = ties["row"].to_numpy()
    return chosen


def unit_depths(grids: pd.DataFrame) -> pd.Series:
    """Depth of every unit (0 at the top) by pointer doubling over ``parent_id``.

    Units whose chain of parents never reaches a top unit (a cycle, or a parent
    that does not exist) get depth -1. Expects unique ``grid_id``.
    """
    ids = pd.Index(grids["grid_id"])
    n = len(ids)
    parent = ids.get_indexer(grids["parent_id"])
    is_root = grids["parent_id"].isna().to_numpy()
    # After round k, jump[i] is i's 2**k-th ancestor (a top unit points to
    # itself) and dist[i] the number of steps from i to jump[i].
    jump = np.where(is_root | (parent < 0), np.arange(n), parent)
    dist = (jump != np.arange(n)).astype(np.int64)
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
        dist = dist + dist[jump]
        jump = jump[jump]
    return pd.Series(np.where(is_root[jump], dist, -1), index=grids.index, name="depth")
