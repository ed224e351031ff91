"""Case features: one row per case, as known at its report time, and whether it escalated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..contract import Dataset
from ..holidays import SPRING_FESTIVAL, days_until_next
from ..validation import validate
from .base import Builder, counted_cases, vocabulary
from .events import DAY, EventIndex, attribute_columns, in_force, us

__all__ = ["CaseFeatureBuilder", "CaseFeatures", "build_case_features"]


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


class CaseFeatureBuilder(Builder):
    """One row per case with what was known when it was reported.

    Everything is computed from records strictly before the case's report time:
    the party's earlier cases, escalations and open cases; the unit's (its
    ancestor at ``level``) cases in the last ``windows`` days in total and of the
    same category, open backlog and escalations; the unit's attributes in force
    (``valid_from`` at or before the report); and the case's own category,
    severity, source and time.

    ``fit`` learns the vocabularies (categories, sources, attribute columns) so
    that the same columns come out for new data: learned categories and sources
    it lacks are all zero, learned attributes it lacks are NaN. ``transform``
    returns the features and ``build`` the whole :class:`CaseFeatures`.

    Parameters
    ----------
    escalation_days : int
        The label: escalated within this many days of the report.
    level : str
        Level of the unit whose history describes the case.
    windows : tuple of int
        Window lengths in days of the unit's counts.
    escalations_window : int
        Window length in days of the unit's escalations.
    categories, sources : list of str, optional
        Vocabularies of the one-hot columns, each seen in the data given to
        ``fit`` (default: all seen there).
    holidays : DatetimeIndex, optional
        Holiday dates (default: Spring Festival 2000-2040).
    count : {"disputes", "reports"}
        ``disputes`` (default): one row per dispute, its first report
        (:func:`riskmodel.first_reports`), escalated when any of its reports escalated, and
        the party's and unit's history counted in disputes; every report its own dispute
        when the cases have no ``dispute_id``. ``reports``: one row per report. A builder
        saved before this parameter existed counts reports, as it did.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import CaseFeatureBuilder
    >>> district = simulate_district("tiny", seed=0)
    >>> features = CaseFeatureBuilder(escalation_days=30).fit(district).build(district)
    >>> features.X.shape[0] == len(features.y), 0.05 < features.y.mean() < 0.2
    (True, np.True_)
    """

    def __init__(
        self,
        *,
        escalation_days=30,
        level="grid",
        windows=(7, 28, 91),
        escalations_window=91,
        categories=None,
        sources=None,
        holidays=None,
        count="disputes",
    ):
        self.escalation_days = escalation_days
        self.level = level
        self.windows = windows
        self.escalations_window = escalations_window
        self.categories = categories
        self.sources = sources
        self.holidays = holidays
        self.count = count

    optional_inputs = ("source", "party_key", "resolved_at", "escalated_at")

    def _learn(self, data: Dataset, categories: pd.Series | None = None, attributes: list[str] | None = None) -> None:
        cases = counted_cases(data.cases, self.count)
        categories = cases["category"] if categories is None else categories
        self.categories_ = vocabulary(self.categories, categories, "categories")
        self.sources_ = vocabulary(self.sources, cases.get("source", pd.Series(dtype=object)), "sources")
        self.attributes_ = attribute_columns(data, self.level) if attributes is None else attributes

    def _check_params(self, data: Dataset) -> None:
        super()._check_params(data)
        if not self.escalation_days > 0:
            raise ValueError(f"escalation_days must be positive, got {self.escalation_days!r}")

    def catalog(self) -> pd.DataFrame:
        """Every feature: ``name``, ``family``, ``window`` (days) and ``description``."""
        check_is_fitted(self, "categories_")
        rows = [(f"category_{name}", "case", None, f"1 when the case is {name}") for name in self.categories_]
        rows.append(("severity", "case", None, "severity 1-4"))
        rows += [(f"source_{name}", "case", None, f"1 when the case came from {name}") for name in self.sources_]
        rows += [
            ("hour", "time", None, "hour of the report"),
            ("day_of_week", "time", None, "day of the week of the report (Monday = 0)"),
            ("month", "time", None, "month of the report"),
            ("days_to_holiday", "time", None, "days from the report to the next holiday"),
            ("party_known", "party", None, "1 when the case names a party"),
            ("party_prior_cases", "party", None, "the party's cases reported before this one"),
            ("party_prior_escalations", "party", None, "the party's escalations before this report"),
            ("party_open_cases", "party", None, "the party's earlier cases not resolved before this report"),
        ]
        rows += [
            (f"unit_count_{w}d", "unit", w, f"cases in the case's unit in the {w} days before the report")
            for w in self.windows
        ]
        rows += [
            (f"unit_same_category_{w}d", "unit", w, f"cases of the same category in the unit in the last {w} days")
            for w in self.windows
        ]
        rows += [
            ("unit_backlog", "unit", None, "the unit's cases reported before this one and not resolved before it"),
            (
                f"unit_escalations_{self.escalations_window}d",
                "unit",
                self.escalations_window,
                f"escalations in the unit in the {self.escalations_window} days before the report",
            ),
        ]
        rows += [
            (f"attr_{name}", "attribute", None, f"{name} of the unit in force at the report")
            for name in self.attributes_
        ]
        return pd.DataFrame(rows, columns=["name", "family", "window", "description"])

    def build(self, dataset: Dataset) -> CaseFeatures:
        """Features and escalation labels of every case."""
        check_is_fitted(self)
        data = validate(dataset).dataset
        self._check_params(data)
        data = data.replace(cases=counted_cases(data.cases, self.count))
        cases = data.cases
        holidays = SPRING_FESTIVAL if self.holidays is None else pd.DatetimeIndex(self.holidays).sort_values()
        grids = data.grids
        units = pd.Index(grids.loc[grids["level"] == self.level, "grid_id"])
        unit = units.get_indexer(cases["grid_id"].map(data.ancestors(self.level)))
        t = us(cases["reported_at"])
        never = pd.Series(pd.NaT, index=cases.index, dtype="datetime64[us]")
        escalated_at = cases.get("escalated_at", never)
        resolved = _us_or_never(cases.get("resolved_at", never))
        escalated = _us_or_never(escalated_at)
        n_cat = max(len(self.categories_), 1)
        category = pd.Index(self.categories_, dtype=object).get_indexer(cases["category"]).astype(np.int64)

        values = {f"category_{name}": category == k for k, name in enumerate(self.categories_)}
        values["severity"] = cases["severity"].to_numpy()
        source = cases.get("source", pd.Series(np.nan, index=cases.index))
        values.update({f"source_{name}": (source == name).to_numpy() for name in self.sources_})
        stamp = cases["reported_at"].dt
        values.update(
            hour=stamp.hour.to_numpy(),
            day_of_week=stamp.day_of_week.to_numpy(),
            month=stamp.month.to_numpy(),
            days_to_holiday=days_until_next(cases["reported_at"], holidays),
        )

        party = pd.factorize(cases.get("party_key", pd.Series(np.nan, index=cases.index)))[0]
        known_party = party >= 0
        before = _counter(party, t, known_party)
        values.update(
            party_known=known_party,
            party_prior_cases=before(t),
            party_prior_escalations=_counter(party, escalated, known_party)(t),
            party_open_cases=before(t) - _counter(party, resolved, known_party)(t),
        )

        in_unit = unit >= 0
        unit_cases = _counter(unit, t, in_unit)
        same = _counter(unit * n_cat + category, t, in_unit & (category >= 0))
        unit_escalations = _counter(unit, escalated, in_unit)
        for w in self.windows:
            values[f"unit_count_{w}d"] = unit_cases(t) - unit_cases(t - w * DAY)
            values[f"unit_same_category_{w}d"] = same(t) - same(t - w * DAY)
        values["unit_backlog"] = unit_cases(t) - _counter(unit, resolved, in_unit)(t)
        w = self.escalations_window
        values[f"unit_escalations_{w}d"] = unit_escalations(t) - unit_escalations(t - w * DAY)
        attributes = in_force(data, units, self.attributes_, unit, t)
        for j, name in enumerate(self.attributes_):
            values[f"attr_{name}"] = attributes[:, j]

        catalog = self.catalog()
        for name in catalog.loc[catalog["family"] == "unit", "name"]:  # cases above the level have no unit
            values[name] = np.where(in_unit, values[name], np.nan)
        index = pd.MultiIndex.from_arrays([cases["case_id"], cases["reported_at"]], names=["case_id", "reported_at"])
        X = pd.DataFrame({name: np.asarray(values[name], dtype=np.float32) for name in catalog["name"]}, index=index)
        delay = (escalated_at - cases["reported_at"]) / pd.Timedelta(days=1)
        positive = (delay <= self.escalation_days).to_numpy()
        known = positive | (cases["reported_at"] + pd.Timedelta(days=self.escalation_days) <= data.end).to_numpy()
        known &= "escalated_at" in cases.columns  # data without escalation times says nothing of escalations
        y = pd.Series(np.where(known, positive.astype(float), np.nan), index=index, name="y")
        return CaseFeatures(X=X, y=y, label_known=pd.Series(known, index=index, name="label_known"), catalog=catalog)


def build_case_features(dataset: Dataset, *, escalation_days: int = 30, level: str = "grid", **options) -> CaseFeatures:
    """One row per case with what was known when it was reported.

    A shortcut for ``CaseFeatureBuilder(...).fit(dataset).build(dataset)``; see
    :class:`CaseFeatureBuilder` for the options and :func:`describe` for the features.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_case_features
    >>> features = build_case_features(simulate_district("tiny", seed=0), escalation_days=30)
    >>> features.X.shape[0] == len(features.y), 0.05 < features.y.mean() < 0.2
    (True, np.True_)
    """
    builder = CaseFeatureBuilder(escalation_days=escalation_days, level=level, **options)
    return builder.fit(dataset).build(dataset)


def _us_or_never(times: pd.Series) -> np.ndarray:
    """Microseconds, with missing times (not happened yet) after every other time."""
    return np.where(times.isna().to_numpy(), np.iinfo(np.int64).max, us(times.fillna(pd.Timestamp(0))))


def _counter(group: np.ndarray, time: np.ndarray, keep: np.ndarray):
    """A function giving, for each case, the events of its group (among ``keep``) before a time."""
    index = EventIndex(group[keep], time[keep])

    def count(bound: np.ndarray) -> np.ndarray:
        return np.where(keep, index.count(np.maximum(group, 0), bound), 0)

    return count
