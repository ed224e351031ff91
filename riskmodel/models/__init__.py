"""Models with one protocol: baselines, classifiers, expected counts, scorecard, tiers,
anomaly detection, case escalation, explanations, and the uplift of a visit.

Every grid-risk model is a scikit-learn estimator; ``predict_proba(X)[:, 1]`` is the
probability of at least one target case in the horizon and ``predict_expected(X)``
the expected count. Higher means riskier.
"""

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
from .explain import describe_driver, explain
from .outliers import ProfileOutlier
from .roster import case_models, grid_models
from .scorecard import Scorecard
from .spikes import SpikeDetector
from .tiers import TIERS, TierPolicy, probability_saturated
from .uplift import UpliftRegressor

__all__ = [
    "TIERS",
    "EnsembleCount",
    "EscalationClassifier",
    "GBMCount",
    "GBMRisk",
    "HistoricalRateBaseline",
    "KDEBaseline",
    "LastPeriodBaseline",
    "LogisticRisk",
    "ProfileOutlier",
    "Scorecard",
    "SmoothedRateBaseline",
    "SpikeDetector",
    "TierPolicy",
    "probability_saturated",
    "TimeWeightedRateBaseline",
    "UpliftRegressor",
    "case_models",
    "describe_driver",
    "explain",
    "grid_models",
]
