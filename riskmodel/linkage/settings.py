"""What Splink compares and which pairs it looks at: the prepared reports, the comparisons
(party key, unit, time gap, category, description) and the blocking rules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..contract import Dataset
from ..features.grid_panel import neighbour_matrix

__all__ = ["TIME_LEVELS_HOURS", "blocking_rules", "comparisons", "prepare_reports", "with_words"]

#: The time gap's levels, in hours: within 6 hours, a day, 3 days, a week, a month; else further apart.
TIME_LEVELS_HOURS = (6, 24, 72, 168, 720)

#: Neighbours from centroids when the dataset has no adjacency for a level: the nearest units.
NEAREST = 8


def prepare_reports(data: Dataset) -> pd.DataFrame:
    """The cases as Splink reads them: one row per report with the columns the comparisons
    test, so that each test is an equality or a list intersection.

    ``unit`` is the case's unit, ``parent_unit`` its parent (the unit itself at the top),
    ``near_units`` the unit, its parent and their neighbours (the dataset's adjacency,
    else the nearest centroids of the same level), ``hours`` the report time in hours
    since 1970 (a number, so the time tests are the same SQL on every engine),
    ``description`` the text (:func:`with_words` turns it into the words Splink compares,
    one part at a time: millions of lists of words take far more memory than the text).
    """
    cases = data.cases
    grids = data.grids.set_index("grid_id")
    parent = grids["parent_id"].where(grids["parent_id"].notna(), grids.index.to_series())
    near = _near_units(data, parent)
    unit = cases["grid_id"].astype("string")
    frame = pd.DataFrame(
        {
            "case_id": cases["case_id"].astype(str).to_numpy(),
            "unit": unit.to_numpy(),
            "parent_unit": unit.map(parent).to_numpy(),
            "near_units": unit.map(near).to_numpy(),
            "hours": _hours(cases["reported_at"]),
            "category": cases["category"].astype("string").to_numpy(),
            "party_key": _text_or_missing(cases, "party_key"),
            "source": _text_or_missing(cases, "source"),
        }
    )
    if "description" in cases.columns:
        frame["description"] = cases["description"].to_numpy()
    return frame


def _hours(times: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(times)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[s]").astype(np.int64) / 3600.0


def _text_or_missing(cases: pd.DataFrame, column: str) -> np.ndarray:
    if column not in cases.columns:
        return np.full(len(cases), None, dtype=object)
    values = cases[column].astype("string").str.strip()
    return values.where(values.str.len() > 0).astype(object).where(values.notna(), None).to_numpy()


def with_words(frame: pd.DataFrame) -> pd.DataFrame:
    """The prepared reports with ``words``, the description's distinct lower-case words (missing
    when empty), in place of the ``description``."""
    if "description" not in frame.columns:
        return frame
    return frame.drop(columns="description").assign(words=_words(frame["description"]).to_numpy())


def _words(text: pd.Series) -> pd.Series:
    words = text.astype("string").str.lower().str.replace(r"[^\w]+", " ", regex=True).str.split()
    return words.map(lambda w: sorted(set(w)) if isinstance(w, list) and w else None)


def _near_units(data: Dataset, parent: pd.Series) -> pd.Series:
    """Each unit's list of the units near it: itself, its parent and their neighbours."""
    units = parent.index.to_numpy()
    pairs = pd.DataFrame({"grid_id": np.r_[units, units], "near": np.r_[units, parent.to_numpy()]})
    neighbours = _neighbour_pairs(data).set_index("grid_id")["neighbour_id"]
    beside = pairs.join(neighbours, on="near", how="inner")[["grid_id", "neighbour_id"]]
    pairs = pd.concat([pairs, beside.set_axis(["grid_id", "near"], axis=1)], ignore_index=True).drop_duplicates()
    return pairs.sort_values(["grid_id", "near"]).groupby("grid_id", sort=False)["near"].agg(list)


def _neighbour_pairs(data: Dataset) -> pd.DataFrame:
    """Neighbouring units of each level, as the features find them
    (:func:`~riskmodel.features.grid_panel.neighbour_matrix`): the dataset's adjacency within
    the level, else each unit's nearest centroids of the same level."""
    found = []
    for level in data.levels:
        units = pd.Index(data.grids.loc[data.grids["level"] == level, "grid_id"].astype(str))
        src, dst = neighbour_matrix(data, units, NEAREST).nonzero()
        found.append(pd.DataFrame({"grid_id": units[src], "neighbour_id": units[dst]}))
    return pd.concat(found, ignore_index=True)


