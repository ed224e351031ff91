"""What the visits prevented: the average effect of a visit on resident-reported disputes.

The effect is counted in cases PREVENTED per visit: the resident-reported cases a unit would
have had in the ``horizon`` days after its plan week without the visit, minus those it had
with it. Positive means fewer cases (the visit helped), the package's one sign convention
(higher = more prevented). Patrol cases (``origin == "patrol"``) are found *by* visits, so they
are never counted: a visit that brings latent disputes to light would otherwise look harmful.

Two designs, chosen from the plans:

``randomised``
    A plan's ``explore`` rows were drawn at random from a pool of units ranked around the
    capacity cut; its ``control`` rows are the pool's units the draw left out. Explore units
    are compared with control units as *assigned* (intention to treat): an explore unit that
    was not reached still counts as treated, so the estimate is the effect of ordering a
    visit, which dilutes the effect of a visit made by the share not reached (reported).
    The estimator is post-stratified: within each stratum of one plan, one group and one draw
    probability every pool unit had the same chance of being drawn, so the Hájek
    (inverse-probability) estimator there is the difference in means; strata are combined
    weighted by their explore units, so the effect is the average over the visits ordered.
    Its variance is the linearised (influence-function) variance clustered on units, so that
    a unit in the pools of several plans counts once; the interval uses Student's t with the
    number of units minus one degrees of freedom. Each plan row is scored on its own window
    ``[week, week + horizon)``: windows of consecutive plans overlap for a unit, and a
    control unit may be visited by a later plan within its window. Both arms are equally
    exposed to later plans (their assignment is drawn after), so this does not bias the
    comparison of the assignment at ``week``; it does make the estimate the effect of the
    order *given* the visits that followed, and the note reports how many control units were
    visited within their window.
``observational``
    Without explore and control rows, units visited in a week are compared with those not
    visited, adjusted for the model's expected count: a Poisson regression of the window's
    count on ``log(expected)`` and a visited indicator. The effect per visit is the visited
    rows' mean fitted count without the visit minus with it, with a delta-method interval
    from the sandwich covariance clustered on units. It is only as good as ``expected``:
    whatever made a unit visited beyond its expected count (a worker's knowledge of a
    brewing quarrel) confounds it. The output says so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from ..contract import PLAN_ASSIGNMENTS, Dataset, first_reports

__all__ = ["MIN_PER_ARM", "resident_cases", "visit_effect", "window_counts"]

#: The fewest units per arm for which a subgroup of ``by`` gets an estimate (else NaN).
MIN_PER_ARM = 30

_COLUMNS = ["by", "value", "design", "n_treated", "n_control", "effect", "ci_low", "ci_high", "relative", "note"]
_CONFOUNDING = (
    "observational: visited units are compared with unvisited ones adjusted for the expected count only; "
    "whatever else led workers to a unit confounds the estimate"
)


def visit_effect(
    dataset: Dataset,
    *,
    plans: pd.DataFrame | None = None,
    horizon: int = 28,
    by: str | None = None,
    expected: pd.DataFrame | None = None,
    level: str = "grid",
    confidence: float = 0.9,
) -> pd.DataFrame:
    """The average number of resident-reported cases a visit prevented, with an interval.

    Randomised from the plans' ``explore`` and ``control`` rows when there are some,
    observational (adjusted for ``expected``) otherwise; see the module's description.

    Parameters
    ----------
    dataset : Dataset
        Cases (resident-reported ones are counted: ``origin == "resident"``; all cases when
        there is no ``origin`` column, with a note), units and ``visits``.
    plans : DataFrame, optional
        Plan rows (``plan_id``, ``grid_id``, ``week``, ``assignment``, ``explore_probability``
        and optional ``group``); ``dataset.plans`` when not given.
    horizon : int
        Days after the plan week (or the visited week) whose cases are counted.
    by : str, optional
        Also estimate per value of ``"kind"`` (the explore visit's kind: reached units
        only), of a plan column (``"group"``) or of a unit level (``"community"``). A value
        with fewer than :data:`MIN_PER_ARM` units in an arm gets NaN and the reason.
    expected : DataFrame, optional
        ``grid_id``, ``week``, ``expected_count``: a model's expected count of each unit in
        the ``horizon`` days from each week (the observational design's rows). Needed when
        the plans hold no explore and control rows.
    level : str
        The level of the plans' units; cases and visits are counted at it.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    DataFrame
        One row overall (``by == "all"``) then one per value of ``by``: ``design``
        (randomised or observational), ``n_treated``, ``n_control`` (units, or unit-weeks),
        ``effect`` (cases prevented per visit; positive = fewer cases), ``ci_low``,
        ``ci_high``, ``relative`` (the effect over the mean count the visited units would have had
        without a visit: the control arm's, weighted like the visits, or the regression's) and
        ``note``.

    Raises
    ------
    ValueError
        If there are no visits, a plan row has an unknown assignment, ``horizon`` or
        ``confidence`` is out of range, ``by`` names no column or level, or the data
        allow neither design.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from riskmodel import Dataset
    >>> from riskmodel.evaluation import visit_effect
    >>> rng = np.random.default_rng(0)
    >>> units = [f"G{i:03d}" for i in range(200)]
    >>> grids = pd.DataFrame({"grid_id": units, "parent_id": None, "level": "grid"})
    >>> explore = rng.random(200) < 0.5
    >>> plans = pd.DataFrame({"plan_id": "P1", "grid_id": units, "week": pd.Timestamp("2024-01-01"),
    ...                       "assignment": np.where(explore, "explore", "control"),
    ...                       "explore_probability": 0.5})
    >>> counts = rng.poisson(np.where(explore, 1.0, 2.0))  # a visit prevents one case
    >>> cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(counts.sum())],
    ...                       "grid_id": np.repeat(units, counts),
    ...                       "reported_at": pd.Timestamp("2024-01-10"), "category": "family"})
    >>> visits = pd.DataFrame({"visit_id": [f"v{i}" for i in range(explore.sum())],
    ...                        "grid_id": np.array(units)[explore], "kind": "screening",
    ...                        "visited_at": pd.Timestamp("2024-01-02"), "plan_id": "P1"})
    >>> data = Dataset(cases=cases, grids=grids, visits=visits, as_of="2024-03-01")
    >>> table = visit_effect(data, plans=plans)
    >>> table.loc[0, "design"], bool(table.loc[0, "ci_low"] < 1 < table.loc[0, "ci_high"])
    ('randomised', True)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not horizon > 0:
        raise ValueError(f"horizon must be a positive number of days, got {horizon!r}")
    visits = dataset.visits
    if visits is None or len(visits) == 0:
        raise ValueError("the dataset holds no visits: there is no visit effect to estimate")
    plans = dataset.plans if plans is None else plans
    units = dataset.ancestors(level)
    cases, notes = resident_cases(dataset, units)
    visits = _visits_at(visits, units)
    pool = _pool_rows(plans) if plans is not None and len(plans) else None
    if pool is not None and (pool["assignment"] == "explore").any():
        rows, more = _randomised_rows(pool, visits, units, dataset, horizon, by)
        design, estimate = "randomised", _randomised
    elif expected is not None:
        rows, more = _observational_rows(expected, visits, units, dataset, horizon, by)
        design, estimate = "observational", _observational
        notes.append(_CONFOUNDING)
    else:
        raise ValueError(
            "the plans hold no explore and control rows (a randomised design), and no expected counts were "
            "given: pass expected=DataFrame(grid_id, week, expected_count) for an observational estimate"
        )
    end = pd.Timestamp(dataset.end)
    closed = rows["week"] + pd.Timedelta(days=horizon) <= end
    if not closed.all():
        more.append(f"{int((~closed).sum())} rows whose window had not closed by {end} were left out")
    rows = rows[closed.to_numpy()].reset_index(drop=True)
    rows["y"] = window_counts(cases["unit"], cases["reported_at"], rows["grid_id"], rows["week"], horizon)
    return _table(rows, design, estimate, by, notes + more, confidence)


