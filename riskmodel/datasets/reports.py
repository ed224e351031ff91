"""One dispute, several reports: the simulator's duplicates across platforms.

A share ``duplicate_share`` of the resident disputes (patrol finds are not
reported again) is reported on 2 to ``duplicate_max`` platforms in all: the first
report is the dispute's case as simulated (its id and every column unchanged),
each further one is a new case on another platform, after a delay of that
platform. Every case gets ``dispute_id`` (the first report's ``case_id``) and a
free-text ``description`` (missing on platforms that keep no text). The draws come
from their own random stream, keyed by the dispute's number: the disputes are the
same with and without duplicates, and a dispute's reports do not depend on later
disputes (before a world change they are those of the run without it). The truth's
``escalation_probability`` has a row per report: a duplicate gets its dispute's.

Per platform (``SOURCES`` order): the duplicate's delay after the first report is
lognormal with median ``_DELAY_HOURS`` and log-sd ``_DELAY_SD``; the platform gets
a duplicate with weight ``_WEIGHT`` (drawn without replacement among the platforms
the dispute is not yet on); a duplicate there has no party key with probability
``_ANONYMOUS``.

========================  ============  ======  =========  ====
platform                  median delay  weight  anonymous  text
========================  ============  ======  =========  ====
hotline                   8 hours       0.30    0.30       yes
grid_worker               1 day         0.15    0          no
mediation_centre          3 days        0.20    0          yes
police                    2 hours       0.25    0          yes
petition_office           10 days       0.10    0          yes
========================  ============  ======  =========  ====

A duplicate keeps the dispute's category, outcome, resolution and escalation
(a time before its own report becomes its report time: closed as a duplicate),
its severity with probability ``_SAME_SEVERITY`` (else one step up or down), its
microgrid with probability ``_SAME_BUILDING`` (else another of the same grid), the
party key with one character changed with probability ``_TYPO``, and a position
jittered anew. Reports after the end of the data are dropped. A duplicate's case id
is ``K`` and a number above the first reports' (from ``10**width + 1``, in report
time order): case ids are ids, not a feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from .presets import CATEGORIES, SOURCES, SimulationConfig

_DELAY_HOURS = np.array([8.0, 24.0, 72.0, 2.0, 240.0])
_DELAY_SD = 0.8
_WEIGHT = np.array([0.30, 0.15, 0.20, 0.25, 0.10])
_ANONYMOUS = np.array([0.30, 0.0, 0.0, 0.0, 0.0])
#: Platforms that keep a free-text description of the case.
TEXT_SOURCES = ("hotline", "mediation_centre", "police", "petition_office")
_SAME_SEVERITY = 0.8
_SAME_BUILDING = 0.9
_TYPO = 0.10
_KEEP_WORD = 0.75
_DETAILS = 4
_HEX = np.array(list("0123456789abcdef"))

# Per category (CATEGORIES order): ways to open the sentence, and the detail words a dispute draws from.
_TEXT = (
    (
        ("Noise complaint at {b}", "Resident of {b} reports loud noise", "Neighbour noise in building {b}"),
        "late night music upstairs renovation drilling dog barking party footsteps karaoke weekend",
    ),
    (
        (
            "Property management dispute at {b}",
            "Owners of {b} complain about management",
            "Estate service fee, {b}",
        ),
        "fees lift broken parking cleaning security leak repair garbage water heating",
    ),
    (
        ("Unpaid wages reported at {b}", "Workers from {b} claim unpaid wages", "Wage arrears, site near {b}"),
        "contractor months owed construction site foreman salary migrant workers festival payment",
    ),
    (
        ("Family dispute at {b}", "Domestic quarrel reported in {b}", "Household conflict, {b}"),
        "couple divorce elderly parents inheritance children support argument custody shouting",
    ),
    (
        (
            "Compensation claim at {b}",
            "Residents of {b} dispute compensation",
            "Demolition compensation, {b}",
        ),
        "demolition relocation amount contract appraisal resettlement deadline land village house",
    ),
    (
        ("Consumer complaint near {b}", "Shop near {b} refuses a refund", "Purchase dispute, {b}"),
        "refund shop defective prepaid card gym membership delivery price contract online",
    ),
    (
        ("Traffic dispute near {b}", "Road accident argument at {b}", "Parking and traffic conflict, {b}"),
        "scooter collision parking blocked gate car damage insurance driver pedestrian",
    ),
    (
        ("Dispute reported at {b}", "Resident of {b} asks for help", "Other dispute, {b}"),
        "neighbours argument shared space boundary wall smell pets trees rubbish",
    ),
)
_OPENINGS = [openings for openings, _ in _TEXT]
_WORDS = np.array([words.split()[:10] for _, words in _TEXT])  # (category, word)


class _Draws:
    """Uniform draws keyed by (dispute, column): a counter-based stream (SplitMix64 of the
    key and the counter), so that a dispute's duplicates depend on its own number only and
    the reports of the disputes before a world change are those of the run without it."""

    COLUMNS = 64  # per dispute: 0-21 the dispute's, then 14 per further report (at most 3)

    def __init__(self, rng: np.random.Generator):
        self.key = rng.integers(0, 2**63, dtype=np.uint64)

    def __call__(self, dispute: np.ndarray, column) -> np.ndarray:
        z = np.asarray(dispute, dtype=np.uint64) * np.uint64(self.COLUMNS) + np.asarray(column, dtype=np.uint64)
        z = z + self.key + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


# The columns of _Draws: the dispute's, then those of its further report number ``slot`` (0, 1, 2).
_DUPLICATED, _EXTRA, _PLATFORM, _WORD, _FIRST_TEXT = 0, 1, 2, 7, 17


def _copy_column(slot: np.ndarray, field: int) -> np.ndarray:
    return 22 + 14 * slot + field


_DELAY, _SEVERITY, _STEP, _MOVE, _SHIFT, _LON, _LAT, _TYPO_AT, _TYPO_CHAR, _ANONYMOUS_AT, _TEXT_AT = range(11)


def add_duplicates(
    cases: pd.DataFrame, probability: np.ndarray, config: SimulationConfig, layout, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """The reports of the simulated disputes, and each report's escalation probability.

    ``cases`` holds one row per dispute (its first report) and ``probability`` its
    escalation probability; duplicates get their dispute's. The result is sorted by
    report time (stably: the first reports keep their order) with a fresh index.
    Duplicates' case ids follow the first reports' (``K`` and a number from
    ``10**width + 1``, ``width`` the first reports' digits) in report time order.
    """
    n = len(cases)
    draw = _Draws(rng)
    number = np.arange(n)
    odds = 0.5 ** np.arange(config.duplicate_max - 1)  # 1 further report twice as often as 2, ...
    extra = 1 + np.searchsorted(np.cumsum(odds / odds.sum()), draw(number, _EXTRA), side="right")
    extra = np.where(draw(number, _DUPLICATED) < config.duplicate_share, np.minimum(extra, len(odds)), 0)
    if "origin" in cases:
        extra[cases["origin"].to_numpy(dtype=str) == "patrol"] = 0
    # Platforms without replacement, by weight (exponential keys), never the first report's.
    keys = -np.log(draw(number[:, None], _PLATFORM + np.arange(len(SOURCES)))) / _WEIGHT
    own = pd.Index(SOURCES).get_indexer(cases["source"])
    keys[np.flatnonzero(own >= 0), own[own >= 0]] = np.inf
    parent = np.repeat(number, extra)
    slot = np.arange(len(parent)) - np.repeat(np.cumsum(extra) - extra, extra)
    platform = np.argsort(keys, axis=1)[parent, slot]

    copies = _copies(cases, parent, slot, platform, layout, draw)
    kept = (copies["reported_at"] < pd.Timestamp(config.start) + pd.Timedelta(days=config.days)).to_numpy()
    copies, parent, slot = copies[kept], parent[kept], slot[kept]
    reports = pd.concat([cases, copies], ignore_index=True)
    dispute = np.concatenate([number, parent])
    reports["dispute_id"] = cases["case_id"].to_numpy()[dispute]
    reports["description"] = _descriptions(reports, dispute, np.concatenate([np.full(n, -1), slot]), draw)
    order = np.argsort(reports["reported_at"].to_numpy(), kind="stable")
    reports = reports.iloc[order].reset_index(drop=True)
    later = np.flatnonzero(order >= n)
    width = len(cases["case_id"].iloc[0]) - 1 if n else 1
    reports.loc[later, "case_id"] = [f"K{10**width + i}" for i in range(1, len(later) + 1)]
    return reports, np.asarray(probability)[dispute[order]]


def _copies(
    cases: pd.DataFrame, parent: np.ndarray, slot: np.ndarray, platform: np.ndarray, layout, draw
) -> pd.DataFrame:
    """The duplicate reports: row ``i`` is report ``slot[i] + 2`` of dispute ``parent[i]``,
    on ``SOURCES[platform[i]]``."""

    def u(field: int) -> np.ndarray:
        return draw(parent, _copy_column(slot, field))

    copies = cases.iloc[parent].reset_index(drop=True)
    hours = _DELAY_HOURS[platform] * np.exp(_DELAY_SD * ndtri(u(_DELAY)))
    reported = copies["reported_at"] + pd.to_timedelta(np.maximum(np.round(hours * 3600), 60), unit="s")
    copies["reported_at"] = reported.astype("datetime64[us]")
    copies["source"] = pd.Series(np.array(SOURCES)[platform], dtype="str")
    for column in ("resolved_at", "escalated_at"):
        if column in copies:
            copies[column] = copies[column].where(copies[column].isna() | (copies[column] >= reported), reported)
    step = np.where(u(_SEVERITY) < _SAME_SEVERITY, 0, np.where(u(_STEP) < 0.5, -1, 1))
    copies["severity"] = np.clip(copies["severity"].to_numpy() + step, 1, 4).astype(np.int64)

    micro = layout.micro_ids.get_indexer(copies["grid_id"])
    grid = layout.micro_grid[micro]
    lo = np.searchsorted(layout.micro_grid, grid, side="left")
    size = np.searchsorted(layout.micro_grid, grid, side="right") - lo
    moved = (u(_MOVE) >= _SAME_BUILDING) & (size > 1)
    shift = 1 + (u(_SHIFT) * np.maximum(size - 1, 1)).astype(np.int64)
    micro = np.where(moved, lo + (micro - lo + shift) % size, micro)
    copies["grid_id"] = pd.Series(layout.micro_ids.to_numpy()[micro], dtype="str")
    if "lon" in copies:
        lonlat = layout.micro_lonlat[micro]
        copies["lon"] = lonlat[:, 0] + ndtri(u(_LON)) * 30 / 111_320.0 / np.cos(np.radians(lonlat[:, 1]))
        copies["lat"] = lonlat[:, 1] + ndtri(u(_LAT)) * 30 / 111_320.0

    key = copies["party_key"].to_numpy(dtype=object)
    where, char = u(_TYPO_AT), u(_TYPO_CHAR)
    for i in np.flatnonzero(where < _TYPO):
        text = key[i]
        if not isinstance(text, str) or not text:
            continue
        at = int(where[i] / _TYPO * len(text))
        swapped = _HEX[(int(text[at], 16) + 1 + int(char[i] * 15)) % 16] if text[at] in "0123456789abcdef" else "x"
        key[i] = text[:at] + swapped + text[at + 1 :]
    anonymous = u(_ANONYMOUS_AT) < _ANONYMOUS[platform]
    copies["party_key"] = pd.Series(np.where(anonymous, None, key), dtype="str")
    return copies


def _descriptions(reports: pd.DataFrame, dispute: np.ndarray, slot: np.ndarray, draw) -> pd.Series:
    """A short sentence per report on a platform that keeps text: an opening of the
    category naming the building, and the dispute's detail words, each kept or dropped
    (``slot`` -1 for a first report, else the further report's number)."""
    texts = np.flatnonzero(reports["source"].isin(TEXT_SOURCES).to_numpy())
    dispute, slot = dispute[texts], slot[texts]
    base = np.where(slot < 0, _FIRST_TEXT, _copy_column(slot, _TEXT_AT))
    opening = (draw(dispute, base) * 3).astype(np.int64)
    keep = draw(dispute[:, None], base[:, None] + 1 + np.arange(_DETAILS)) < _KEEP_WORD
    words = draw(dispute[:, None], _WORD + np.arange(_WORDS.shape[1])).argsort(axis=1)[:, :_DETAILS]
    category = pd.Index(CATEGORIES).get_indexer(reports["category"].to_numpy()[texts])
    building = reports["grid_id"].to_numpy(dtype=str)[texts]
    out = np.full(len(reports), None, dtype=object)
    for j, i in enumerate(texts):
        c = category[j]
        chosen = " ".join(_WORDS[c, words[j][keep[j]]])
        out[i] = _OPENINGS[c][opening[j]].format(b=building[j]) + (f": {chosen}." if chosen else ".")
    return pd.Series(out, dtype="str")
