"""The grid panel: one row per unit and cutoff, features as of the cutoff, the label after it.

Everything at cutoff ``c`` is computed from cases reported before ``c``: a case is
open at ``c`` unless resolved before ``c``, an escalation counts once
``escalated_at < c``, and attributes are the latest snapshot with
``valid_from <= c`` (the value in force at ``c``). The label counts target cases in
``[c, c + horizon)``.

Visit features exist only when the data the builder is fitted on has a ``visits`` table (so
a model trained on data without visits keeps its features), and patrol counts only when
the cases have an ``origin`` column: see :mod:`riskmodel.features.visits`. At ``c`` they see
visits with ``visited_at < c`` and cases reported before ``c``.

A fitted builder gives the same columns on any data: categories it did not learn are
left out of the per-category counts, learned categories the data lacks count zero, and
learned attributes the data lacks are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.utils.validation import check_is_fitted

from ..contract import Dataset
from ..holidays import SPRING_FESTIVAL, days_since_last, days_until_next
from ..validation import validate
from .base import Builder, Target, counted_cases, parse_cutoffs, parse_horizon, parse_target, vocabulary
from .events import DAY, EventIndex, attribute_columns, in_force, us
from .rates import exposure_days, shrinkage_weight
from .visits import PATROL_WINDOWS, VisitEvents, check_origins, patrol_catalog, select_origins, visit_catalog

__all__ = [
    "GridPanel",
    "GridPanelBuilder",
    "build_block",
    "build_grid_panel",
    "children_per_unit",
    "level_units",
    "neighbour_matrix",
    "shrunk_rates",
]


@dataclass(frozen=True)
class GridPanel:
    """Features and labels of every unit at every cutoff.

    Attributes
    ----------
    X : DataFrame
        Features (float32), indexed by (``grid_id``, ``cutoff``), cutoff-major.
    y_count : Series
        Target cases in ``[cutoff, cutoff + horizon)``; NaN where that window
        had not closed by the end of the data.
    y : Series
        1.0 when ``y_count >= 1``, else 0.0; NaN where the label is not known.
    label_known : Series
        Whether the label window closed by the end of the data.
    level : str
        The units' level.
    horizon : Timedelta or DateOffset
        The label window's length.
    target : Target
        What the label counts.
    """

    X: pd.DataFrame
    y_count: pd.Series
    y: pd.Series
    label_known: pd.Series
    level: str
    horizon: pd.Timedelta | pd.DateOffset
    target: Target


class GridPanelBuilder(Builder):
    """Point-in-time features of the units of one level at a list of cutoffs.

    ``fit`` learns the vocabulary (categories, attribute columns) so that the
    same columns come out for new data (learned categories it lacks count zero,
    learned attributes it lacks are NaN); ``transform`` returns the features and
    ``build`` the whole :class:`GridPanel`. Feature names and meanings:
    :meth:`catalog` (or :func:`riskmodel.features.describe`).

    Parameters
    ----------
    cutoffs : list of datetime-like or dict
        The times features are computed at: a list, or
        ``{"start": ..., "end": ..., "freq": ...}`` (``start`` and ``end``
        default to the data's span). Each within the data's span.
    horizon : int, str, Timedelta or DateOffset
        Label window: days, or a pandas offset.
    level : str
        The level whose units get rows.
    target : Target, dict or str, optional
        What the label counts: categories, a minimum severity, or escalations.
    windows : tuple of int
        Window lengths in days for counts.
    half_lives : tuple of float
        Half-lives in days of the exponentially decayed counts.
    severe : int
        Severity from which a case counts as severe.
    repeat_windows : tuple of int
        Windows in which a party with two or more cases counts as repeat.
    trends : tuple of (int, int)
        (short, long) window pairs of the trend ratios; both must be in ``windows``.
    neighbours : int
        Without adjacency pairs for the level, each unit's nearest ``neighbours``
        units by centroid are its neighbours.
    holidays : DatetimeIndex, optional
        Holiday dates of the calendar features (default: Spring Festival 2000-2040).
    categories : list of str, optional
        Category vocabulary of the per-category counts, each seen in the data
        given to ``fit`` (default: all categories seen there).
    origins : tuple of str, optional
        Count only cases of these origins (``resident``, ``patrol``) in the features
        *and* the label: ``("resident",)`` trains a model on resident-reported disputes
        alone, which the visits' patrol finds do not inflate. Every case must then have an
        ``origin``. Default None: every case, whatever its origin.
    count : {"disputes", "reports"}
        What the features and the label count: ``disputes`` (default), a dispute's first
        report standing for it (:func:`riskmodel.first_reports`: its time, unit and category;
        every report its own dispute when the cases have no ``dispute_id``), or every report
        (``reports``: a dispute reported on three platforms counts three times). A builder
        saved before this parameter existed counts reports, as it did.

    Notes
    -----
    Fitted on data with a ``visits`` table (even an empty one), the builder adds
    ``days_since_visit`` (capped at 365 days), ``visits_28d``, ``visits_91d`` and one
    ``last_visit_<outcome>`` indicator per visit outcome, and needs visits in the data it
    builds on. Fitted on cases with an ``origin`` column, and counting patrol cases (no
    ``origins``, or ``origins`` with ``patrol``), it adds ``patrol_count_28d`` and
    ``patrol_count_91d``. Without either, the features are those of data without visits.

    The long-run features see the whole history before the cutoff: ``history_days`` (from the
    data's first case), ``rate_all`` (cases a day of history, also of the neighbours and the
    parent per unit under it), ``count_last_period`` (cases in ``[cutoff - horizon, cutoff)``:
    the previous calendar month for a one-month horizon) and the empirical-Bayes rates
    ``shrunk_rate_{h}d`` and ``shrunk_rate_all``
    (:func:`~riskmodel.features.rates.shrinkage_weight`). Decayed counts are advanced from one
    cutoff to the next, so their cost grows with the cases. A builder saved before these
    features existed keeps its own features.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import GridPanelBuilder
    >>> district = simulate_district("tiny", seed=0)
    >>> builder = GridPanelBuilder(cutoffs={"start": "2023-07-03", "end": "2023-09-25", "freq": "4W-MON"},
    ...                            horizon=28).fit(district)
    >>> panel = builder.build(district)
    >>> panel.X.shape, panel.y.mean() > 0
    ((100, 116), np.True_)
    """

    def __init__(
        self,
        *,
        cutoffs=None,
        horizon=28,
        level="grid",
        target=None,
        windows=(7, 28, 91, 364),
        half_lives=(3, 14, 60, 180, 365, 730),
        severe=3,
        repeat_windows=(91, 364),
        trends=((7, 28), (28, 91), (91, 364)),
        neighbours=8,
        holidays=None,
        categories=None,
        origins=None,
        count="disputes",
    ):
        self.cutoffs = cutoffs
        self.horizon = horizon
        self.level = level
        self.target = target
        self.windows = windows
        self.half_lives = half_lives
        self.severe = severe
        self.repeat_windows = repeat_windows
        self.trends = trends
        self.neighbours = neighbours
        self.holidays = holidays
        self.categories = categories
        self.origins = origins
        self.count = count

    optional_inputs = ("party_key", "resolved_at", "escalated_at", "origin")
    # A builder saved before visits and origins existed has neither: its features are the same.
    visit_features_ = False
    patrol_features_ = False
    # Nor had it the long-run features (history, all-history and last-period counts, shrunk rates).
    long_run_features_ = False

    def _learn(self, data: Dataset, categories: pd.Series | None = None, attributes: list[str] | None = None) -> None:
        origins = check_origins(self.origins)
        if categories is None:
            categories = select_origins(counted_cases(data.cases, self.count), origins)["category"]
        self.categories_ = vocabulary(self.categories, categories, "categories")
        self.attributes_ = attribute_columns(data, self.level) if attributes is None else attributes
        self.parent_level_ = data.parent_level(self.level)
        self.visit_features_ = data.visits is not None
        self.patrol_features_ = "origin" in data.cases.columns and (origins is None or "patrol" in origins)
        self.long_run_features_ = True

    def build(self, dataset: Dataset) -> GridPanel:
        """Features and labels of every unit of the level at every cutoff."""
        check_is_fitted(self)
        data = validate(dataset).dataset
        data = data.replace(cases=select_origins(counted_cases(data.cases, self.count), self.origins))
        target, horizon = self.settings(data)
        start, end = data.cases["reported_at"].min(), data.end
        cutoffs = parse_cutoffs(self.cutoffs, start, end)
        return build_block(self, data, cutoffs, horizon, target, start, end)

    def settings(self, data: Dataset) -> tuple[Target, pd.Timedelta | pd.DateOffset]:
        """The target and horizon, checked against the data's levels, categories and columns.

        `build` calls it on the whole data; the Dask builder (`riskmodel.scaleout`) calls it once on
        the data's shape and passes the result to `build_block` for every partition.

        Parameters
        ----------
        data : Dataset
            Validated data, or a Dataset of the same shape (its levels, categories and case columns).

        Returns
        -------
        target : Target
            The parsed ``target`` parameter.
        horizon : pandas.Timedelta or pandas.DateOffset
            The parsed ``horizon`` parameter.

        Raises
        ------
        ValueError
            If the parameters do not fit the data: an unknown level or category, or an escalation
            target on cases without ``escalated_at``.
        """
        self._check_params(data)
        if self.visit_features_ and data.visits is None:
            raise ValueError(
                "the builder was fitted on data with a visits table and its features count visits, "
                "but this data has none: give its visits (an empty table if there were none)"
            )
        if self.patrol_features_ and "origin" not in data.cases.columns:
            raise ValueError(
                "the builder was fitted on cases with an origin column and counts patrol cases, "
                "but these cases have no origin column"
            )
        target = parse_target(self.target)
        _check_categories(target, self.categories_)
        if target.escalations and "escalated_at" not in data.cases.columns:
            raise ValueError(
                "the target counts escalations by the cases' escalated_at time, "
                "but the cases have no escalated_at column"
            )
        return target, parse_horizon(self.horizon)

    def catalog(self) -> pd.DataFrame:
        """Every feature: ``name``, ``family``, ``window`` (days) and ``description``."""
        check_is_fitted(self, "categories_")
        rows = []

        def add(name, family, window, description):
            rows.append((name, family, window, description))

        for w in self.windows:
            add(f"count_{w}d", "count", w, f"cases in the unit in the {w} days before the cutoff")
        for w in self.windows:
            for category in self.categories_:
                add(
                    f"count_{w}d_{category}",
                    "category_count",
                    w,
                    f"{category} cases in the unit in the {w} days before the cutoff",
                )
        for w in self.windows:
            add(f"severe_{w}d", "severe", w, f"cases of severity >= {self.severe} in the last {w} days")
        for w in self.windows:
            add(f"escalations_{w}d", "escalations", w, f"escalations (escalated_at) in the last {w} days")
        for h in self.half_lives:
            add(f"decay_{h}d", "decay", h, f"cases weighted by 2^(-age / {h} days), all history")
        add(
            "days_since_last",
            "recency",
            None,
            "days since the unit's last case; with none, days since the data's first case "
            "(missing when the data has no case)",
        )
        add("backlog", "backlog", None, "cases reported before the cutoff and not resolved before it")
        for w in self.repeat_windows:
            add(f"repeat_parties_{w}d", "repeat_parties", w, f"parties with two or more cases in the last {w} days")
        for short, long in self.trends:
            add(
                f"trend_{short}_{long}d",
                "trend",
                short,
                f"(count_{short}d * {long}/{short} + 1) / (count_{long}d + 1): above 1 when rising",
            )
        for w in self.windows:
            add(f"parent_count_{w}d", "parent", w, f"cases in the parent unit in the last {w} days")
        for w in self.windows:
            add(f"parent_severe_{w}d", "parent", w, f"severe cases in the parent unit in the last {w} days")
        for w in self.windows:
            add(f"parent_escalations_{w}d", "parent", w, f"escalations in the parent unit in the last {w} days")
        for h in self.half_lives:
            add(f"parent_decay_{h}d", "parent", h, f"decayed count (half-life {h} days) of the parent unit")
        add("parent_backlog", "parent", None, "open cases of the parent unit")
        for w in self.windows:
            add(f"nbr_count_{w}d", "neighbours", w, f"mean over neighbours of count_{w}d")
        for h in self.half_lives:
            add(f"nbr_decay_{h}d", "neighbours", h, f"mean over neighbours of decay_{h}d")
        for name in self.attributes_:
            add(f"attr_{name}", "attribute", None, f"{name} in force at the cutoff (latest valid_from <= cutoff)")
        add("lon", "location", None, "longitude of the unit's centroid (missing when the data has none)")
        add("lat", "location", None, "latitude of the unit's centroid (missing when the data has none)")
        add("month", "calendar", None, "month of the cutoff (the forecast window's start)")
        add("horizon_days", "calendar", None, "length of the forecast window in days")
        add("days_to_holiday", "calendar", None, "days from the cutoff to the next holiday")
        add("days_since_holiday", "calendar", None, "days from the last holiday to the cutoff")
        add("holiday_in_window", "calendar", None, "1 when a holiday falls inside the forecast window")
        add("no_history", "flag", None, "1 when the unit had no case before the cutoff")
        if self.long_run_features_:
            rows.extend(_long_run_catalog(self.half_lives))
        if self.visit_features_:
            rows.extend(visit_catalog())
        if self.patrol_features_:
            rows.extend(patrol_catalog())
        return pd.DataFrame(rows, columns=["name", "family", "window", "description"])

    def _check_params(self, data: Dataset) -> None:
        super()._check_params(data)
        missing = [
            f"{short}/{long}" for short, long in self.trends if short not in self.windows or long not in self.windows
        ]
        if missing:
            raise ValueError(f"trend windows {missing} must be among windows {list(self.windows)}")
        check_origins(self.origins)


def build_grid_panel(dataset: Dataset, *, cutoffs, horizon, level: str = "grid", target=None, **options) -> GridPanel:
    """Point-in-time features and labels of every unit of ``level`` at every cutoff.

    A shortcut for ``GridPanelBuilder(...).fit(dataset).build(dataset)``; see
    :class:`GridPanelBuilder` for the options and :func:`describe` for the features.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_grid_panel
    >>> district = simulate_district("tiny", seed=0)
    >>> panel = build_grid_panel(district, cutoffs=["2023-06-05", "2023-07-03"], horizon=28)
    >>> panel.X.index.names, len(panel.X)
    (FrozenList(['grid_id', 'cutoff']), 50)
    """
    builder = GridPanelBuilder(cutoffs=cutoffs, horizon=horizon, level=level, target=target, **options)
    return builder.fit(dataset).build(dataset)


# -- implementation -------------------------------------------------------------------
def _check_categories(target: Target, categories: list[str]) -> None:
    if target.categories is not None:
        unknown = [c for c in target.categories if c not in categories]
        if unknown:
            raise ValueError(f"unknown target categories {unknown}; the categories are {categories}")


class _Cases:
    """The cases of one level's units as arrays, each stream sorted by its time."""

    def __init__(self, cases: pd.DataFrame, unit: np.ndarray, categories: list[str]):
        keep = unit >= 0
        cases, unit = cases[keep], unit[keep]
        reported = us(cases["reported_at"])
        order = np.argsort(reported, kind="stable")
        self.time, self.unit = reported[order], unit[order]
        codes = pd.Index(categories).get_indexer(cases["category"])
        self.category = codes[order].astype(np.int64)
        self.severity = cases["severity"].to_numpy()[order]
        party = cases["party_key"] if "party_key" in cases.columns else pd.Series(np.nan, index=cases.index)
        self.party = pd.factorize(party)[0][order]
        self.resolved = self._stream(cases, "resolved_at", unit)
        self.escalated = self._stream(cases, "escalated_at", unit)

    @cached_property
    def index(self) -> EventIndex:
        return EventIndex(self.unit, self.time)

    @staticmethod
    def _stream(cases, column, unit):
        if column not in cases.columns:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        times = cases[column].to_numpy()
        known = ~np.isnat(times)
        stamp = us(times[known])
        order = np.argsort(stamp, kind="stable")
        return stamp[order], unit[known][order]

    def span(self, start: int, stop: int) -> slice:
        return slice(np.searchsorted(self.time, start), np.searchsorted(self.time, stop))


def _in(stream, start: int, stop: int, n: int) -> np.ndarray:
    times, unit = stream
    return np.bincount(unit[np.searchsorted(times, start) : np.searchsorted(times, stop)], minlength=n)


def _aggregates(cases: _Cases, history: _History, n: int, c: int, builder) -> dict[str, np.ndarray]:
    """Counts, severe, escalations, decay and backlog of every unit at cutoff ``c``;
    ``history`` is advanced to ``c``."""
    out: dict[str, np.ndarray] = {}
    for w in builder.windows:
        window = cases.span(c - w * DAY, c)
        unit = cases.unit[window]
        out[f"count_{w}d"] = np.bincount(unit, minlength=n)
        out[f"severe_{w}d"] = np.bincount(unit[cases.severity[window] >= builder.severe], minlength=n)
        out[f"escalations_{w}d"] = _in(cases.escalated, c - w * DAY, c, n)
    history.advance(c)
    for h, decay in history.decay.items():
        out[f"decay_{h}d"] = decay.copy()
    out["backlog"] = history.reported - history.resolved
    out["_reported"] = history.reported.copy()
    return out


class _History:
    """The all-history aggregates of one level's units, advanced over sorted cutoffs: each
    step adds the cases since the previous cutoff, so the cost grows with the cases, not
    with the cases times the cutoffs. ``decay(c_k) = decay(c_{k-1}) * 2^(-(c_k - c_{k-1}) / h)``
    plus the weights of the cases in ``[c_{k-1}, c_k)``."""

    def __init__(self, cases: _Cases, n: int, half_lives):
        self.cases, self.n = cases, n
        self.decay = {h: np.zeros(n) for h in half_lives}
        self.reported = np.zeros(n, dtype=np.int64)
        self.resolved = np.zeros(n, dtype=np.int64)
        self.at: int | None = None
        self.seen = self.closed = 0  # cases (and resolutions) counted so far

    def advance(self, c: int) -> None:
        if self.at is not None and c < self.at:
            raise ValueError(f"cutoffs must be sorted: {c} comes after {self.at}")
        stop = int(np.searchsorted(self.cases.time, c))
        new = slice(self.seen, stop)
        unit, age = self.cases.unit[new], (c - self.cases.time[new]) / DAY
        for h, decay in self.decay.items():
            if self.at is not None:
                decay *= np.exp2(-(c - self.at) / DAY / h)
            decay += np.bincount(unit, weights=np.exp2(-age / h), minlength=self.n)
        self.reported += np.bincount(unit, minlength=self.n)
        times, units = self.cases.resolved
        closed = int(np.searchsorted(times, c))
        self.resolved += np.bincount(units[self.closed : closed], minlength=self.n)
        self.at, self.seen, self.closed = c, stop, closed


def _unit_only(cases: _Cases, n: int, c: int, first: float, builder) -> dict[str, np.ndarray]:
    """Per-category counts, recency and repeat parties of every unit at cutoff ``c``."""
    out: dict[str, np.ndarray] = {}
    n_categories = len(builder.categories_)
    for w in builder.windows:
        window = cases.span(c - w * DAY, c)
        category, unit = cases.category[window], cases.unit[window]
        known = category >= 0
        table = np.bincount(unit[known] * n_categories + category[known], minlength=n * n_categories).reshape(
            n, n_categories
        )
        for k, name in enumerate(builder.categories_):
            out[f"count_{w}d_{name}"] = table[:, k]
    last = cases.index.last(np.arange(n), c)
    quiet = np.full(n, c - first, dtype=float)
    quiet[last >= 0] = c - cases.time[last[last >= 0]]
    out["days_since_last"] = quiet / DAY
    width = cases.party.max(initial=0) + 1
    for w in builder.repeat_windows:
        window = cases.span(c - w * DAY, c)
        party, unit = cases.party[window], cases.unit[window]
        pairs, counts = np.unique(unit[party >= 0].astype(np.int64) * width + party[party >= 0], return_counts=True)
        out[f"repeat_parties_{w}d"] = np.bincount(pairs[counts >= 2] // width, minlength=n)
    return out


def label_stream(cases: pd.DataFrame, unit_of: np.ndarray, target: Target) -> tuple[np.ndarray, np.ndarray]:
    """The times (microseconds, sorted) and units of the cases the label counts: those of a
    unit (``unit_of`` >= 0) whose time (``escalated_at`` for escalations, else
    ``reported_at``) is known, of at least the target's severity (cases without a
    ``severity`` column all count) and of its categories. The backtest's label and the
    monitor's observed counts (:func:`riskmodel.evaluation.monitoring.observed_counts`)."""
    label_times = cases["escalated_at"] if target.escalations else cases["reported_at"]
    counted = (unit_of >= 0) & label_times.notna().to_numpy()
    if "severity" in cases:
        counted &= (cases["severity"] >= target.min_severity).to_numpy()
    if target.categories is not None:
        counted &= cases["category"].isin(target.categories).to_numpy()
    label_us = us(label_times[counted])
    order = np.argsort(label_us, kind="stable")
    return label_us[order], unit_of[counted][order]


def _patrol_stream(cases: pd.DataFrame, unit_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The report times (sorted) and units of the cases found on patrol."""
    found = (unit_of >= 0) & (cases["origin"] == "patrol").to_numpy(dtype=bool, na_value=False)
    times = us(cases["reported_at"][found])
    order = np.argsort(times, kind="stable")
    return times[order], unit_of[found][order]


def _calendar(cutoff: pd.Timestamp, window_end: pd.Timestamp, holidays: pd.DatetimeIndex) -> dict[str, float]:
    """The calendar features of the forecast window ``[cutoff, window_end)``."""
    horizon_days = (window_end - cutoff) / pd.Timedelta(days=1)
    to_holiday = days_until_next([cutoff], holidays)[0]
    return {
        "month": cutoff.month,
        "horizon_days": horizon_days,
        "days_to_holiday": to_holiday,
        "days_since_holiday": days_since_last([cutoff], holidays)[0],
        "holiday_in_window": float(to_holiday < horizon_days),
    }


def neighbour_matrix(data: Dataset, units: pd.Index, k: int) -> sparse.csr_matrix:
    """Row-normalised neighbours: adjacency pairs within the level, else nearest centroids."""
    n = len(units)
    pairs = data.adjacency if data.adjacency is not None else pd.DataFrame(columns=["grid_id", "neighbour_id"])
    src, dst = units.get_indexer(pairs["grid_id"]), units.get_indexer(pairs["neighbour_id"])
    inside = (src >= 0) & (dst >= 0)
    if not inside.any():
        grids = data.grids.set_index("grid_id").reindex(units)
        if "lon" not in grids.columns or grids[["lon", "lat"]].isna().any().any() or n < 2:
            return sparse.csr_matrix((n, n))
        from sklearn.neighbors import NearestNeighbors

        lat0 = np.radians(grids["lat"].mean())
        xy = np.column_stack([grids["lon"] * np.cos(lat0), grids["lat"]])
        found = NearestNeighbors(n_neighbors=min(k, n - 1) + 1).fit(xy).kneighbors(xy, return_distance=False)
        src, dst = np.repeat(np.arange(n), found.shape[1] - 1), found[:, 1:].ravel()
        inside = np.ones(len(src), dtype=bool)
    src, dst = src[inside], dst[inside]
    degree = np.bincount(src, minlength=n).astype(float)
    return sparse.csr_matrix((1.0 / degree[src], (src, dst)), shape=(n, n))


def _long_run_catalog(half_lives) -> list[tuple[str, str, float | None, str]]:
    """The long-run features' catalog rows."""
    rows: list[tuple[str, str, float | None, str]] = [
        ("history_days", "history", None, "days from the data's first case to the cutoff (the same for every unit)"),
        ("rate_all", "rate", None, "cases in the unit before the cutoff a day of history (missing without history)"),
        ("nbr_rate_all", "neighbours", None, "mean over neighbours of rate_all"),
        (
            "parent_rate_all",
            "parent",
            None,
            "cases in the parent unit before the cutoff a day of history, per unit of the level under the parent",
        ),
        (
            "count_last_period",
            "last_period",
            None,
            "cases in the unit in [cutoff - horizon, cutoff): the previous calendar month for a one-month horizon",
        ),
        ("last_period_days", "last_period", None, "length of the last period [cutoff - horizon, cutoff) in days"),
    ]
    for h in (*half_lives, np.inf):
        name, window = ("all", None) if np.isinf(h) else (f"{h}d", h)
        weighting = "all cases alike" if np.isinf(h) else f"cases weighted by 2^(-age / {h} days)"
        rows.append(
            (
                f"shrunk_rate_{name}",
                "shrunk_rate",
                window,
                f"empirical-Bayes (gamma-Poisson) rate a day, {weighting}: the unit's rate shrunk toward the mean "
                "of its neighbours' rates and its parent's rate per unit (else the level's mean rate), the "
                "shrinkage estimated across units at the cutoff (riskmodel.features.rates.shrinkage_weight)",
            )
        )
    return rows


def _per_day(count, days) -> np.ndarray:
    """``count / days``; NaN where ``days`` is not positive."""
    days = np.asarray(days, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(days > 0, np.asarray(count, dtype=float) / np.where(days > 0, days, 1.0), np.nan)


def _long_run(values, cases: _Cases, c: int, since: int, first: float, neighbours, lonely, per_child):
    """History, all-history rates and last-period counts of every unit at cutoff ``c``."""
    history = (c - first) / DAY
    rate = _per_day(values["_reported"], history)
    parent = values.get("parent__reported")
    return {
        "history_days": history,
        "rate_all": rate,
        "nbr_rate_all": np.where(lonely, np.nan, neighbours @ rate),
        "parent_rate_all": _per_day(parent, history) / per_child if parent is not None else np.nan,
        "count_last_period": np.bincount(cases.unit[cases.span(since, c)], minlength=len(lonely)),
        "last_period_days": (c - since) / DAY,
    }


def children_per_unit(data: Dataset, level: str, units: pd.Index) -> np.ndarray:
    """For each of ``units`` (of ``level``), the number of units of the level under its parent;
    NaN for a unit without a parent.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features.grid_panel import children_per_unit, level_units
    >>> district = simulate_district("tiny", seed=0)
    >>> children_per_unit(district, "grid", level_units(district.grids, "grid"))[:3]
    array([9., 9., 9.])
    """
    parent = data.parent_level(level)
    if parent is None:
        return np.full(len(units), np.nan)
    above = data.ancestors(parent).reindex(level_units(data.grids, level))
    return above.reindex(units).map(above.value_counts()).to_numpy(float)


def shrunk_rates(
    X: pd.DataFrame, per_child, half_lives, weights: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``shrunk_rate_*`` columns of panel rows: each unit's rate shrunk toward its prior.

    A unit's rate at half-life ``h`` is ``decay_{h}d / exposure_days(history_days, h)``
    (``rate_all`` for all history); its prior the mean of its neighbours' rate and its
    parent's rate per unit of the level (whichever exist; else the mean rate of the level's
    units at the cutoff). The weight of its own rate is
    :func:`~riskmodel.features.rates.shrinkage_weight` over the units of a cutoff.

    Parameters
    ----------
    X : DataFrame
        Panel features indexed by (``grid_id``, ``cutoff``); with ``weights`` None, every
        unit of the level at each of its cutoffs.
    per_child : array-like of float
        For each row, the number of units of the level under its unit's parent (NaN without one).
    half_lives : tuple of float
        The builder's half-lives.
    weights : DataFrame, optional
        Indexed by cutoff: ``weight_<rate>`` and ``mean_<rate>`` columns, as this function
        returns them (computed over every unit, passed to a partition's rows).

    Returns
    -------
    shrunk : DataFrame
        ``shrunk_rate_{h}d`` and ``shrunk_rate_all``, float32, indexed as ``X``.
    weights : DataFrame
        The weights and level means used, indexed by cutoff.
    """
    history = X["history_days"].to_numpy(float)
    cutoffs = X.index.get_level_values("cutoff")
    found, at = np.unique(cutoffs.to_numpy(), return_inverse=True)
    order = np.argsort(at, kind="stable")
    groups = np.split(order, np.searchsorted(at[order], np.arange(1, len(found)))) if len(found) else []
    table = pd.DataFrame(index=pd.DatetimeIndex(found, name="cutoff")) if weights is None else weights.loc[found]
    shrunk = {}
    for h in (*half_lives, np.inf):
        name = "all" if np.isinf(h) else f"{h}d"
        if np.isinf(h):
            own, nbr, parent = (X[f"{k}rate_all"].to_numpy(float) for k in ("", "nbr_", "parent_"))
            effective = history
        else:
            exposure = exposure_days(history, h)
            own, nbr, parent = (
                _per_day(X[f"{k}decay_{h}d"].to_numpy(float), exposure) for k in ("", "nbr_", "parent_")
            )
            parent = parent / np.asarray(per_child, dtype=float)
            effective = _per_day(exposure**2, exposure_days(history, h / 2))
        known = np.isfinite(nbr).astype(int) + np.isfinite(parent)
        prior = np.where(known > 0, (np.nan_to_num(nbr) + np.nan_to_num(parent)) / np.maximum(known, 1), np.nan)
        if weights is None:
            means, fits = [], []
            for rows in groups:
                mean = np.nanmean(own[rows]) if np.isfinite(own[rows]).any() else np.nan
                means.append(mean)
                fits.append(
                    shrinkage_weight(own[rows], np.where(known[rows] > 0, prior[rows], mean), effective[rows][0])
                )
            table[f"weight_{name}"], table[f"mean_{name}"] = fits, means
        weight, mean = table[f"weight_{name}"].to_numpy()[at], table[f"mean_{name}"].to_numpy()[at]
        prior = np.where(known > 0, prior, mean)
        shrunk[f"shrunk_rate_{name}"] = (weight * own + (1 - weight) * prior).astype(np.float32)
    return pd.DataFrame(shrunk, index=X.index), table


def level_units(grids: pd.DataFrame, level: str) -> pd.Index:
    """The units of ``level``, sorted: the panel's row order within a cutoff."""
    return pd.Index(np.sort(grids.loc[grids["level"] == level, "grid_id"].to_numpy()), dtype="str")


class _Parents:
    """The aggregates of the units' parents (NaN without a parent level), advanced over sorted cutoffs."""

    def __init__(self, data: Dataset, units: pd.Index, builder):
        self.builder, self.n, self.level = builder, len(units), builder.parent_level_
        if self.level is not None:
            parents = level_units(data.grids, self.level)
            ancestors = data.ancestors(self.level)
            cases = _Cases(data.cases, parents.get_indexer(data.cases["grid_id"].map(ancestors)), builder.categories_)
            self.parent_of = parents.get_indexer(ancestors.reindex(units))
            self.cases, self.history = cases, _History(cases, len(parents), builder.half_lives)

    def values(self, c: int, names: list[str]) -> dict[str, np.ndarray]:
        if self.level is None:
            return {name: np.full(self.n, np.nan) for name in names if name.startswith("parent_")}
        above = _aggregates(self.cases, self.history, len(self.history.reported), c, self.builder)
        known, at = self.parent_of >= 0, np.maximum(self.parent_of, 0)
        return {f"parent_{name}": np.where(known, column[at], np.nan) for name, column in above.items()}


def _features(blocks, names: list[str], index: pd.MultiIndex, per_child, half_lives, weights) -> pd.DataFrame:
    """The features frame of the cutoffs' blocks, the shrunk rates filled in from the other columns."""
    stacked = np.vstack(blocks) if blocks else np.empty((0, len(names)), np.float32)
    if any(name.startswith("shrunk_rate_") for name in names):
        read = pd.DataFrame({name: stacked[:, j] for j, name in enumerate(names)}, index=index, copy=False)
        shrunk, _ = shrunk_rates(read, per_child, half_lives, weights)
        stacked[:, [names.index(name) for name in shrunk.columns]] = shrunk.to_numpy()
    return pd.DataFrame(stacked, index=index, columns=names, copy=False)  # no copy of the stacked blocks


def build_block(
    builder: GridPanelBuilder,
    data: Dataset,
    cutoffs: pd.DatetimeIndex,
    horizon: pd.Timedelta | pd.DateOffset,
    target: Target,
    start: pd.Timestamp,
    end: pd.Timestamp,
    neighbours: sparse.csr_matrix | None = None,
    weights: pd.DataFrame | None = None,
) -> GridPanel:
    """The panel of validated ``data`` at ``cutoffs``: the kernel of `GridPanelBuilder.build`.

    `GridPanelBuilder.build` runs it on the whole data; the Dask builder (`riskmodel.scaleout`) runs
    it on each partition, passing the values it computed over every partition.

    Parameters
    ----------
    builder : GridPanelBuilder
        A fitted builder.
    data : Dataset
        Validated data: the whole data, or one partition of it.
    cutoffs : pandas.DatetimeIndex
        The cutoffs, parsed over the whole data.
    horizon : pandas.Timedelta or pandas.DateOffset
        The horizon, as `GridPanelBuilder.settings` returns it.
    target : Target
        The target, as `GridPanelBuilder.settings` returns it.
    start : pandas.Timestamp
        The whole data's first report (NaT if there is no case).
    end : pandas.Timestamp
        The whole data's end.
    neighbours : scipy.sparse.csr_matrix, optional
        The row-normalised neighbour matrix over the level's units; when given it replaces the
        one computed from ``data``'s own units.
    weights : DataFrame, optional
        The shrunk rates' weights and level means at every cutoff, as `shrunk_rates` returns
        them for the whole data; by default computed from ``data``'s units.

    Returns
    -------
    GridPanel
        Features and labels of every unit of ``data``'s level at every cutoff.
    """
    grids = data.grids
    units = level_units(grids, builder.level)
    n = len(units)
    cases = data.cases
    unit_of = units.get_indexer(cases["grid_id"].map(data.ancestors(builder.level)))
    level_cases = _Cases(cases, unit_of, builder.categories_)

    parents = _Parents(data, units, builder)
    level_history = _History(level_cases, n, builder.half_lives)
    per_child = children_per_unit(data, builder.level, units)
    if neighbours is None:
        neighbours = neighbour_matrix(data, units, builder.neighbours)
    lonely = np.asarray(neighbours.sum(axis=1)).ravel() == 0

    attributes = in_force(
        data, units, builder.attributes_, np.tile(np.arange(n), len(cutoffs)), np.repeat(us(cutoffs), n)
    ).reshape(len(cutoffs), n, len(builder.attributes_))
    labels = label_stream(cases, unit_of, target)
    visits = VisitEvents(data, units, builder.level) if builder.visit_features_ else None
    patrol = _patrol_stream(cases, unit_of) if builder.patrol_features_ else None

    where = grids.drop_duplicates("grid_id").set_index("grid_id").reindex(units)
    centroid = {c: where[c].to_numpy(float) if c in where.columns else np.full(n, np.nan) for c in ("lon", "lat")}
    holidays = SPRING_FESTIVAL if builder.holidays is None else pd.DatetimeIndex(builder.holidays).sort_values()
    names = list(builder.feature_names_out_)
    first = np.nan if pd.isna(start) else int(us([start])[0])  # no case, no first case
    shrunk_names = [name for name in names if name.startswith("shrunk_rate_")]
    blocks, counts = [], []
    for k, cutoff in enumerate(cutoffs):
        c = int(us([cutoff])[0])
        window_end = cutoff + horizon
        values: dict[str, Any] = _aggregates(level_cases, level_history, n, c, builder)
        values.update(_unit_only(level_cases, n, c, first, builder))
        for short, long in builder.trends:
            values[f"trend_{short}_{long}d"] = (values[f"count_{short}d"] * long / short + 1) / (
                values[f"count_{long}d"] + 1
            )
        for name in [f"count_{w}d" for w in builder.windows] + [f"decay_{h}d" for h in builder.half_lives]:
            values[f"nbr_{name}"] = np.where(lonely, np.nan, neighbours @ values[name])
        values.update(parents.values(c, names))
        if builder.long_run_features_:
            since = int(us([cutoff - horizon])[0])
            values.update(_long_run(values, level_cases, c, since, first, neighbours, lonely, per_child))
            values.update(dict.fromkeys(shrunk_names, np.nan))  # filled over every unit below
        for j, name in enumerate(builder.attributes_):
            values[f"attr_{name}"] = attributes[k, :, j]
        values.update(
            **centroid, **_calendar(cutoff, window_end, holidays), no_history=(values["_reported"] == 0).astype(float)
        )
        if visits is not None:
            values.update(visits.features(c))
        if patrol is not None:
            values.update({f"patrol_count_{w}d": _in(patrol, c - w * DAY, c, n) for w in PATROL_WINDOWS})
        blocks.append(
            np.column_stack([np.broadcast_to(np.asarray(values[name], dtype=np.float32), n) for name in names])
        )
        counts.append(_in(labels, c, int(us([window_end])[0]), n))

    index = pd.MultiIndex.from_arrays(
        [np.tile(units.to_numpy(), len(cutoffs)), np.repeat(cutoffs.to_numpy(), n)], names=["grid_id", "cutoff"]
    )
    X = _features(blocks, names, index, np.tile(per_child, len(cutoffs)), builder.half_lives, weights)
    known = np.repeat(np.array([c + horizon <= end for c in cutoffs]), n)
    y_count = pd.Series(np.concatenate(counts).astype(float), index=index, name="y_count").where(known)
    y = (y_count >= 1).astype(float).where(known).rename("y")
    return GridPanel(
        X=X,
        y_count=y_count,
        y=y,
        label_known=pd.Series(known, index=index, name="label_known"),
        level=builder.level,
        horizon=horizon,
        target=target,
    )
