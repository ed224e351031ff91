"""The monitoring page: a :class:`~riskmodel.MonitorReport` as one self-contained HTML page.

The page is in the style of ``riskmodel report`` (:mod:`~riskmodel.evaluation.report`): a
verdict in words, the alarms with their reasons, the weekly curves of each model version
(matplotlib PNGs inline), the drifting inputs and what was left unscored. It holds
everything it shows and makes no network request, so it can be mailed or kept as an
MLflow artifact.

Disclosure: the page shows totals over all of a district's units for a week (observed and
expected cases, rates over the units) and never a unit's count, so no small count of a
place can be read from it; the disclosure control of the backtest report has nothing to hide.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .report import figure_html, glossary_html, page_html, table_html
from .report_words import metric_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..monitor import MonitorReport

__all__ = ["KIND_WORDS", "kind_words", "monitor_figure", "monitor_verdict", "render_monitor_page", "write_monitor_page"]

#: Each alarm kind in words (an unknown kind is shown with its underscores as spaces).
KIND_WORDS = {
    "calibration_cusum": "calibration drift (CUSUM)",
    "calibration_limits": "observed over expected outside its control limits",
    "hit_rate": "hit rate below its backtest band",
    "cold_start": "too many cold starts",
    "input_drift": "input drift",
}
#: The reasons a forecast was left unscored, in words.
_UNSCORED = {"window_open": "whose window is still open", "unknown_unit": "of units the data lacks"}
#: The weekly curves, in the order of the figure's panels (those the scores have).
CURVES = ["oe_ratio", "hit_rate_at_5pct", "brier", "interval_coverage"]
_KEYS = ["model", "version", "as_of"]
_SHOWN = ["as_of", "units", "observed", "expected", "oe_ratio", "hit_rate_at_5pct", "brier", "interval_coverage"]


def kind_words(kind: str) -> str:
    """An alarm's kind in words.

    Examples
    --------
    >>> from riskmodel.evaluation.monitor_page import kind_words
    >>> kind_words("hit_rate"), kind_words("new_kind")
    ('hit rate below its backtest band', 'new kind')
    """
    return KIND_WORDS.get(kind, str(kind).replace("_", " "))


def _day(value) -> str:
    return "" if pd.isna(value) else f"{pd.Timestamp(value):%d %b %Y}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def monitor_verdict(report: MonitorReport) -> str:
    """One sentence: healthy, or how many alarms of which kinds.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel import MonitorReport
    >>> from riskmodel.evaluation.monitor_page import monitor_verdict
    >>> weeks = pd.date_range("2024-01-01", periods=3, freq="W-MON")
    >>> scores = pd.DataFrame({"model": "m", "version": "1", "as_of": weeks})
    >>> alarms = pd.DataFrame({"week": [weeks[2]] * 2, "kind": ["hit_rate", "calibration_cusum"]})
    >>> monitor_verdict(MonitorReport(scores, scores, alarms.iloc[:0], pd.DataFrame()))
    'Healthy: no alarm over 3 weeks of forecasts of 1 model version, from 01 Jan 2024 to 15 Jan 2024.'
    >>> monitor_verdict(MonitorReport(scores, scores, alarms, pd.DataFrame()))
    '2 alarms: 1 hit rate below its backtest band, 1 calibration drift (CUSUM); the latest in the week of 15 Jan 2024.'
    """
    alarms = report.alarms
    checked = pd.concat([frame.reindex(columns=_KEYS) for frame in (report.scores, report.weeks)])
    if alarms.empty:
        if checked.empty:
            return "No forecast's window has closed yet: nothing was scored and no alarm raised."
        versions = len(checked[["model", "version"]].drop_duplicates())
        first, last = _day(checked["as_of"].min()), _day(checked["as_of"].max())
        return (
            f"Healthy: no alarm over {_plural(checked['as_of'].nunique(), 'week')} of forecasts of "
            f"{_plural(versions, 'model version')}, from {first} to {last}."
        )
    kinds = alarms["kind"].value_counts(sort=False)
    named = ", ".join(f"{n} {kind_words(kind)}" for kind, n in kinds.items())
    return f"{_plural(len(alarms), 'alarm')}: {named}; the latest in the week of {_day(alarms['week'].max())}."


def monitor_figure(
    scores: pd.DataFrame,
    *,
    first_weeks: pd.DataFrame | None = None,
    alarms: pd.DataFrame | None = None,
    bands: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
) -> Figure:
    """The weekly curves of one model version: a panel per metric of :data:`CURVES` that the
    scores have, a red vertical line at each alarm's week.

    Observed over expected has its line at 1 and, when given, each forecast's first
    week's ratio (what the calibration alarms read); each metric with a band of the
    model's backtest has it shaded.

    Parameters
    ----------
    scores : DataFrame
        One model version's weekly scores (:attr:`riskmodel.MonitorReport.scores`).
    first_weeks : DataFrame, optional
        Its first weeks' ``as_of`` and ``oe_ratio`` (:attr:`riskmodel.MonitorReport.weeks`).
    alarms : DataFrame, optional
        Its alarms; their ``week`` is marked.
    bands : mapping of metric to (low, high), optional
        The model's backtest bands (:attr:`riskmodel.MonitorReport.backtest`).
    title : str

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.evaluation.monitor_page import monitor_figure
    >>> weeks = pd.date_range("2024-01-01", periods=4, freq="W-MON")
    >>> scores = pd.DataFrame({"as_of": weeks, "oe_ratio": [1.0, 1.2, 1.5, 2.0],
    ...                        "hit_rate_at_5pct": [0.3, 0.2, 0.1, 0.1], "brier": [0.1, 0.1, 0.2, 0.2]})
    >>> figure = monitor_figure(scores, alarms=pd.DataFrame({"week": [weeks[3]]}), bands={"brier": (0.05, 0.15)})
    >>> [axes.get_ylabel() for axes in figure.axes], len(figure.axes[2].patches)
    (['Observed over expected', 'Hit rate at 5%', 'Brier score'], 1)
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter  # imported when a page is drawn
    from matplotlib.figure import Figure

    weeks = scores.sort_values("as_of")
    first = None if first_weeks is None or first_weeks.empty else first_weeks.sort_values("as_of")
    shown = [c for c in CURVES if (c in weeks and weeks[c].notna().any()) or (c == "oe_ratio" and first is not None)]
    figure = Figure(figsize=(10, 0.8 + 1.9 * max(1, len(shown))), layout="constrained")
    panels = figure.subplots(max(1, len(shown)), 1, sharex=True, squeeze=False)[:, 0]
    marks = [] if alarms is None or alarms.empty else sorted(pd.to_datetime(alarms["week"]).unique())
    for axes, column in zip(panels, shown, strict=False):
        if column in weeks:
            axes.plot(weeks["as_of"], weeks[column], "o-", markersize=3, label=metric_label(column))
        if column == "oe_ratio":
            axes.axhline(1.0, color="grey", linewidth=1)
            if first is not None:
                label = metric_label("first_week_oe_ratio")
                axes.plot(first["as_of"], first["oe_ratio"], "s--", markersize=3, label=label)
        band = (bands or {}).get(column)
        if band is not None:
            axes.axhspan(float(band[0]), float(band[1]), color="tab:green", alpha=0.15, label="backtest band")
        for i, week in enumerate(marks):
            axes.axvline(week, color="tab:red", linestyle=":", linewidth=1.5, label="alarm" if i == 0 else None)
        axes.set_ylabel(metric_label(column))
        if len(axes.get_legend_handles_labels()[1]) > 1:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, frameon=False, fontsize="small")
    locator = AutoDateLocator()
    panels[-1].xaxis.set_major_locator(locator)
    panels[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))  # dates that never overlap
    panels[-1].set_xlabel("week of the forecast (as of)")
    panels[0].set_title(title)
    return figure


