"""Simulated districts whose truth is known."""

from .presets import CATEGORIES, PRESETS, SOURCES, SimulationConfig
from .simulate import SimulatedDistrict, simulate_district
from .truth import Truth

__all__ = [
    "CATEGORIES",
    "PRESETS",
    "SOURCES",
    "SimulatedDistrict",
    "SimulationConfig",
    "Truth",
    "simulate_district",
]
