"""A backtest as one self-contained HTML page: leaderboard, spread, figures, top units.

The page holds everything it shows (figures as inline PNG, styles inline): it opens
without a network connection and can be mailed or kept as an MLflow artifact.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["HEADLINE", "render_report", "write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 48%; margin: 0.5em 1%; }
h3 { font-size: 1em; margin-top: 1.5em; }
.note { color: #555; font-size: 0.9em; }
"""
#: The leaderboard columns worth a first look (those a result has), shown by the
#: report and printed by the command line.
HEADLINE = [
    "roc_auc",
    "roc_auc_oracle_ratio",
    "hit_rate_at_1pct",
    "hit_rate_at_5pct",
    "hit_rate_at_5pct_oracle_ratio",
    "hit_rate_at_5pct_fold_std",
    "pai_at_5pct",
    "pei_star_at_5pct",
    "average_precision",
    "brier",
    "ece",
    "wave_detection_rate",
    "wave_median_delay_days",
    "false_alarms_per_1000_unit_weeks",
]


def _headline(board: pd.DataFrame) -> list[str]:
    return [c for c in HEADLINE if c in board]


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.3f}", na_rep="", border=0, escape=True)


def render_report(
    title: str,
    leaderboard: pd.DataFrame,
    *,
    figures: dict[str, bytes] | None = None,
    top_units: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The HTML of a report.

    Parameters
    ----------
    title : str
    leaderboard : DataFrame
        A backtest's leaderboard (one row per model).
    figures : dict of name to PNG bytes, optional
    top_units : DataFrame, optional
        The riskiest units with their drivers (a :func:`riskmodel.predict` answer).
    notes : list of str
        Lines of context (data, folds, horizon), shown under the title.
    sections : list of (title, html) pairs
        Further sections, each under its title at the end (the HTML as it is, for
        example :func:`~riskmodel.evaluation.prevention_report.prevention_section`).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.evaluation.report import render_report
    >>> page = render_report("Demo", pd.DataFrame({"roc_auc": [0.7]}, index=pd.Index(["m"], name="model")))
    >>> "<table" in page and "http" not in page
    True
    """
    headline = _headline(leaderboard)
    spread = [c for c in leaderboard.columns if c.endswith(("_fold_std", "_street_std"))]
    parts = [f"<h1>{html.escape(title)}</h1>"] + [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    parts += [
        "<h2>Leaderboard</h2>",
        "<p class='note'>Means over folds; the best model first.</p>",
        _table(leaderboard[headline or list(leaderboard.columns)]),
    ]
    if spread:
        parts += [
            "<h2>Spread</h2>",
            "<p class='note'>Standard deviation of each metric over the folds and, "
            "where the data has streets, over the streets of a fold (mean over folds).</p>",
            _table(leaderboard[spread]),
        ]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [
            f"<img alt='{html.escape(name)}' title='{html.escape(name)}' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
            for name, png in figures.items()
        ]
    if top_units is not None:
        shown = [
            c
            for c in ("case_id", "grid_id", "probability", "expected_count", "tier", "top_drivers", "flags")
            if c in top_units
        ]
        parts += ["<h2>Top units</h2>", _table(top_units[shown].set_index(shown[0]))]
    for heading, body in sections:
        parts += [f"<h2>{html.escape(heading)}</h2>", body]
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write_report(path, title: str, leaderboard: pd.DataFrame, **parts) -> Path:
    """Write :func:`render_report` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(render_report(title, leaderboard, **parts), encoding="utf-8")
    return path