def _alarm_table(alarms: pd.DataFrame) -> str:
    table = pd.DataFrame(
        {
            "Week": alarms["week"].map(_day),
            "Known at": alarms["known_at"].map(_day),
            "Model version": alarms["model"].astype(str) + " " + alarms["version"].astype(str),
            "Kind": alarms["kind"].map(kind_words),
            "Why": alarms["message"].fillna("").astype(str),
        }
    )
    return table_html(table.set_index("Week"), wrap=True)


def _drift(drift: pd.DataFrame, top: int) -> list[str]:
    parts = [
        "<h2>Input drift</h2>",
        "<p class='note'>The population stability index (PSI) of each feature at the latest forecast against the "
        "last training cutoff: a feature drifted when its PSI is above the threshold and above its usual PSI (the "
        "largest between two training cutoffs as far apart). The features that drift most, drifted first.</p>",
    ]
    for (model, version, as_of), rows in drift.groupby(["model", "version", "as_of"], sort=False):
        rows = rows.sort_values(["drifted", "psi"], ascending=False, kind="stable").head(top)
        usual = rows["usual"].astype(float)
        table = pd.DataFrame(
            {
                "Feature": rows["feature"].astype(str),
                "PSI": rows["psi"].astype(float),
                "Usual PSI": [f"{u:.3f}" if np.isfinite(u) else "a clock: never drifts" for u in usual],
                "Drifted": np.where(rows["drifted"].astype(bool), "yes", "no"),
            }
        )
        parts += [
            f"<h3>{html.escape(f'{model} {version}, as of {_day(as_of)}')}</h3>",
            table_html(table.set_index("Feature")),
        ]
    return parts


