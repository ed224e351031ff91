"""The data contract, checked: one error listing every problem, or a quarantine."""

from __future__ import annotations

import weakref
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .coerce import to_number, to_text, to_time
from .contract import (
    ASSIGNMENTS,
    CASE_ORIGINS,
    CASE_OUTCOMES,
    PLAN_ASSIGNMENTS,
    STANDARD_LEVELS,
    VISIT_KINDS,
    VISIT_OUTCOMES,
    Dataset,
    unit_depths,
)
from .problems import DataReport, ProblemLog, ValidationError

__all__ = ["validate", "ValidationError", "DataReport", "CONTRACT"]

# Datasets that validate returned: passed again (as feature builders and predict do), they
# are returned as they are. Their frames must not be changed in place afterwards.
# The value holds the report's parts but not the dataset, so that the entry dies with it.
_VALID: weakref.WeakKeyDictionary[Dataset, tuple] = weakref.WeakKeyDictionary()

#: Columns shown in the examples of every problem of a table.
_KEYS = {
    "cases": ["case_id"],
    "grids": ["grid_id"],
    "grid_history": ["grid_id", "valid_from"],
    "adjacency": ["grid_id", "neighbour_id"],
    "visits": ["visit_id"],
    "plans": ["plan_id", "grid_id"],
}

#: Contract columns by table: name -> (kind, required). Kinds: ``text``, ``time``,
#: ``number``. Further ``grid_history`` columns are numeric attributes; further
#: columns of the other tables are kept as they are.
CONTRACT: dict[str, dict[str, tuple[str, bool]]] = {
    "cases": {
        "case_id": ("text", True),
        "reported_at": ("time", True),
        "grid_id": ("text", True),
        "category": ("text", True),
        "severity": ("number", False),
        "source": ("text", False),
        "party_key": ("text", False),
        "resolved_at": ("time", False),
        "escalated_at": ("time", False),
        "outcome": ("text", False),
        "origin": ("text", False),
        "lon": ("number", False),
        "lat": ("number", False),
        "dispute_id": ("text", False),
        "source_case_id": ("text", False),
        "description": ("text", False),
    },
    "grids": {
        "grid_id": ("text", True),
        "parent_id": ("text", True),
        "level": ("text", True),
        "lon": ("number", False),
        "lat": ("number", False),
        "area_km2": ("number", False),
        "name": ("text", False),
    },
    "grid_history": {"grid_id": ("text", True), "valid_from": ("time", True)},
    "adjacency": {"grid_id": ("text", True), "neighbour_id": ("text", True)},
    "visits": {
        "visit_id": ("text", True),
        "grid_id": ("text", True),
        "visited_at": ("time", True),
        "kind": ("text", True),
        "team": ("text", False),
        "outcome": ("text", False),
        "plan_id": ("text", False),
        "assignment": ("text", False),
    },
    "plans": {
        "plan_id": ("text", True),
        "grid_id": ("text", True),
        "week": ("time", True),
        "group": ("text", True),
        "priority": ("number", True),
        "assignment": ("text", True),
        "explore_probability": ("number", False),
        "reason": ("text", False),
        "probability": ("number", False),
        "expected_count": ("number", False),
        "uplift": ("number", False),
    },
}


#: Case and visit times before this are refused unless ``validate(..., earliest=...)`` says otherwise.
EARLIEST = pd.Timestamp("1990-01-01")


