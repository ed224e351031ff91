"""``simulate_district``: a district whose truth is known."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..contract import Dataset
from .attributes import build_attributes
from .cases import build_cases
from .changes import WorldChange, changes_table, resolve, simulate_changed
from .layout import build_layout
from .policies import Policy
from .presets import make_config
from .process import Process, draw_waves
from .reports import add_duplicates
from .truth import Truth
from .visits import VisitEffects
from .weekly import WeeklyRounds, policy_mondays

__all__ = ["SimulatedDistrict", "simulate_district"]


@dataclass(frozen=True, eq=False, repr=False)
class SimulatedDistrict(Dataset):
    """A :class:`~riskmodel.Dataset` with the simulator's :class:`Truth`."""

    truth: Truth | None = None


def simulate_district(
    preset: str = "small",
    seed: int = 0,
    *,
    policy: Policy | None = None,
    policy_start=None,
    changes: Sequence[WorldChange] | None = None,
    **overrides,
) -> SimulatedDistrict:
    """Simulate a district: units, attribute history, cases, and the truth.

    Units form the hierarchy street > community > grid > microgrid on a square
    lattice with queen adjacency between grids. Grid attributes drift and events
    switch on and off (construction, demolition, a new property manager); the
    history reports them quarterly with noise. Disputes per grid and category
    follow a log-linear base rate in the attributes and a spatially smooth latent
    factor no attribute reveals, weekly and yearly seasons (summer noise, unpaid
    wages before Spring Festival), injected waves, and self-excitation in the
    grid and its neighbours (see :mod:`riskmodel.datasets.process`). Cases get a
    building, a time of day, severity, source, a party (some households come back
    again and again), a resolution delay, and an escalation whose hazard grows
    with severity, the party's earlier cases and the grid's backlog, so that
    long-open cases escalate more. About a quarter of the disputes are then
    reported again on one to three other platforms (:mod:`riskmodel.datasets.reports`:
    later, with typos in the party key and a free-text ``description``); every case
    carries its dispute's ``dispute_id`` (the first report's ``case_id``), and the
    first reports are the cases of ``duplicate_share=0``. Everything after the end
    of the period is cut off as in a real extract.

    Parameters
    ----------
    preset : {"tiny", "small", "district", "province"}
        About 25 grids over 1 year, 256 over 2, 3,000 over 3, 100,000 over 3.
    seed : int
        The same seed gives identical frames and truth.
    policy : Policy, optional
        Who to visit each week (:class:`~riskmodel.datasets.Policy`). Without one
        (the default) the frames are exactly those of a simulation without visits.
        With one, the days run as without (the same random stream: a policy that
        visits nothing gives the same cases; once a visit changes a rate, numpy's
        Poisson sampler takes a different number of draws and the runs drift
        apart), but each Monday from ``policy_start`` the policy gets the data
        recorded before it (case details drawn afresh from a seed of the week
        through the same case builder; days, grids and categories are the true
        ones) and an :class:`~riskmodel.datasets.Oracle`, and its answer's rows
        become ``plans`` (those with a ``plan_id``) and ``visits`` (all but
        ``control`` rows), made on a random weekday between 9:00 and 17:00 by the
        community's team. A visit reaches its grid with probability
        ``visit_reach`` and then acts from the next day
        (:mod:`riskmodel.datasets.visits`) and finds a Poisson number of latent
        disputes, recorded as cases with ``origin="patrol"``, ``source="grid_worker"``
        at the visit time, that do not feed the self-excitation. Its outcome is
        ``not_reached``; ``issue_found`` or (half of them) ``resolved_on_site`` when it
        found something; ``no_issue`` otherwise. Every case then has an ``origin``.
    policy_start : datetime-like, optional
        The first Monday the policy is asked (default: the first Monday at least 52
        weeks before the end, or the first Monday of the period).
    **overrides
        Any field of :class:`~riskmodel.datasets.SimulationConfig`, for example
        ``n_grids=500`` or ``excitation_self=0``.

    Returns
    -------
    SimulatedDistrict
        The dataset (``cases``, ``grids``, ``grid_history``, ``adjacency``,
        ``as_of`` = end of the period; ``visits`` and ``plans`` with a policy) and
        ``.truth``.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> district = simulate_district("tiny", seed=0)
    >>> sorted(district.grids["level"].unique())
    ['community', 'grid', 'microgrid', 'street']
    >>> district.truth.expected_counts("2023-06-01", 7).index.name
    'grid_id'
    >>> reports = district.cases.groupby("dispute_id").size()
    >>> int(reports.max()) <= 4, bool(0.15 < (reports > 1).mean() < 0.35)
    (True, True)
    """
    config = make_config(preset, overrides)
    seeds = np.random.SeedSequence(seed).spawn(10)  # children are keyed by index: adding one keeps the others
    (
        layout_rng,
        attribute_rng,
        wave_rng,
        process_rng,
        case_rng,
        effect_rng,
        visit_rng,
        patrol_rng,
        change_rng,
        report_rng,
    ) = (np.random.default_rng(s) for s in seeds)
    if changes and policy is not None:
        raise ValueError("changes and policy cannot be combined yet: simulate one or the other")
    mondays = [] if policy is None else policy_mondays(config, policy_start)
    layout = build_layout(config, layout_rng)
    resolved = resolve(changes or [], config, layout)
    attributes = build_attributes(config, layout.grid_ids, layout.neighbours, attribute_rng)
    waves = draw_waves(config, layout, attributes.base_rate, wave_rng)
    process = Process.build(
        config, attributes.base_rate, attributes.quarter_starts, waves, layout.neighbours, horizon_days=366
    )
    process.effects = VisitEffects.draw(config, attributes.base_rate, effect_rng)
    start = pd.Timestamp(config.start).as_unit("us")
    households = attributes.true["households"]
    visits = plans = None
    if resolved:
        rngs = (process_rng, case_rng, change_rng)
        cases, probability, disputes = simulate_changed(resolved, config, layout, households, process, rngs)
    elif policy is None:
        (day, grid, category, count), _ = process.simulate(config.days, process_rng)
        cases, probability, cells = build_cases(
            config, layout, households, process.quarter_of_day, day, grid, category, count, case_rng
        )
    else:
        rounds = WeeklyRounds(
            config,
            layout,
            attributes,
            process,
            policy,
            (process_rng, visit_rng, patrol_rng),
            detail_seed=int(seeds[5].generate_state(1)[0]),
        )
        rounds.run(mondays)
        cases, probability, cells = rounds.build_cases(config.days, case_rng)
        visits, plans = rounds.visits_table(), rounds.plans_table()
    if not resolved:
        disputes = tuple(cell[~cells[3]] for cell in cells[:3])
    cases, probability = add_duplicates(cases, probability, config, layout, report_rng)
    truth = Truth(
        process=process,
        layout=layout,
        start=start,
        n_days=config.days,
        case_day=disputes[0],
        case_grid=disputes[1],
        case_category=disputes[2],
        escalation_probability=pd.Series(probability, index=pd.Index(cases["case_id"]), name="escalation_probability"),
        latent=attributes.latent,
        visits=visits,
        changes=changes_table(resolved, start),
    )
    return SimulatedDistrict(
        cases=cases,
        grids=layout.grids,
        grid_history=attributes.observed,
        adjacency=layout.adjacency,
        as_of=start + pd.Timedelta(days=config.days),
        visits=visits,
        plans=plans,
        truth=truth,
    )