def _unscored(unscored: pd.DataFrame) -> str:
    if unscored.empty:
        return "Every stored forecast was scored."
    said = []
    for reason, rows in unscored.groupby("reason", sort=False):
        first, last = rows["as_of"].min(), rows["as_of"].max()
        when = f"the week of {_day(first)}" if first == last else f"the weeks of {_day(first)} to {_day(last)}"
        words = _UNSCORED.get(str(reason), str(reason).replace("_", " "))
        said.append(f"{_plural(int(rows['forecasts'].sum()), 'forecast')} {words} ({when})")
    return "Left unscored: " + "; ".join(said) + "."


def _version(frame: pd.DataFrame, model, version) -> pd.DataFrame:
    if frame.empty:  # perhaps without columns
        return frame
    return frame[(frame["model"] == model) & (frame["version"] == version)]


def _bands(report: MonitorReport, model, version) -> dict[str, tuple[float, float]]:
    """A model version's backtest bands by metric: the report's ``backtest``, else its hit rate's ``bands``."""
    rows = _version(report.backtest, model, version).dropna(subset=["low", "high"])
    bands = {str(r.metric): (float(r.low), float(r.high)) for r in rows.itertuples()}
    if (model, version) in report.bands:
        bands.setdefault("hit_rate_at_5pct", tuple(report.bands[(model, version)]))
    return bands


def _weekly(report: MonitorReport) -> list[str]:
    from .plots import png_bytes

    parts = []
    versions = pd.concat([frame.reindex(columns=["model", "version"]) for frame in (report.scores, report.weeks)])
    for model, version in versions.drop_duplicates().itertuples(index=False):
        alarms = _version(report.alarms, model, version)
        bands = _bands(report, model, version)
        name = f"{model} {version}"
        scores, first = _version(report.scores, model, version), _version(report.weeks, model, version)
        figure = monitor_figure(scores, first_weeks=first, alarms=alarms, bands=bands, title=name)
        caption = f"{name}: the weekly scores" + (", alarms marked red" if len(alarms) else "")
        caption += "; the backtest's bands shaded green" if bands else ""
        parts.append(figure_html(caption, png_bytes(figure)))
    return parts


def _scores_table(report: MonitorReport) -> str:
    """The weekly scores and first weeks' observed over expected, one row a model version and week."""
    scores = report.scores.reindex(columns=[c for c in [*_KEYS, *_SHOWN[1:]] if c in report.scores or c in _KEYS])
    first = report.weeks.reindex(columns=[*_KEYS, "oe_ratio"]).rename(columns={"oe_ratio": "first_week_oe_ratio"})
    table = scores.merge(first, on=_KEYS, how="outer").sort_values(_KEYS, kind="stable")
    table = table.dropna(axis=1, how="all").assign(as_of=lambda t: t["as_of"].map(_day))
    if "observed" in table:  # a count
        table["observed"] = table["observed"].round().astype("Int64")
    table = table.rename(columns=metric_label)
    return table_html(table.set_index(table.columns[0]))


