"""How the pure layers (the backtest, training) log without importing what logs.

:func:`riskmodel.evaluation.backtest` and :func:`riskmodel.train` hand a finished result
to a *tracker*: any object with the two methods of :class:`Tracker`. They take one as
``tracker=``; by default they use the one plugged in here by the package's
``__init__`` (the composition root), which logs to MLflow through
:mod:`riskmodel.tracking` and imports MLflow only when it is first asked to log. The
layers below ``tracking`` therefore never import it.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Tracker", "default", "plug"]


class Tracker(Protocol):
    """What a tracker does with finished results; each method returns the run id or the
    model URI, or None when the result could not be logged (it is never lost)."""

    def log_backtest(self, result, dataset, *, experiment: str) -> str | None: ...

    def log_model(self, trained, *, example, experiment: str, register: bool) -> str | None: ...


_plugged: list[Tracker] = []


def plug(tracker: Tracker) -> None:
    """Make ``tracker`` the default of every later backtest and training."""
    _plugged[:] = [tracker]


def default() -> Tracker:
    """The plugged-in tracker.

    Raises
    ------
    RuntimeError
        When none is plugged in (riskmodel's ``__init__`` plugs in MLflow's).
    """
    if not _plugged:
        raise RuntimeError("no tracker is plugged in: pass track=False, or tracker=...")
    return _plugged[0]
