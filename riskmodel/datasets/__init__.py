"""Simulated districts whose truth is known."""

from .changes import CategorySurge, NewPlatform
from .platforms import export_platforms
from .policies import NoVisits, Oracle, Policy, RandomVisits
from .presets import CATEGORIES, PRESETS, SOURCES, SimulationConfig
from .simulate import SimulatedDistrict, simulate_district
from .truth import Truth
from .visits import PREVENTABLE

__all__ = [
    "CATEGORIES",
    "CategorySurge",
    "NewPlatform",
    "PREVENTABLE",
    "PRESETS",
    "NoVisits",
    "Oracle",
    "Policy",
    "RandomVisits",
    "SOURCES",
    "SimulatedDistrict",
    "SimulationConfig",
    "Truth",
    "export_platforms",
    "simulate_district",
]
