"""A backtest as one self-contained HTML page: headlines, leaderboard, figures, top units.

The page holds everything it shows (figures as inline PNG, Plotly's script and styles
inline): it opens without a network connection and can be mailed or kept as an
MLflow artifact. It fits a 1280-pixel window: wide tables scroll in their own box.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .report_words import GLOSSARY, metric_label

__all__ = [
    "HEADLINE",
    "MAIN",
    "figure_html",
    "glossary_html",
    "page_html",
    "render_report",
    "table_html",
    "write_report",
]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1180px; padding: 0 1em; color: #222;
       line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.subtitle { color: #444; margin-top: 0; }
.headline { font-size: 1.1em; background: #f4f7fb; border-left: 4px solid #3a6ea5; padding: 0.4em 0.8em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f6f6f6; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td.text { max-width: 36em; white-space: normal; }
figure { margin: 1em 0; }
figure img { width: 100%; height: auto; }
figcaption, .note, dl.glossary { color: #555; font-size: 0.9em; }
dl.glossary dt { font-weight: 600; float: left; clear: left; margin-right: 0.4em; }
dl.glossary dd { margin: 0 0 0.2em 0; }
details { margin: 1em 0; }
summary { cursor: pointer; font-weight: 600; }
"""
#: The leaderboard columns worth a first look (those a result has), printed by the command line;
#: the report shows the first :data:`MAIN` of them in its table and the others folded.
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
#: The leaderboard's first columns in the report, by target (those a result has).
MAIN = [
    "hit_rate_at_5pct",
    "hit_rate_at_5pct_oracle_ratio",
    "hit_rate_at_1pct",
    "wave_detection_rate",
    "wave_median_delay_days",
    "false_alarms_per_1000_unit_weeks",
    "roc_auc",
    "ece",
]
_UNITS = {
    "grid_id": "Unit",
    "case_id": "Case",
    "probability": "Probability of ≥ 1 case",
    "expected_count": "Expected cases",
    "interval": "80% interval",
    "tier": "Tier",
    "top_drivers": "Why (largest drivers)",
    "alerts": "Alerts",
}


def table_html(frame: pd.DataFrame, *, wrap: bool = False) -> str:
    """A table of the report's style that scrolls inside its own box rather than widening
    the page; with ``wrap`` its cells hold text that wraps, left-aligned. Numbers show 3
    decimals and missing values blanks.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.evaluation.report import table_html
    >>> table = table_html(pd.DataFrame({"a": [0.5, None]}))
    >>> "<td>0.500</td>" in table, "nan" in table
    (True, False)
    """
    frame = frame.reset_index().rename(columns={"model": "Model"})
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0, escape=True)
    if wrap:
        body = body.replace("<td>", "<td class=text>").replace("<th>", "<th class=text>")
    return f"<div class='scroll'>{body}</div>"


def glossary_html(columns: Sequence[str]) -> str:
    """The :data:`~riskmodel.evaluation.report_words.GLOSSARY` lines of ``columns`` (those it has).

    Examples
    --------
    >>> from riskmodel.evaluation.report import glossary_html
    >>> "Brier score:" in glossary_html(["brier", "unknown"]), glossary_html(["unknown"])
    (True, '')
    """
    rows = [
        f"<dt>{html.escape(GLOSSARY[c][0])}:</dt><dd>{html.escape(GLOSSARY[c][1])}</dd>"
        for c in columns
        if c in GLOSSARY
    ]
    return f"<dl class='glossary'>{''.join(rows)}</dl>" if rows else ""


