"""The prevention loop: plan visits from a forecast, and the policies that simulate it."""

from .plans import plan_visits

__all__ = ["plan_visits"]
