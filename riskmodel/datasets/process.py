"""The daily dispute process: base rate x season, plus waves, plus self-excitation.

Per grid g, category c and day t the number of cases is Poisson with intensity

    lambda[g, c, t] = base[g, c, q(t)] * season[c, t] + wave[g, c, t]
                      + a_self * sum_{s < t} k(t - s) N[g, c, s]
                      + a_nbr  * sum_{s < t} k(t - s) mean_{h ~ g} N[h, c, s]

with the discrete exponential kernel k(d) = (1 - r) r**(d - 1), r = 2**(-1/half-life),
which sums to one, so a case triggers ``a_self`` follow-ups in its grid and
``a_nbr`` in its neighbours. A category surge (:mod:`riskmodel.datasets.changes`)
multiplies a category's base rate in some grids from a day on. The kernel is carried as two states updated once a
day. The process is linear in past counts, so the expected count of a window
given the history is the same recursion run with counts replaced by intensities:
:meth:`Process.expected` is exact, not an approximation. Visits (:mod:`riskmodel.datasets.visits`) scale the
background rate and the memory, which keeps the process linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from ..holidays import days_since_last, days_until_next
from .presets import CATEGORIES, SimulationConfig
from .visits import PREVENTABLE_MASK, VisitEffects

# Yearly season per category: amplitude of the log rate and the day of the year of the peak.
_SEASON_AMPLITUDE = np.array([0.35, 0.10, 0.0, 0.10, 0.05, 0.10, 0.15, 0.05])
_SEASON_PEAK_DAY = np.array([196, 15, 0, 30, 100, 320, 200, 180])
# Day-of-week multipliers (Monday first) per category.
_WEEKDAY = np.array(
    [
        [0.9, 0.9, 0.9, 0.95, 1.1, 1.3, 1.25],
        [1.1, 1.1, 1.1, 1.1, 1.0, 0.8, 0.8],
        [1.1, 1.1, 1.1, 1.1, 1.1, 0.75, 0.75],
        [0.9, 0.9, 0.9, 0.9, 1.0, 1.2, 1.2],
        [1.1, 1.1, 1.1, 1.1, 1.0, 0.8, 0.8],
        [0.9, 0.9, 0.9, 0.9, 1.0, 1.2, 1.2],
        [1.05, 1.0, 1.0, 1.0, 1.1, 0.95, 0.9],
        [1.0] * 7,
    ]
)
_WAGES = CATEGORIES.index("unpaid_wages")
_FAMILY = CATEGORIES.index("family")


def season(start: pd.Timestamp, n_days: int) -> np.ndarray:
    """(C, n_days) multipliers: yearly season, weekday, and Spring Festival.

    Unpaid-wage disputes climb to three times their level on the eve of Spring
    Festival (a linear ramp over four weeks); family disputes rise by half in
    the ten days that follow it.
    """
    days = pd.date_range(start, periods=n_days, freq="D")
    doy = days.day_of_year.to_numpy()
    yearly = np.exp(
        _SEASON_AMPLITUDE[:, None] * np.cos(2 * np.pi * (doy[None, :] - _SEASON_PEAK_DAY[:, None]) / 365.25)
    )
    weekly = (_WEEKDAY / _WEEKDAY.mean(axis=1, keepdims=True))[:, days.day_of_week.to_numpy()]
    out = yearly * weekly
    until = np.nan_to_num(days_until_next(days), nan=np.inf)
    since = np.nan_to_num(days_since_last(days), nan=np.inf)
    out[_WAGES] *= 1 + 2.0 * np.clip(1 - until / 28, 0, 1)
    out[_FAMILY] *= np.where(since < 10, 1.5, 1.0)
    return out


@dataclass
class Waves:
    """Injected dispute waves, each adding cases of one category to a set of grids."""

    table: pd.DataFrame  # wave_id, unit_id, level, category, start, end, cases_per_day
    grids: list[np.ndarray]
    extra: list[np.ndarray]  # cases per day added to each of the wave's grids
    category: np.ndarray
    first_day: np.ndarray
    end_day: np.ndarray  # exclusive

    def apply(self, rate: np.ndarray, day: int) -> np.ndarray:
        """Add to ``rate`` (G, C), in place, the cases of the waves active on ``day``."""
        for w in np.flatnonzero((self.first_day <= day) & (day < self.end_day)):
            rate[self.grids[w], self.category[w]] += self.extra[w]
        return rate


def draw_waves(config: SimulationConfig, layout, base_rate: np.ndarray, rng) -> Waves:
    """Waves of one category in one grid (chosen in proportion to its rate) or in
    one whole community (chosen uniformly), shared among the community's grids in
    proportion to their rate of that category."""
    from .attributes import CATEGORY_SHARE

    n = rng.poisson(config.waves_per_year * config.years)
    n_days = config.days
    in_community = rng.random(n) < 0.5
    grid_weight = base_rate[:, :, 0].sum(axis=1)
    grid = rng.choice(len(grid_weight), size=n, p=grid_weight / grid_weight.sum())
    community = rng.integers(0, len(layout.community_ids), size=n)
    category = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_SHARE / CATEGORY_SHARE.sum())
    cases_per_day = rng.uniform(config.wave_cases_low, config.wave_cases_high, size=n)
    length = 7 * rng.integers(config.wave_weeks_low, config.wave_weeks_high + 1, size=n)
    first = rng.integers(0, np.maximum(n_days - length, 1), size=n)
    members = [
        np.flatnonzero(layout.community_of_grid == community[i]) if in_community[i] else np.array([grid[i]])
        for i in range(n)
    ]
    share = [base_rate[m, category[i], 0] / base_rate[m, category[i], 0].sum() for i, m in enumerate(members)]
    start = pd.Timestamp(config.start)
    order = np.lexsort((np.arange(n), first))
    table = pd.DataFrame(
        {
            "wave_id": [f"W{i + 1:03d}" for i in range(n)],
            "unit_id": np.where(
                in_community, layout.community_ids.to_numpy()[community], layout.grid_ids.to_numpy()[grid]
            )[order],
            "level": np.where(in_community, "community", "grid")[order],
            "category": np.array(CATEGORIES)[category][order],
            "start": (start + pd.to_timedelta(first[order], unit="D")).as_unit("us"),
            "end": (start + pd.to_timedelta(first[order] + length[order], unit="D")).as_unit("us"),
            "cases_per_day": cases_per_day[order],
        }
    ).astype({"wave_id": "str", "unit_id": "str", "level": "str", "category": "str"})
    return Waves(
        table,
        [members[i] for i in order],
        [cases_per_day[i] * share[i] for i in order],
        category[order],
        first[order],
        first[order] + length[order],
    )


@dataclass
class Process:
    base_rate: np.ndarray  # (G, C, Q) per day
    quarter_of_day: np.ndarray  # (days,) index into Q
    season: np.ndarray  # (C, days)
    waves: Waves
    neighbours: sparse.csr_matrix
    a_self: float
    a_nbr: float
    decay: float
    effects: VisitEffects | None = None
    # (first day, grid numbers, category, factor) of each category surge (:mod:`riskmodel.datasets.changes`).
    surges: list[tuple[int, np.ndarray, int, float]] = field(default_factory=list)

    @classmethod
    def build(cls, config: SimulationConfig, base_rate, quarter_starts, waves, neighbours, horizon_days: int):
        start = pd.Timestamp(config.start)
        n_days = config.days + horizon_days
        days = pd.date_range(start, periods=n_days, freq="D").as_unit("us")
        quarter = quarter_starts.searchsorted(days, side="right") - 1
        return cls(
            base_rate=base_rate,
            quarter_of_day=np.minimum(quarter, base_rate.shape[2] - 1),
            season=season(start, n_days),
            waves=waves,
            neighbours=neighbours,
            a_self=config.excitation_self,
            a_nbr=config.excitation_neighbours,
            decay=2.0 ** (-1.0 / config.excitation_half_life_days),
        )

    def background(self, day: int, before: int | None = None) -> np.ndarray:
        """(G, C) intensity of day ``day`` without excitation: the base rate and season,
        lowered by the screenings of the visits made before day ``before`` (default
        ``day``), plus the waves (a visit does not stop a wave)."""
        rate = self.baseline(day)
        if self.effects is not None:
            self.effects.screen(rate, day, day if before is None else before)
        return self.waves.apply(rate, day)

    def baseline(self, day: int) -> np.ndarray:
        """(G, C) base rate and season of day ``day``, with the category surges under way."""
        rate = self.base_rate[:, :, self.quarter_of_day[day]] * self.season[:, day]
        for first, grids, category, factor in self.surges:
            if day >= first:
                rate[grids, category] *= factor
        return rate

    def advance(self, memory: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Excitation memory of the next day given this day's memory and counts."""
        return self.decay * memory + (1 - self.decay) * counts

    def excitation(self, memory: np.ndarray) -> np.ndarray:
        return self.a_self * memory + self.a_nbr * (self.neighbours @ memory)

    def simulate(self, n_days: int, rng: np.random.Generator, *, first_day: int = 0, memory=None, on_day=None):
        """Daily counts of days ``[first_day, n_days)`` from the memory at ``first_day``
        (default none); returns (day, grid, category, count) of the non-zero cells and
        the memory at ``n_days``. ``on_day(day, intensity)`` is called before each draw."""
        memory = np.zeros(self.base_rate.shape[:2]) if memory is None else memory
        out = [(np.zeros(0, dtype=np.int64),) * 4]
        for day in range(first_day, n_days):
            intensity = self.background(day) + self.excitation(memory)
            if on_day is not None:
                on_day(day, intensity)
            counts = rng.poisson(intensity)
            grid, category = np.nonzero(counts)
            out.append((np.full(len(grid), day), grid, category, counts[grid, category]))
            memory = self.advance(memory, counts)
            if self.effects is not None:
                memory = self.effects.mediate(memory, day)
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True)), memory

    def memory_at(self, day: int, case_day, case_grid, case_category, before: int | None = None) -> np.ndarray:
        """Excitation memory at the start of ``day`` from the cases before it, after the
        mediations of the visits made before day ``before`` (default ``day``)."""
        before = min(day, before if before is not None else day)
        past = case_day < day
        memory = np.zeros(self.base_rate.shape[:2])
        weight = (1 - self.decay) * self.decay ** (day - 1 - case_day[past])
        if self.effects is not None:
            weight *= self.effects.settled(case_day[past], case_grid[past], case_category[past], before)
        np.add.at(memory, (case_grid[past], case_category[past]), weight)
        return memory

    def expected(self, day: int, horizon: int, memory: np.ndarray, before: int | None = None) -> np.ndarray:
        """(G, C) expected counts in days [day, day + horizon) given the memory, with
        the visits made before day ``before`` (default ``day``) and none after."""
        before = day if before is None else before
        total = np.zeros_like(memory)
        for t in range(day, day + horizon):
            intensity = self.background(t, before) + self.excitation(memory)
            total += intensity
            memory = self.advance(memory, intensity)
        return total

    def prevented(self, day: int, horizon: int, memory: np.ndarray, before: int | None = None) -> np.ndarray:
        """(G,) expected cases that a visit to each grid, acting from ``day``, prevents in
        its own grid in days [day, day + horizon), given the memory at ``day`` and the
        visits made before day ``before`` (default ``day``). Exact but for the share that
        returns to the grid through its neighbours' excitation (of order ``a_nbr**2``)."""
        if self.effects is None:
            raise ValueError("this process has no visit effects")
        before = day if before is None else before
        effects = self.effects
        diff = memory * PREVENTABLE_MASK * effects.mediation[:, None]
        total = np.zeros(len(diff))
        for t in range(day, day + horizon):
            fewer = self.a_self * diff
            if t < day + effects.screening_days:
                screened = self.baseline(t)
                effects.screen(screened, t, before)
                fewer += screened * PREVENTABLE_MASK * effects.screening[:, None]
            total += fewer.sum(axis=1)
            diff = self.advance(diff, fewer)
        return total