def resident_cases(dataset: Dataset, units: pd.Series) -> tuple[pd.DataFrame, list[str]]:
    """The resident-reported disputes (every dispute, with a note, when the cases carry no
    ``origin``; a dispute is its first report, :func:`~riskmodel.first_reports`) as ``unit`` (by
    ``units``, a unit per ``grid_id``; cases of no unit are left out) and ``reported_at``."""
    cases, notes = first_reports(dataset.cases), []
    if "origin" in cases.columns:
        cases = cases[(cases["origin"] == "resident").fillna(False).to_numpy(bool)]
    else:
        notes.append("the cases carry no origin: all cases counted as resident-reported")
    frame = pd.DataFrame(
        {"unit": units.reindex(cases["grid_id"]).to_numpy(), "reported_at": pd.to_datetime(cases["reported_at"])}
    )
    return frame.dropna(subset=["unit"]), notes


def _visits_at(visits: pd.DataFrame, units: pd.Series) -> pd.DataFrame:
    """The visits made (not ``not_reached``), their unit at the level and their week's Monday."""
    visits = visits.assign(
        unit=units.reindex(visits["grid_id"]).to_numpy(), visited_at=pd.to_datetime(visits["visited_at"])
    )
    if "outcome" in visits.columns:
        visits = visits[(visits["outcome"] != "not_reached").fillna(True).to_numpy(bool)]
    return visits.dropna(subset=["unit"])


