"""Slow, obviously correct feature builders: plain loops over units, cutoffs and cases.

They share no code with riskmodel.features; the tests check that the fast builders
agree with them on every feature of small random data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)


def _ancestor(grid_id, level, parent, level_of):
    while grid_id is not None:
        if level_of[grid_id] == level:
            return grid_id
        grid_id = parent[grid_id]
    return None


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _records(data, level):
    grids = data.grids
    parent = {g: (None if _missing(p) else p) for g, p in zip(grids["grid_id"], grids["parent_id"], strict=True)}
    level_of = dict(zip(grids["grid_id"], grids["level"], strict=True))
    records = []
    for row in data.cases.to_dict("records"):
        row["unit"] = _ancestor(row["grid_id"], level, parent, level_of)
        for column in ("resolved_at", "escalated_at", "party_key", "source"):
            if _missing(row.get(column)):
                row[column] = None
        records.append(row)
    return records, parent, level_of


def _aggregates(cases, unit, c, windows, half_lives, severe):
    mine = [x for x in cases if x["unit"] == unit]
    out = {}
    for w in windows:
        inside = [x for x in mine if c - w * DAY <= x["reported_at"] < c]
        out[f"count_{w}d"] = len(inside)
        out[f"severe_{w}d"] = sum(1 for x in inside if x["severity"] >= severe)
        out[f"escalations_{w}d"] = sum(
            1 for x in mine if x["escalated_at"] is not None and c - w * DAY <= x["escalated_at"] < c
        )
    for h in half_lives:
        out[f"decay_{h}d"] = sum(2 ** (-((c - x["reported_at"]) / DAY) / h) for x in mine if x["reported_at"] < c)
    out["backlog"] = sum(
        1 for x in mine if x["reported_at"] < c and (x["resolved_at"] is None or x["resolved_at"] >= c)
    )
    return out


def grid_panel(data, cutoffs, horizon_days, builder, holidays, target_categories=None) -> pd.DataFrame:
    """Every feature of the grid panel, and the label count, by loops."""
    level = builder.level
    cases, parent, level_of = _records(data, level)
    parent_level = builder.parent_level_
    parent_cases = _records(data, parent_level)[0] if parent_level else []
    units = sorted(g for g, lv in level_of.items() if lv == level)
    neighbours = {
        u: sorted(
            {
                b
                for a, b in zip(data.adjacency["grid_id"], data.adjacency["neighbour_id"], strict=True)
                if a == u and b in units
            }
        )
        for u in units
    }
    history = data.grid_history.to_dict("records")
    first = min(x["reported_at"] for x in cases)
    long_run = getattr(builder, "long_run_features_", False)
    rows = []
    for c in cutoffs:
        c = pd.Timestamp(c)
        per_unit = {}
        for u in units:
            f = _aggregates(cases, u, c, builder.windows, builder.half_lives, builder.severe)
            mine = [x for x in cases if x["unit"] == u]
            for w in builder.windows:
                for category in builder.categories_:
                    f[f"count_{w}d_{category}"] = sum(
                        1 for x in mine if x["category"] == category and c - w * DAY <= x["reported_at"] < c
                    )
            before = [x["reported_at"] for x in mine if x["reported_at"] < c]
            f["days_since_last"] = ((c - max(before)) if before else (c - first)) / DAY
            for w in builder.repeat_windows:
                parties = [
                    x["party_key"] for x in mine if x["party_key"] is not None and c - w * DAY <= x["reported_at"] < c
                ]
                f[f"repeat_parties_{w}d"] = sum(1 for p in set(parties) if parties.count(p) >= 2)
            for short, long in builder.trends:
                f[f"trend_{short}_{long}d"] = (f[f"count_{short}d"] * long / short + 1) / (f[f"count_{long}d"] + 1)
            p = parent[u]
            above = (
                _aggregates(parent_cases, p, c, builder.windows, builder.half_lives, builder.severe)
                if parent_level and p is not None
                else {}
            )
            for name in (
                ["backlog"]
                + [f"{k}_{w}d" for k in ("count", "severe", "escalations") for w in builder.windows]
                + [f"decay_{h}d" for h in builder.half_lives]
            ):
                f[f"parent_{name}"] = above.get(name, np.nan)
            snapshots = [r for r in history if r["grid_id"] == u and r["valid_from"] <= c]
            latest = max(snapshots, key=lambda r: r["valid_from"]) if snapshots else None
            for name in builder.attributes_:
                f[f"attr_{name}"] = np.nan if latest is None else latest[name]
            f["lon"] = f["lat"] = np.nan  # the random datasets have no coordinates
            to_holiday = min((h - c.normalize()) / DAY for h in holidays if h >= c.normalize())
            f["month"] = c.month
            f["horizon_days"] = horizon_days
            f["days_to_holiday"] = to_holiday
            f["days_since_holiday"] = min((c.normalize() - h) / DAY for h in holidays if h <= c.normalize())
            f["holiday_in_window"] = float(to_holiday < horizon_days)
            f["no_history"] = float(not before)
            if long_run:
                f.update(_long_run(cases, parent_cases, units, u, parent, c, first, horizon_days, builder.half_lives))
            if getattr(builder, "visit_features_", False):
                f.update(_visits(data, u, c, parent))
            if getattr(builder, "patrol_features_", False):
                for w in (28, 91):
                    f[f"patrol_count_{w}d"] = sum(
                        1 for x in mine if x.get("origin") == "patrol" and c - w * DAY <= x["reported_at"] < c
                    )
            f["y_count"] = sum(
                1
                for x in mine
                if c <= x["reported_at"] < c + horizon_days * DAY
                and (target_categories is None or x["category"] in target_categories)
            )
            per_unit[u] = f
        for u in units:
            f = per_unit[u]
            for name in (
                [f"count_{w}d" for w in builder.windows]
                + [f"decay_{h}d" for h in builder.half_lives]
                + (["rate_all"] if long_run else [])
            ):
                nbrs = neighbours[u]
                f[f"nbr_{name}"] = np.mean([per_unit[v][name] for v in nbrs]) if nbrs else np.nan
        if long_run:
            _shrunk_rates(per_unit, neighbours, parent, units, builder.half_lives)
        for u in units:
            rows.append({"grid_id": u, "cutoff": c, **per_unit[u]})
    return pd.DataFrame(rows).set_index(["grid_id", "cutoff"])


def _exposure(days, h):
    """Days of exposure of one case a day over ``days`` days, weighted by 2^(-age / h): the integral."""
    return days if h == math.inf else h / math.log(2) * (1 - 2 ** (-days / h))


def _long_run(cases, parent_cases, units, u, parent, c, first, horizon_days, half_lives):
    """History, all-history rates, the last period and the rates the shrunk rates shrink, by loops."""
    history = (c - first) / DAY
    p = parent[u]
    siblings = sum(1 for v in units if p is not None and parent[v] == p)
    before = sum(1 for x in cases if x["unit"] == u and x["reported_at"] < c)
    parent_before = sum(1 for x in parent_cases if p is not None and x["unit"] == p and x["reported_at"] < c)
    f = {
        "history_days": history,
        "rate_all": before / history if history > 0 else np.nan,
        "parent_rate_all": parent_before / history / siblings if history > 0 and p is not None else np.nan,
        "count_last_period": sum(1 for x in cases if x["unit"] == u and c - horizon_days * DAY <= x["reported_at"] < c),
        "last_period_days": float(horizon_days),
    }
    for h in [*half_lives, math.inf]:  # the rates of the unit and its parent (per unit under it)
        weight = [
            sum(2 ** (-((c - x["reported_at"]) / DAY) / h) for x in pool if x["unit"] == v and x["reported_at"] < c)
            for pool, v in ((cases, u), (parent_cases, p))
        ]
        exposure = _exposure(history, h)
        f[f"_rate_{h}"] = weight[0] / exposure if exposure > 0 else np.nan
        f[f"_parent_rate_{h}"] = weight[1] / exposure / siblings if exposure > 0 and p is not None else np.nan
        f[f"_exposure_{h}"] = exposure**2 / _exposure(history, h / 2) if exposure > 0 else np.nan
    return f


def _shrunk_rates(per_unit, neighbours, parent, units, half_lives):
    """Gamma-Poisson shrinkage of each unit's rate toward the mean of its neighbours' rates and
    its parent's rate, the prior's strength b from the moments: E[(r - m)^2] = m / b + m / n."""
    for h in [*half_lives, math.inf]:
        name = "all" if h == math.inf else f"{h}d"
        rate = {u: per_unit[u].pop(f"_rate_{h}") for u in units}
        parent_rate = {u: per_unit[u].pop(f"_parent_rate_{h}") for u in units}
        n = [per_unit[u].pop(f"_exposure_{h}") for u in units][0]
        known = [rate[u] for u in units if not math.isnan(rate[u])]
        level_mean = sum(known) / len(known) if known else np.nan
        prior = {}
        for u in units:
            sources = [np.mean([rate[v] for v in neighbours[u]])] if neighbours[u] else []
            sources += [parent_rate[u]] if parent[u] is not None and not math.isnan(parent_rate[u]) else []
            sources = [s for s in sources if not math.isnan(s)]
            prior[u] = sum(sources) / len(sources) if sources else level_mean
        if math.isnan(n):
            for u in units:
                per_unit[u][f"shrunk_rate_{name}"] = np.nan
            continue
        excess = sum((rate[u] - prior[u]) ** 2 - prior[u] / n for u in units)
        total = sum(prior[u] for u in units)
        inverse_b = max(excess, 0.0) / total if total > 0 else 0.0
        for u in units:
            if inverse_b == 0:
                per_unit[u][f"shrunk_rate_{name}"] = prior[u]
            else:
                b = 1 / inverse_b
                per_unit[u][f"shrunk_rate_{name}"] = (n * rate[u] + b * prior[u]) / (n + b)


def _chain(grid_id, parent):
    """The unit and its ancestors."""
    found = []
    while grid_id is not None:
        found.append(grid_id)
        grid_id = parent[grid_id]
    return found


def _visits(data, unit, c, parent):
    """Visit features of ``unit`` at ``c``: a visit covers the unit when its unit is the
    unit, one of its ancestors, or one of its descendants."""
    covering = [
        v
        for v in data.visits.to_dict("records")
        if v["visited_at"] < c and (unit in _chain(v["grid_id"], parent) or v["grid_id"] in _chain(unit, parent))
    ]
    f = {f"visits_{w}d": sum(1 for v in covering if c - w * DAY <= v["visited_at"]) for w in (28, 91)}
    last = max(covering, key=lambda v: (v["visited_at"], v["visit_id"])) if covering else None
    f["days_since_visit"] = 365.0 if last is None else min((c - last["visited_at"]) / DAY, 365.0)
    for outcome in ("issue_found", "resolved_on_site", "no_issue", "not_reached"):
        f[f"last_visit_{outcome}"] = float(last is not None and last.get("outcome") == outcome)
    return f


def case_features(data, level, windows, escalation_days, escalations_window=91) -> pd.DataFrame:
    """The case features that describe history (party, unit), and the label, by loops."""
    cases, _, _ = _records(data, level)
    end = data.end
    rows = []
    for x in cases:
        t = x["reported_at"]
        earlier = [o for o in cases if o["reported_at"] < t]
        party = [o for o in earlier if x["party_key"] is not None and o["party_key"] == x["party_key"]]
        f = {
            "case_id": x["case_id"],
            "party_prior_cases": len(party),
            "party_prior_escalations": sum(
                1
                for o in cases
                if x["party_key"] is not None
                and o["party_key"] == x["party_key"]
                and o["escalated_at"] is not None
                and o["escalated_at"] < t
            ),
            "party_open_cases": sum(1 for o in party if o["resolved_at"] is None or o["resolved_at"] >= t),
        }
        unit = [o for o in earlier if x["unit"] is not None and o["unit"] == x["unit"]]
        for w in windows:
            f[f"unit_count_{w}d"] = sum(1 for o in unit if o["reported_at"] >= t - w * DAY)
            f[f"unit_same_category_{w}d"] = sum(
                1 for o in unit if o["reported_at"] >= t - w * DAY and o["category"] == x["category"]
            )
        f["unit_backlog"] = sum(1 for o in unit if o["resolved_at"] is None or o["resolved_at"] >= t)
        f[f"unit_escalations_{escalations_window}d"] = sum(
            1
            for o in cases
            if x["unit"] is not None
            and o["unit"] == x["unit"]
            and o["escalated_at"] is not None
            and t - escalations_window * DAY <= o["escalated_at"] < t
        )
        if x["unit"] is None:
            for name in list(f)[4:]:
                f[name] = np.nan
        escalated_in_time = x["escalated_at"] is not None and x["escalated_at"] - t <= escalation_days * DAY
        known = escalated_in_time or t + escalation_days * DAY <= end
        f["y"] = float(escalated_in_time) if known else np.nan
        rows.append(f)
    return pd.DataFrame(rows).set_index("case_id")
