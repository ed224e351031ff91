"""Every family with its default settings: what the demo and the benchmarks compare."""

from __future__ import annotations

from .baselines import (
    HistoricalRateBaseline,
    KDEBaseline,
    LastPeriodBaseline,
    SmoothedRateBaseline,
    TimeWeightedRateBaseline,
)
from .classifiers import GBMCount, GBMRisk, LogisticRisk
from .ensemble import EnsembleCount
from .escalation import EscalationClassifier
from .scorecard import Scorecard

__all__ = ["case_models", "grid_models"]


def grid_models(**lightgbm) -> dict:
    """A fresh, unfitted model of every grid-risk family, by name, the simplest first.

    ``lightgbm`` options (for example ``n_jobs=1``) go to the LightGBM models.

    Examples
    --------
    >>> from riskmodel.models import grid_models
    >>> list(grid_models())  # doctest: +NORMALIZE_WHITESPACE
    ['LastPeriodBaseline', 'HistoricalRateBaseline', 'TimeWeightedRateBaseline', 'SmoothedRateBaseline',
     'KDEBaseline', 'LogisticRisk', 'GBMRisk', 'GBMCount', 'Scorecard', 'EnsembleCount']
    """
    return {
        "LastPeriodBaseline": LastPeriodBaseline(),
        "HistoricalRateBaseline": HistoricalRateBaseline(),
        "TimeWeightedRateBaseline": TimeWeightedRateBaseline(),
        "SmoothedRateBaseline": SmoothedRateBaseline(),
        "KDEBaseline": KDEBaseline(bandwidth_m=700, half_life=60),
        "LogisticRisk": LogisticRisk(),
        "GBMRisk": GBMRisk(**lightgbm),
        "GBMCount": GBMCount(**lightgbm),
        "Scorecard": Scorecard(),
        "EnsembleCount": EnsembleCount(),
    }


def case_models(**lightgbm) -> dict:
    """A fresh, unfitted model of every case-escalation family, by name.

    Examples
    --------
    >>> from riskmodel.models import case_models
    >>> list(case_models())
    ['EscalationClassifier', 'LogisticRisk']
    """
    return {"EscalationClassifier": EscalationClassifier(**lightgbm), "LogisticRisk": LogisticRisk()}
