"""What a grid worker's visit does to the dispute process.

A visit that reaches grid ``g`` on day ``v`` acts from day ``v + 1`` (the visit
day's own cases are drawn before it) on the preventable categories
(:data:`PREVENTABLE`):

* mediation: the excitation memory of those categories in ``g`` is multiplied by
  ``1 - m[g]``: the tension that recent disputes were building is settled, and the
  follow-ups they would have brought are prevented;
* screening: their background rate in ``g`` (base rate and season; not an
  injected wave) is multiplied by ``1 - rho[g]`` for ``visit_screening_weeks``
  weeks. Overlapping screenings compound (two visits in the window multiply by
  ``(1 - rho[g])**2``), so the process stays exactly linear.

``m = visit_mediation * r * d`` and ``rho = visit_screening * r * d`` where the
grid's receptiveness ``r`` is a Beta draw that no attribute reveals and its reach
``d = min(1, (median rate / rate) ** visit_dilution)`` falls in grids busier than
the median (by their first-quarter base rate of the preventable categories): one
visit reaches a bounded number of households. The effect is thus large where a
receptive grid's tension is building after recent disputes and close to none in a
grid that is quiet or unreceptive. With
``visit_effect="equal"`` every grid gets ``rho = visit_screening * E[r]`` and no
mediation. Visits of other kinds than screening act the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .presets import CATEGORIES, SimulationConfig

#: Categories a visit can prevent.
PREVENTABLE = ("neighbour_noise", "property_management", "family", "unpaid_wages")
PREVENTABLE_MASK = np.isin(CATEGORIES, PREVENTABLE)


@dataclass
class VisitEffects:
    """Per-grid effect sizes and the record of the visits that reached their unit."""

    mediation: np.ndarray  # (G,) share of the preventable memory a visit settles
    screening: np.ndarray  # (G,) relative fall of the preventable background rate
    screening_days: int
    day: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def draw(cls, config: SimulationConfig, base_rate: np.ndarray, rng: np.random.Generator) -> VisitEffects:
        """Effect sizes per grid; ``base_rate`` is (G, C, Q)."""
        n_grids = len(base_rate)
        a, b = config.visit_receptiveness_a, config.visit_receptiveness_b
        receptiveness = rng.beta(a, b, size=n_grids)
        if config.visit_effect == "equal":
            mediation = np.zeros(n_grids)
            screening = np.full(n_grids, config.visit_screening * a / (a + b))
        else:
            rate = base_rate[:, PREVENTABLE_MASK, 0].sum(axis=1)
            reach = np.minimum(1.0, (np.median(rate) / rate) ** config.visit_dilution)
            mediation = config.visit_mediation * receptiveness * reach
            screening = config.visit_screening * receptiveness * reach
        return cls(mediation, screening, 7 * config.visit_screening_weeks)

    def add(self, day: np.ndarray, grid: np.ndarray) -> None:
        """Record visits that reached their unit (any order)."""
        self.day = np.concatenate([self.day, np.asarray(day, dtype=np.int64)])
        self.grid = np.concatenate([self.grid, np.asarray(grid, dtype=np.int64)])

    def screen(self, rate: np.ndarray, day: int, before: int) -> np.ndarray:
        """Lower ``rate`` (G, C), in place, by the screenings of visits made before
        day ``before`` that are active on ``day``."""
        active = (self.day < before) & (self.day < day) & (day <= self.day + self.screening_days)
        if active.any():
            times = np.bincount(self.grid[active], minlength=len(self.screening))
            rate[:, PREVENTABLE_MASK] *= ((1 - self.screening) ** times)[:, None]
        return rate

    def mediate(self, memory: np.ndarray, visit_day: int) -> np.ndarray:
        """The memory after the mediations of the visits made on ``visit_day``."""
        today = self.day == visit_day
        if today.any():
            times = np.bincount(self.grid[today], minlength=len(self.mediation))
            memory = memory.copy()
            memory[:, PREVENTABLE_MASK] *= ((1 - self.mediation) ** times)[:, None]
        return memory

    def settled(self, case_day: np.ndarray, case_grid: np.ndarray, case_category: np.ndarray, until: int):
        """Per case, the factor left of its weight in the memory by the mediations of
        visits made on its day or later and before day ``until``."""
        factor = np.ones(len(case_day))
        if not len(self.day):
            return factor
        span = max(int(self.day.max()), int(case_day.max(initial=0)), until) + 2
        keys = np.sort(self.grid * span + self.day)
        base = case_grid.astype(np.int64) * span
        times = np.searchsorted(keys, base + until, side="left") - np.searchsorted(keys, base + case_day, side="left")
        preventable = PREVENTABLE_MASK[case_category]
        factor[preventable] = (1 - self.mediation[case_grid[preventable]]) ** np.maximum(times[preventable], 0)
        return factor
