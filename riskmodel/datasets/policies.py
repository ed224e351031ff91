"""Who to visit each week: the :class:`Policy` protocol, the oracle it may consult,
and two simple policies to simulate with (those that forecast are in
:mod:`riskmodel.prevention`)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..contract import Dataset
from .process import Process

__all__ = ["NoVisits", "Oracle", "Policy", "RandomVisits"]


class Oracle:
    """The simulator's truth at a Monday, for policies that may cheat (honest ones ignore it).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.datasets import simulate_district
    >>> class Busiest:  # a policy that cheats: it visits the two grids truly riskiest
    ...     def plan(self, observed, week, oracle):
    ...         return pd.DataFrame({"grid_id": oracle.expected_counts(28).nlargest(2).index})
    >>> district = simulate_district("tiny", seed=0, policy=Busiest())
    >>> sorted(district.visits["assignment"].unique())
    ['ad_hoc']
    """

    def __init__(self, process: Process, day: int, memory: np.ndarray, grid_ids: pd.Index):
        self._process, self._day, self._memory, self._grid_ids = process, day, memory, grid_ids

    def uplift(self, horizon: int = 28) -> pd.Series:
        """Expected resident cases that a visit to each grid now would prevent in its
        own grid over the next ``horizon`` days (see :meth:`Truth.uplift`)."""
        values = self._process.prevented(self._day, horizon, self._memory)
        return pd.Series(values, index=self._grid_ids.rename("grid_id"), name="uplift")

    def expected_counts(self, horizon: int = 28) -> pd.Series:
        """Expected resident cases per grid over the next ``horizon`` days without a visit."""
        values = self._process.expected(self._day, horizon, self._memory).sum(axis=1)
        return pd.Series(values, index=self._grid_ids.rename("grid_id"), name="expected_count")


@runtime_checkable
class Policy(Protocol):
    """What a simulation with visits asks every Monday.

    ``plan(observed, week, oracle)`` gets the :class:`~riskmodel.Dataset` recorded
    before the Monday ``week`` (cases, including earlier patrol finds, with an
    ``origin`` column; units; attribute snapshots valid before it; adjacency; the
    visits and plans so far; ``as_of = week``) and an :class:`Oracle`. It returns a
    DataFrame with a ``grid_id`` column of grid-level units to visit that week, one
    row per visit, and optionally ``plan_id``, ``assignment`` (``rank``, ``explore``
    or ``control``: control rows are planned but not visited), ``kind`` (default
    ``screening``) and the other columns of the plans table. Rows with a
    ``plan_id`` are kept as the dataset's ``plans``; a visit without one is
    ``ad_hoc``.
    """

    def plan(self, observed: Dataset, week: pd.Timestamp, oracle: Oracle) -> pd.DataFrame: ...


def _grids(observed: Dataset) -> pd.Index:
    return pd.Index(observed.grids.loc[observed.grids["level"] == "grid", "grid_id"])


def _count(capacity: float, n_grids: int) -> int:
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    return min(int(round(capacity * n_grids)) if capacity < 1 else int(capacity), n_grids)


class NoVisits:
    """Visits nothing: a simulation with it has the cases of ``policy=None``.

    Examples
    --------
    >>> from riskmodel.datasets import NoVisits, simulate_district
    >>> len(simulate_district("tiny", seed=0, policy=NoVisits()).visits)
    0
    """

    def plan(self, observed: Dataset, week: pd.Timestamp, oracle: Oracle) -> pd.DataFrame:
        return pd.DataFrame({"grid_id": pd.Series(dtype="str")})


class RandomVisits:
    """Visits ``capacity`` grids a week drawn at random (a share of the grids if below 1).

    Examples
    --------
    >>> from riskmodel.datasets import RandomVisits, simulate_district
    >>> district = simulate_district("tiny", seed=0, policy=RandomVisits(capacity=3, seed=1))
    >>> int(district.visits.groupby(district.visits["visited_at"].dt.to_period("W")).size().max())
    3
    """

    def __init__(self, *, capacity: float, seed: int = 0):
        self.capacity = capacity
        self.seed = seed

    def plan(self, observed: Dataset, week: pd.Timestamp, oracle: Oracle) -> pd.DataFrame:
        grids = _grids(observed)
        rng = np.random.default_rng([self.seed, int(week.value // 86_400_000_000_000)])
        chosen = rng.choice(len(grids), size=_count(self.capacity, len(grids)), replace=False)
        return pd.DataFrame({"grid_id": grids[np.sort(chosen)]})