def _pool_rows(plans: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("plan_id", "grid_id", "week", "assignment") if c not in plans.columns]
    if missing:
        raise ValueError(f"the plans lack the column(s) {missing}")
    bad = ~plans["assignment"].isin(PLAN_ASSIGNMENTS)
    if bad.any():
        examples = plans.loc[bad, ["plan_id", "grid_id", "assignment"]].head(3).to_dict("records")
        raise ValueError(
            f"plans.assignment must be one of {list(PLAN_ASSIGNMENTS)}; {int(bad.sum())} rows are not, e.g. {examples}"
        )
    pool = plans[plans["assignment"].isin(["explore", "control"]).to_numpy()]
    if len(pool) and "explore_probability" not in pool.columns:
        raise ValueError("the plans' explore and control rows need explore_probability (the draw's probability)")
    probability = pool["explore_probability"] if len(pool) else pd.Series(dtype=float)
    outside = ~((probability > 0) & (probability < 1))
    if outside.any():
        examples = pool.loc[outside, ["plan_id", "grid_id", "explore_probability"]].head(3).to_dict("records")
        raise ValueError(f"explore_probability must be in (0, 1) for explore and control rows, e.g. {examples}")
    return pool.assign(week=pd.to_datetime(pool["week"]))


def _check_by(by: str | None, allowed: list[str], dataset: Dataset) -> None:
    if by is not None and by not in allowed and by not in dataset.levels:
        raise ValueError(f"by={by!r} names no column or level; use one of {allowed} or a level {dataset.levels}")


def _randomised_rows(pool, visits, units, dataset, horizon, by) -> tuple[pd.DataFrame, list[str]]:
    _check_by(by, ["kind", *[c for c in pool.columns if c not in ("grid_id", "week", "assignment")]], dataset)
    rows = pool.assign(grid_id=units.reindex(pool["grid_id"]).to_numpy())
    if rows["grid_id"].isna().any():
        odd = pool.loc[rows["grid_id"].isna().to_numpy(), "grid_id"].head(3).tolist()
        raise ValueError(f"plan units must be units at or below the level {units.name!r}; these are not: {odd}")
    rows = rows.reset_index(drop=True)
    rows["treated"] = (rows["assignment"] == "explore").to_numpy()
    keys = ["plan_id", "explore_probability"] + (["group"] if "group" in rows.columns else [])
    rows["stratum"] = rows.groupby(keys, sort=False, dropna=False).ngroup()
    first = _first_visit(rows, visits, days=7, same_plan=True)
    rows["kind"] = first["kind"] if "kind" in first.columns else pd.NA
    later = _first_visit(rows, visits, days=horizon, same_plan=False)
    reached = first["visit_id"].notna()
    notes = [
        "intention to treat: explore units count as visited whether or not they were reached; "
        f"{int((rows['treated'] & ~reached).sum())} of {int(rows['treated'].sum())} were not reached",
        f"{int((~rows['treated'] & later['visit_id'].notna()).sum())} control units were visited within "
        "their window by a later plan or ad hoc",
    ]
    return _by_value(rows, by, dataset), notes


def _first_visit(rows: pd.DataFrame, visits: pd.DataFrame, *, days: int, same_plan: bool) -> pd.DataFrame:
    """Each row's first visit to its unit within ``days`` of its week (of its own plan when
    ``same_plan`` and the visits say which plan ordered them); NaN ids where none."""
    columns = [c for c in ("visit_id", "unit", "visited_at", "kind", "plan_id") if c in visits.columns]
    merged = (
        rows[["grid_id", "week", "plan_id"]]
        .reset_index()
        .merge(visits[columns].rename(columns={"unit": "grid_id", "plan_id": "visit_plan"}), on="grid_id")
    )
    within = (merged["visited_at"] >= merged["week"]) & (
        merged["visited_at"] < merged["week"] + pd.Timedelta(days=days)
    )
    if "visit_plan" in merged.columns:
        ordered = merged["visit_plan"] == merged["plan_id"]
        within &= ordered.fillna(False) if same_plan else ~ordered.fillna(False)
    merged = merged[within.to_numpy(bool)].sort_values("visited_at", kind="stable").drop_duplicates("index")
    return merged.set_index("index").reindex(rows.index)


