"""The report's prevention section: the visits made, what they prevented, the policies
compared, and the communities judged against their own risk."""

from __future__ import annotations

import base64
import html
import io
import warnings

import pandas as pd

from ..contract import Dataset
from .assessment import assess
from .disclosure import suppress_small_counts
from .effects import visit_effect

__all__ = ["markdown_table", "prevention_section"]

_EFFECT_COLUMNS = ["by", "value", "design", "n_treated", "n_control", "effect", "ci_low", "ci_high", "relative"]


def _table(frame: pd.DataFrame, index: bool = True) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.3f}", na_rep="", border=0, escape=True, index=index)


def _note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def _true_effect(dataset: Dataset, horizon: int) -> tuple[float, float] | None:
    """A simulation's true cases prevented per explore visit ordered (closed windows; a
    visit that did not reach its unit prevents nothing) and per visit made; None without
    a truth or explore rows."""
    truth = getattr(dataset, "truth", None)
    plans = dataset.plans
    if truth is None or plans is None or dataset.visits is None or not len(dataset.visits):
        return None
    made = truth.visit_effect(horizon, per="visit", window="week").merge(
        dataset.visits[["visit_id", "plan_id"]], on="visit_id"
    )
    closed = plans[(plans["assignment"] == "explore") & (plans["week"] + pd.Timedelta(days=horizon) <= dataset.end)]
    if not len(closed):
        return None
    drawn = made.merge(closed[["plan_id", "grid_id"]], on=["plan_id", "grid_id"])
    return float(drawn["prevented"].sum() / len(closed)), float(made["prevented"].mean())


