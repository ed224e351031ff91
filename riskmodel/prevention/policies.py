"""Visit policies for :func:`riskmodel.datasets.simulate_district`: each Monday a policy
sees the data recorded so far and returns the week's plan (see
:class:`riskmodel.datasets.Policy`). The trivial ones (no visits, random visits) live
beside the simulator; those that forecast, and the oracle's, live here."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from sklearn.base import clone

from ..contract import Dataset, first_reports, level_column
from ..models import GBMCount, UpliftRegressor
from ..training import TrainedModel, train
from .plans import plan_visits
from .uplift import predict_uplift, ready, uplift_rows, validate_uplift

__all__ = ["HistoricalRateVisits", "OracleVisits", "RiskVisits", "UpliftVisits", "capacity_per_group"]


def capacity_per_group(capacity: float, forecast: pd.DataFrame, by: str | None) -> float | pd.Series:
    """``capacity`` as :func:`plan_visits` takes it: visits per group as they are (which
    :func:`plan_visits` checks are whole), a share of the group's units (below 1) rounded
    to whole visits."""
    if capacity >= 1 or capacity <= 0:
        return capacity
    if by is None:
        return int(round(capacity * len(forecast)))
    return (forecast.groupby(level_column(by)).size() * capacity).round().astype(int)


class _Planner:
    """Ranks the units each Monday and plans the top of each group with
    :func:`plan_visits` (``explore`` at the margin, the seed moved on each week).

    A unit that was in a plan (visited, or a control) less than ``cooldown_days`` ago
    is not planned again: visits do not pile onto the same units, and the windows of
    the randomised comparison do not overlap, so that a control stays unvisited for
    the window in which it is compared.
    """

    rank_by: Literal["risk", "uplift"] = "risk"

    def __init__(
        self, *, capacity: float, by: str | None = None, explore: float = 0.0, seed: int = 0, cooldown_days: int = 28
    ):
        self.capacity = capacity
        self.by = by
        self.explore = explore
        self.seed = seed
        self.cooldown_days = cooldown_days

    def plan(self, observed: Dataset, week: pd.Timestamp, oracle) -> pd.DataFrame:
        forecast = self.forecast(observed, week, oracle)
        column = "" if self.by is None else level_column(self.by)
        if self.by is not None:
            group = observed.ancestors(self.by).reindex(forecast["grid_id"]).to_numpy()
            forecast = forecast.assign(**{column: group})
        capacity = capacity_per_group(self.capacity, forecast, self.by)
        if observed.plans is not None and len(observed.plans):
            recent = observed.plans["week"] > week - pd.Timedelta(days=self.cooldown_days)
            forecast = forecast[~forecast["grid_id"].isin(observed.plans.loc[recent, "grid_id"])]
        if isinstance(capacity, pd.Series):  # groups whose every unit is cooling down get none
            capacity = capacity[capacity.index.isin(forecast[column])]
        return plan_visits(
            forecast,
            capacity=capacity,
            by=self.by,
            explore=self.explore,
            rank_by=self.rank_by,
            seed=self.seed + week.toordinal(),
            week=week,
        )

    def forecast(self, observed: Dataset, week: pd.Timestamp, oracle) -> pd.DataFrame:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity={self.capacity}, by={self.by!r}, explore={self.explore})"


class HistoricalRateVisits(_Planner):
    """Visit the units with the most recorded disputes per day of history (every origin; a dispute
    counted once, at its first report: :func:`~riskmodel.first_reports`).

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.prevention import HistoricalRateVisits
    >>> district = simulate_district("tiny", seed=0, policy=HistoricalRateVisits(capacity=2))
    >>> len(district.visits) > 0
    True
    """

    def forecast(self, observed, week, oracle):
        grids = observed.grids.loc[observed.grids["level"] == "grid", "grid_id"]
        unit = observed.ancestors("grid").reindex(first_reports(observed.cases)["grid_id"]).to_numpy()
        counts = pd.Series(1, index=unit).groupby(level=0).sum().reindex(grids, fill_value=0)
        return pd.DataFrame({"grid_id": grids.to_numpy(), "as_of": week, "expected_count": counts.to_numpy(float)})


class OracleVisits(_Planner):
    """Visit where the simulator's truth says a visit prevents most (an upper bound that
    no real policy reaches: it reads the oracle). Planned like the others, cool-down included.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.prevention import OracleVisits
    >>> district = simulate_district("tiny", seed=0, policy=OracleVisits(capacity=2))
    >>> sorted(district.visits["assignment"].unique())
    ['rank']
    """

    rank_by = "uplift"

    def __init__(self, *, capacity: float, by: str | None = None, horizon: int = 28, cooldown_days: int = 28):
        super().__init__(capacity=capacity, by=by, cooldown_days=cooldown_days)
        self.horizon = horizon

    def forecast(self, observed, week, oracle):
        uplift = oracle.uplift(self.horizon)
        return pd.DataFrame({"grid_id": uplift.index.to_numpy(), "as_of": week, "uplift": uplift.to_numpy()})


class RiskVisits(_Planner):
    """Visit the riskiest units by a riskmodel forecast, retrained on the data it shaped.

    Parameters
    ----------
    model : estimator or TrainedModel, optional
        The family retrained every ``retrain_every`` weeks on the data recorded so
        far (default :class:`~riskmodel.models.GBMCount` with ``n_jobs=1``), or a
        :class:`~riskmodel.TrainedModel` served as it is, never retrained.
    capacity, by, explore, seed
        As for :func:`plan_visits` (``capacity`` below 1 is a share of units).
    cooldown_days : int
        Days before a unit of a plan may be planned again.
    retrain_every : int
        Weeks between retrainings.
    horizon : int
        Forecast window in days.
    history_weeks : int
        Training cutoffs cover this many weeks before the week of training, one every
        ``cutoff_every`` weeks (a short window keeps 52 retrainings affordable).
    cutoff_every : int
    features : dict, optional
        Options of the feature builder.
    origins : tuple of str or None
        The cases the model is trained on, in its features and its label (default:
        resident reports; None: every case). Patrol finds are where the visits went, not
        where disputes arise: a model trained on them sends the visits back to the same
        units (bench/results/prevention_audit.md).
    """

    def __init__(
        self,
        model=None,
        *,
        capacity: float,
        by: str | None = None,
        explore: float = 0.1,
        seed: int = 0,
        retrain_every: int = 4,
        horizon: int = 28,
        history_weeks: int = 52,
        cutoff_every: int = 2,
        features: dict | None = None,
        origins: tuple[str, ...] | None = ("resident",),
        cooldown_days: int = 28,
    ):
        super().__init__(capacity=capacity, by=by, explore=explore, seed=seed, cooldown_days=cooldown_days)
        self.model = model
        self.retrain_every = retrain_every
        self.horizon = horizon
        self.history_weeks = history_weeks
        self.cutoff_every = cutoff_every
        self.features = features
        self.origins = origins

    def trained(self, observed: Dataset, week: pd.Timestamp):
        """The model in force this week: retrained when ``retrain_every`` weeks have passed."""
        last = getattr(self, "trained_at_", None)
        if isinstance(self.model, TrainedModel):  # a model trained elsewhere is served as it is
            self.model_, self.trained_at_ = self.model, last or week
        elif last is None or (week - last).days >= 7 * self.retrain_every:
            model = self.model if self.model is not None else GBMCount(n_jobs=1)
            start = week - pd.Timedelta(weeks=self.history_weeks)
            self.model_ = train(
                observed,
                model=model,
                horizon=self.horizon,
                frequency=f"{self.cutoff_every}W-MON",
                train_start=max(start, observed.cases["reported_at"].min().normalize() + pd.Timedelta(days=91)),
                features=({"origins": list(self.origins)} if self.origins else {}) | (self.features or {}),
                track=False,
            )
            self.trained_at_ = week
        return self.model_

    def forecast(self, observed, week, oracle):
        from ..serving import predict

        return predict(observed, model=self.trained(observed, week), as_of=week, drivers=0)


class UpliftVisits(RiskVisits):
    """Visit the units where a visit is expected to prevent most: an
    :class:`~riskmodel.models.UpliftRegressor` fitted on the explore and control units of
    the policy's own earlier plans, on the risk model's features. It plans by risk (with
    the same explore share, which is how it learns) until ``min_rows`` such units have a
    closed window, and afterwards whenever the uplift ranking does not beat the risk
    ranking on the margin, cross-fitted (:func:`~riskmodel.prevention.validate_uplift`;
    each check is kept in ``checks_``): an uplift model learnt from too few visits ranks
    by noise.

    Parameters
    ----------
    uplift_model : UpliftRegressor, optional
        Its settings (default ``UpliftRegressor()``); a clone is fitted at each retraining.
    min_rows : int
        Explore and control units with a closed window needed before ranking by uplift
        (and a case among the visited and among the others).
    validate : bool
        Rank by uplift only where it beats risk on the margin (False: as soon as fitted).
    **risk
        As for :class:`RiskVisits`.
    """

    def __init__(
        self,
        model=None,
        *,
        uplift_model: UpliftRegressor | None = None,
        min_rows: int = 200,
        validate: bool = True,
        **risk,
    ):
        super().__init__(model, **risk)
        self.uplift_model = uplift_model
        self.min_rows = min_rows
        self.validate = validate

    @property
    def rank_by(self):
        return "uplift" if getattr(self, "uplift_", None) is not None else "risk"

    def forecast(self, observed, week, oracle):
        trained = self.trained(observed, week)
        if getattr(self, "fitted_at_", None) != self.trained_at_:  # refit the uplift with the risk model
            self.uplift_ = self._validated_uplift(observed, week, trained)
            self.fitted_at_ = self.trained_at_
        if self.uplift_ is None:
            return super().forecast(observed, week, oracle)
        return predict_uplift(observed, trained, self.uplift_, as_of=week)

    def _validated_uplift(self, observed, week, trained) -> UpliftRegressor | None:
        """An uplift model fitted on the margin, if its ranking beats the risk's there."""
        X, y, treated = uplift_rows(observed, trained, horizon=self.horizon, cache=self._cache(trained))
        if not ready(y, treated, self.min_rows):
            return None
        model = self.uplift_model or UpliftRegressor()
        if not self.validate:
            return clone(model).fit(X, y, treated)
        risk = trained.score(X)["expected_count"].to_numpy()
        check = validate_uplift(X, y, treated, risk=risk, model=model)
        self.checks_ = [*getattr(self, "checks_", []), {"week": week, "rows": len(y), **check}]
        return clone(model).fit(X, y, treated) if check["better"] else None

    def _cache(self, trained) -> dict:
        """Each week's features, kept while the risk model (whose features they are) stays."""
        if getattr(self, "cached_for_", None) is not trained:
            self.cache_: dict = {}
            self.cached_for_ = trained
        return self.cache_
