"""Changes of the simulated world from a given date: a new reporting platform, a
category that surges in one street.

Two kinds of change, and what each one moves:

* :class:`NewPlatform` changes what is *recorded*, not what happens. From its
  start, besides the cases drawn by the process, a platform with ``factor > 1``
  records ``factor - 1`` times the day's intensity of every grid and category in
  disputes that used to go unreported (Poisson draws, carrying the platform's
  ``source``); like patrol finds, they do not feed the self-excitation. With
  ``factor < 1`` each case from the start is recorded with probability
  ``factor`` (the others happened and still excite, but are not in ``cases``).
  The truth's :meth:`~riskmodel.datasets.Truth.expected_counts` stays the count
  of disputes the process draws, so from the start the cases recorded are
  ``factor`` times it on average.
* :class:`CategorySurge` changes what *happens*: from its start the background
  rate (base rate and season; not the injected waves) of one category in the
  grids of one street is multiplied by ``factor``, and the follow-ups those
  disputes trigger come with it. The truth knows: its expected counts include
  the surge.

The days before the earliest change are those of the unchanged simulation with
the same seed, down to every case's details and ``case_id``: the simulation
runs the unchanged days after it as well (so a run with changes costs about one
more simulation of those days), then winds the random stream back and runs them
again in the changed world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cases import build_cases
from .layout import Layout
from .presets import CATEGORIES, SimulationConfig
from .process import Process

__all__ = ["CategorySurge", "NewPlatform", "WorldChange"]


@dataclass(frozen=True)
class NewPlatform:
    """A new reporting platform: from ``start`` every grid's reporting is ``factor`` times what it was.

    Parameters
    ----------
    start : datetime-like
        First day the platform records (a midnight within the simulated period).
    factor : float
        Cases recorded from ``start`` over cases recorded without the platform,
        in expectation; above 0 (below 1 is a platform that closes).
    source : str
        The ``source`` of the cases the platform adds (with ``factor > 1``).

    Examples
    --------
    >>> from riskmodel.datasets import NewPlatform, simulate_district
    >>> change = NewPlatform(start="2023-07-03", factor=1.5, source="app")
    >>> district = simulate_district("tiny", seed=0, changes=[change])
    >>> app = district.cases[district.cases["source"] == "app"]
    >>> len(app) > 0, bool((app["reported_at"] >= "2023-07-03").all())
    (True, True)
    """

    start: str | pd.Timestamp
    factor: float
    source: str = "app"


@dataclass(frozen=True)
class CategorySurge:
    """A category whose true rate is ``factor`` times higher in one street from ``start``.

    Parameters
    ----------
    start : datetime-like
        First day of the surge (a midnight within the simulated period).
    category : str
        One of :data:`~riskmodel.datasets.CATEGORIES`.
    street : str, optional
        The ``grid_id`` of a unit at level ``street`` (default: the street with
        the most grids, the first of them if several).
    factor : float
        Multiplies the category's background rate in the street's grids; above 0.

    Examples
    --------
    >>> from riskmodel.datasets import CategorySurge, simulate_district
    >>> surge = CategorySurge(start="2023-07-03", category="neighbour_noise")
    >>> district = simulate_district("tiny", seed=0, changes=[surge])
    >>> district.truth.changes[["change", "category", "street", "factor"]].to_dict("records")
    [{'change': 'CategorySurge', 'category': 'neighbour_noise', 'street': 'S1', 'factor': 2.0}]
    """

    start: str | pd.Timestamp
    category: str
    street: str | None = None
    factor: float = 2.0


WorldChange = NewPlatform | CategorySurge


@dataclass(frozen=True)
class _Resolved:
    change: WorldChange
    day: int
    grids: np.ndarray  # grid numbers a surge acts on (empty for a platform)
    category: int  # a surge's category index (-1 for a platform)
    street: str | None


def resolve(changes, config: SimulationConfig, layout: Layout) -> list[_Resolved]:
    """The changes with their day numbers, grids and categories, or a ValueError naming the field."""
    start = pd.Timestamp(config.start)
    end = start + pd.Timedelta(days=config.days)
    if isinstance(changes, (NewPlatform, CategorySurge)):
        raise ValueError(f"changes must be a list of changes, got a single {type(changes).__name__}: pass [change]")
    out = []
    for i, change in enumerate(changes):
        if not isinstance(change, (NewPlatform, CategorySurge)):
            raise ValueError(f"changes[{i}] must be a NewPlatform or a CategorySurge, got {type(change).__name__}")
        name = type(change).__name__
        when = pd.Timestamp(change.start)
        if when != when.normalize() or not start <= when < end:
            raise ValueError(
                f"{name}.start must be a midnight within the simulated period {start.date()} to {end.date()} "
                f"(end excluded), got {change.start!r}"
            )
        if not (isinstance(change.factor, (int, float)) and math.isfinite(change.factor) and change.factor > 0):
            raise ValueError(f"{name}.factor must be a finite number above 0, got {change.factor!r}")
        day = (when - start).days
        if isinstance(change, NewPlatform):
            if not isinstance(change.source, str) or not change.source:
                raise ValueError(f"NewPlatform.source must be a non-empty string, e.g. 'app', got {change.source!r}")
            out.append(_Resolved(change, day, np.zeros(0, dtype=np.int64), -1, None))
            continue
        if change.category not in CATEGORIES:
            raise ValueError(f"CategorySurge.category must be one of {list(CATEGORIES)}, got {change.category!r}")
        if change.street is None:
            street = int(np.argmax(np.bincount(layout.street_of_grid, minlength=len(layout.street_ids))))
        elif change.street in layout.street_ids:
            street = layout.street_ids.get_loc(change.street)
        else:
            ids = layout.street_ids.tolist()
            shown = ", ".join(ids[:10]) + (f" ... ({len(ids)} streets)" if len(ids) > 10 else "")
            raise ValueError(
                f"CategorySurge.street must be a street's grid_id ({shown}) or None, got {change.street!r}"
            )
        grids = np.flatnonzero(layout.street_of_grid == street)
        out.append(_Resolved(change, day, grids, CATEGORIES.index(change.category), layout.street_ids[street]))
    return out


def changes_table(resolved: list[_Resolved], start: pd.Timestamp) -> pd.DataFrame:
    """One row per change: ``change``, ``start``, ``factor``, ``source``, ``category``, ``street``."""
    rows = [
        {
            "change": type(r.change).__name__,
            "start": start + pd.Timedelta(days=r.day),
            "factor": float(r.change.factor),
            "source": getattr(r.change, "source", None),
            "category": getattr(r.change, "category", None),
            "street": r.street,
        }
        for r in resolved
    ]
    columns = ["change", "start", "factor", "source", "category", "street"]
    return pd.DataFrame(rows, columns=columns).astype({"start": "datetime64[us]", "factor": "float64"})


class _Replay:
    """Draws whose first ``keep`` values are those that a draw of ``reference`` values
    from ``rng`` gives (as in the unchanged run), and the rest fresh from ``fresh``."""

    def __init__(self, rng: np.random.Generator, fresh: np.random.Generator, reference: int, keep: int):
        self.rng, self.fresh, self.reference, self.keep = rng, fresh, reference, keep

    def _draw(self, name: str, size, *args) -> np.ndarray:
        shape = (size,) if np.isscalar(size) else tuple(size)
        old = getattr(self.rng, name)(*args, size=(self.reference, *shape[1:]))[: self.keep]
        new = getattr(self.fresh, name)(*args, size=(shape[0] - self.keep, *shape[1:]))
        return np.concatenate([old, new])

    def random(self, size) -> np.ndarray:
        return self._draw("random", size)

    def integers(self, low, high, size) -> np.ndarray:
        return self._draw("integers", size, low, high)

    def normal(self, loc=0.0, scale=1.0, size=1) -> np.ndarray:
        return self._draw("normal", size, loc, scale)


def simulate_changed(
    resolved: list[_Resolved],
    config: SimulationConfig,
    layout: Layout,
    households: np.ndarray,
    process: Process,
    rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
):
    """Cases, escalation probabilities and the disputes (day, grid, category) of a changed world.

    ``rngs`` are the process's and the case builder's generators of the unchanged
    simulation, and one for the changes' own draws.
    """
    process_rng, case_rng, change_rng = rngs
    first = min(r.day for r in resolved)
    head, memory = process.simulate(first, process_rng)
    state = process_rng.bit_generator.state
    unchanged, _ = process.simulate(config.days, process_rng, first_day=first, memory=memory)
    process_rng.bit_generator.state = state
    process.surges = [(r.day, r.grids, r.category, r.change.factor) for r in resolved if r.category >= 0]
    platforms = [(r.day, r.change.factor, r.change.source) for r in resolved if isinstance(r.change, NewPlatform)]
    extra: list[tuple] = []

    def report(day: int, intensity: np.ndarray) -> None:
        for first_day, factor, name in platforms:
            if day >= first_day and factor > 1:
                counts = change_rng.poisson((factor - 1) * intensity)
                grid, category = np.nonzero(counts)
                named = np.full(len(grid), name)
                extra.append((np.full(len(grid), day), grid, category, counts[grid, category], named))

    tail, _ = process.simulate(config.days, process_rng, first_day=first, memory=memory, on_day=report)
    disputes = tuple(np.concatenate([h, t]) for h, t in zip(head, tail, strict=True))
    recorded = tail[3]
    for first_day, factor, _ in platforms:
        if factor < 1:
            recorded = np.where(tail[0] >= first_day, change_rng.binomial(recorded, factor), recorded)
    parts = [(*head, np.full(len(head[0]), "")), (*tail[:3], recorded, np.full(len(tail[0]), "")), *extra]
    day, grid, category, count, source = (np.concatenate(c) for c in zip(*parts, strict=True))
    keep, reference = int(head[3].sum()), int(head[3].sum() + unchanged[3].sum())
    replay = _Replay(case_rng, change_rng, reference, keep)
    cases, probability, _ = build_cases(
        config,
        layout,
        households,
        process.quarter_of_day,
        day,
        grid,
        category,
        count,
        replay,  # type: ignore[arg-type]
        source_of_cell=source,
        id_width=len(str(reference)),
    )
    pick = np.repeat(np.arange(len(disputes[3])), disputes[3])
    return cases, probability, tuple(d[pick] for d in disputes[:3])
