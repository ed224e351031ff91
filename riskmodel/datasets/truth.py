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
        by ``case_id``).
    waves : DataFrame
        The injected dispute waves: ``wave_id``, ``unit_id``, ``level``,
        ``category``, ``start``, ``end`` (exclusive), ``cases_per_day`` (cases of
        the category added per day, before self-excitation).
    grid_effects : DataFrame
        Per grid: ``latent`` (the log-rate factor no attribute reveals) and
        ``base_rate`` (expected cases per year in the first quarter, before
        season, waves and excitation).
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
    ):
        self._process = process
        self._layout = layout
        self._start = start
        self._n_days = n_days
        self._cases = (case_day, case_grid, case_category)
        self.escalation_probability = escalation_probability
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
        exact). It is the best any forecaster could do on this data.

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
        per_grid = self._process.expected(day, int(days), memory) @ weights
        return self._to_level(per_grid, level)

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