def figure_html(caption: str, png: bytes) -> str:
    """A PNG image inline (base64, no file or network) at the page's width, with its caption.

    Examples
    --------
    >>> from riskmodel.evaluation.report import figure_html
    >>> figure_html("A <b>", b"png").startswith("<figure><img alt='A &lt;b&gt;' src='data:image/png;base64,cG5n'>")
    True
    """
    return (
        f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def page_html(title: str, parts: Sequence[str]) -> str:
    """A whole self-contained page in the report's style: ``title``, then the HTML ``parts`` in order.

    Examples
    --------
    >>> from riskmodel.evaluation.report import page_html
    >>> page = page_html("Demo", ["<p>hello</p>"])
    >>> page.startswith("<!DOCTYPE html>") and "<title>Demo</title>" in page and "<p>hello</p>" in page
    True
    """
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _leaderboard(board: pd.DataFrame) -> list[str]:
    main = [c for c in MAIN if c in board][:5] or list(board.columns[:5])
    more = [c for c in HEADLINE if c in board and c not in main]
    spread = [c for c in board.columns if c.endswith(("_fold_std", "_street_std")) and c not in more]
    sort = next((c for c in ("hit_rate_at_5pct", "wave_detection_rate", "roc_auc") if c in board), main[0])
    parts = [
        "<h2>Leaderboard</h2>",
        f"<p class='note'>Means over the test folds, best first by {html.escape(metric_label(sort))}"
        + (" (the oracle is the simulator's true risk: the best possible)." if "oracle" in board.index else ".")
        + "</p>",
        table_html(board[main].rename(columns=metric_label)),
        glossary_html(main),
    ]
    if more or spread:
        parts += [
            "<details><summary>More metrics, and their spread over folds and streets</summary>",
            table_html(board[more].rename(columns=metric_label)) if more else "",
            glossary_html(more),
            "<p class='note'>Spread: the standard deviation of each metric over the folds and, where the data "
            "has streets, over the streets of a fold (mean over folds).</p>"
            if spread
            else "",
            table_html(board[spread].rename(columns=metric_label)) if spread else "",
            "</details>",
        ]
    return parts


def _top_units(top: pd.DataFrame, note: str) -> list[str]:
    top = top.rename(columns={"flags": "alerts"})
    if {"low", "high"} <= set(top.columns):
        top = top.assign(interval=[f"{lo:g} to {hi:g}" for lo, hi in zip(top["low"], top["high"], strict=True)])
    shown = [c for c in _UNITS if c in top]
    table = table_html(top[shown].rename(columns=_UNITS).set_index(_UNITS[shown[0]]), wrap=True)
    return ["<h2>Top units</h2>", f"<p class='note'>{html.escape(note)}</p>" if note else "", table]


def render_report(
    title: str,
    leaderboard: pd.DataFrame,
    *,
    subtitle: str = "",
    headlines: Sequence[str] = (),
    figures: dict[str, bytes] | None = None,
    interactive: Sequence[tuple[str, str]] = (),
    top_units: pd.DataFrame | None = None,
    top_note: str = "",
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The HTML of a report: title, headline sentences, leaderboard, figures, top units.

    Parameters
    ----------
    title, subtitle : str
    leaderboard : DataFrame
        A backtest's leaderboard (one row per model, best first).
    headlines : list of str
        Sentences of what the best model does, shown first.
    figures : dict of caption to PNG bytes, optional
        Drawn at the page's full width.
    interactive : list of (title, html) pairs
        Plotly figures as HTML (their script inline: see :mod:`~riskmodel.evaluation.report_figures`).
    top_units : DataFrame, optional
        The riskiest units with their drivers (a :func:`riskmodel.predict` answer, its
        counts already made safe to show); ``flags`` is shown as ``alerts``.
    top_note : str
        A line above the top units (what ranks them).
    notes : list of str
        Lines of context under the headlines (e.g. disclosure control).
    sections : list of (title, html) pairs
        Further sections, each under its title at the end (the HTML as it is, for
        example :func:`~riskmodel.evaluation.prevention_report.prevention_section`).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.evaluation.report import render_report
    >>> board = pd.DataFrame({"roc_auc": [0.7]}, index=pd.Index(["m"], name="model"))
    >>> page = render_report("Demo", board)
    >>> "<table" in page and "http" not in page and "ROC AUC" in page
    True
    """
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='subtitle'>{html.escape(subtitle)}</p>"] if subtitle else []
    parts += [f"<p class='headline'>{html.escape(h)}</p>" for h in headlines]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    parts += _leaderboard(leaderboard)
    for heading, body in interactive:
        parts += [f"<h2>{html.escape(heading)}</h2>", body]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [figure_html(name, png) for name, png in figures.items()]
    if top_units is not None:
        parts += _top_units(top_units, top_note)
    for heading, body in sections:
        parts += [f"<h2>{html.escape(heading)}</h2>", body]
    return page_html(title, parts)


def write_report(path, title: str, leaderboard: pd.DataFrame, **parts) -> Path:
    """Write :func:`render_report` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(render_report(title, leaderboard, **parts), encoding="utf-8")
    return path
