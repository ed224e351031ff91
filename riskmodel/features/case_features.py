"""Case features: one row per case, as known at its report time, and whether it escalated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..holidays import SPRING_FESTIVAL, days_until_next
from ..validation import validate
from .events import DAY, EventIndex, as_us

__all__ = ["CaseFeatures", "build_case_features"]


@dataclass(frozen=True)
class CaseFeatures:
    """Features of every case at its report time, and its escalation label.

    Attributes
    ----------
    X : DataFrame
        Features (float32) indexed by (``case_id``, ``reported_at``); the time
        lets models calibrate on the latest cases.
    y : Series
        1.0 when the case escalated within ``escalation_days`` of its report,
        0.0 when it did not, NaN when that is not known yet.
    label_known : Series
        False for cases whose label window had not closed by the end of the data
        and that had not escalated by then, and for every case of data without
        ``escalated_at``.
    catalog : DataFrame
        ``name``, ``family``, ``window`` and ``description`` of every feature.
    """

    X: pd.DataFrame
    y: pd.Series
    label_known: pd.Series
    catalog: pd.DataFrame


def build_case_features(dataset: Dataset, *, escalation_days: int = 30, level: str = "grid",
                        windows=(7, 28, 91), categories=None, sources=None, holidays=None) -> CaseFeatures:
    """One row per case with what was known when it was reported.

    Everything is computed from records strictly before the case's report time:
    the party's earlier cases, escalations and open cases; the unit's (its
    ancestor at ``level``) cases in the last ``windows`` days in total and of the
    same category, open backlog and escalations; the unit's attributes in force;
    and the case's own category, severity, source and time.

    Parameters
    ----------
    dataset : Dataset
        The data; it is validated first.
    escalation_days : int
        The label: escalated within this many days of the report.
    level : str
        Level of the unit whose history describes the case.
    windows : tuple of int
        Window lengths in days of the unit's counts; the unit's escalations are
        counted over the longest.
    categories, sources : list of str, optional
        Vocabularies of the one-hot columns (default: those of the data).
    holidays : DatetimeIndex, optional
        Holiday dates (default: Spring Festival 2000-2040).

    Returns
    -------
    CaseFeatures

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_case_features
    >>> features = build_case_features(simulate_district("tiny", seed=0), escalation_days=30)
    >>> features.X.shape[0] == len(features.y), 0.05 < features.y.mean() < 0.2
    (True, np.True_)
    """
    data = validate(dataset).dataset
    if level not in data.levels:
        raise ValueError(f"unknown level {level!r}; the data has levels {data.levels}")
    if not escalation_days > 0:
        raise ValueError(f"escalation_days must be positive, got {escalation_days!r}")
    windows = tuple(windows)
    if not windows or not all(isinstance(w, (int, np.integer)) and w > 0 for w in windows):
        raise ValueError(f"windows must be one or more whole numbers of days > 0, got {windows!r}")
    cases = data.cases
    categories = sorted(cases["category"].unique()) if categories is None else list(categories)
    has = {column: column in cases.columns for column in ("source", "party_key", "resolved_at", "escalated_at")}
    if sources is None:
        sources = sorted(cases["source"].dropna().unique()) if has["source"] else []
    holidays = SPRING_FESTIVAL if holidays is None else pd.DatetimeIndex(holidays).sort_values()

    grids = data.grids
    units = pd.Index(grids.loc[grids["level"] == level, "grid_id"])
    unit = units.get_indexer(cases["grid_id"].map(data.ancestors(level)))
    t = as_us(cases["reported_at"])
    never = pd.Series(pd.NaT, index=cases.index, dtype="datetime64[us]")
    escalated_at = cases["escalated_at"] if has["escalated_at"] else never
    resolved = _us_or_never(cases["resolved_at"] if has["resolved_at"] else never)
    escalated = _us_or_never(escalated_at)
    n_cat = max(len(categories), 1)
    category = pd.Index(categories, dtype=object).get_indexer(cases["category"]).astype(np.int64)

    values, rows = {}, []

    def add(name, family, window, description, column):
        values[name] = column
        rows.append((name, family, window, description))

    for k, name in enumerate(categories):
        add(f"category_{name}", "case", None, f"1 when the case is {name}", category == k)
    add("severity", "case", None, "severity 1-4", cases["severity"].to_numpy())
    source = cases["source"] if has["source"] else pd.Series(np.nan, index=cases.index)
    for name in sources:
        add(f"source_{name}", "case", None, f"1 when the case came from {name}", (source == name).to_numpy())
    stamp = cases["reported_at"].dt
    add("hour", "time", None, "hour of the report", stamp.hour.to_numpy())
    add("day_of_week", "time", None, "day of the week of the report (Monday = 0)", stamp.day_of_week.to_numpy())
    add("month", "time", None, "month of the report", stamp.month.to_numpy())
    add("days_to_holiday", "time", None, "days from the report to the next holiday",
        days_until_next(cases["reported_at"], holidays))

    party = pd.factorize(cases["party_key"] if has["party_key"] else pd.Series(np.nan, index=cases.index))[0]
    known_party = party >= 0
    before = _counter(party, t, known_party)
    add("party_known", "party", None, "1 when the case names a party", known_party)
    add("party_prior_cases", "party", None, "the party's cases reported before this one", before(t))
    add("party_prior_escalations", "party", None, "the party's escalations before this report",
        _counter(party, escalated, known_party)(t))
    add("party_open_cases", "party", None, "the party's earlier cases not resolved before this report",
        before(t) - _counter(party, resolved, known_party)(t))

    in_unit = unit >= 0
    unit_cases = _counter(unit, t, in_unit)
    same = _counter(unit * n_cat + category, t, in_unit & (category >= 0))
    unit_escalations = _counter(unit, escalated, in_unit)
    for w in windows:
        add(f"unit_count_{w}d", "unit", w, f"cases in the case's unit in the {w} days before the report",
            unit_cases(t) - unit_cases(t - w * DAY))
    for w in windows:
        add(f"unit_same_category_{w}d", "unit", w, f"cases of the same category in the unit in the last {w} days",
            same(t) - same(t - w * DAY))
    add("unit_backlog", "unit", None, "the unit's cases reported before this one and not resolved before it",
        unit_cases(t) - _counter(unit, resolved, in_unit)(t))
    longest = max(windows)
    add(f"unit_escalations_{longest}d", "unit", longest,
        f"escalations in the unit in the {longest} days before the report (the longest window)",
        unit_escalations(t) - unit_escalations(t - longest * DAY))

    history = data.grid_history
    hist_unit = units.get_indexer(history["grid_id"])
    mine = hist_unit >= 0
    attributes = [c for c in history.columns
                  if c not in ("grid_id", "valid_from") and history.loc[mine, c].notna().any()]
    hist_values = history.loc[mine, attributes].to_numpy(dtype="float64", na_value=np.nan)
    snapshots = EventIndex(hist_unit[mine], as_us(history.loc[mine, "valid_from"]))
    row = snapshots.last(np.maximum(unit, 0), t, inclusive=True)
    row = np.where(in_unit, row, -1)
    for j, name in enumerate(attributes):
        column = np.full(len(cases), np.nan)
        column[row >= 0] = hist_values[row[row >= 0], j]
        add(f"attr_{name}", "attribute", None, f"{name} of the unit in force at the report", column)
    for name, family, _, _ in rows:
        if family == "unit":  # cases above the level have no unit
            values[name] = np.where(in_unit, values[name], np.nan)

    index = pd.MultiIndex.from_arrays([cases["case_id"], cases["reported_at"]], names=["case_id", "reported_at"])
    X = pd.DataFrame({name: np.asarray(column, dtype=np.float32) for name, column in values.items()}, index=index)
    delay = (escalated_at - cases["reported_at"]) / pd.Timedelta(days=1)
    positive = (delay <= escalation_days).to_numpy()
    known = positive | (cases["reported_at"] + pd.Timedelta(days=escalation_days) <= data.end).to_numpy()
    known &= has["escalated_at"]  # data without escalation times says nothing of escalations
    y = pd.Series(np.where(known, positive.astype(float), np.nan), index=index, name="y")
    catalog = pd.DataFrame(rows, columns=["name", "family", "window", "description"])
    return CaseFeatures(X=X, y=y, label_known=pd.Series(known, index=index, name="label_known"), catalog=catalog)


def _us_or_never(times: pd.Series) -> np.ndarray:
    """Microseconds, with missing times (not happened yet) after every other time."""
    return np.where(times.isna().to_numpy(), np.iinfo(np.int64).max, as_us(times.fillna(pd.Timestamp(0))))


def _counter(group: np.ndarray, time: np.ndarray, keep: np.ndarray):
    """A function giving, for each case, the events of its group (among ``keep``) before a time."""
    index = EventIndex(group[keep], time[keep])

    def count(bound: np.ndarray) -> np.ndarray:
        return np.where(keep, index.count(np.maximum(group, 0), bound), 0)

    return count
