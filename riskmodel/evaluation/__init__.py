"""Evaluation: metrics and the backtest that decide which model is better (pure, no MLflow)."""

from . import metrics
from .alarms import backtest_band, backtest_expectation, served_alarms
from .assessment import assess
from .backtest import BacktestResult, backtest
from .drift import drift_features, feature_drift, input_drift_alarms
from .effects import visit_effect
from .linkage_scores import bcubed_scores, pairwise_scores
from .metrics import wave_detection
from .monitor_page import render_monitor_page, write_monitor_page
from .monitoring import MonitorSettings, first_weeks, score_served
from .selection import Choice, choose_champion

__all__ = [
    "BacktestResult",
    "Choice",
    "MonitorSettings",
    "assess",
    "backtest",
    "backtest_band",
    "backtest_expectation",
    "bcubed_scores",
    "choose_champion",
    "drift_features",
    "feature_drift",
    "first_weeks",
    "input_drift_alarms",
    "metrics",
    "pairwise_scores",
    "render_monitor_page",
    "score_served",
    "served_alarms",
    "visit_effect",
    "wave_detection",
    "write_monitor_page",
]
