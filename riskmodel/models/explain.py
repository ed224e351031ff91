"""Why a unit scores high: each row's top drivers, as data and in words."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted, validate_data

from .baselines import Baseline
from .classifiers import GBMCount, GBMRisk, LogisticRisk
from .ensemble import EnsembleCount
from .scorecard import Scorecard

__all__ = ["explain", "describe_driver"]


def _n(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


_PATTERNS: list[tuple[str, Callable[..., str]]] = [
    (r"count_(\d+)d_(.+)", lambda v, w, c: f"{_n(v)} {c.replace('_', ' ')} cases in {w} days"),
    (r"count_(\d+)d", lambda v, w: f"{_n(v)} cases in {w} days"),
    (r"severe_(\d+)d", lambda v, w: f"{_n(v)} severe cases in {w} days"),
    (r"escalations_(\d+)d", lambda v, w: f"{_n(v)} escalations in {w} days"),
    (r"decay_(\d+)d", lambda v, h: f"{v:.1f} recent cases (weighted, half-life {h} days)"),
    (r"repeat_parties_(\d+)d", lambda v, w: f"{_n(v)} repeat parties in {w} days"),
    (r"trend_(\d+)_(\d+)d", lambda v, s, long: f"cases {v:.1f}x their usual pace ({s} vs {long} days)"),
    (r"days_since_last", lambda v: f"{v:.0f} days since the last case"),
    (r"backlog", lambda v: f"{_n(v)} open cases"),
    (r"unit_count_(\d+)d", lambda v, w: f"{_n(v)} cases in the unit in {w} days"),
    (r"unit_same_category_(\d+)d", lambda v, w: f"{_n(v)} cases of this kind in the unit in {w} days"),
    (r"party_prior_cases", lambda v: f"the party's {_n(v)} earlier cases"),
    (r"attr_(.+)", lambda v, a: f"{a.replace('_', ' ')} {v:g}"),
    (r"rate_all", lambda v: f"{v:.3g} cases a day over all history"),
    (r"shrunk_rate_(\d+)d", lambda v, h: f"{v:.3g} cases a day (smoothed, half-life {h} days)"),
    (r"shrunk_rate_all", lambda v: f"{v:.3g} cases a day (smoothed, all history)"),
    (r"count_last_period", lambda v: f"{_n(v)} cases in the last period"),
    (r"history_days", lambda v: f"{v:.0f} days of history"),
]


def describe_driver(name: str, value: float) -> str:
    """A feature and its value in words, e.g. ``"14 neighbour noise cases in 28 days"``.

    Examples
    --------
    >>> from riskmodel.models import describe_driver
    >>> describe_driver("parent_count_28d", 40.0)
    'parent unit: 40 cases in 28 days'
    """
    for prefix, words in (("parent_", "parent unit: "), ("nbr_", "neighbours on average: ")):
        if name.startswith(prefix):
            return words + describe_driver(name[len(prefix) :], value)
    for pattern, text in _PATTERNS:
        match = re.fullmatch(pattern, name)
        if match:
            return text(value, *match.groups())
    return f"{name.replace('_', ' ')} {value:g}"


#: How each unit of :func:`explain`'s contributions reads in its text.
UNITS: dict[str, Callable[[float], str]] = {
    "log-odds": lambda c: f"{c:+.1f} log-odds",
    "points": lambda c: f"{c:+.1f} points",
    "log expected cases": lambda c: f"expected cases ×{np.exp(c):.2f}",
    "expected cases": lambda c: f"{c:+.1f} expected cases",
}


def _contributions(model, X) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Per-row contributions to the model's score, the values, the feature names, and
    the contributions' unit (a key of :data:`UNITS`)."""
    check_is_fitted(model)
    if isinstance(model, EnsembleCount):  # the drivers of the member that adds most to the blend
        return _contributions(model.dominant_member(X), X)
    if isinstance(model, Baseline):
        frame = model.panel_frame(X)
        driver = model.panel_columns()[0]
        return model.predict_expected(frame)[:, None], frame[[driver]].to_numpy(float), [driver], "expected cases"
    values = validate_data(model, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")
    names = [str(n) for n in getattr(model, "feature_names_in_", [f"x{j}" for j in range(values.shape[1])])]
    if isinstance(model, (GBMRisk, GBMCount)):  # LightGBM's own SHAP values, in log-odds or log-count
        contributions = model.estimator_.booster_.predict(values, pred_contrib=True)[:, :-1]
        unit = "log expected cases" if isinstance(model, GBMCount) else "log-odds"
    elif isinstance(model, LogisticRisk):  # coefficient x standardised value
        *prepare, regression = model.estimator_.steps
        scaled = values
        for _, step in prepare:
            scaled = step.transform(scaled)
        contributions, unit = scaled * regression[1].coef_[0], "log-odds"
    elif isinstance(model, Scorecard):
        contributions, unit = model.predict_points(X)[model.feature_names_].to_numpy(), "points"
    else:
        raise TypeError(f"explain does not know {type(model).__name__}")
    return contributions, values, names, unit


def explain(model, X, *, top: int = 3) -> pd.DataFrame:
    """The features that raise each row's score most, as data and as text.

    Contributions, and how the text states them (the ``unit`` column):

    - :class:`GBMRisk`: LightGBM's per-row contributions (``pred_contrib``, SHAP
      values) to the log-odds before calibration: "(+0.9 log-odds)".
    - :class:`GBMCount`: the same on the log of the expected count; the text gives
      the factor they multiply the expected count by, "(expected cases ×1.60)" (the
      ``contribution_k`` columns keep the logarithm).
    - :class:`LogisticRisk`: coefficient times standardised value, the log-odds
      added to those of a unit at the training mean: "(+0.9 log-odds)".
    - :class:`Scorecard`: the feature's points ("(+14.5 points)"; every ``pdo``
      points double the odds).
    - A baseline: its one input, and its expected count: "(+1.2 expected cases)".
    - :class:`EnsembleCount`: those of the member that adds most to the blend on ``X``.

    Parameters
    ----------
    model : fitted model of :mod:`riskmodel.models`
    X : DataFrame
        The rows to explain (a panel's or the case features' ``X``).
    top : int
        How many drivers per row.

    Returns
    -------
    DataFrame
        Indexed like ``X``: ``driver_1``, ``value_1``, ``contribution_1``, ...,
        ``unit`` (of the contributions: ``"log-odds"``, ``"log expected cases"``,
        ``"points"`` or ``"expected cases"``) and ``text``, e.g. "14 neighbour
        noise cases in 28 days (+0.9 log-odds); ...".

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from riskmodel.models import Scorecard, explain
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"count_28d_neighbour_noise": rng.poisson(2, 500).astype(float),
    ...                   "backlog": rng.poisson(1, 500).astype(float)})
    >>> y = (rng.random(500) < 0.1 * X["count_28d_neighbour_noise"]).astype(int)
    >>> explain(Scorecard(n_bins=3).fit(X, y), X.iloc[[int(X.iloc[:, 0].argmax())]], top=1)["text"].iloc[0]
    '9 neighbour noise cases in 28 days (+14.5 points)'
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    contributions, values, names, unit = _contributions(model, X)
    top = min(top, contributions.shape[1])
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
    rows = np.arange(len(contributions))[:, None]
    chosen, amount, value = np.array(names)[order], contributions[rows, order], values[rows, order]
    out: dict[str, Any] = {}
    for k in range(top):
        out[f"driver_{k + 1}"] = chosen[:, k]
        out[f"value_{k + 1}"] = value[:, k]
        out[f"contribution_{k + 1}"] = amount[:, k]
    out["unit"] = unit
    words = UNITS[unit]
    out["text"] = [
        "; ".join(f"{describe_driver(n, v)} ({words(c)})" for n, v, c in zip(ns, vs, cs, strict=True))
        for ns, vs, cs in zip(chosen, value, amount, strict=True)
    ]
    return pd.DataFrame(out, index=getattr(X, "index", None))
