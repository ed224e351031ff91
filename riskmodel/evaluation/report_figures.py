"""A backtest's report from its result: figures, interactive charts, top units and headlines.

:func:`backtest_report` draws everything the page shows from a
:class:`~riskmodel.evaluation.BacktestResult`, its data and (when there is one) the
final model's forecast, with disclosure control (:mod:`~riskmodel.evaluation.disclosure`)
applied, and hands it to :func:`~riskmodel.evaluation.report.render_report`.
The interactive charts are Plotly's, with plotly.js inline in the page (no network).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..features.base import horizon_words
from . import plots
from .disclosure import SENSITIVE, suppress_small_counts, suppress_small_counts_in_text
from .report import render_report
from .report_words import headline_sentence, metric_label

__all__ = ["backtest_report", "describe_run"]


def _spacing_words(cutoffs: list[pd.Timestamp]) -> str:
    """How far apart the test cutoffs are, in words (from the cutoffs themselves)."""
    pairs = list(zip(cutoffs, cutoffs[1:], strict=False))
    if all(b.day == a.day and (b.year - a.year) * 12 + b.month - a.month == 1 for a, b in pairs):
        return "monthly"
    days = sorted({(b - a).days for a, b in pairs})
    if len(days) != 1:
        return "irregularly spaced"
    return {1: "daily", 7: "weekly"}.get(days[0]) or (
        f"every {days[0] // 7} weeks" if days[0] % 7 == 0 else f"every {days[0]} days"
    )


def describe_run(config: dict, *, name: str = "", data: str = "", kind: str = "grid") -> tuple[str, str]:
    """A title and a subtitle in words from a backtest's configuration (``result.config``
    or its logged ``config.json``) and its kind of target (``result.target``).

    Examples
    --------
    >>> from riskmodel.evaluation.report_figures import describe_run
    >>> config = {"cutoffs": ["2022-07-01", "2022-08-01", "2022-09-01"], "horizon": "<DateOffset: months=1>",
    ...           "target": "None", "level": "grid"}
    >>> describe_run(config, name="lancashire", data="lancashire_asb.tsv.gz")[0]
    'lancashire: risk by grid unit, 1 month ahead'
    >>> describe_run(config)[1]
    'Backtest of 3 test cutoffs, monthly, from 01 Jul 2022 to 01 Sep 2022, counting all cases.'
    """
    cutoffs = [pd.Timestamp(c) for c in config["cutoffs"]]
    target = str(config.get("target"))
    horizon = config.get("horizon")
    if kind != "grid":  # the escalation and waves targets have no horizon
        title = f"{name or 'Backtest'}: {'escalation of open cases' if kind == 'escalation' else 'waves of cases'}"
    else:
        title = f"{name or 'Backtest'}: risk by {config.get('level', 'grid')} unit, {horizon_words(horizon)} ahead"
    counting = "all cases" if target in ("None", "grid", "") or target.endswith("()") else target.replace("_", " ")
    subtitle = (
        (f"{data}. " if data else "")
        + f"Backtest of {len(cutoffs)} test cutoffs"
        + (f", {_spacing_words(cutoffs)}, " if len(cutoffs) > 1 else " ")
        + f"from {cutoffs[0]:%d %b %Y} to {cutoffs[-1]:%d %b %Y}, counting {counting}."
    )
    return title, subtitle


def _figures(result, dataset, forecast, units, *, aggregate: bool, k: int) -> dict[str, bytes]:
    kind, figures = result.kind, {}
    if units is not None:
        where = "the final model's forecast" if forecast is not None else "the last fold's forecast"
        figures[f"Risk map: {where} and the cases of its period"] = plots.png_bytes(
            plots.risk_map(result, dataset, forecast=forecast, aggregate=aggregate, k=k)
        )
    if kind.counts:
        figures["Hit rate against the share of units chosen"] = plots.png_bytes(plots.hit_rate_curve(result))
    if kind.probabilities:
        figures["Calibration: observed against predicted"] = plots.png_bytes(plots.calibration_curve(result))
    figures[f"{metric_label(kind.headline)} by fold"] = plots.png_bytes(plots.metrics_by_fold(result, kind.headline))
    return figures


def _plotly(figure, first: bool) -> str:
    figure.update_layout(margin={"l": 50, "r": 20, "t": 40, "b": 40}, template="plotly_white")
    return figure.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False, "responsive": True})


def _leaderboard_chart(board: pd.DataFrame, metric: str):
    import plotly.graph_objects as go

    spread = board.get(f"{metric}_fold_std")
    bars = go.Bar(
        x=board[metric],
        y=board.index,
        orientation="h",
        error_x=None if spread is None else {"type": "data", "array": spread},
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    )
    figure = go.Figure(bars)
    figure.update_layout(
        height=120 + 28 * len(board), xaxis_title=f"{metric_label(metric)} (± over folds)", yaxis_autorange="reversed"
    )
    return figure


def _map_chart(units: pd.DataFrame, value: str, label: str, k: int, hide: bool):
    import plotly.graph_objects as go

    shown = suppress_small_counts(units, ["cases"], k=k) if hide else units
    text = [
        f"{unit}<br>probability {p:.3f}<br>expected {e:.2f}<br>cases {c}"
        for unit, p, e, c in zip(
            units.index, units["probability"], units["expected_count"], shown["cases"], strict=True
        )
    ]
    points = go.Scatter(
        x=units["lon"],
        y=units["lat"],
        mode="markers",
        marker={
            "color": units[value],
            "colorscale": "YlOrRd",
            "colorbar": {"title": label},
            "symbol": "square",
            "size": float(np.clip(300 / len(units) ** 0.5, 4, 24)),
            "cmin": 0,
            "cmax": float(units[value].quantile(0.95)) or None,  # as the figure: the few highest clipped
        },
        text=text,
        hoverinfo="text",
    )
    figure = go.Figure(points)
    figure.update_layout(height=560, xaxis_title="longitude (°)", yaxis_title="latitude (°)")
    figure.update_yaxes(scaleanchor="x", scaleratio=1 / max(0.1, float(np.cos(np.radians(units["lat"].mean())))))
    return figure


def _top_units(forecast: pd.DataFrame, *, by_count: bool, top: int, k: int, micro: bool, sensitive) -> pd.DataFrame:
    """The riskiest units of the final forecast (by expected count when the probability
    says little), their drivers' small counts hidden."""
    if by_count:
        forecast = forecast.sort_values(["expected_count", "grid_id"], ascending=[False, True], kind="stable")
    shown = forecast.head(top).copy()
    if "top_drivers" in shown:
        shown["top_drivers"] = [
            suppress_small_counts_in_text(str(t), k=k, everything=micro, sensitive=sensitive)
            for t in shown["top_drivers"]
        ]
    return shown.drop(columns=["probability", "tier"] if by_count else [], errors="ignore")


