"""A simulation with a policy: the days run as without one, and every Monday the
policy says which grids the workers visit that week."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import Dataset
from ..privacy import hash_keys
from .cases import build_cases
from .policies import Oracle, Policy
from .presets import SimulationConfig
from .visits import PREVENTABLE_MASK

_TEAM_HASH_KEY = b"riskmodel simulated teams"
_PLAN_ASSIGNMENTS = ("rank", "explore", "control")
_WORK_START, _WORK_END = 9 * 3600, 17 * 3600
_RESOLVED_ON_SITE = 0.5  # share of visits that found something and settled it there and then


def policy_mondays(config: SimulationConfig, policy_start) -> list[int]:
    """Day numbers of the Mondays on which the policy is asked, from ``policy_start``
    (default: the first Monday at least 52 weeks before the end, or the first Monday)."""
    start = pd.Timestamp(config.start)
    end = start + pd.Timedelta(days=config.days)
    if policy_start is None:
        earliest = max(start, end - pd.Timedelta(weeks=52))
        first = earliest + pd.Timedelta(days=(7 - earliest.day_of_week) % 7)
    else:
        first = pd.Timestamp(policy_start)
        if first.day_of_week != 0 or first != first.normalize() or not start <= first < end:
            raise ValueError(
                f"policy_start must be a Monday (midnight) within the period {start.date()} to {end.date()}, "
                f"got {policy_start!r}"
            )
    return list(range((first - start).days, config.days, 7))


class WeeklyRounds:
    """The state of a simulation with a policy: cells, patrol finds, visits and plans."""

    def __init__(self, config, layout, attributes, process, policy: Policy, rngs, detail_seed: int):
        self.config, self.layout, self.attributes, self.process, self.policy = (
            config,
            layout,
            attributes,
            process,
            policy,
        )
        self.process_rng, self.visit_rng, self.patrol_rng = rngs
        self.detail_seed = detail_seed
        self.start = pd.Timestamp(config.start).as_unit("us")
        self.cells: list[tuple] = []
        self.patrol: list[tuple] = []
        self.visits: list[pd.DataFrame] = []
        self.plans: list[pd.DataFrame] = []
        self.week: dict[str, np.ndarray] = {}
        self.pseudonyms: dict = {}
        teams = hash_keys(pd.Series(layout.community_ids), _TEAM_HASH_KEY).to_numpy()
        self.team_of_grid = teams[layout.community_of_grid]

    def run(self, mondays: list[int]) -> None:
        memory, day = None, 0
        for monday in [*mondays, self.config.days]:
            cells, memory = self.process.simulate(
                monday, self.process_rng, first_day=day, memory=memory, on_day=self._patrol
            )
            self.cells.append(cells)
            day = monday
            if monday < self.config.days:
                week = self.start + pd.Timedelta(days=monday)
                oracle = Oracle(self.process, monday, memory, self.layout.grid_ids)
                self._dispatch(self.policy.plan(self.observed(monday), week, oracle), monday)

    def case_cells(self, end_day: int):
        """(day, grid, category, count, patrol second or -1) of the cases before ``end_day``."""
        day, grid, category, count = (np.concatenate(parts) for parts in zip(*self.cells, strict=True))
        keep = day < end_day
        empty = (np.zeros(0, dtype=np.int64),) * 4
        p_day, p_grid, p_category, p_second = (np.concatenate(parts) for parts in zip(empty, *self.patrol, strict=True))
        p_keep = p_day < end_day
        return (
            np.concatenate([day[keep], p_day[p_keep]]),
            np.concatenate([grid[keep], p_grid[p_keep]]),
            np.concatenate([category[keep], p_category[p_keep]]),
            np.concatenate([count[keep], np.ones(p_keep.sum(), dtype=np.int64)]),
            np.concatenate([np.full(keep.sum(), -1, dtype=np.int64), p_second[p_keep]]),
        )

    def build_cases(self, end_day: int, rng: np.random.Generator, probabilities: bool = True):
        day, grid, category, count, second = self.case_cells(end_day)
        households = self.attributes.true["households"]
        return build_cases(
            self.config,
            self.layout,
            households,
            self.process.quarter_of_day,
            day,
            grid,
            category,
            count,
            rng,
            end_day=end_day,
            patrol_second=second,
            pseudonyms=self.pseudonyms,
            probabilities=probabilities,
        )

    def observed(self, monday: int) -> Dataset:
        """What is recorded before the Monday; case details drawn anew from a seed of the week.
        Each dispute is reported once here, and says so (``dispute_id`` = its ``case_id``), so a
        model trained on the simulator's linked reports can score it."""
        cases, _, _ = self.build_cases(monday, np.random.default_rng([self.detail_seed, monday]), False)
        cases["dispute_id"] = cases["case_id"]
        as_of = self.start + pd.Timedelta(days=monday)
        history = self.attributes.observed
        return Dataset(
            cases=cases,
            grids=self.layout.grids,
            grid_history=history[history["valid_from"] < as_of].reset_index(drop=True),
            adjacency=self.layout.adjacency,
            as_of=as_of,
            visits=self.visits_table(),
            plans=self.plans_table(),
        )

    def visits_table(self) -> pd.DataFrame:
        columns = ["visit_id", "grid_id", "visited_at", "kind", "team", "outcome", "plan_id", "assignment"]
        if not self.visits:
            return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c == "visited_at" else "str") for c in columns})
        return pd.concat(self.visits, ignore_index=True)[columns]

    def plans_table(self) -> pd.DataFrame | None:
        return pd.concat(self.plans, ignore_index=True) if self.plans else None

    def _dispatch(self, frame: pd.DataFrame, monday: int) -> None:
        """Plans and visits of the week from the policy's answer."""
        frame = _checked(frame, self.layout.grid_ids)
        week = self.start + pd.Timedelta(days=monday)
        planned = frame["plan_id"].notna() if "plan_id" in frame else pd.Series(False, index=frame.index)
        if planned.any():
            self.plans.append(frame[planned].assign(week=frame.get("week", week)).reset_index(drop=True))
        go = frame[frame.get("assignment", pd.Series(pd.NA, index=frame.index)).ne("control")]
        go = go.assign(plan_id=go.get("plan_id", pd.Series(pd.NA, index=go.index)))
        n = len(go)
        day = monday + self.visit_rng.integers(0, 5, size=n)
        second = self.visit_rng.integers(_WORK_START, _WORK_END, size=n)
        reached = self.visit_rng.random(n) < self.config.visit_reach
        grid = self.layout.grid_ids.get_indexer(go["grid_id"])
        inside = day < self.config.days
        order = np.lexsort((grid, second, day))
        order = order[inside[order]]
        day, second, reached, grid, go = day[order], second[order], reached[order], grid[order], go.iloc[order]
        self.process.effects.add(day[reached], grid[reached])
        first = sum(len(v) for v in self.visits) + 1
        assignment = go.get("assignment", pd.Series(pd.NA, index=go.index)).astype("object")
        visits = pd.DataFrame(
            {
                "visit_id": [f"V{i:06d}" for i in range(first, first + len(go))],
                "grid_id": self.layout.grid_ids.to_numpy()[grid],
                "visited_at": (self.start + pd.to_timedelta(day * 86_400 + second, unit="s")).as_unit("us"),
                "kind": go.get("kind", pd.Series("screening", index=go.index)).fillna("screening").to_numpy(),
                "team": self.team_of_grid[grid],
                "outcome": np.where(reached, "no_issue", "not_reached"),
                "plan_id": go["plan_id"].to_numpy(),
                "assignment": np.where(go["plan_id"].notna(), assignment.fillna("rank"), "ad_hoc"),
            }
        ).astype({c: "str" for c in ("visit_id", "grid_id", "kind", "team", "outcome", "plan_id", "assignment")})
        self.visits.append(visits)
        self.week = {"day": day, "grid": grid, "second": second, "reached": reached, "row": np.arange(len(go))}

    def _patrol(self, day: int, intensity: np.ndarray) -> None:
        """Latent disputes that the visits of ``day`` bring to light, and their outcomes."""
        if not self.week:
            return
        today = np.flatnonzero((self.week["day"] == day) & self.week["reached"])
        if not len(today):
            return
        grid = self.week["grid"][today]
        rate = intensity[grid][:, PREVENTABLE_MASK]
        found = self.patrol_rng.poisson(self.config.patrol_find_days * rate.sum(axis=1))
        rows = np.repeat(np.arange(len(today)), found)
        cdf = np.cumsum(rate / np.maximum(rate.sum(axis=1, keepdims=True), 1e-300), axis=1)
        pick = (self.patrol_rng.random(len(rows))[:, None] > cdf[rows]).sum(axis=1).clip(max=rate.shape[1] - 1)
        category = np.flatnonzero(PREVENTABLE_MASK)[pick]
        self.patrol.append((np.full(len(rows), day), grid[rows], category, self.week["second"][today][rows]))
        on_site = self.patrol_rng.random(len(today)) < _RESOLVED_ON_SITE
        outcome = np.where(found > 0, np.where(on_site, "resolved_on_site", "issue_found"), "no_issue")
        visits = self.visits[-1]
        visits.loc[visits.index[self.week["row"][today]], "outcome"] = outcome


def _checked(frame, grid_ids: pd.Index) -> pd.DataFrame:
    """The policy's answer, or a ValueError naming what is wrong with it."""
    if not isinstance(frame, pd.DataFrame) or "grid_id" not in frame:
        raise ValueError(f"a policy must return a DataFrame with a grid_id column, got {type(frame).__name__}")
    frame = frame.reset_index(drop=True)
    unknown = frame.loc[~frame["grid_id"].isin(grid_ids), "grid_id"]
    if len(unknown):
        raise ValueError(
            f"the policy named {len(unknown)} unit(s) that are not grid-level units, e.g. rows "
            f"{unknown.index[:3].tolist()} with grid_id {unknown.head(3).tolist()}"
        )
    if "assignment" in frame:
        bad = frame.loc[frame["assignment"].notna() & ~frame["assignment"].isin(_PLAN_ASSIGNMENTS), "assignment"]
        if len(bad):
            raise ValueError(
                f"assignment must be one of {', '.join(_PLAN_ASSIGNMENTS)}; rows {bad.index[:3].tolist()} "
                f"hold {bad.head(3).tolist()}"
            )
    return frame