def comparisons(with_text: bool, sources: Sequence[str] = (), *, time_by_platform: bool = True) -> list:
    """Splink's comparisons: party key (exact, one character apart, else), unit (same, near,
    else), time gap (:data:`TIME_LEVELS_HOURS`, else; with several platforms, each gap per
    platform of the later report), category (exact, else), with several platforms the
    platform (same, else) and, when the reports carry a description, the words two
    descriptions share (4 or more, 3, 2, 1, none: short case summaries). A missing value is
    a null level: neutral, weight 0."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    time_levels = [cll.NullLevel("hours"), *_time_levels(sources if time_by_platform else ())]
    found = [
        *_party_and_unit(),
        cl.CustomComparison([*time_levels, cll.ElseLevel()], output_column_name="time_gap"),
        cl.ExactMatch("category"),
    ]
    if len(sources) > 1:
        # Whether one dispute is reported again on the same platform or only on others is
        # the data's to say: EM learns it.
        found.append(cl.ExactMatch("source"))
    if with_text:
        found.append(cl.ArrayIntersectAtSizes("words", [4, 3, 2, 1]))
    return found


def _party_and_unit() -> list:
    """The party key (exact, one character apart, else) and the unit (same, near, else)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return [
        cl.CustomComparison(
            [
                cll.NullLevel("party_key"),
                # A party with many reports (a building's owners, a repeat caller) is weaker
                # evidence than a rare one: its weight is adjusted by the key's frequency.
                cll.ExactMatchLevel("party_key", term_frequency_adjustments=True),
                cll.LevenshteinLevel("party_key", 1).configure(label_for_charts="one character apart"),
                # Known keys of one dispute's reports differ by more than a typo only by
                # mistake: fixed, not left to EM, which would take a wave of neighbours'
                # reports (same unit, same day, other parties) for one dispute.
                cll.ElseLevel().configure(m_probability=0.01, fix_m_probability=True),
            ],
            output_column_name="party_key",
        ),
        cl.CustomComparison(
            [
                cll.NullLevel("unit"),
                cll.ExactMatchLevel("unit").configure(label_for_charts="same unit"),
                cll.ArrayIntersectLevel("near_units", 1).configure(label_for_charts="neighbouring or same parent"),
                cll.ElseLevel(),
            ],
            output_column_name="unit",
        ),
    ]


def _time_levels(sources: Sequence[str]) -> list:
    """The time gap's levels. With several platforms, each gap is split by the platform of the
    later report: some platforms take a report within hours of the quarrel, others (a petition,
    a mediation) days or weeks after it, so the same gap is strong evidence of one dispute
    when the later report is on a slow platform and weak when it is on a fast one; EM learns
    how each platform's reports trail the first. A later report of unknown platform falls to
    the gap alone."""
    import splink.comparison_level_library as cll

    later = "(case when hours_l <= hours_r then source_r else source_l end)"
    levels = []
    for hours in TIME_LEVELS_HOURS:
        gap = f"abs(hours_l - hours_r) <= {hours:g}"
        if len(sources) > 1:
            levels += [
                cll.CustomLevel(
                    f"{gap} and {later} = '{source.replace(chr(39), chr(39) * 2)}'",
                    label_for_charts=f"within {_span(hours)}, later on {source}",
                )
                for source in sorted(sources)
            ]
        levels.append(cll.CustomLevel(gap, label_for_charts=f"within {_span(hours)}"))
    return levels


def _span(hours: float) -> str:
    return f"{hours:g} h" if hours < 24 else f"{hours / 24:g} d"


def blocking_rules(window_days: float) -> list:
    """The pairs Splink scores: reports within ``window_days`` of each other that share the
    party key, the unit or the parent unit (each an equality join, then a time filter)."""
    from splink.blocking_rule_library import CustomRule

    within = f"abs(l.hours - r.hours) <= {float(window_days) * 24:g}"
    return [CustomRule(f"l.{column} = r.{column} and {within}") for column in ("party_key", "unit", "parent_unit")]
