"""Evaluation: metrics and the backtest that decide which model is better (pure, no MLflow)."""

from . import metrics
from .assessment import assess
from .backtest import BacktestResult, backtest
from .effects import visit_effect
from .metrics import wave_detection

__all__ = ["BacktestResult", "assess", "backtest", "metrics", "visit_effect", "wave_detection"]
