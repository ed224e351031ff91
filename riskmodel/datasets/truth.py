"""What the simulator knows and no model sees: expected counts, escalation
probabilities and the injected waves."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .cases import SEVERITY_P
from .layout import Layout
from .presets import CATEGORIES
from .process import Process


class Truth:
    """The simulated district's ground truth.

    Attributes
    ----------
    escalation_probability : Series
        Each case's chance of escalating, as known at its report time (indexed
        by ``case_id``); a further report of a dispute has its dispute's.
    waves : DataFrame
        The injected dispute waves: ``wave_id``, ``unit_id``, ``level``,
        ``category``, ``start``, ``end`` (exclusive), ``cases_per_day`` (cases of
        the category added per day, before self-excitation).
    grid_effects : DataFrame
        Per grid: ``latent`` (the log-rate factor no attribute reveals) and
        ``base_rate`` (expected cases per year in the first quarter, before
        season, waves and excitation).
    changes : DataFrame
        The world's changes (:mod:`riskmodel.datasets.changes`): ``change``
        (``NewPlatform`` or ``CategorySurge``), ``start``, ``factor``, ``source``
        (a platform's), ``category`` and ``street`` (a surge's); empty without any.
    """

    def __init__(
        self,
        *,
        process: Process,
        layout: Layout,
        start: pd.Timestamp,
        n_days: int,
        case_day,
        case_grid,
        case_category,
        escalation_probability: pd.Series,
        latent: np.ndarray,
        visits: pd.DataFrame | None = None,
        changes: pd.DataFrame | None = None,
    ):
        self._process = process
        self._layout = layout
        self._start = start
        self._n_days = n_days
        self._cases = (case_day, case_grid, case_category)
        self.escalation_probability = escalation_probability
        self._visits = visits
        self.changes = changes
        self.waves = process.waves.table
        self.grid_effects = pd.DataFrame(
            {"latent": latent, "base_rate": process.base_rate[:, :, 0].sum(axis=1) * 365.25},
            index=layout.grid_ids.rename("grid_id"),
        )

    def expected_counts(
        self,
        cutoff,
        horizon,
        *,
        level: str = "grid",
        categories: Iterable[str] | None = None,
        min_severity: int = 1,
    ) -> pd.Series:
        """Expected number of cases per unit in ``[cutoff, cutoff + horizon)``.

        The exact conditional expectation given every case before the cutoff:
        the base rate (with season and waves) integrated over the window, plus
        the excitation left by earlier cases, plus the excitation that the
        window's own expected cases add (the process is linear, so this is
        exact). It is the best any forecaster could do on this data. In a
        simulation with visits it counts resident-reported cases (the process's;
        patrol finds depend on visits not yet made), with the effects of the
        visits made before the cutoff and no further visit. It counts the
        disputes that happen: a :class:`~riskmodel.datasets.CategorySurge` is in
        it, a :class:`~riskmodel.datasets.NewPlatform` is not (from its start the
        cases recorded are ``factor`` times these, on average).

        Parameters
        ----------
        cutoff : datetime-like
            Start of the window; a midnight within the simulated period.
        horizon : int or Timedelta
            Length of the window in whole days (at most a year past the end).
        level : {"grid", "microgrid", "community", "street"}
            Units to report; grids are summed up or split by building share.
        categories : iterable of str, optional
            Count only these categories (default: all).
        min_severity : int
            Count only cases of at least this severity (1-4).

        Returns
        -------
        Series
            Expected counts indexed by ``grid_id`` of the level's units.

        Examples
        --------
        >>> from riskmodel.datasets import simulate_district
        >>> district = simulate_district("tiny", seed=0)
        >>> counts = district.truth.expected_counts("2023-07-01", 28)
        >>> len(counts), bool((counts > 0).all())
        (25, True)
        """
        day, days = self._window(cutoff, horizon)
        if min_severity not in (1, 2, 3, 4):
            raise ValueError(f"min_severity must be 1, 2, 3 or 4, got {min_severity!r}")
        weights = SEVERITY_P[:, min_severity - 1 :].sum(axis=1)
        if categories is not None:
            categories = [categories] if isinstance(categories, str) else list(categories)
            unknown = sorted(set(categories) - set(CATEGORIES))
            if unknown:
                raise ValueError(f"unknown categories {unknown}; the simulator's are {list(CATEGORIES)}")
            weights = weights * np.isin(CATEGORIES, categories)

        memory = self._process.memory_at(day, *self._cases)
        per_grid = self._process.expected(day, days, memory) @ weights
        return self._to_level(per_grid, level)

    def uplift(self, cutoff, horizon=28, *, level: str = "grid") -> pd.Series:
        """Expected resident cases a visit would prevent per unit in ``[cutoff, cutoff + horizon)``.

        For each unit, the expected count of its grids without a further visit minus
        the same if the unit alone were visited so as to act from the cutoff (a
        visit on the eve of the cutoff; see :mod:`riskmodel.datasets.visits`), given
        the actual history and the visits before the cutoff: the mediation of the
        tension its recent disputes built, the screening of its background rate,
        and the follow-ups in the unit that both spare. Exact (the process is
        linear) but for the share that would return through the neighbours'
        excitation, of order ``excitation_neighbours**2`` of it, left out. Sorting
        it gives the oracle's uplift ranking. A unit above grid level is a visit to
        each of its grids (summed); a microgrid gets its building share.

        Examples
        --------
        >>> from riskmodel.datasets import simulate_district
        >>> uplift = simulate_district("tiny", seed=0).truth.uplift("2023-07-03")
        >>> len(uplift), bool((uplift >= 0).all())
        (25, True)
        """
        day, days = self._window(cutoff, horizon)
        memory = self._process.memory_at(day, *self._cases)
        return self._to_level(self._process.prevented(day, days, memory), level).rename("uplift")

    def visit_effect(self, horizon=28, *, per: str = "visit", window: str = "visit") -> pd.DataFrame:
        """For every visit made, its unit's expected resident cases with and without it.

        A visit on day ``v`` acts from day ``v + 1``; the window is ``horizon`` days
        from then. Both expectations are given the cases up to the visit day and the
        visits of earlier days, with no later visit; ``prevented`` is their
        difference (positive: fewer cases), zero for a visit that did not reach
        its unit, and leaves out what returns through the neighbours (see
        :meth:`uplift`).

        Parameters
        ----------
        horizon : int
            Days after the visit.
        window : {"visit", "week"}
            ``"visit"``: ``horizon`` days from the day after the visit. ``"week"``:
            the ``horizon`` days from the Monday of the visit's week, the window in
            which :func:`riskmodel.evaluation.visit_effect` compares a plan's units
            (the days before the visit see no effect, and the effect after the
            window's end is not counted).
        per : {"visit", "unit"}
            One row per visit (``visit_id``, ``grid_id``, ``visited_at``,
            ``expected_without``, ``expected_with``, ``prevented``), or per visited
            unit (``grid_id``, ``visits``, the three sums and
            ``prevented_per_visit``).

        Examples
        --------
        >>> from riskmodel.datasets import RandomVisits, simulate_district
        >>> district = simulate_district("tiny", seed=0, policy=RandomVisits(capacity=2))
        >>> effect = district.truth.visit_effect(28)
        >>> len(effect) == len(district.visits), bool((effect["prevented"] >= 0).all())
        (True, True)
        """
        if per not in ("visit", "unit"):
            raise ValueError(f"per must be 'visit' or 'unit', got {per!r}")
        if window not in ("visit", "week"):
            raise ValueError(f"window must be 'visit' or 'week', got {window!r}")
        if not isinstance(horizon, (int, np.integer)) or horizon <= 0:
            raise ValueError(f"horizon must be a positive number of days, got {horizon!r}")
        horizon = int(horizon)
        visits = self._visits if self._visits is not None else pd.DataFrame(columns=["visit_id", "grid_id"])
        day = ((visits.get("visited_at", pd.Series(dtype="datetime64[us]")) - self._start).dt.days).to_numpy()
        grid = self._layout.grid_ids.get_indexer(visits["grid_id"])
        reached = visits.get("outcome", pd.Series(dtype="str")).ne("not_reached").to_numpy()
        without, prevented = np.zeros(len(visits)), np.zeros(len(visits))
        process, (case_day, case_grid, case_category) = self._process, self._cases
        memory, last = np.zeros(process.base_rate.shape[:2]), 0  # memory at the start of day ``last``
        for v in np.unique(day):
            on = day == v
            # Forward from the last visit day: its visits' mediations, decay, and the cases since.
            if last and process.effects is not None:
                memory = process.effects.mediate(memory, last - 1)
            lo, hi = np.searchsorted(case_day, [last, v + 1])
            memory = process.decay ** (v + 1 - last) * memory
            weight = (1 - process.decay) * process.decay ** (v - case_day[lo:hi])
            np.add.at(memory, (case_grid[lo:hi], case_category[lo:hi]), weight)
            last = v + 1
            days = horizon if window == "visit" else horizon - (v + 1 - self._monday(v))
            if days <= 0:
                continue
            without[on] = self._process.expected(v + 1, days, memory, before=v).sum(axis=1)[grid[on]]
            prevented[on] = self._process.prevented(v + 1, days, memory, before=v)[grid[on]] * reached[on]
        out = pd.DataFrame(
            {
                "visit_id": visits["visit_id"].to_numpy(),
                "grid_id": visits["grid_id"].to_numpy(),
                "visited_at": visits.get("visited_at", pd.Series(dtype="datetime64[us]")).to_numpy(),
                "expected_without": without,
                "expected_with": without - prevented,
                "prevented": prevented,
            }
        )
        if per == "visit":
            return out
        sums = out.groupby("grid_id")[["expected_without", "expected_with", "prevented"]].sum()
        return sums.assign(
            visits=out.groupby("grid_id").size(), prevented_per_visit=lambda f: f["prevented"] / f["visits"]
        ).reset_index()[["grid_id", "visits", "expected_without", "expected_with", "prevented", "prevented_per_visit"]]

    def _monday(self, day: int) -> int:
        """The day number of the Monday of day ``day``'s week."""
        return day - (self._start + pd.Timedelta(days=int(day))).day_of_week

    def _window(self, cutoff, horizon) -> tuple[int, int]:
        """The cutoff's day number and the horizon in days, or a ValueError."""
        cutoff = pd.Timestamp(cutoff)
        days = horizon.days if isinstance(horizon, pd.Timedelta) else horizon
        if isinstance(horizon, pd.Timedelta) and horizon != pd.Timedelta(days=days):
            raise ValueError(f"horizon must be whole days, got {horizon}")
        if not isinstance(days, (int, np.integer)) or days <= 0:
            raise ValueError(f"horizon must be a positive number of days, got {horizon!r}")
        if cutoff != cutoff.normalize():
            raise ValueError(f"cutoff must be a midnight (the truth is kept by day), got {cutoff}")
        day = (cutoff - self._start).days
        if not 0 <= day <= self._n_days or day + days > self._process.season.shape[1]:
            raise ValueError(
                f"cutoff {cutoff.date()} with horizon {days} days is outside the simulated period "
                f"{self._start.date()} to {(self._start + pd.Timedelta(days=self._n_days)).date()} "
                "(plus a year)"
            )
        return day, int(days)

    def _to_level(self, per_grid: np.ndarray, level: str) -> pd.Series:
        layout = self._layout
        if level == "grid":
            values, ids = per_grid, layout.grid_ids
        elif level == "microgrid":
            values, ids = per_grid[layout.micro_grid] * layout.micro_share, layout.micro_ids
        elif level == "community":
            values = np.bincount(layout.community_of_grid, per_grid, len(layout.community_ids))
            ids = layout.community_ids
        elif level == "street":
            values = np.bincount(layout.street_of_grid, per_grid, len(layout.street_ids))
            ids = layout.street_ids
        else:
            raise ValueError(f"unknown level {level!r}; choose grid, microgrid, community or street")
        return pd.Series(values, index=ids.rename("grid_id"), name="expected_count")