def _notes(level: str, drawn: str | None, micro: str | None, *, k: int, sensitive, by_count: bool) -> list[str]:
    rule = f"at the {micro} level" + (f" or of {', '.join(sensitive)} cases" if sensitive else "")
    note = f"Disclosure control: counts of fewer than {k} cases {rule} are shown as \u201c< {k}\u201d"
    if drawn and drawn != level:
        note += f"; the map of the {level} units is drawn at the {drawn} level."
    elif drawn and level == micro:
        note += "; the level above has no coordinates, so the map keeps the units and shows no case at its place."
    else:
        note += "."
    notes = [note]
    if by_count:
        notes.append(
            "Nearly every unit has a case each period (in most periods 80% of units or more, or most probabilities "
            "of at least one case are 0.99 or more): that probability says little, so the map and the top units "
            "use the expected number of cases."
        )
    return notes


def backtest_report(
    result,
    dataset=None,
    *,
    forecast: pd.DataFrame | None = None,
    name: str = "",
    data: str = "",
    k: int = 3,
    sensitive: Sequence[str] = SENSITIVE,
    aggregate: bool = True,
    top: int = 20,
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The HTML report of a backtest, written for a district analyst.

    Parameters
    ----------
    result : BacktestResult
    dataset : Dataset, optional
        The backtest's data (for the map and the disclosure rules).
    forecast : DataFrame, optional
        The final model's forecast (a :func:`riskmodel.predict` answer): mapped and
        ranked as the top units; without it the map shows the last fold.
    name, data : str
        The run's name and its data in words, for the title and subtitle.
    k : int
        The smallest count shown at the micro-grid level or of a ``sensitive`` category.
    aggregate : bool
        Draw a micro-grid level's map at the level above.
    top : int
        How many top units.
    notes, sections
        Further lines and sections (see :func:`~riskmodel.evaluation.report.render_report`).

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation import backtest
    >>> from riskmodel.evaluation.report_figures import backtest_report
    >>> from riskmodel.models import LastPeriodBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> result = backtest(district, [LastPeriodBaseline()], cutoffs=["2023-10-02", "2023-10-30"],
    ...                   horizon=28, track=False, progress=False)
    >>> page = backtest_report(result, district, name="tiny")
    >>> "risk by grid unit, 28 days ahead" in page and "Hit rate at 5%" in page
    True
    """
    title, subtitle = describe_run(result.config, name=name, data=data, kind=result.target)
    model = str(forecast["model"].iloc[0]) if forecast is not None and "model" in forecast else None
    level, micro = result.config.get("level", "grid"), (dataset.levels[-1] if dataset is not None else None)
    units = None
    if result.kind.counts and dataset is not None:
        with contextlib.suppress(ValueError):  # no coordinates: no map
            units = plots.risk_map_frame(result, dataset, forecast=forecast, aggregate=aggregate)
    if forecast is not None:
        subtitle += f" The final model's forecast is as of {pd.Timestamp(forecast['as_of'].iloc[0]):%d %b %Y}."
    scores = forecast["probability"] if forecast is not None else (units["probability"] if units is not None else [])
    by_count = result.kind.counts and plots.probability_saturated(scores, base_rate=result.predictions["y"].mean())
    horizon = horizon_words(result.horizon) if result.kind.horizons else ""
    interactive = [
        ("Leaderboard at a glance", _plotly(_leaderboard_chart(result.leaderboard, result.kind.headline), True))
    ]
    if units is not None:
        value, label = ("expected_count", "expected cases") if by_count else ("probability", "P(at least one case)")
        hide = units.attrs["level"] == micro
        interactive.append(
            ("Interactive risk map (hover a unit)", _plotly(_map_chart(units, value, label, k, hide), False))
        )
    top_units, top_note = None, ""
    if forecast is not None and result.kind.counts:
        top_units = _top_units(forecast, by_count=by_count, top=top, k=k, micro=level == micro, sensitive=sensitive)
        top_note = f"The final model's {top} riskiest units, by " + ("expected cases." if by_count else "probability.")
    return render_report(
        title,
        result.leaderboard,
        subtitle=subtitle,
        headlines=[headline_sentence(result.leaderboard, horizon=horizon, unit=level, model=model)],
        figures=_figures(result, dataset, forecast, units, aggregate=aggregate, k=k),
        interactive=interactive,
        top_units=top_units,
        top_note=top_note,
        notes=[
            *_notes(
                level,
                units.attrs["level"] if units is not None else None,
                micro,
                k=k,
                sensitive=sensitive,
                by_count=by_count,
            ),
            *notes,
        ],
        sections=sections,
    )