def _by_value(rows: pd.DataFrame, by: str | None, dataset: Dataset) -> pd.DataFrame:
    if by is None or by in rows.columns:
        return rows
    return rows.assign(**{by: dataset.ancestors(by).reindex(rows["grid_id"]).to_numpy()})


def _observational_rows(expected, visits, units, dataset, horizon, by) -> tuple[pd.DataFrame, list[str]]:
    missing = [c for c in ("grid_id", "week", "expected_count") if c not in expected.columns]
    if missing:
        raise ValueError(f"expected lacks the column(s) {missing}; it holds grid_id, week, expected_count")
    if not (expected["expected_count"] > 0).all():
        bad = expected.loc[~(expected["expected_count"] > 0), ["grid_id", "week", "expected_count"]].head(3)
        raise ValueError(f"expected_count must be > 0 (its log is a covariate), e.g. {bad.to_dict('records')}")
    _check_by(by, ["kind"], dataset)
    rows = expected[["grid_id", "week", "expected_count"]].reset_index(drop=True)
    at_level = units.reindex(rows["grid_id"]).to_numpy()
    if pd.isna(at_level).any() or (at_level != rows["grid_id"].to_numpy()).any():
        odd = rows.loc[pd.isna(at_level) | (at_level != rows["grid_id"].to_numpy()), "grid_id"].unique()[:3].tolist()
        raise ValueError(f"expected's units must be units at the level {units.name!r}; these are not: {odd}")
    rows = rows.assign(week=pd.to_datetime(rows["week"]), plan_id=pd.NA)
    first = _first_visit(rows, visits.drop(columns="plan_id", errors="ignore"), days=7, same_plan=False)
    rows["treated"] = first["visit_id"].notna().to_numpy()
    rows["kind"] = first["kind"] if "kind" in first.columns else pd.NA
    notes = [
        "a unit-week counts as visited when a visit was made (not not_reached) in its week; a visit in a "
        f"later week within the {horizon} days counts in the earlier row as unvisited, diluting the effect"
    ]
    return _by_value(rows, by, dataset), notes


def _table(rows, design, estimate: Callable, by, notes, confidence) -> pd.DataFrame:
    overall = estimate(rows, confidence, minimum=2)
    note = "; ".join([*([overall.pop("note")] if "note" in overall else []), *notes])
    records = [{"by": "all", "value": "all", **overall, "note": note}]
    if by is not None:
        for value, part in rows[rows[by].notna().to_numpy()].groupby(by, sort=True):
            if by == "kind":  # a visit's kind is known for visited units: all the controls are kept
                part = pd.concat([part, rows[~rows["treated"].to_numpy()]])
            records.append({"by": by, "value": value, **estimate(part, confidence, minimum=MIN_PER_ARM)})
    table = pd.DataFrame.from_records(records).reindex(columns=_COLUMNS)
    table["design"] = design
    return table


def _too_few(n_treated: int, n_control: int, minimum: int) -> dict:
    return {
        "n_treated": n_treated,
        "n_control": n_control,
        **dict.fromkeys(["effect", "ci_low", "ci_high", "relative"], np.nan),
        "note": f"too few units: an estimate needs at least {minimum} in each arm",
    }


def _interval(effect: float, variance: float, clusters: int, confidence: float) -> tuple[float, float]:
    half = stats.t.ppf(0.5 + confidence / 2, df=max(clusters - 1, 1)) * np.sqrt(variance)
    return effect - half, effect + half


def _randomised(rows: pd.DataFrame, confidence: float, *, minimum: int) -> dict:
    """Post-stratified difference (see the module); strata without both arms are left out."""
    arms = rows.groupby(["stratum", "treated"])["y"].agg(["size", "mean"]).unstack("treated")
    arms = arms.dropna()
    rows = rows[rows["stratum"].isin(arms.index)]
    n_treated, n_control = int(rows["treated"].sum()), int((~rows["treated"]).sum())
    if min(n_treated, n_control) < minimum:
        return _too_few(n_treated, n_control, minimum)
    size_t, size_c = arms[("size", True)], arms[("size", False)]
    mean_c = arms[("mean", False)]
    effect_t = float((size_t * (mean_c - arms[("mean", True)])).sum() / n_treated)  # prevented: control - treated
    control_mean = float((size_t * mean_c).sum() / n_treated)
    # Influence of each row on the effect (in cases prevented), summed per unit.
    base = mean_c.reindex(rows["stratum"]).to_numpy()
    weight = (size_t / size_c).reindex(rows["stratum"]).to_numpy()
    y, treated = rows["y"].to_numpy(float), rows["treated"].to_numpy()
    influence = np.where(treated, base - y - effect_t, weight * (y - base)) / n_treated
    per_unit = pd.Series(influence).groupby(rows["grid_id"].to_numpy()).sum()
    clusters = len(per_unit)
    variance = float((per_unit**2).sum()) * clusters / max(clusters - 1, 1)
    low, high = _interval(effect_t, variance, clusters, confidence)
    return {
        "n_treated": n_treated,
        "n_control": n_control,
        "effect": effect_t,
        "ci_low": low,
        "ci_high": high,
        "relative": effect_t / control_mean if control_mean > 0 else np.nan,
    }