def _backtest(backtest: pd.DataFrame) -> list[str]:
    table = pd.DataFrame(
        {
            "Model version": backtest["model"].astype(str) + " " + backtest["version"].astype(str),
            "Metric": backtest["metric"].map(metric_label),
            "Mean": backtest["mean"].astype(float),
            "Band from": backtest["low"].astype(float),
            "to": backtest["high"].astype(float),
            "Folds": backtest["folds"].astype(int),
        }
    )
    return [
        "<h2>What the backtest expects</h2>",
        "<p class='note'>Each metric's mean over the folds of the model's backtest and its band (the mean give "
        "or take the configured number of standard deviations over folds), beside which the weekly scores are "
        "read.</p>",
        table_html(table.set_index("Model version")),
    ]


def render_monitor_page(report: MonitorReport, *, title: str = "Monitoring the served forecasts", top: int = 10) -> str:
    """The HTML page of a :class:`~riskmodel.MonitorReport`, written for a district analyst.

    A verdict (:func:`monitor_verdict`), the alarms table (week, when it could be known,
    model version, kind in words and why), the weekly curves of each model version
    (:func:`monitor_figure`), the weekly scores (folded), what the model's backtest
    expects, the ``top`` drifting features when the report has input drift, what was
    left unscored and the metrics' glossary. Only the district's weekly totals are shown
    (see the module's note on disclosure).

    Parameters
    ----------
    report : MonitorReport
        :func:`riskmodel.monitor`'s answer.
    title : str
    top : int
        How many drifting features per model version.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel import MonitorReport
    >>> from riskmodel.evaluation.monitor_page import render_monitor_page
    >>> weeks = pd.date_range("2024-01-01", periods=3, freq="W-MON")
    >>> scores = pd.DataFrame({"model": "m", "version": "1", "as_of": weeks,
    ...                        "observed": [10.0, 12, 9], "expected": [10.0, 10, 10], "oe_ratio": [1.0, 1.2, 0.9]})
    >>> page = render_monitor_page(MonitorReport(scores, scores, pd.DataFrame(), pd.DataFrame()))
    >>> "Healthy: no alarm over 3 weeks" in page and "data:image/png;base64," in page and "http" not in page
    True
    """
    scores = report.scores
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if len(scores):
        names = ", ".join(sorted(scores["model"].astype(str).unique()))
        days = scores["horizon_days"].dropna().unique() if "horizon_days" in scores else []
        window = f" over the {int(days[0])} days after it" if len(days) == 1 else " over its window"
        subtitle = f"Each week's served forecasts of {names}, scored against the cases that happened{window}."
        parts.append(f"<p class='subtitle'>{html.escape(subtitle)}</p>")
    parts.append(f"<p class='headline'>{html.escape(monitor_verdict(report))}</p>")
    parts.append(f"<p class='note'>{html.escape(_unscored(report.unscored))}</p>")
    if len(report.alarms):
        parts += ["<h2>Alarms</h2>", _alarm_table(report.alarms)]
    if len(scores) or len(report.weeks):
        curves = [c for c in CURVES if c in scores and scores[c].notna().any()]
        curves += ["first_week_oe_ratio"] * bool(len(report.weeks))
        parts += [
            "<h2>Weekly curves</h2>",
            *_weekly(report),
            "<details><summary>The weekly scores</summary>",
            _scores_table(report),
            "</details>",
            glossary_html(curves),
        ]
    if len(report.backtest):
        parts += _backtest(report.backtest)
    if len(report.drift):
        parts += _drift(report.drift, top)
    return page_html(title, parts)


def write_monitor_page(report: MonitorReport, path, **options) -> Path:
    """Write :func:`render_monitor_page` to ``path`` (its folder created); returns the path.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from riskmodel import MonitorReport
    >>> from riskmodel.evaluation.monitor_page import write_monitor_page
    >>> empty = MonitorReport(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    >>> path = write_monitor_page(empty, tempfile.mkdtemp() + "/monitor/page.html")
    >>> "nothing was scored" in path.read_text()
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_monitor_page(report, **options), encoding="utf-8")
    return path
