"""Simulation settings and the named district sizes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["SimulationConfig", "PRESETS", "CATEGORIES", "SOURCES", "make_config"]

#: Dispute categories, in the order of every per-category array of the simulator.
CATEGORIES = (
    "neighbour_noise",
    "property_management",
    "unpaid_wages",
    "family",
    "land_housing_compensation",
    "consumer",
    "traffic",
    "other",
)
#: Platforms a case can come from.
SOURCES = ("hotline", "grid_worker", "mediation_centre", "police", "petition_office")


@dataclass(frozen=True)
class SimulationConfig:
    """Every size and rate of a simulated district.

    Parameters
    ----------
    n_grids : int
        Units at level ``grid``, laid out row by row on a square lattice.
    years : float
        Length of the simulated period.
    community_side, street_side : int
        A community is a block of ``community_side`` x ``community_side`` grids;
        a street a block of ``street_side`` x ``street_side`` communities.
    start : str
        First day of the period (midnight).
    cell_m : float
        Side of a grid's square cell, in metres.
    origin_lon, origin_lat : float
        WGS84 position of the lattice's south-west corner.
    microgrids_per_grid : float
        Mean number of microgrids (buildings) per grid; at least one each.
    cases_per_grid_year : float
        Mean base rate of disputes per grid and year, before self-excitation.
    latent_sd : float
        Standard deviation of the log-rate factor per grid that no attribute
        reveals (spatially smooth).
    attribute_noise : float
        Relative noise of the attributes reported in ``grid_history``.
    excitation_self, excitation_neighbours : float
        Expected follow-up cases that one case triggers in its own grid, and
        in its neighbours together (same category).
    excitation_half_life_days : float
        Half-life of that excitation.
    waves_per_year : float
        Mean number of injected dispute waves per year.
    wave_cases_low, wave_cases_high : float
        A wave adds this many cases of one category per day to its unit
        (drawn uniformly between the two, before self-excitation), shared
        among the unit's grids in proportion to their rate of that category.
    wave_weeks_low, wave_weeks_high : int
        A wave lasts this many whole weeks (drawn uniformly, inclusive).
    escalation_intercept : float
        Log of the daily escalation hazard of a first, light, average case.
    visit_effect : {"heterogeneous", "equal"}
        What a visit does (only in a simulation with a policy; see
        :mod:`riskmodel.datasets.visits`). ``"heterogeneous"``: each grid has a
        receptiveness ``r`` (a Beta draw no attribute reveals) and a reach ``d``
        (see ``visit_dilution``); a visit settles the share
        ``m = visit_mediation * r * d`` of the tension that recent disputes of the
        preventable categories built up (their follow-ups are prevented) and lowers
        those categories' background rate (not the waves) by
        ``rho = visit_screening * r * d`` for ``visit_screening_weeks``.
        ``"equal"``: every grid's background rate of the preventable categories
        falls by the same ``visit_screening * E[r]``, with no mediation part.
    visit_mediation, visit_screening : float
        The largest mediation share and screening reduction (for ``r = 1``), in [0, 1].
    visit_screening_weeks : int
        How long a visit's screening lowers the background rate.
    visit_receptiveness_a, visit_receptiveness_b : float
        Shape of the Beta law of the grids' receptiveness.
    visit_dilution : float
        A visit reaches a bounded number of households, so in a grid whose base
        rate of the preventable categories is above the median grid's its reach is
        ``d = (median / rate) ** visit_dilution`` (1 at or below the median).
    visit_reach : float
        Share of visits that reach their unit; the others are ``not_reached`` and do nothing.
    patrol_find_days : float
        A reached visit brings to light a Poisson number of disputes residents had
        not reported, with mean this many days' worth of the unit's current rate of
        the preventable categories (as cases of ``origin="patrol"``).
    duplicate_share : float
        Share of the disputes residents report on more than one platform
        (:mod:`riskmodel.datasets.reports`); 0 gives one report per dispute.
    duplicate_max : int
        Most platforms one dispute is reported on (2 to 5); a duplicated dispute
        has 2 to ``duplicate_max`` reports, fewer more often.
    """

    n_grids: int
    years: float
    community_side: int = 4
    street_side: int = 2
    start: str = "2023-01-01"
    cell_m: float = 500.0
    origin_lon: float = 120.10
    origin_lat: float = 30.20
    microgrids_per_grid: float = 3.0
    cases_per_grid_year: float = 6.0
    latent_sd: float = 0.6
    attribute_noise: float = 0.1
    excitation_self: float = 0.25
    excitation_neighbours: float = 0.10
    excitation_half_life_days: float = 7.0
    waves_per_year: float = 6.0
    wave_cases_low: float = 0.3
    wave_cases_high: float = 1.5
    wave_weeks_low: int = 1
    wave_weeks_high: int = 6
    escalation_intercept: float = -5.4
    visit_effect: str = "heterogeneous"
    visit_mediation: float = 0.8
    visit_screening: float = 0.6
    visit_screening_weeks: int = 4
    visit_receptiveness_a: float = 1.0
    visit_receptiveness_b: float = 1.5
    visit_dilution: float = 0.65
    visit_reach: float = 0.95
    patrol_find_days: float = 14.0
    duplicate_share: float = 0.25
    duplicate_max: int = 4

    @property
    def days(self) -> int:
        return int(round(self.years * 365))


PRESETS: dict[str, dict] = {
    "tiny": dict(n_grids=25, years=1, community_side=3, street_side=2, waves_per_year=2),
    "small": dict(n_grids=256, years=2, community_side=4, street_side=2, waves_per_year=6),
    "district": dict(n_grids=3000, years=3, community_side=5, street_side=3, waves_per_year=20),
    "province": dict(n_grids=100_000, years=3, community_side=6, street_side=4, waves_per_year=300),
}


def make_config(preset: str, overrides: dict) -> SimulationConfig:
    """The preset's settings with ``overrides`` applied; unknown names are refused."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(SimulationConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown simulation setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    config = SimulationConfig(**{**PRESETS[preset], **overrides})
    rules = [
        (config.n_grids >= 1, "n_grids must be at least 1"),
        (config.years > 0, "years must be positive"),
        (config.community_side >= 1 and config.street_side >= 1, "community_side and street_side must be >= 1"),
        (config.cell_m > 0, "cell_m must be positive"),
        (config.microgrids_per_grid >= 1, "microgrids_per_grid must be at least 1"),
        (config.cases_per_grid_year > 0, "cases_per_grid_year must be positive"),
        (config.latent_sd >= 0 and config.attribute_noise >= 0, "latent_sd and attribute_noise must be >= 0"),
        (config.excitation_self >= 0 and config.excitation_neighbours >= 0, "excitation must be >= 0"),
        (
            config.excitation_self + config.excitation_neighbours < 1,
            "excitation_self + excitation_neighbours must stay below 1, or the process explodes",
        ),
        (config.excitation_half_life_days > 0, "excitation_half_life_days must be positive"),
        (config.waves_per_year >= 0, "waves_per_year must be >= 0"),
        (0 < config.wave_cases_low <= config.wave_cases_high, "wave sizes need 0 < wave_cases_low <= wave_cases_high"),
        (
            1 <= config.wave_weeks_low <= config.wave_weeks_high,
            "wave weeks need 1 <= wave_weeks_low <= wave_weeks_high",
        ),
        (config.visit_effect in ("heterogeneous", "equal"), "visit_effect must be 'heterogeneous' or 'equal'"),
        (
            0 <= config.visit_mediation <= 1 and 0 <= config.visit_screening <= 1 and 0 <= config.visit_reach <= 1,
            "visit_mediation, visit_screening and visit_reach must be within [0, 1]",
        ),
        (
            config.visit_receptiveness_a > 0 and config.visit_receptiveness_b > 0,
            "visit_receptiveness_a and visit_receptiveness_b must be positive",
        ),
        (
            config.visit_screening_weeks >= 0 and config.patrol_find_days >= 0 and config.visit_dilution >= 0,
            "visit_screening_weeks, visit_dilution and patrol_find_days must be >= 0",
        ),
        (0 <= config.duplicate_share <= 1, "duplicate_share must be within [0, 1]"),
        (
            2 <= config.duplicate_max <= len(SOURCES),
            f"duplicate_max must be from 2 to {len(SOURCES)} (the platforms), e.g. duplicate_max=3",
        ),
    ]
    broken = [message for ok, message in rules if not ok]
    if broken:
        raise ValueError("; ".join(broken))
    return config
