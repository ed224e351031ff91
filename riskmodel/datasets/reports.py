"""One dispute, several reports: the simulator's duplicates across platforms.

A share ``duplicate_share`` of the resident disputes (patrol finds are not
reported again) is reported on 2 to ``duplicate_max`` platforms in all: the first
report is the dispute's case as simulated (its id and every column unchanged),
each further one is a new case on another platform, after a delay of that
platform. Every case gets ``dispute_id`` (the first report's ``case_id``) and a
free-text ``description`` (missing on platforms that keep no text). The draws come
from their own random stream, so the disputes are the same with and without
duplicates.

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
jittered anew. Reports after the end of the data are dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def add_duplicates(
    cases: pd.DataFrame, probability: np.ndarray, config: SimulationConfig, layout, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """The reports of the simulated disputes, and each report's escalation probability.

    ``cases`` holds one row per dispute (its first report) and ``probability`` its
    escalation probability; duplicates get their dispute's. The result is sorted by
    report time (stably: the first reports keep their order) with a fresh index.
    """
    n = len(cases)
    extra = _extra_reports(n, config, rng)
    if "origin" in cases:
        extra[cases["origin"].to_numpy(dtype=str) == "patrol"] = 0
    # Platforms without replacement, by weight (exponential keys), never the first report's.
    keys = rng.exponential(size=(n, len(SOURCES))) / _WEIGHT
    own = pd.Index(SOURCES).get_indexer(cases["source"])
    keys[np.flatnonzero(own >= 0), own[own >= 0]] = np.inf
    parent = np.repeat(np.arange(n), extra)
    slot = np.arange(len(parent)) - np.repeat(np.cumsum(extra) - extra, extra)
    platform = np.argsort(keys, axis=1)[parent, slot]
    words = rng.random((n, _WORDS.shape[1])).argsort(axis=1)[:, :_DETAILS]

    copies = _copies(cases, parent, platform, layout, rng)
    kept = (copies["reported_at"] < pd.Timestamp(config.start) + pd.Timedelta(days=config.days)).to_numpy()
    copies, parent = copies[kept], parent[kept]
    width = len(cases["case_id"].iloc[0]) - 1 if n else 1
    ids = [f"K{i:0{width}d}" for i in range(n + 1, n + 1 + len(copies))]
    copies["case_id"] = pd.Series(ids, index=copies.index, dtype="str")
    reports = pd.concat([cases, copies], ignore_index=True)
    dispute = np.concatenate([np.arange(n), parent])
    reports["dispute_id"] = cases["case_id"].to_numpy()[dispute]
    reports["description"] = _descriptions(reports, dispute, words, rng)
    order = np.argsort(reports["reported_at"].to_numpy(), kind="stable")
    return reports.iloc[order].reset_index(drop=True), np.asarray(probability)[dispute[order]]


def _extra_reports(n: int, config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Reports beyond the first per dispute: 0, or 1 to ``duplicate_max - 1`` (halving odds)."""
    duplicated = rng.random(n) < config.duplicate_share
    odds = 0.5 ** np.arange(config.duplicate_max - 1)
    extra = 1 + np.searchsorted(np.cumsum(odds / odds.sum()), rng.random(n), side="right")
    return np.where(duplicated, np.minimum(extra, config.duplicate_max - 1), 0)


def _copies(cases: pd.DataFrame, parent: np.ndarray, platform: np.ndarray, layout, rng) -> pd.DataFrame:
    """The duplicate reports: row ``i`` is a report of dispute ``parent[i]`` on ``SOURCES[platform[i]]``."""
    m = len(parent)
    copies = cases.iloc[parent].reset_index(drop=True)
    hours = _DELAY_HOURS[platform] * np.exp(_DELAY_SD * rng.normal(size=m))
    reported = copies["reported_at"] + pd.to_timedelta(np.maximum(np.round(hours * 3600), 60), unit="s")
    copies["reported_at"] = reported.astype("datetime64[us]")
    copies["source"] = pd.Series(np.array(SOURCES)[platform], dtype="str")
    for column in ("resolved_at", "escalated_at"):
        if column in copies:
            copies[column] = copies[column].where(copies[column].isna() | (copies[column] >= reported), reported)
    step = np.where(rng.random(m) < _SAME_SEVERITY, 0, rng.choice([-1, 1], size=m))
    copies["severity"] = np.clip(copies["severity"].to_numpy() + step, 1, 4).astype(np.int64)

    micro = layout.micro_ids.get_indexer(copies["grid_id"])
    grid = layout.micro_grid[micro]
    lo = np.searchsorted(layout.micro_grid, grid, side="left")
    size = np.searchsorted(layout.micro_grid, grid, side="right") - lo
    moved = (rng.random(m) >= _SAME_BUILDING) & (size > 1)
    shift = 1 + (rng.random(m) * np.maximum(size - 1, 1)).astype(np.int64)
    micro = np.where(moved, lo + (micro - lo + shift) % size, micro)
    copies["grid_id"] = pd.Series(layout.micro_ids.to_numpy()[micro], dtype="str")
    if "lon" in copies:
        jitter = rng.normal(0, 30, size=(m, 2)) / 111_320.0
        copies["lon"] = layout.micro_lonlat[micro, 0] + jitter[:, 0] / np.cos(np.radians(layout.micro_lonlat[micro, 1]))
        copies["lat"] = layout.micro_lonlat[micro, 1] + jitter[:, 1]

    key = copies["party_key"].to_numpy(dtype=object)
    typo = np.flatnonzero(rng.random(m) < _TYPO)
    where, char = rng.integers(0, 1 << 30, size=len(typo)), rng.integers(1, len(_HEX), size=len(typo))
    for i, w, c in zip(typo, where, char, strict=True):
        text = key[i]
        if not isinstance(text, str) or not text:
            continue
        at = w % len(text)
        swapped = _HEX[(int(text[at], 16) + c) % 16] if text[at] in "0123456789abcdef" else "x"
        key[i] = text[:at] + swapped + text[at + 1 :]
    anonymous = rng.random(m) < _ANONYMOUS[platform]
    copies["party_key"] = pd.Series(np.where(anonymous, None, key), dtype="str")
    return copies


def _descriptions(reports: pd.DataFrame, dispute: np.ndarray, words: np.ndarray, rng) -> pd.Series:
    """A short sentence per report on a platform that keeps text: an opening of the
    category naming the building, and the dispute's detail words, each kept or dropped."""
    n = len(reports)
    category = pd.Index(CATEGORIES).get_indexer(reports["category"])
    opening = rng.integers(0, 3, size=n)
    keep = rng.random((n, _DETAILS)) < _KEEP_WORD
    texts = reports["source"].isin(TEXT_SOURCES).to_numpy()
    building = reports["grid_id"].to_numpy(dtype=str)
    out = np.full(n, None, dtype=object)
    for i in np.flatnonzero(texts):
        c = category[i]
        chosen = " ".join(_WORDS[c, words[dispute[i]][keep[i]]])
        out[i] = _OPENINGS[c][opening[i]].format(b=building[i]) + (f": {chosen}." if chosen else ".")
    return pd.Series(out, dtype="str")
