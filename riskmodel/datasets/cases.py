"""From daily counts to case records: time, building, severity, source, parties,
resolution and escalation, cut off at the end of the data as a real extract is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..privacy import hash_keys
from .presets import CATEGORIES, SOURCES, SimulationConfig

# P(severity = 1..4) per category (rows: CATEGORIES).
SEVERITY_P = np.array(
    [
        [0.60, 0.30, 0.08, 0.02],
        [0.50, 0.35, 0.12, 0.03],
        [0.30, 0.40, 0.20, 0.10],
        [0.45, 0.35, 0.15, 0.05],
        [0.20, 0.40, 0.30, 0.10],
        [0.60, 0.30, 0.08, 0.02],
        [0.40, 0.35, 0.20, 0.05],
        [0.55, 0.30, 0.10, 0.05],
    ]
)
# P(source) per severity (rows: severity 1..4, columns: SOURCES).
_SOURCE_P = np.array(
    [
        [0.40, 0.40, 0.10, 0.07, 0.03],
        [0.35, 0.35, 0.15, 0.10, 0.05],
        [0.25, 0.20, 0.20, 0.25, 0.10],
        [0.15, 0.10, 0.15, 0.45, 0.15],
    ]
)
# Hour-of-day profiles: daytime for most categories, evenings for noise and family.
_DAY = np.array([1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 2, 4, 6, 7, 7, 6, 6, 7, 7, 6, 5, 4, 3, 3, 2, 2, 1.5])
_EVENING = np.array([4, 3, 2, 1, 0.5, 0.5, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 5, 6, 7, 8, 7, 6])
_HOURS = np.array([_EVENING if c in ("neighbour_noise", "family") else _DAY for c in CATEGORIES])
# Median days to resolution, and the category's effect on the log escalation hazard.
_MEDIAN_DELAY = np.array([3, 10, 14, 6, 30, 5, 4, 5], dtype=float)
_ESCALATION_EFFECT = np.array([-0.3, 0.0, 0.5, 0.2, 0.6, -0.4, 0.0, -0.2])
_DELAY_SD = 0.9
_PARTY_HASH_KEY = b"riskmodel simulated households"
_WITHDRAWN = 0.10


def _draw(rng, probabilities: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per element from the categorical distribution in row ``rows``."""
    cdf = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    return (rng.random(len(rows))[:, None] > cdf[rows]).sum(axis=1).clip(max=probabilities.shape[1] - 1)


def escalation_probability(hazard: np.ndarray, log_median: np.ndarray) -> np.ndarray:
    """P(escalation) = 1 - E[exp(-hazard * D)], D lognormal: the chance before the
    delay is known (Gauss-Hermite quadrature over log D)."""
    nodes, weights = np.polynomial.hermite.hermgauss(32)
    delay = np.exp(log_median[:, None] + np.sqrt(2) * _DELAY_SD * nodes[None, :])
    return 1 - (np.exp(-hazard[:, None] * delay) * weights).sum(axis=1) / np.sqrt(np.pi)