def validate(
    dataset: Dataset,
    errors: Literal["raise", "quarantine"] = "raise",
    *,
    tz: str = "UTC",
    earliest=EARLIEST,
) -> DataReport:
    """Check a dataset against the data contract and convert its types.

    Rules: required columns; types (text ids, times, numbers); unique ``case_id``
    and ``grid_id``; a ``grid_id`` of every case, snapshot and adjacency pair that
    exists in ``grids``; parents that exist; a hierarchy without cycles in which
    every unit of a level sits at the same depth (levels are ordered by that
    depth); ``severity`` an integer 1-4 (missing means 1); ``outcome`` one of
    resolved, withdrawn, open, escalated; ``origin`` one of resident, patrol (a
    missing origin stays missing: unknown, not resident); resolution and escalation
    not before the report; no report after ``as_of`` (when the dataset has none:
    after now plus a day); coordinates within range, positive areas; one snapshot
    per grid and time.

    Visits, when the dataset has them: unique ``visit_id``; a ``grid_id`` of a unit
    at any level; ``visited_at`` neither after the as-of rule nor before
    ``earliest``; ``kind`` one of screening, mediation, follow_up, publicity;
    ``outcome`` one of issue_found, resolved_on_site, no_issue, not_reached;
    ``assignment`` one of rank, explore, ad_hoc, required with a ``plan_id`` and
    missing or ad_hoc without one; a ``plan_id`` that some row of ``plans`` has (a
    dataset without plans may hold visits without a ``plan_id`` only), whose rows are
    not all rejected; ``visited_at`` not before the ``week`` of the plan that ordered
    the visit (the plan's row for the visit's unit, else the plan's earliest week).

    Plans, when the dataset has them: unique (``plan_id``, ``grid_id``); a
    ``grid_id`` of a unit at any level; ``week`` neither after the as-of rule nor
    before ``earliest``; ``group`` given; ``priority`` an integer from 1;
    ``assignment`` one of rank, explore, control; ``explore_probability`` within
    (0, 1], given for explore and control rows and missing for rank rows.

    A dataset that ``validate`` returned is not checked again: passing it in
    returns it as it is (so do not change its frames in place).

    A row that refers to a rejected row is rejected too (a case in a rejected grid,
    the children of a rejected unit). Duplicated keys reject every copy: which one
    is right is not ours to guess.

    Time zones: riskmodel works in naive wall-clock times of the place the data
    describes. Naive times and strings without an offset are kept as they are;
    times with a zone or an offset are converted to ``tz`` and the zone is dropped.

    Parameters
    ----------
    dataset : Dataset
        The data to check.
    errors : {"raise", "quarantine"}
        ``"raise"``: raise one :class:`ValidationError` listing every problem.
        ``"quarantine"``: return the valid rows and the rejected rows with their
        reasons. Missing required columns and duplicated column names raise in
        both modes: no row can be judged without them.
    tz : str
        The zone that times carrying a zone are converted to.
    earliest : datetime-like
        The earliest plausible case and visit time (default 1990-01-01): a case
        dated in year 1 or 1900 is a typo that would shift every feature.
        Attribute snapshots (``valid_from``) may be older.

    Returns
    -------
    DataReport
        ``.dataset`` with the contract's types; ``.rejected`` and ``.problems``
        (empty when nothing was rejected) and ``.counts``.

    Raises
    ------
    ValidationError
        When a required column is missing, or with ``errors="raise"`` when any
        rule is broken.

    Examples
    --------
    >>> from riskmodel import validate
    >>> from riskmodel.datasets import simulate_district
    >>> report = validate(simulate_district("tiny", seed=1))
    >>> int(report.counts["rejected"].sum())
    0
    """
    if errors not in ("raise", "quarantine"):
        raise ValueError(f"errors must be 'raise' or 'quarantine', got {errors!r}")
    if not isinstance(dataset, Dataset):
        raise TypeError(f"validate expects a riskmodel.Dataset, got {type(dataset).__name__}")
    earliest = pd.Timestamp(earliest)
    if dataset in _VALID:
        return DataReport(dataset, *_VALID[dataset])
    tables = dataset.tables
    check = _ContractCheck(tables, keys=_KEYS)
    check.required_columns()
    if check.problems:
        raise ValidationError(check.frame())
    converted = {name: check.convert(name, frame, tz) for name, frame in tables.items()}
    as_of = dataset.as_of
    if as_of is not None and as_of.tzinfo is not None:
        as_of = as_of.tz_convert(tz).tz_localize(None)
    limit = as_of if as_of is not None else pd.Timestamp.now() + pd.Timedelta(days=1)
    check.grids(converted["grids"])
    valid_ids = converted["grids"]["grid_id"][~check.bad["grids"]]
    check.cases(converted["cases"], valid_ids, converted["grids"]["grid_id"], limit, earliest)
    check.grid_history(converted["grid_history"], valid_ids, converted["grids"]["grid_id"])
    if "adjacency" in converted:
        check.adjacency(converted["adjacency"], valid_ids, converted["grids"]["grid_id"])
    if "plans" in converted:
        check.plans(converted["plans"], valid_ids, converted["grids"]["grid_id"], limit, earliest)
    if "visits" in converted:
        check.visits(converted["visits"], valid_ids, converted["grids"]["grid_id"], limit, earliest)
        check.visit_plans(converted["visits"], converted.get("plans"))
    problems = check.frame()
    if errors == "raise" and len(problems):
        raise ValidationError(problems)
    valid = {name: _finish(name, frame[~check.bad[name]]) for name, frame in converted.items()}
    report = DataReport(
        dataset=dataset.replace(**valid, as_of=as_of),
        rejected=check.rejected(),
        problems=problems,
        counts=pd.DataFrame(
            {
                "input": {name: len(frame) for name, frame in tables.items()},
                "valid": {name: len(frame) for name, frame in valid.items()},
                "rejected": {name: int(check.bad[name].sum()) for name in tables},
            }
        ).rename_axis("table"),
    )
    _VALID[report.dataset] = (
        report.rejected.iloc[:0],
        problems.iloc[:0],
        report.counts.assign(input=report.counts["valid"], rejected=0),
    )
    return report