def markdown_table(text: str) -> str:
    """The HTML of a markdown file holding a pipe table (a committed benchmark result):
    its prose lines as notes, its table as a table, everything escaped.

    Examples
    --------
    >>> from riskmodel.evaluation.prevention_report import markdown_table
    >>> page = markdown_table("# Policies\\n\\n| policy | per 100 |\\n| --- | --- |\\n| risk | 4.1 |\\n")
    >>> "<td>risk</td>" in page and "<th>per 100</th>" in page
    True
    """
    rows = [line.strip().strip("|").split("|") for line in text.splitlines() if line.strip().startswith("|")]
    rows = [[cell.strip() for cell in row] for row in rows if not all(set(c.strip()) <= set("-: ") for c in row)]
    prose = [line.lstrip("# ").strip() for line in text.splitlines() if line.strip() and not line.startswith("|")]
    if not rows:
        return "".join(_note(line) for line in prose)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return (
        "".join(_note(line) for line in prose) + f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def prevention_section(
    dataset: Dataset,
    model,
    *,
    horizon: int = 28,
    level: str = "community",
    policies: str | None = None,
    weeks: int = 12,
    k: int = 3,
) -> str:
    """The HTML of the report's prevention section.

    Visits by assignment and outcome; the estimated effect of a visit on
    resident-reported disputes with its 90% interval (:func:`visit_effect`, overall
    and by kind); the disputes the visits prevented (the effect times the visits made,
    with the interval); the policy comparison (``policies``, a committed benchmark
    table in markdown, or a note that it is not measured yet); and the funnel plot of
    :func:`assess` for the last ``weeks`` weeks of the data with ``model``.

    Parameters
    ----------
    dataset : Dataset
        Data with ``visits`` (and ``plans`` for the randomised estimate).
    model : TrainedModel
        A grid-target model, for the assessment.
    horizon : int
        Days after a plan's week whose cases a visit is judged on.
    level : str
        The level of the units assessed.
    policies : str, optional
        The text of ``bench/results/prevention_policies.md``.
    weeks : int
        Weeks before the end of the data that the assessment covers.
    k : int
        The smallest count of cases shown for a unit of the lowest (micro-grid)
        level (see :mod:`~riskmodel.evaluation.disclosure`): smaller counts read
        "< k" and their ratios are left out.

    Returns
    -------
    str
        HTML to put under a heading (see :func:`~riskmodel.evaluation.report.render_report`'s
        ``sections``).

    Examples
    --------
    >>> from riskmodel import train
    >>> from riskmodel.datasets import RandomVisits, simulate_district
    >>> from riskmodel.evaluation.prevention_report import prevention_section
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0, policy=RandomVisits(capacity=2))
    >>> trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> page = prevention_section(district, trained)
    >>> "Visits by assignment" in page and "not measured yet" in page and "data:image/png" in page
    True
    """
    visits = dataset.visits if dataset.visits is not None else pd.DataFrame(columns=["assignment", "outcome"])
    parts = ["<h3>Visits by assignment</h3>"]
    made = pd.crosstab(visits["assignment"].fillna("ad_hoc"), visits["outcome"], margins=True, margins_name="total")
    parts.append(_table(made.rename_axis(index="assignment", columns=None)))
    if dataset.plans is not None:
        controls = int((dataset.plans["assignment"] == "control").sum())
        parts.append(_note(f"{controls} units of the plans' pools were left unvisited as the comparison (control)."))

    parts.append(f"<h3>Estimated effect of a visit ({horizon} days, resident-reported disputes)</h3>")
    try:
        effect = visit_effect(dataset, horizon=horizon, by="kind")
    except ValueError as error:
        parts.append(_note(f"Not estimated: {error}"))
        effect = None
    if effect is not None:
        parts.append(_note("Cases prevented per visit (positive: fewer cases), with the 90% interval."))
        parts.append(_table(effect[_EFFECT_COLUMNS], index=False))
        parts += [_note(n) for n in effect["note"].dropna().unique()]
        truth = _true_effect(dataset, horizon)
        if truth is not None:
            parts.append(
                _note(
                    f"The simulator's truth: {truth[0]:.3f} cases prevented per visit ordered at the margin "
                    f"(the explore units whose window closed), {truth[1]:.3f} per visit made."
                )
            )
        overall = effect.iloc[0]
        n = len(visits)
        parts.append("<h3>Disputes prevented</h3>")
        parts.append(
            _note(
                f"{overall['effect'] * n:.1f} resident-reported disputes prevented by the {n} visits made "
                f"(90% interval {overall['ci_low'] * n:.1f} to {overall['ci_high'] * n:.1f}): the "
                f"{overall['design']} estimate per visit times the visits, which takes the effect at the "
                "margin of the plans for that of every visit."
            )
        )

    parts.append("<h3>Policies compared</h3>")
    if policies:
        parts.append(markdown_table(policies))
    else:
        parts.append(_note("The policy comparison is not measured yet (bench/prevention.py policies writes it)."))

    end = pd.Timestamp(dataset.end)
    period = (end - pd.Timedelta(weeks=weeks), end)
    parts.append(f"<h3>Assessment of each {html.escape(level)}, last {weeks} weeks</h3>")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            assessment = assess(dataset, model, period, level=level)
    except ValueError as error:
        parts.append(_note(f"Not assessed: {error}"))
        return "\n".join(parts)
    outside = assessment[assessment["flag"] != "within"]
    parts.append(
        _note(
            f"Resident-reported disputes from {period[0].date()} to {period[1].date()} against the final model's "
            f"expected count: {len(outside)} of {len(assessment)} outside the 95% limits."
        )
    )
    parts += [_note(f"Note: {w.message}") for w in caught]
    from .plots import funnel_plot

    png = io.BytesIO()
    funnel_plot(assessment).savefig(png, format="png", dpi=100)
    encoded = base64.b64encode(png.getvalue()).decode()
    parts.append(f"<img alt='funnel plot' title='funnel plot' src='data:image/png;base64,{encoded}'>")
    if len(outside):
        shown = outside[["grid_id", "observed", "expected", "ratio", "flag"]].head(10)
        if level == dataset.levels[-1]:  # the micro-grid level: small counts, and their ratios, hidden
            small = shown["observed"].between(1, k - 1)
            shown = suppress_small_counts(shown.assign(ratio=shown["ratio"].mask(small)), ["observed"], k=k)
        parts.append(_table(shown, index=False))
    return "\n".join(parts)
