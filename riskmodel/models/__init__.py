"""Grid-risk models: baselines, classifiers and expected counts, with one protocol.

Every model is a scikit-learn estimator; ``predict_proba(X)[:, 1]`` is the
probability of at least one target case in the horizon and ``predict_expected(X)``
the expected count. Higher means riskier.
"""

from .baselines import HistoricalRateBaseline, KDEBaseline, LastPeriodBaseline
from .classifiers import GBMCount, GBMRisk, LogisticRisk

__all__ = [
    "GBMCount",
    "GBMRisk",
    "HistoricalRateBaseline",
    "KDEBaseline",
    "LastPeriodBaseline",
    "LogisticRisk",
]