def build_cases(
    config: SimulationConfig,
    layout,
    households: np.ndarray,
    quarter_of_day: np.ndarray,
    day,
    grid,
    category,
    count,
    rng: np.random.Generator,
    *,
    end_day: int | None = None,
    patrol_second: np.ndarray | None = None,
    pseudonyms: dict | None = None,
    probabilities: bool = True,
    source_of_cell: np.ndarray | None = None,
    id_width: int | None = None,
):
    """The ``cases`` table, each case's true escalation probability, and the cells
    (day, grid, category, patrol) of the cases in their order.

    ``households`` is (G, Q), ``quarter_of_day`` maps a day to its quarter, and
    ``day, grid, category, count`` are the simulated non-zero daily counts. The data
    ends at ``end_day`` (default the period's end). ``patrol_second``, when given, has
    one entry per cell: the second of the day a patrol found it, or -1 for a resident
    case; the table then has an ``origin`` column, and patrol cases keep their time and
    come from ``grid_worker``. ``pseudonyms``, when given, caches the party keys'
    pseudonyms across calls (it is filled in). ``source_of_cell``, when given, has one
    entry per cell: the ``source`` of its cases, or "" for one drawn as usual. Case ids
    have at least ``id_width`` digits (default: those of the number of cases).
    """
    pick = np.repeat(np.arange(len(count)), count)
    day, grid, category = day[pick], grid[pick], category[pick]
    n = len(day)
    fixed = np.full(n, -1, dtype=np.int64) if patrol_second is None else np.asarray(patrol_second)[pick]

    # Building: a microgrid of the grid, in proportion to its share.
    first = np.searchsorted(layout.micro_grid, np.arange(len(layout.grid_ids)))
    last = np.append(first[1:], len(layout.micro_grid)) - 1
    micro = np.searchsorted(np.cumsum(layout.micro_share), grid + rng.random(n), side="right")
    micro = np.clip(micro, first[grid], last[grid])

    second = _draw(rng, _HOURS, category) * 3600 + rng.integers(0, 3600, size=n)
    patrol = fixed >= 0
    at = day.astype(np.int64) * 86_400 + np.where(patrol, fixed, second)  # seconds from the start
    order = np.lexsort((micro, at))
    day, grid, category, micro, at, patrol = (a[order] for a in (day, grid, category, micro, at, patrol))

    severity = _draw(rng, SEVERITY_P, category) + 1
    source = np.array(SOURCES)[np.where(patrol, SOURCES.index("grid_worker"), _draw(rng, _SOURCE_P, severity - 1))]
    if source_of_cell is not None:
        named = np.asarray(source_of_cell)[pick][order]
        source = np.where(named != "", named, source)

    # Parties: households of the building, the first few far more often (density ~ 1/rank).
    size = np.maximum(households[grid, quarter_of_day[day]] * layout.micro_share[micro], 1)
    rank = np.minimum(np.floor(np.exp(rng.random(n) * np.log(size + 1))), size).astype(np.int64)
    party_code = micro.astype(np.int64) * 1_000_000 + rank
    prior = pd.Series(party_code).groupby(party_code).cumcount().to_numpy()
    parties, party = np.unique(party_code, return_inverse=True)

    log_median = np.log(_MEDIAN_DELAY[category] * 1.3 ** (severity - 1))
    delay = np.minimum(np.exp(log_median + _DELAY_SD * rng.normal(size=n)), 730.0)
    resolved = at + np.round(delay * 86_400).astype(np.int64)
    backlog = _open_in_grid(grid, at, resolved)

    hazard = np.exp(
        config.escalation_intercept
        + _ESCALATION_EFFECT[category]
        + 0.5 * (severity - 1)
        + 0.9 * np.log1p(prior)
        + 0.2 * np.log1p(backlog)
    )
    probability = escalation_probability(hazard, log_median) if probabilities else None
    chance = 1 - np.exp(-hazard * delay)
    escalates = rng.random(n) < chance
    # Given escalation, its time within the open period (the hazard's truncated law).
    wait = -np.log1p(-rng.random(n) * chance) / hazard
    escalated = at + np.round(np.minimum(wait, delay) * 86_400).astype(np.int64)

    end = (config.days if end_day is None else end_day) * 86_400
    escalated_seen = escalates & (escalated < end)
    resolved_seen = resolved < end
    outcome = np.where(
        escalated_seen,
        "escalated",
        np.where(resolved_seen, np.where(rng.random(n) < _WITHDRAWN, "withdrawn", "resolved"), "open"),
    )

    start = np.datetime64(pd.Timestamp(config.start).as_unit("us").to_datetime64(), "s")

    def as_time(seconds: np.ndarray) -> np.ndarray:
        return (start + seconds).astype("datetime64[us]")

    jitter = rng.normal(0, 30, size=(n, 2)) / 111_320.0
    micro_ids = layout.micro_ids.to_numpy()
    cases = pd.DataFrame(
        {
            "case_id": pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(id_width or len(str(n))).radd("K"),
            "reported_at": as_time(at),
            "grid_id": pd.Series(micro_ids[micro], dtype="str"),
            "category": pd.Series(np.array(CATEGORIES)[category], dtype="str"),
            "severity": severity.astype(np.int64),
            "source": pd.Series(source, dtype="str"),
            # Pseudonyms, as a district would hold them (the key is public: the households are invented).
            "party_key": pd.Series(_party_keys(parties, pseudonyms)[party], dtype="str"),
            "resolved_at": pd.Series(as_time(resolved)).where(resolved_seen),
            "escalated_at": pd.Series(as_time(escalated)).where(escalated_seen),
            "outcome": pd.Series(outcome, dtype="str"),
            "lon": layout.micro_lonlat[micro, 0] + jitter[:, 0] / np.cos(np.radians(config.origin_lat)),
            "lat": layout.micro_lonlat[micro, 1] + jitter[:, 1],
        }
    )
    if patrol_second is not None:
        cases["origin"] = pd.Series(np.where(patrol, "patrol", "resident"), dtype="str")
    return cases, probability, (day, grid, category, patrol)


def _party_keys(parties: np.ndarray, cache: dict | None) -> np.ndarray:
    """The pseudonyms of the sorted party codes, hashing only those not in ``cache``
    (which holds sorted ``codes`` and their ``names``)."""
    if cache is None:
        return hash_keys(pd.Series(parties), _PARTY_HASH_KEY).to_numpy()
    codes, names = cache.get("codes", np.zeros(0, dtype=np.int64)), cache.get("names", np.zeros(0, dtype=object))
    new = np.setdiff1d(parties, codes, assume_unique=True)
    if len(new):
        codes = np.concatenate([codes, new])
        names = np.concatenate([names, hash_keys(pd.Series(new), _PARTY_HASH_KEY).to_numpy(dtype=object)])
        order = np.argsort(codes, kind="stable")
        codes, names = cache["codes"], cache["names"] = codes[order], names[order]
    return names[np.searchsorted(codes, parties)]


def _open_in_grid(grid: np.ndarray, reported: np.ndarray, resolved: np.ndarray) -> np.ndarray:
    """Cases of the same grid open at each report time: reported before it, not yet resolved."""
    span = int(max(reported.max(initial=0), resolved.max(initial=0))) + 1
    base = grid.astype(np.int64) * span
    opened = np.sort(base + reported)
    closed = np.sort(base + resolved)
    key = base + reported
    before_opened = np.searchsorted(opened, key, side="left") - np.searchsorted(opened, base, side="left")
    before_closed = np.searchsorted(closed, key, side="right") - np.searchsorted(closed, base, side="left")
    return before_opened - before_closed
