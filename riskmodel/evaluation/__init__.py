"""Evaluation: metrics and the backtest that decide which model is better (pure, no MLflow)."""

from . import metrics
from .assessment import assess
from .backtest import BacktestResult, backtest
from .effects import visit_effect
from .metrics import wave_detection
from .selection import Choice, choose_champion

__all__ = [
    "BacktestResult",
    "Choice",
    "assess",
    "backtest",
    "choose_champion",
    "metrics",
    "visit_effect",
    "wave_detection",
]
