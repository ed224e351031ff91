"""The report's words: metric names and meanings, horizons, and a headline sentence per target."""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["GLOSSARY", "headline_sentence", "metric_label"]

#: Each metric's name for a reader and what it means (higher is better unless said).
GLOSSARY: dict[str, tuple[str, str]] = {
    "hit_rate_at_5pct": ("Hit rate at 5%", "share of the period's cases in the 5% of units ranked riskiest"),
    "hit_rate_at_1pct": ("Hit rate at 1%", "the same in the riskiest 1% of units"),
    "hit_rate_at_5pct_oracle_ratio": (
        "Hit rate at 5%, of best possible",
        "the hit rate as a share of the simulator's true risk (the oracle's); simulated data only",
    ),
    "roc_auc": ("ROC AUC", "chance that a unit (or case) with the outcome is ranked above one without; 0.5 is chance"),
    "roc_auc_oracle_ratio": ("ROC AUC, of best possible", "the ROC AUC as a share of the oracle's"),
    "pai_at_5pct": ("PAI at 5%", "hit rate at 5% divided by the share of the area those units cover"),
    "pei_star_at_5pct": (
        "PEI* at 5%",
        "cases caught at 5% as a share of the most that 5% of units could have caught in hindsight",
    ),
    "average_precision": ("Average precision", "precision averaged over every cut of the ranking"),
    "brier": ("Brier score", "mean squared error of the probability; lower is better"),
    "ece": ("Calibration error", "mean gap between predicted probability and observed frequency; lower is better"),
    "wave_detection_rate": ("Waves detected", "share of waves (runs of unusual counts) that raised an alarm"),
    "wave_median_delay_days": ("Median delay (days)", "days from a wave's start to its alarm; lower is better"),
    "false_alarms_per_1000_unit_weeks": (
        "False alarms per 1000 unit-weeks",
        "alarms outside any wave; lower is better",
    ),
    "crps": ("CRPS", "error of the whole count distribution; lower is better"),
    "coverage_80": ("80% interval coverage", "share of counts inside the 80% interval; 0.80 is right"),
    "log_loss": ("Log loss", "error of the probability in log scale; lower is better"),
    "poisson_deviance": ("Poisson deviance", "error of the expected count; lower is better"),
    "oe_ratio": (
        "Observed over expected",
        "the cases that happened over the cases the forecast expected, in all the units; 1 is right",
    ),
    "first_week_oe_ratio": (
        "Observed over expected, first week",
        "the same over the first week of each forecast's window, known a week after it: what the calibration "
        "alarms read",
    ),
    "interval_coverage": (
        "Interval coverage",
        "share of units whose count fell inside the forecast's interval; the interval's level is right",
    ),
    "cold_start_share": ("Cold starts", "share of units the model was not trained on; lower is better"),
    "hit_rate_at_capacity": ("Hit rate at capacity", "share of the cases in as many top units as can be visited"),
    "pai_at_capacity": ("PAI at capacity", "hit rate at capacity divided by the share of the area it covers"),
}
_SUFFIXES = {"_fold_std": " ± over folds", "_street_std": " ± over streets", "_oracle_ratio": ", of best possible"}


def metric_label(column: str) -> str:
    """A leaderboard column's name for a reader.

    Examples
    --------
    >>> from riskmodel.evaluation.report_words import metric_label
    >>> metric_label("hit_rate_at_5pct"), metric_label("roc_auc_fold_std"), metric_label("log_loss_pooled")
    ('Hit rate at 5%', 'ROC AUC ± over folds', 'Log loss pooled')
    """
    if column in GLOSSARY:
        return GLOSSARY[column][0]
    for suffix, words in _SUFFIXES.items():
        if column.endswith(suffix):
            return metric_label(column[: -len(suffix)]) + words
    words = re.sub(r"_at_(\d+)pct", r" at \1%", column).replace("_", " ")
    return words[:1].upper() + words[1:]


def _best(board: pd.DataFrame) -> str:
    return next((m for m in board.index if m != "oracle"), board.index[0])


def headline_sentence(
    board: pd.DataFrame, *, horizon: str = "28 days", unit: str = "grid", what: str = "cases", model: str | None = None
) -> str:
    """One sentence of what ``model`` (default: the best, the first row that is not the
    oracle) does, in the target's headline metric (grid, escalation or waves: told by
    the columns).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.evaluation.report_words import headline_sentence
    >>> board = pd.DataFrame({"hit_rate_at_5pct": [0.19], "hit_rate_at_5pct_oracle_ratio": [0.82]},
    ...                      index=pd.Index(["GBMCount"], name="model"))
    >>> headline_sentence(board, horizon="1 month", unit="grid")
    "GBMCount finds 19% of the next month's cases in 5% of the grid units: 82% of the best possible."
    """
    model = _best(board) if model is None else model
    row = board.loc[model]
    if "hit_rate_at_5pct" in board:
        ratio = row.get("hit_rate_at_5pct_oracle_ratio")
        tail = f": {ratio:.0%} of the best possible." if pd.notna(ratio) else " (a random choice finds 5%)."
        span = f"next {horizon[2:]}'s" if horizon.startswith("1 ") else f"next {horizon}'"
        return f"{model} finds {row['hit_rate_at_5pct']:.0%} of the {span} {what} in 5% of the {unit} units{tail}"
    if "wave_detection_rate" in board:
        delay = row.get("wave_median_delay_days")
        after = f", a median of {delay:.0f} days after they start" if pd.notna(delay) else ""
        return f"{model} raises an alarm for {row['wave_detection_rate']:.0%} of the waves{after}."
    if "roc_auc" in board:
        return (
            f"{model} ranks a case that escalates above one that does not {row['roc_auc']:.0%} of the time "
            f"(ROC AUC {row['roc_auc']:.2f}; 0.50 is chance)."
        )
    return f"{model} is first."