def _poisson_fit(design: np.ndarray, y: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Poisson regression by iteratively reweighted least squares (log link)."""
    beta = np.zeros(design.shape[1])
    beta[0] = np.log(max(y.mean(), 1e-9))
    for _ in range(iterations):
        mu = np.exp(design @ beta)
        step = np.linalg.lstsq(design.T @ (design * mu[:, None]), design.T @ (y - mu))[0]
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def _observational(rows: pd.DataFrame, confidence: float, *, minimum: int) -> dict:
    """Poisson regression on log(expected) and visited; delta-method interval, clustered on units."""
    treated = rows["treated"].to_numpy()
    n_treated, n_control = int(treated.sum()), int((~treated).sum())
    if min(n_treated, n_control) < minimum:
        return _too_few(n_treated, n_control, minimum)
    y = rows["y"].to_numpy(float)
    design = np.column_stack([np.ones(len(rows)), np.log(rows["expected_count"].to_numpy(float)), treated])
    beta = _poisson_fit(design, y)
    mu = np.exp(design @ beta)
    bread = np.linalg.pinv(design.T @ (design * mu[:, None]))  # pinv: a constant expected count
    scores = pd.DataFrame(design * (y - mu)[:, None]).groupby(rows["grid_id"].to_numpy()).sum().to_numpy()
    clusters = len(scores)
    covariance = bread @ (scores.T @ scores) @ bread * clusters / max(clusters - 1, 1)
    # Prevented per visit: mean over the visited rows of the fitted count without the visit minus with it.
    untreated = np.exp(design[treated][:, :2] @ beta[:2])
    gain = 1 - np.exp(beta[2])
    effect = float(untreated.mean() * gain)
    gradient = np.array(
        [effect, float((untreated * design[treated][:, 1]).mean() * gain), -float(untreated.mean() * np.exp(beta[2]))]
    )
    low, high = _interval(effect, float(gradient @ covariance @ gradient), clusters, confidence)
    return {
        "n_treated": n_treated,
        "n_control": n_control,
        "effect": effect,
        "ci_low": low,
        "ci_high": high,
        "relative": gain,
    }


def window_counts(
    case_units: pd.Series, case_times: pd.Series, units: pd.Series, starts: pd.Series, horizon: int
) -> np.ndarray:
    """How many of the cases fall in each row's window ``[start, start + horizon days)`` of its unit.

    Parameters
    ----------
    case_units, case_times : Series
        Each case's unit and time.
    units, starts : Series
        Each row's unit and window start.
    horizon : int
        The window's length in days.

    Returns
    -------
    ndarray of int
        One count per row, in the rows' order.

    Examples
    --------
    >>> import pandas as pd
    >>> times = pd.to_datetime(pd.Series(["2024-01-02", "2024-01-20", "2024-02-01"]))
    >>> window_counts(pd.Series(["A", "A", "A"]), times, pd.Series(["A", "B"]),
    ...               pd.to_datetime(pd.Series(["2024-01-01", "2024-01-01"])), 28).tolist()
    [2, 0]
    """
    index = pd.Index(pd.unique(np.asarray(units)))
    case_code, row_code = index.get_indexer(np.asarray(case_units)), index.get_indexer(np.asarray(units))
    keep = case_code >= 0

    def seconds(times) -> np.ndarray:
        return np.asarray(pd.to_datetime(times).to_numpy(), dtype="datetime64[s]").astype(np.int64)

    case_t, start = seconds(case_times)[keep], seconds(starts)
    if len(start) == 0:
        return np.zeros(0, dtype=np.int64)
    end = start + int(horizon) * 86400
    times = np.concatenate([case_t, start])
    origin = times.min()
    span = max(times.max(), end.max()) - origin + 1
    keys = np.sort(case_code[keep] * span + (case_t - origin))
    row_base = row_code * span - origin
    return np.searchsorted(keys, row_base + end, "left") - np.searchsorted(keys, row_base + start, "left")
