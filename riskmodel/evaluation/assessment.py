"""Fair assessment of units: observed disputes in a period against a model's expected count.

A unit (a community by default) is judged against its own expected risk, the count a
forecasting model expected of *that* unit from its own history and attributes, not
against a busier or quieter neighbour: a ratio of observed to expected cases, and
exact Poisson control limits of a funnel plot (Spiegelhalter, "Funnel plots for
comparing institutional performance", 2005) that widen as the expected count falls.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..contract import CASE_ORIGINS, Dataset
from ..features.base import counted_cases, parse_target

__all__ = ["FLAGS", "assess", "control_limits"]

#: The flags of :func:`assess`, from far above to far below the expected count.
FLAGS = ("above_998", "above_95", "within", "below_95", "below_998")


def control_limits(expected, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact Poisson control limits of the observed/expected ratio at ``coverage``.

    The limits of the count are the ``(1 - coverage) / 2`` and ``(1 + coverage) / 2``
    quantiles of a Poisson law of mean ``expected`` (the smallest count whose
    cumulative probability reaches them, as :func:`scipy.stats.poisson.ppf`), divided
    by ``expected``. A count strictly outside them has a one-sided exact p-value below
    ``(1 - coverage) / 2``. The limits are steps, not smooth curves: counts are whole.

    Parameters
    ----------
    expected : array-like of float >= 0
    coverage : float in (0, 1)
        0.95 or 0.998 for the usual funnel plot.

    Returns
    -------
    lower, upper : ndarray
        Ratio limits (missing where ``expected`` is 0).

    Examples
    --------
    >>> from riskmodel.evaluation.assessment import control_limits
    >>> lower, upper = control_limits([4.0, 100.0], 0.95)
    >>> (lower * [4, 100]).tolist(), (upper * [4, 100]).tolist()
    ([1.0, 81.0], [8.0, 120.0])
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1 (e.g. 0.95), got {coverage!r}")
    expected = np.asarray(expected, dtype=float)
    tail = (1 - coverage) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = stats.poisson.ppf(tail, expected) / expected
        upper = stats.poisson.ppf(1 - tail, expected) / expected
    return np.where(expected > 0, lower, np.nan), np.where(expected > 0, upper, np.nan)


def assess(
    dataset: Dataset, model, period, *, level: str = "community", origins: Sequence[str] = ("resident",)
) -> pd.DataFrame:
    """Observed cases of every unit of ``level`` in ``period`` against the model's expected count.

    A unit is judged against its own expected risk, the count ``model`` forecast for
    it from its own history, attributes and neighbours, not against a busier or
    quieter neighbour: a quiet community with a doubled count is flagged, a busy one
    at its usual count is not. Under the model, the observed count is Poisson with
    the expected count as mean; the control limits and the p-value are exact.

    The period ``[start, end)`` is cut into consecutive windows of the model's
    horizon; each window's expected count is forecast at its start from the data
    before it (point in time, as :func:`riskmodel.predict` would have answered then),
    and the last, partial window counts pro rata to its length (a 10-day rest of a
    28-day horizon counts 10/28 of its forecast: the rate is taken as flat within a
    window). The model's units are summed up to ``level`` through the hierarchy.
    Cases reported at or after ``end`` are dropped before anything is built: no data
    after the period is used.

    Parameters
    ----------
    dataset : Dataset
        The data, through ``end`` at least.
    model : TrainedModel
        A grid-target model (anything with ``features(dataset, as_of)``, ``score(X)``
        giving ``expected_count``, ``builder.level`` and ``target.window(builder)``).
        Train it on data before ``start`` for an out-of-sample assessment; a model
        whose training labels reach into the period gives a warning.
    period : (start, end) pair of datetime-likes
    level : str
        The level of the units to assess: the model's level or any level above it.
    origins : sequence of str
        The case origins counted as observed (``resident``: reported by residents,
        not found by a worker on a visit). When the cases have no ``origin`` column
        every case counts and the column ``origin`` of the answer says ``unknown``;
        a case whose origin is missing is then not counted. The observed cases are
        also those the model's target counts (its categories, minimum severity, or
        escalations). The model's expected count is of the cases it was trained on:
        train it on the same origins for a like-for-like ratio.

    Returns
    -------
    DataFrame
        One row per unit of ``level``: ``grid_id``, ``level``, ``observed``,
        ``expected``, ``ratio`` (observed / expected), ``z`` ((observed - expected) /
        sqrt(expected)), ``p_value`` (two-sided exact Poisson), the ratio limits
        ``lower_95``, ``upper_95``, ``lower_998``, ``upper_998`` (see
        :func:`control_limits`), ``flag`` (one of :data:`FLAGS`: ``above_998`` when the
        count is above the 99.8% limit, ...) and ``origin`` (the origins counted, or
        ``unknown``); the furthest outside first (by p-value, ties by ``grid_id``).
        ``attrs`` holds the period, the horizon and the windows' starts.

    Raises
    ------
    ValueError
        When ``end <= start``, the period starts at or before the first case or ends
        after the data's end, ``level`` is not a level of the data or is below the
        model's, an origin is unknown, or the model gives no expected counts.

    Examples
    --------
    >>> from riskmodel import train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation import assess
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> before = district.replace(cases=district.cases[district.cases["reported_at"] < "2023-10-01"],
    ...                           as_of="2023-10-01")
    >>> trained = train(before, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> table = assess(district, trained, ("2023-10-01", "2023-12-01"))
    >>> len(table), table.columns[:5].tolist(), table["origin"].iloc[0]
    (4, ['grid_id', 'level', 'observed', 'expected', 'ratio'], 'unknown')
    """
    start, end = _period(period, dataset)
    model_level = _check(dataset, model, level, origins)
    cases = dataset.cases[pd.to_datetime(dataset.cases["reported_at"]) < end]
    dataset = dataset.replace(cases=cases, as_of=end)
    horizon = model.target.window(model.builder)
    trained_through = getattr(model, "trained_through", None)
    if trained_through is not None and pd.Timestamp(trained_through) + horizon > start:
        warnings.warn(
            f"the model's training labels reach {pd.Timestamp(trained_through) + horizon}, after the period's "
            f"start {start}: the assessment is in-sample; train on data before {start}",
            stacklevel=2,
        )
    expected, starts = _expected(dataset, model, start, end, horizon)
    units = dataset.grids.loc[dataset.grids["level"] == level, "grid_id"].astype(str)
    up = dataset.ancestors(level)
    expected = expected.groupby(up.reindex(expected.index).to_numpy()).sum().reindex(units, fill_value=0.0)
    counted, origin = _counted(dataset.cases, model, origins, start)
    observed = up.reindex(counted["grid_id"].astype(str)).value_counts().reindex(units, fill_value=0)
    out = _judge(units.to_numpy(), level, observed.to_numpy(), expected.to_numpy())
    out["origin"] = origin
    if model_level != level:
        out.attrs["model_level"] = model_level
    out.attrs |= {"period": (start, end), "horizon": horizon, "windows": starts}
    return out


def _period(period, dataset: Dataset) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        start, end = (pd.Timestamp(t) for t in period)
    except (TypeError, ValueError) as error:
        raise ValueError(f"period must be a (start, end) pair of times, got {period!r}") from error
    if end <= start:
        raise ValueError(f"the period must end after it starts; got start {start}, end {end}")
    first = pd.to_datetime(dataset.cases["reported_at"]).min()
    if pd.isna(first) or start <= first:
        raise ValueError(
            f"the period must start after the data's first case ({first}): its expected counts are "
            f"forecast from the data before it; got start {start}"
        )
    if end > dataset.end:
        raise ValueError(
            f"the period must end by the data's end ({dataset.end}; its as_of, else its last case): "
            f"cases after it are unknown; got end {end}"
        )
    return start, end


def _check(dataset: Dataset, model, level: str, origins) -> str:
    levels = dataset.levels
    if level not in levels:
        raise ValueError(f"unknown level {level!r}; the data has levels {levels} (e.g. level='community')")
    if not getattr(model.target, "counts", False):
        raise ValueError(f"assess needs a grid-target model (expected counts per unit); got target {model.target!r}")
    model_level = model.builder.level
    if levels.index(level) > levels.index(model_level):
        raise ValueError(
            f"level {level!r} is below the model's level {model_level!r}: expected counts are summed up the "
            f"hierarchy, never split; assess at {levels[: levels.index(model_level) + 1]}"
        )
    unknown = [o for o in origins if o not in CASE_ORIGINS] if not isinstance(origins, str) else [origins]
    if unknown or not len(origins):
        raise ValueError(
            f"origins must be a non-empty sequence of {list(CASE_ORIGINS)}, e.g. ('resident',); got {origins!r}"
        )
    return model_level


def _expected(dataset: Dataset, model, start, end, horizon) -> tuple[pd.Series, list[pd.Timestamp]]:
    """Each model unit's expected count in ``[start, end)``, summed over windows of the
    horizon each forecast at its start; the last partial window pro rata."""
    total: pd.Series | None = None
    starts = []
    window = start
    while window < end:
        full = window + horizon
        share = min(1.0, (end - window) / (full - window))
        X = model.features(dataset, window)
        part = pd.Series(model.score(X)["expected_count"].to_numpy(), index=X.index.get_level_values(0).astype(str))
        total = share * part if total is None else total.add(share * part, fill_value=0.0)
        starts.append(window)
        window = full
    assert total is not None  # start < end: one window at least
    return total, starts


def _counted(cases: pd.DataFrame, model, origins, start) -> tuple[pd.DataFrame, str]:
    """The cases the model's target counts in ``[start, end)`` of the given origins (disputes or
    reports, as the model's builder counts)."""
    cases = counted_cases(cases, model.builder.count)
    target = parse_target(model.builder.target)
    times = pd.to_datetime(cases["escalated_at"] if target.escalations else cases["reported_at"])
    keep = (times >= start).to_numpy() & (cases["severity"] >= target.min_severity).to_numpy()
    if target.categories is not None:
        keep &= cases["category"].isin(target.categories).to_numpy()
    if "origin" not in cases.columns:
        return cases[keep], "unknown"
    keep &= cases["origin"].isin(list(origins)).to_numpy()
    return cases[keep], ",".join(origins)


def _judge(units: np.ndarray, level: str, observed: np.ndarray, expected: np.ndarray) -> pd.DataFrame:
    """The ratio, z, exact p-value, control limits and flag of every unit, furthest outside first."""
    above = stats.poisson.sf(observed - 1, expected)  # P(X >= observed)
    below = stats.poisson.cdf(observed, expected)  # P(X <= observed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / expected, np.nan)
        z = np.where(expected > 0, (observed - expected) / np.sqrt(expected), np.nan)
    lower_95, upper_95 = control_limits(expected, 0.95)
    lower_998, upper_998 = control_limits(expected, 0.998)
    flag = np.select(
        [above < 0.001, above < 0.025, below < 0.001, below < 0.025],
        ["above_998", "above_95", "below_998", "below_95"],
        default="within",
    )
    out = pd.DataFrame(
        {
            "grid_id": units,
            "level": level,
            "observed": observed.astype(int),
            "expected": expected,
            "ratio": ratio,
            "z": z,
            "p_value": np.minimum(1.0, 2 * np.minimum(above, below)),
            "lower_95": lower_95,
            "upper_95": upper_95,
            "lower_998": lower_998,
            "upper_998": upper_998,
            "flag": flag,
        }
    )
    return out.sort_values(["p_value", "grid_id"], kind="stable").reset_index(drop=True)