def _usual_depth(depth: pd.Series, level: pd.Series) -> np.ndarray:
    """Each unit's level's most common depth; -1 (matching no unit) when two depths tie."""
    counts = depth.groupby([level.to_numpy(), depth.to_numpy()]).size()
    top = counts.groupby(level=0).transform("max")
    winners = counts[counts == top].reset_index()
    winners.columns = ["level", "depth", "n"]
    single = winners.drop_duplicates("level", keep=False).set_index("level")["depth"]
    return single.reindex(level.to_numpy()).fillna(-1).to_numpy()


def _shared_depth(depth: pd.Series, level: pd.Series) -> list[tuple[str, np.ndarray]]:
    """Level names at one depth that differ only in case, blanks or punctuation (a typo such
    as ``"GRID"`` beside ``"grid"``): a message naming the names and their unit counts,
    and the rows of the less common ones (all of them when the most common is tied).
    Distinct names at one depth (``"community"`` beside ``"village"``) are a real hierarchy."""

    def plain(names):
        return names.str.lower().str.replace(r"[\W_]+", "", regex=True)

    if not plain(pd.Index(level.dropna().unique(), dtype="str")).duplicated().any():  # the usual case, cheaply
        return []
    counts = level.groupby([depth.to_numpy(), plain(level.astype("str")).to_numpy()]).value_counts()
    found = []
    for (d, _), names in counts[counts > 0].groupby(level=[0, 1]):  # categoricals count unused names as 0
        if len(names) < 2:
            continue
        names = names.droplevel([0, 1]).sort_values(ascending=False, kind="stable")
        listed = ", ".join(f"{name!r} ({n} unit{'s' if n > 1 else ''})" for name, n in names.items())
        keep = names.index[0] if names.iloc[0] > names.iloc[1] else None
        rows = (depth.to_numpy() == d) & level.isin(names.index.drop(keep) if keep is not None else names.index)
        found.append(
            (
                f"levels {listed} sit at the same depth {d} and differ only in case or punctuation (a "
                "typo?); the units of the less common name are rejected",
                rows.to_numpy(),
            )
        )
    return found


def _isin(values: pd.Series, ids: pd.Series) -> np.ndarray:
    """``values.isin(ids)`` for text, through Arrow: pandas walks ``ids`` in Python."""
    value_set = pa.array(ids.dropna().astype("str"), from_pandas=True)
    found = pc.is_in(pa.array(values.astype("str"), from_pandas=True), value_set=value_set)
    return found.to_numpy(zero_copy_only=False)


