"""``plan_visits``: from a forecast to the week's visits, with a randomised margin."""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pandas as pd

from ..contract import level_column

__all__ = ["plan_visits"]

_ALL = "all"


def plan_visits(
    forecast: pd.DataFrame,
    *,
    capacity,
    by: str | None = "community",
    explore: float = 0.1,
    pool: int = 3,
    rank_by: Literal["risk", "uplift"] = "risk",
    seed: int = 0,
    week=None,
    plan_id: str | None = None,
) -> pd.DataFrame:
    """Turn a forecast into a week's visit plan, within a capacity per group.

    In each group (a community by default), the first ``capacity`` visits go to
    the units ranked highest, except for a share ``explore`` of them, which go to
    units drawn at random from a pool just below the ones chosen by rank: the
    ``pool * n_explore`` units ranked next. Comparing the drawn units with the
    pool's others (the ``control`` rows) is a randomised experiment at the
    margin, so :func:`riskmodel.evaluation.visit_effect` can estimate what a
    visit prevents without bias. The draw is reproducible from ``seed``.

    Parameters
    ----------
    forecast : DataFrame
        A :func:`riskmodel.predict` answer (one row per unit, one ``as_of``):
        ``grid_id``, ``as_of``, ``expected_count`` or ``probability``, the
        ``<level>_id`` columns of the levels above, ``top_drivers`` and, for
        ``rank_by="uplift"``, ``uplift`` (see :func:`riskmodel.prevention.predict_uplift`).
    capacity : int, Series or DataFrame
        Visits per group in the week: one number for every group, or a table
        by group id (a Series indexed by the ids, or a frame with the group's
        ``<by>_id`` column and ``capacity``). Groups left out of a table get none.
    by : str or None
        The level whose units share a capacity (``"community"`` reads the
        forecast's ``community_id``); None: one capacity for all units.
    explore : float in [0, 1]
        Share of each group's visits drawn at random at the margin. A group's
        number of explore visits is ``explore * capacity`` rounded up or down at
        random (so the share holds on average), and at most what the pool allows.
    pool : int >= 2
        The pool holds ``pool`` units per explore visit: each is drawn with
        probability ``1 / pool``.
    rank_by : {"risk", "uplift"}
        ``"risk"`` ranks by expected count (then probability, then ``grid_id``);
        ``"uplift"`` by the cases a visit is expected to prevent.
    seed : int
        Seed of the explore draw.
    week : datetime-like, optional
        The Monday from which the visits are due. Default: the first Monday on
        or after the forecast's ``as_of``.
    plan_id : str, optional
        Default: ``P<week>-<digest>``, a digest of the forecast and the settings.

    Returns
    -------
    DataFrame
        The ``plans`` table of the data contract: one row per visit to make
        (``assignment`` ``rank`` or ``explore``) and one per unit of the pool
        left unvisited (``control``), with ``plan_id``, ``week``, ``group``,
        ``grid_id``, ``priority`` (rank within the group by ``rank_by``),
        ``assignment``, ``explore_probability``, ``reason``, ``probability``,
        ``expected_count`` and ``uplift`` where the forecast has them. Sorted by
        group, then visits before controls, then priority.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.prevention import plan_visits
    >>> forecast = pd.DataFrame({
    ...     "grid_id": [f"G{i}" for i in range(8)], "community_id": ["C1"] * 4 + ["C2"] * 4,
    ...     "as_of": pd.Timestamp("2024-06-03"), "expected_count": [8, 7, 6, 5, 4, 3, 2, 1.0]})
    >>> plan = plan_visits(forecast, capacity=2, explore=0.0)
    >>> plan[["group", "grid_id", "assignment"]].values.tolist()
    [['C1', 'G0', 'rank'], ['C1', 'G1', 'rank'], ['C2', 'G4', 'rank'], ['C2', 'G5', 'rank']]
    """
    group_column = _check_forecast(forecast, by, rank_by)
    if not 0 <= explore <= 1:
        raise ValueError(f"explore must be a share between 0 and 1, got {explore!r}")
    if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 2:
        raise ValueError(f"pool must be an integer >= 2 (units in the pool per explore visit), got {pool!r}")
    units = forecast.assign(group=_ALL if group_column is None else forecast[group_column].astype(str))
    limit = _capacity(capacity, units["group"], by)

    key = units["uplift"] if rank_by == "uplift" else units.get("expected_count", units.get("probability"))
    tie = units["probability"] if rank_by == "risk" and "probability" in units else key
    order = np.lexsort((units["grid_id"].to_numpy(), -tie.to_numpy(), -key.to_numpy(), units["group"].to_numpy()))
    units = units.iloc[order].reset_index(drop=True)
    units["priority"] = units.groupby("group", sort=False).cumcount() + 1

    rng = np.random.default_rng(seed)
    groups = pd.Index(sorted(units["group"].unique()))
    size = units["group"].value_counts().reindex(groups).to_numpy()
    visits = np.minimum(limit.reindex(groups, fill_value=0).to_numpy(), size)
    wanted = np.floor(explore * visits + rng.random(len(groups))).astype(np.int64)
    n_explore = np.minimum(wanted, (size - visits) // (pool - 1))
    by_rank = pd.Series(visits - n_explore, index=groups)
    in_pool = pd.Series(pool * n_explore, index=groups)
    drawn = pd.Series(n_explore, index=groups)

    first = units["group"].map(by_rank).to_numpy(dtype=float)
    position = units["priority"].to_numpy() - first  # 1.. within the pool
    pooled = (position >= 1) & (position <= units["group"].map(in_pool).to_numpy(dtype=float))
    draw = pd.Series(rng.random(len(units)), index=units.index).where(pooled)
    order_in_pool = draw.groupby(units["group"]).rank(method="first").to_numpy()
    explored = pooled & (order_in_pool <= units["group"].map(drawn).to_numpy(dtype=float))

    assignment = np.select(
        [units["priority"].to_numpy() <= first, explored, pooled], ["rank", "explore", "control"], ""
    )
    plan = units.assign(assignment=assignment)[assignment != ""]
    plan = plan.assign(explore_probability=np.where(plan["assignment"] == "rank", np.nan, 1.0 / pool))
    week = _week(forecast, week)
    plan.insert(0, "plan_id", plan_id or _plan_id(plan, week, explore, pool, seed))
    plan.insert(1, "week", week)
    plan["reason"] = _reasons(plan, rank_by)
    columns = ["plan_id", "week", "group", "grid_id", "priority", "assignment", "explore_probability", "reason"]
    columns += [c for c in ("probability", "expected_count", "uplift") if c in plan]
    rank = plan["assignment"].map({"rank": 0, "explore": 1, "control": 2})
    return plan.assign(_r=rank).sort_values(["group", "_r", "priority"], kind="stable")[columns].reset_index(drop=True)


def _check_forecast(forecast: pd.DataFrame, by: str | None, rank_by: str) -> str | None:
    if not isinstance(forecast, pd.DataFrame):
        raise TypeError(f"forecast must be a predict() answer (a DataFrame), got {type(forecast).__name__}")
    if rank_by not in ("risk", "uplift"):
        raise ValueError(f"rank_by must be 'risk' or 'uplift', got {rank_by!r}")
    needed = ["grid_id", "as_of"] + (["uplift"] if rank_by == "uplift" else [])
    missing = [c for c in needed if c not in forecast]
    if rank_by == "risk" and not {"expected_count", "probability"} & set(forecast.columns):
        missing.append("expected_count or probability")
    if missing:
        hint = " (rank_by='uplift' needs riskmodel.prevention.predict_uplift's column)" if "uplift" in missing else ""
        raise ValueError(f"the forecast lacks column(s) {missing}{hint}; it has {list(forecast.columns)}")
    repeated = forecast["grid_id"][forecast["grid_id"].duplicated()]
    if len(repeated):
        raise ValueError(
            f"the forecast has units more than once (rule: one row per unit), e.g. {repeated.head(3).tolist()}"
        )
    if forecast["as_of"].nunique() > 1:
        raise ValueError(f"the forecast mixes as_of times {sorted(forecast['as_of'].unique())[:3]}; plan one at a time")
    if by is None:
        return None
    column = level_column(by)
    if column not in forecast:
        levels = [
            c.removeprefix("parent_")[: -len("_id")] for c in forecast.columns if c.endswith("_id") and c != "grid_id"
        ]
        level = forecast["level"].iloc[0] if "level" in forecast and len(forecast) else "unknown"
        raise ValueError(
            f"cannot group by {by!r}: the forecast (units of level {level!r}) has no column {column!r}; "
            f"it can be grouped by {levels} or by=None"
        )
    unplaced = forecast.loc[forecast[column].isna(), "grid_id"]
    if len(unplaced):
        raise ValueError(
            f"{len(unplaced)} unit(s) have no {column} (rule: every unit in a group), e.g. {unplaced.head(3).tolist()}"
        )
    return column


def _capacity(capacity, groups: pd.Series, by: str | None) -> pd.Series:
    """Visits per group, checked: whole numbers >= 0, for groups that have units."""
    if isinstance(capacity, pd.DataFrame):
        column = level_column(by) if by else "group"
        if column not in capacity or "capacity" not in capacity:
            raise ValueError(
                f"a capacity table needs columns {column!r} and 'capacity'; it has {list(capacity.columns)}"
            )
        capacity = capacity.set_index(column)["capacity"]
    if isinstance(capacity, pd.Series):
        table = capacity.copy()
        table.index = table.index.astype(str)
        unknown = table.index.difference(pd.Index(groups.unique()))
        if len(unknown):
            raise ValueError(
                f"capacity names {len(unknown)} group(s) with no unit in the forecast (rule: a group's units are "
                f"forecast; is the table of another level than by={by!r}?), e.g. {unknown[:3].tolist()}"
            )
    else:
        table = pd.Series(capacity, index=pd.Index(groups.unique()))
    values = pd.to_numeric(table, errors="coerce")
    bad = table[values.isna() | (values < 0) | (values != np.floor(values))]
    if len(bad):
        rows = ", ".join(f"{k}: {v!r}" for k, v in bad.head(3).items())
        raise ValueError(f"capacity must be a whole number of visits >= 0 per group; got {rows}")
    return values.astype(np.int64)


def _week(forecast: pd.DataFrame, week) -> pd.Timestamp:
    if week is not None:
        week = pd.Timestamp(week)
        if week != week.normalize() or week.day_of_week != 0:
            raise ValueError(f"week must be a Monday at midnight, got {week}")
        return week
    as_of = pd.Timestamp(forecast["as_of"].iloc[0]) if len(forecast) else pd.Timestamp("NaT")
    if pd.isna(as_of):
        raise ValueError("the forecast has no as_of: give week=")
    day = as_of.normalize() + pd.Timedelta(days=int(as_of != as_of.normalize()))
    return day + pd.Timedelta(days=(7 - day.day_of_week) % 7)


def _plan_id(plan: pd.DataFrame, week: pd.Timestamp, explore: float, pool: int, seed: int) -> str:
    digest = hashlib.sha256(f"{week} {explore} {pool} {seed}".encode())
    digest.update(pd.util.hash_pandas_object(plan[["grid_id", "assignment"]], index=False).to_numpy().tobytes())
    return f"P{week:%Y%m%d}-{digest.hexdigest()[:8]}"


def _reasons(plan: pd.DataFrame, rank_by: str) -> pd.Series:
    measure = {"risk": "risk", "uplift": "cases a visit can prevent"}[rank_by]
    ranked = "ranked " + plan["priority"].astype(str) + f" in its group by {measure}"
    drivers = plan["top_drivers"].fillna("") if "top_drivers" in plan else pd.Series("", index=plan.index)
    ranked = ranked.where(drivers == "", ranked + ": " + drivers)
    margin = "drawn at random at the capacity margin (rank " + plan["priority"].astype(str) + ")"
    control = "left unvisited by the draw at the margin (rank " + plan["priority"].astype(str) + "): a comparison unit"
    return pd.Series(
        np.select([plan["assignment"] == "rank", plan["assignment"] == "explore"], [ranked, margin], control),
        index=plan.index,
    )