def _finish(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    if name == "cases":
        frame = frame.assign(severity=frame["severity"].astype("int64"))
    if name == "plans":
        frame = frame.assign(priority=frame["priority"].astype("int64"))
    return frame


class _ContractCheck(ProblemLog):
    """The contract's rules, each adding its problems to the log."""

    def __init__(self, tables, keys):
        super().__init__(tables, keys)
        self.failed: dict[tuple[str, str], np.ndarray] = {}  # values that failed their type

    # -- structure and types --------------------------------------------------
    def required_columns(self) -> None:
        for name, frame in self.tables.items():
            for column in frame.columns[frame.columns.duplicated()].unique():
                self.problems.append(
                    (name, str(column), "duplicate_column", "names two or more columns", np.array([], dtype=np.int64))
                )
            for column, (_, required) in CONTRACT[name].items():
                if required and column not in frame.columns:
                    self.problems.append(
                        (
                            name,
                            column,
                            "required_column",
                            "is a required column and is absent",
                            np.array([], dtype=np.int64),
                        )
                    )

    def convert(self, name: str, frame: pd.DataFrame, tz: str) -> pd.DataFrame:
        frame = frame.copy()
        kinds = {c: kind for c, (kind, _) in CONTRACT[name].items()}
        if name == "grid_history":
            kinds.update({c: "number" for c in frame.columns if c not in kinds})
        for column, kind in kinds.items():
            if column not in frame.columns:
                continue
            if kind == "text":
                frame[column] = to_text(frame[column])
                continue
            if kind == "time":
                frame[column], failed = to_time(frame[column], tz)
                self.add(name, column, "type", "must be a time", failed)
            else:
                frame[column], failed = to_number(frame[column])
                self.add(name, column, "type", "must be a finite number", failed)
            self.failed[name, column] = failed
        if name == "cases":
            severity = frame["severity"] if "severity" in frame.columns else pd.Series(1.0, frame.index)
            if pd.api.types.is_bool_dtype(severity):  # True would pass for 1
                self.add(
                    name,
                    "severity",
                    "type",
                    "must be an integer from 1 to 4, not a boolean",
                    severity.notna().to_numpy(),
                )
                severity = pd.Series(1.0, frame.index)
            frame["severity"] = severity.astype("float64").fillna(1)
        return frame

    def _required(self, name: str, frame: pd.DataFrame, columns) -> None:
        for column in columns:  # a value that failed its type is not also "missing"
            missing = frame[column].isna().to_numpy() & ~self.failed.get((name, column), False)
            self.add(name, column, "missing", "is required and missing", missing)

    def _unique(self, name: str, frame: pd.DataFrame, columns: list[str], rule: str) -> None:
        key = frame[columns]
        dup = key.duplicated(keep=False) & key.notna().all(axis=1)
        self.add(name, ", ".join(columns), rule, "must be unique; every copy is rejected", dup)

    def _vocabulary(self, name: str, frame: pd.DataFrame, column: str, words: tuple[str, ...]) -> None:
        if column in frame.columns:
            values = frame[column]
            self.add(
                name, column, "vocabulary", f"must be one of {', '.join(words)}", values.notna() & ~values.isin(words)
            )

    def _times(self, name: str, frame: pd.DataFrame, column: str, as_of: pd.Timestamp, earliest, others=()) -> None:
        """``column`` not after ``as_of``; it and ``others`` (when present) not before ``earliest``."""
        self.add(name, column, "after_as_of", f"must not be after the as-of time {as_of}", frame[column] > as_of)
        for each in (column, *others):
            if each in frame.columns:
                self.add(
                    name,
                    each,
                    "before_earliest",
                    f"must not be before {earliest} (an implausible date; validate(..., earliest=...) sets the bound)",
                    frame[each] < earliest,
                )

    def _range(self, name: str, frame: pd.DataFrame, column: str, low, high, message) -> None:
        if column in frame.columns:
            values = frame[column]
            self.add(name, column, "range", message, values.notna() & ~values.between(low, high))

    def _coordinates(self, name: str, frame: pd.DataFrame) -> None:
        self._range(name, frame, "lon", -180, 180, "must be a longitude within [-180, 180]")
        self._range(name, frame, "lat", -90, 90, "must be a latitude within [-90, 90]")

    def _refers(self, name: str, frame: pd.DataFrame, column: str, valid_ids, all_ids) -> None:
        values = frame[column]
        known = _isin(values, all_ids)
        self.add(
            name, column, "unknown_grid", "must be a grid_id of the grids table", values.notna().to_numpy() & ~known
        )
        self.add(
            name,
            column,
            "grid_rejected",
            "refers to a unit rejected by another rule",
            known & ~_isin(values, valid_ids),
        )

    # -- tables ---------------------------------------------------------------
    def grids(self, grids: pd.DataFrame) -> None:
        self._required("grids", grids, ["grid_id", "level"])
        self._unique("grids", grids, ["grid_id"], "unique")
        self._coordinates("grids", grids)
        self._range("grids", grids, "area_km2", 1e-12, np.inf, "must be positive")
        parent = grids["parent_id"]
        self.add(
            "grids",
            "parent_id",
            "unknown_parent",
            "must be a grid_id of the grids table, or missing at the top",
            parent.notna().to_numpy() & ~_isin(parent, grids["grid_id"]),
        )
        rank = {level: r for r, level in enumerate(STANDARD_LEVELS)}
        level_of = grids.drop_duplicates("grid_id").set_index("grid_id")["level"].astype("str")
        own = grids["level"].astype("str").map(rank).astype("float64")
        above = parent.astype("str").map(level_of).map(rank).astype("float64")
        self.add(
            "grids",
            "level",
            "level_order",
            f"a parent must be of a level above its child's ({' > '.join(STANDARD_LEVELS)})",
            (own.notna() & above.notna() & (above >= own)).to_numpy(),
        )
        # A rejected unit rejects its children; repeat until nothing changes.
        while True:
            keep = ~self.bad["grids"]
            sub = grids[keep]
            orphan = sub["parent_id"].notna().to_numpy() & ~_isin(sub["parent_id"], sub["grid_id"])
            if orphan.any():
                self._add_sub(
                    "grids", "parent_id", "parent_rejected", "refers to a parent rejected by another rule", keep, orphan
                )
                continue
            depth = unit_depths(sub)
            if (depth < 0).any():
                self._add_sub(
                    "grids",
                    "parent_id",
                    "cycle",
                    "the chain of parents must reach a top unit; it runs into a cycle",
                    keep,
                    depth < 0,
                )
                continue
            off = depth.to_numpy() != _usual_depth(depth, sub["level"])
            if off.any():
                self._add_sub(
                    "grids",
                    "level",
                    "level_depth",
                    "every unit of a level must sit at the depth most units of that level "
                    "sit at (levels are ordered top-down by depth; a tie rejects the level)",
                    keep,
                    off,
                )
                continue
            shared = _shared_depth(depth, sub["level"])
            if shared:
                for message, rows in shared:
                    self._add_sub("grids", "level", "level_name", message, keep, rows)
                continue
            break

    def _add_sub(self, table, column, rule, message, keep: np.ndarray, sub_mask) -> None:
        mask = np.zeros(len(keep), dtype=bool)
        mask[np.flatnonzero(keep)[np.asarray(sub_mask, dtype=bool)]] = True
        self.add(table, column, rule, message, mask)

    def cases(self, cases: pd.DataFrame, valid_ids, all_ids, as_of: pd.Timestamp, earliest: pd.Timestamp) -> None:
        self._required("cases", cases, ["case_id", "reported_at", "grid_id", "category"])
        self._unique("cases", cases, ["case_id"], "unique")
        self._times("cases", cases, "reported_at", as_of, earliest, others=("resolved_at", "escalated_at"))
        self._refers("cases", cases, "grid_id", valid_ids, all_ids)
        severity = cases["severity"]
        self.add("cases", "severity", "range", "must be an integer from 1 to 4", ~severity.isin([1, 2, 3, 4]))
        for column in ("resolved_at", "escalated_at"):
            if column in cases.columns:
                self.add(
                    "cases",
                    column,
                    "before_report",
                    "must not be before reported_at",
                    cases[column] < cases["reported_at"],
                )
        self._vocabulary("cases", cases, "outcome", CASE_OUTCOMES)
        self._vocabulary("cases", cases, "origin", CASE_ORIGINS)
        self._coordinates("cases", cases)

    def grid_history(self, history: pd.DataFrame, valid_ids, all_ids) -> None:
        self._required("grid_history", history, ["grid_id", "valid_from"])
        self._refers("grid_history", history, "grid_id", valid_ids, all_ids)
        self._unique("grid_history", history, ["grid_id", "valid_from"], "duplicate_snapshot")

    def adjacency(self, pairs: pd.DataFrame, valid_ids, all_ids) -> None:
        self._required("adjacency", pairs, ["grid_id", "neighbour_id"])
        for column in ("grid_id", "neighbour_id"):
            self._refers("adjacency", pairs, column, valid_ids, all_ids)
        self.add(
            "adjacency",
            "neighbour_id",
            "self_neighbour",
            "must differ from grid_id",
            pairs["grid_id"] == pairs["neighbour_id"],
        )
        self._unique("adjacency", pairs, ["grid_id", "neighbour_id"], "unique")

    def visits(self, visits: pd.DataFrame, valid_ids, all_ids, as_of: pd.Timestamp, earliest: pd.Timestamp) -> None:
        self._required("visits", visits, ["visit_id", "grid_id", "visited_at", "kind"])
        self._unique("visits", visits, ["visit_id"], "unique")
        self._times("visits", visits, "visited_at", as_of, earliest)
        self._refers("visits", visits, "grid_id", valid_ids, all_ids)
        self._vocabulary("visits", visits, "kind", VISIT_KINDS)
        self._vocabulary("visits", visits, "outcome", VISIT_OUTCOMES)
        self._vocabulary("visits", visits, "assignment", ASSIGNMENTS)
        none = pd.Series(pd.NA, index=visits.index, dtype="str")
        planned = visits.get("plan_id", none).notna()
        assignment = visits.get("assignment", none)
        self.add(
            "visits",
            "assignment",
            "assignment_missing",
            "is required when plan_id is given (rank, explore or ad_hoc)",
            planned & assignment.isna(),
        )
        self.add(
            "visits",
            "assignment",
            "assignment_without_plan",
            "must be missing or ad_hoc when plan_id is missing (rank and explore come from a plan)",
            ~planned & assignment.isin(("rank", "explore")),
        )

    def plans(self, plans: pd.DataFrame, valid_ids, all_ids, as_of: pd.Timestamp, earliest: pd.Timestamp) -> None:
        self._required("plans", plans, ["plan_id", "grid_id", "week", "group", "priority", "assignment"])
        self._unique("plans", plans, ["plan_id", "grid_id"], "unique")
        self._times("plans", plans, "week", as_of, earliest)
        self._refers("plans", plans, "grid_id", valid_ids, all_ids)
        priority = plans["priority"]
        self.add(
            "plans",
            "priority",
            "range",
            "must be an integer from 1 (1 first within the group)",
            priority.notna() & ~((priority >= 1) & (priority % 1 == 0)),
        )
        self._vocabulary("plans", plans, "assignment", PLAN_ASSIGNMENTS)
        probability = plans.get("explore_probability", pd.Series(np.nan, index=plans.index))
        self.add(
            "plans",
            "explore_probability",
            "range",
            "must be within (0, 1]: a pool unit's chance of being drawn",
            probability.notna() & ~((probability > 0) & (probability <= 1)),
        )
        drawn = plans["assignment"].isin(("explore", "control")).to_numpy()
        self.add(
            "plans",
            "explore_probability",
            "explore_probability_missing",
            "is required for explore and control rows (the chance of the draw)",
            drawn & probability.isna().to_numpy() & ~self.failed.get(("plans", "explore_probability"), False),
        )
        self.add(
            "plans",
            "explore_probability",
            "explore_probability_for_rank",
            "must be missing for rank rows (only explore and control rows were drawn)",
            (plans["assignment"] == "rank").to_numpy() & probability.notna().to_numpy(),
        )

    def visit_plans(self, visits: pd.DataFrame, plans: pd.DataFrame | None) -> None:
        """Each visit's ``plan_id`` names a plan that is not wholly rejected, and the visit
        is not before the plan's week (its row for the visit's unit, else its earliest)."""
        if "plan_id" not in visits.columns:
            return
        plan_id = visits["plan_id"]
        given = plan_id.notna().to_numpy()
        if plans is None:
            self.add(
                "visits",
                "plan_id",
                "unknown_plan",
                "names a plan but the dataset has no plans table: give the plans (Dataset(plans=...)) "
                "or leave plan_id empty",
                given,
            )
            return
        known = given & _isin(plan_id, plans["plan_id"])
        self.add("visits", "plan_id", "unknown_plan", "must be a plan_id of the plans table", given & ~known)
        kept = plans[~self.bad["plans"]]
        alive = _isin(plan_id, kept["plan_id"])
        self.add("visits", "plan_id", "plan_rejected", "refers to a plan whose rows were all rejected", known & ~alive)
        rows = kept.drop_duplicates(["plan_id", "grid_id"]).set_index(["plan_id", "grid_id"])["week"]
        pair = pd.MultiIndex.from_arrays([plan_id.to_numpy(object), visits["grid_id"].to_numpy(object)])
        own = rows.reindex(pair).to_numpy(dtype="datetime64[us]")
        first = kept.groupby("plan_id")["week"].min().reindex(plan_id.to_numpy(object))
        week = np.where(np.isnat(own), first.to_numpy(dtype="datetime64[us]"), own)
        self.add(
            "visits",
            "visited_at, plan_id",
            "before_plan",
            "must not be before the week of the plan that ordered the visit (plans.week of its plan_id, "
            "for the visit's unit or else the plan's first week)",
            alive & (visits["visited_at"].to_numpy(dtype="datetime64[us]") < week),
        )
