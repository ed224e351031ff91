"""Run configurations: YAML files that say what to backtest, validated on load.

A configuration names its data (a simulator preset, a dataset folder, or incident
records turned into cells or areas), the level and target, the horizons, the test
cutoffs, the training cutoffs, feature options, the model families with their
parameters, the tier policy, the MLflow experiment and, for the prevention loop, the
visit plans' settings (a simulator's ``policy`` simulates the loop with them). Unknown keys and wrong
types are errors that name the key and the file. See ``configs/`` for examples.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from .contract import Dataset
from .evaluation.targets import TARGETS, TargetKind

__all__ = ["ConfigError", "RunConfig", "load_config", "run_backtest", "train_final"]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: The visit policies a simulator can run (see :meth:`RunConfig.policy`).
POLICIES = ("none", "random", "historical_rate", "risk", "uplift", "oracle")


class Simulator(_Strict):
    """The simulated district of a preset and seed; with a ``policy``, the prevention
    loop simulated with the ``prevention`` settings from ``policy_start`` (default:
    the last 52 weeks)."""

    kind: Literal["simulator"]
    preset: str = "small"
    seed: int = 0
    policy: Literal[POLICIES] | None = None  # type: ignore[valid-type]
    policy_start: datetime.date | None = None


class Folder(_Strict):
    """A dataset folder written by :func:`riskmodel.io.write_dataset`."""

    kind: Literal["folder"]
    path: Path


class Events(_Strict):
    """Incident records (CSV or TSV, compressed or not) turned into cells or areas by
    :func:`riskmodel.io.events_to_dataset`; the column names map the file's columns."""

    kind: Literal["events"]
    path: Path
    sep: str = ","
    time: str
    lon: str | None = None
    lat: str | None = None
    area: str | None = None
    category: str | None = None
    cell_m: float = Field(500.0, gt=0)


class Cutoffs(_Strict):
    """Test cutoffs every ``frequency`` from ``start`` to ``end``. Without ``end``: the
    last cutoff whose longest horizon closed by the end of the data; without
    ``start``: ``last_days`` before ``end``."""

    start: datetime.date | None = None
    end: datetime.date | None = None
    last_days: int | None = Field(None, gt=0)
    frequency: str = "W-MON"


class Selection(_Strict):
    """How ``model: auto`` chooses the final model (:func:`riskmodel.evaluation.selection.select_champion`):
    a backtest on the last ``folds`` training-frequency cutoffs, the models refitted every
    ``refit_every`` folds, compared by ``metric`` (default: the target's headline) with
    ``confidence`` intervals."""

    folds: int = Field(12, ge=1)
    refit_every: int = Field(4, ge=1)
    metric: str | None = None
    confidence: float = Field(0.95, gt=0, lt=1)


class Training(_Strict):
    """Training cutoffs every ``frequency`` from ``start`` (default: 91 days after the
    first case); the models are refitted every ``refit_every`` folds. ``model`` is the
    final model ``riskmodel train`` fits: ``auto`` (chosen by evidence among the
    configured models, see ``selection``) or a configured model's name."""

    start: datetime.date | None = None
    frequency: str = "W-MON"
    refit_every: int = Field(1, ge=1)
    model: str = "auto"
    selection: Selection = Selection()


class ModelSpec(_Strict):
    """A model family of :mod:`riskmodel.models` and its parameters."""

    family: str
    params: dict[str, Any] = {}


class Tiers(_Strict):
    """The parameters of :class:`~riskmodel.models.TierPolicy`."""

    cut_points: tuple[float, float, float] = (0.5, 0.25, 0.1)
    capacity: int | tuple[int, ...] | None = None
    share: float | tuple[float, ...] | None = None


class Prevention(_Strict):
    """The visit plans' settings (:func:`riskmodel.prevention.plan_visits`) and the loop's."""

    capacity: float = Field(ge=0)  # visits per group and week; below 1: a share of the group's units
    by: str | None = "community"  # the level whose units share a capacity; null: one for all
    explore: float = Field(0.1, ge=0, le=1)
    pool: int = Field(3, ge=2)
    rank_by: Literal["risk", "uplift"] = "risk"
    cooldown_days: int = Field(28, ge=0)
    retrain_every: int = Field(4, ge=1)  # weeks between the policy's retrainings
    effect_horizon: int = Field(28, gt=0)  # days after a visit whose cases it is judged on


class Report(_Strict):
    """Disclosure control of the report (:mod:`riskmodel.evaluation.disclosure`): counts
    below ``k`` at the micro-grid level or of a ``sensitive`` category read "< k", and
    with ``aggregate_map`` a micro-grid level is mapped at the level above."""

    k: int = Field(3, ge=1)
    sensitive: list[str] = ["family"]
    aggregate_map: bool = True


Horizon = PositiveInt | Annotated[dict[Literal["months", "weeks", "days"], PositiveInt], Field(min_length=1)]


class RunConfig(_Strict):
    """A validated run configuration (see the module's docstring)."""

    name: str
    data: Annotated[Simulator | Folder | Events, Field(discriminator="kind")]
    level: str = "grid"
    target: str = "grid"  # a kind of target: riskmodel.evaluation.targets.TARGETS
    horizons: list[Horizon] = Field([28], min_length=1)  # the grid target's; the others have none
    cutoffs: Cutoffs = Cutoffs()
    training: Training = Training()
    features: dict[str, Any] = {}
    models: dict[str, ModelSpec] | None = None
    tier_policy: Tiers = Tiers()
    escalation_days: int = Field(30, gt=0)
    experiment: str = "riskmodel"
    earliest: datetime.date = datetime.date(1990, 1, 1)  # case times before it are refused (validate's bound)
    prevention: Prevention | None = None
    report: Report = Report()

    @model_validator(mode="after")
    def _policy_has_settings(self):
        policy = getattr(self.data, "policy", None)
        if policy not in (None, "none") and self.prevention is None:
            raise ValueError(f"data.policy {policy!r} needs a prevention section (at least its capacity)")
        if policy == "random" and self.prevention.capacity >= 1 and self.prevention.by is not None:
            raise ValueError(
                "prevention.capacity: the random policy draws among all units; give a share below 1 "
                f"or by: null, got capacity {self.prevention.capacity} by {self.prevention.by!r}"
            )
        return self

    @field_validator("horizons", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return value if isinstance(value, list) else [value]

    @field_validator("target")
    @classmethod
    def _known_target(cls, value):
        if value not in TARGETS:
            raise ValueError(f"unknown target {value!r}; the kinds are {', '.join(TARGETS)}")
        return value

    @property
    def kind(self) -> TargetKind:
        """The configured kind of target."""
        return TARGETS[self.target]

    def dataset(self) -> Dataset:
        """The configured data, validated (with ``earliest`` as the earliest case time)."""
        from .datasets import simulate_district
        from .io import events_to_dataset, read_dataset
        from .validation import validate

        data = self.data
        dataset: Dataset
        if isinstance(data, Simulator):
            dataset = simulate_district(
                data.preset, seed=data.seed, policy=self.policy(), policy_start=data.policy_start
            )
        elif isinstance(data, Folder):
            dataset = read_dataset(data.path)
        else:
            frame = pd.read_csv(data.path, sep=data.sep)
            dataset = events_to_dataset(
                frame,
                time=data.time,
                lon=data.lon,
                lat=data.lat,
                area=data.area,
                category=data.category,
                cell_m=data.cell_m,
            ).dataset
        return validate(dataset, earliest=self.earliest).dataset

    def policy(self):
        """The simulator's visit policy built from the ``prevention`` settings (None
        without one). The forecasting policies (risk, uplift) train on resident-reported
        cases (their default) unless ``features`` gives other ``origins``."""
        from .datasets import NoVisits, RandomVisits
        from .prevention import HistoricalRateVisits, OracleVisits, RiskVisits, UpliftVisits

        name, settings = getattr(self.data, "policy", None), self.prevention
        if name is None:
            return None
        if name == "none" or settings is None:
            return NoVisits()
        seed = self.data.seed
        common = dict(capacity=settings.capacity, by=settings.by, cooldown_days=settings.cooldown_days)
        if name == "random":
            return RandomVisits(capacity=settings.capacity, seed=seed)
        if name == "oracle":
            return OracleVisits(**common, horizon=settings.effect_horizon)
        if name == "historical_rate":
            return HistoricalRateVisits(**common, explore=settings.explore, seed=seed)
        policy = UpliftVisits if name == "uplift" else RiskVisits
        return policy(
            **common,
            explore=settings.explore,
            seed=seed,
            retrain_every=settings.retrain_every,
            horizon=settings.effect_horizon,
            features=dict(self.features),
        )

    def plan(self, forecast: pd.DataFrame, *, seed: int = 0, week=None) -> pd.DataFrame:
        """The week's visits planned from ``forecast`` (a :func:`riskmodel.predict`
        answer, with an ``uplift`` column for ``rank_by: uplift``) with the ``prevention``
        settings, by :func:`riskmodel.prevention.plan_visits`."""
        from .prevention import capacity_per_group, plan_visits

        if self.prevention is None:
            raise ConfigError(f"{self.name}: no prevention section to plan visits with")
        settings = self.prevention
        return plan_visits(
            forecast,
            capacity=capacity_per_group(settings.capacity, forecast, settings.by),
            by=settings.by,
            explore=settings.explore,
            pool=settings.pool,
            rank_by=settings.rank_by,
            seed=seed,
            week=week,
        )

    def horizon(self, i: int = 0) -> int | pd.DateOffset:
        """The ``i``-th horizon: days, or a pandas offset of months or weeks."""
        value = self.horizons[i]
        return value if isinstance(value, int) else pd.DateOffset(**value)

    def training_options(self) -> dict:
        """The arguments of :func:`riskmodel.train` (and of the Dask path's
        :func:`riskmodel.scaleout.train`) that this configuration sets: its first
        horizon, level, training cutoffs, feature options, tier policy and experiment."""
        return dict(
            horizon=self.horizon(),
            level=self.level,
            frequency=self.training.frequency,
            train_start=self.training.start,
            features=self.features,
            tier_policy=self.tiers(),
            experiment=self.experiment,
        )

    def tiers(self):
        """The configured :class:`~riskmodel.models.TierPolicy`."""
        from .models import TierPolicy

        return TierPolicy(**self.tier_policy.model_dump())

    def estimators(self) -> dict:
        """Fresh estimators of the configured families (default: the roster of the target)."""

        if self.models is None:
            return self.kind.roster()
        return {name: _estimator(name, spec) for name, spec in self.models.items()}

    def test_cutoffs(self, dataset: Dataset) -> pd.DatetimeIndex:
        """The test cutoffs, each with its label windows closed by the end of the data:
        every horizon (grid target) or the escalation window of a fold's cases."""
        closed = self.kind.last_cutoff(
            dataset.end,
            horizons=[self.horizon(i) for i in range(len(self.horizons))],
            frequency=self.cutoffs.frequency,
            escalation_days=self.escalation_days,
        )
        last = pd.Timestamp(self.cutoffs.end) if self.cutoffs.end else closed
        start = (
            pd.Timestamp(self.cutoffs.start)
            if self.cutoffs.start
            else last - pd.Timedelta(days=self.cutoffs.last_days or 364)
        )
        cutoffs = pd.date_range(start, last, freq=self.cutoffs.frequency)
        if len(cutoffs) == 0:
            raise ConfigError(f"{self.name}: no test cutoff at {self.cutoffs.frequency!r} from {start} to {last}")
        return cutoffs


def _estimator(name: str, spec: ModelSpec):
    from . import models

    families = [n for n in models.__all__ if hasattr(getattr(models, n), "fit")]  # the estimators
    if spec.family not in families:
        raise ConfigError(f"models.{name}.family: unknown family {spec.family!r}; known: {families}")
    try:
        return getattr(models, spec.family)(**spec.params)
    except TypeError as error:
        raise ConfigError(f"models.{name}.params: {error}") from None


def load_config(path) -> RunConfig:
    """Read and validate a YAML run configuration.

    Raises
    ------
    ConfigError
        Naming the file and, for each problem, the key, the rule and the value given.

    Examples
    --------
    >>> from riskmodel.config import load_config
    >>> config = load_config("configs/grid_risk.yaml")
    >>> config.data.preset, config.horizons
    ('district', [28])
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the configuration: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a configuration is a mapping of keys, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as error:
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']} (got {e['input']!r})" for e in error.errors()
        )
        raise ConfigError(f"{path}: {error.error_count()} problem(s)\n{problems}") from None
    try:
        _check(config)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return config


def _check(config: RunConfig) -> None:
    """What the schema cannot say: the families and their parameters, the feature
    options and the tier policy, each built once."""
    from .features import GridPanelBuilder

    estimators = config.estimators()
    if config.training.model != "auto" and config.training.model not in estimators:
        raise ConfigError(
            f"training.model: {config.training.model!r} is neither 'auto' nor a configured model ({list(estimators)})"
        )
    if config.features and not config.kind.panel:
        raise ConfigError(f"features: options of the grid panel; the target {config.target!r} takes none")
    try:
        GridPanelBuilder(**config.features)
    except TypeError as error:
        raise ConfigError(f"features: {error}") from None
    try:
        config.tiers().assign(pd.Series([0.5]))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"tier_policy: {error}") from None


def run_backtest(
    config: RunConfig, dataset: Dataset | None = None, *, track: bool = True, progress: bool = True
) -> list:
    """Backtest the configured models at every configured horizon (on ``dataset``, by
    default the configured data); one :class:`~riskmodel.evaluation.BacktestResult` per
    horizon."""
    from .evaluation import backtest

    dataset = config.dataset() if dataset is None else dataset
    cutoffs = config.test_cutoffs(dataset)
    horizons = len(config.horizons) if config.kind.horizons else 1  # the other kinds have no horizon
    return [
        backtest(
            dataset,
            config.estimators(),
            cutoffs=cutoffs,
            horizon=config.horizon(i),
            target=config.kind,
            level=config.level,
            train_start=config.training.start,
            train_frequency=config.training.frequency,
            refit_every=config.training.refit_every,
            features=config.features,
            escalation_days=config.escalation_days,
            track=track,
            experiment=config.experiment,
            progress=progress,
        )
        for i in range(horizons)
    ]


def train_final(config: RunConfig, estimator="auto", dataset: Dataset | None = None, **options):
    """The final model of ``config`` (first horizon, its tier policy) fitted on all
    labelled history by :func:`riskmodel.train`; ``options`` go to it (``track``,
    ``register``). ``estimator="auto"`` chooses among the configured models with the
    ``training.selection`` settings."""
    from .training import train

    if config.kind.registered_name is None:
        raise ConfigError(
            f"{config.name}: the {config.target} target has no final model to train: its detectors "
            "(SpikeDetector) learn nothing from labels"
        )
    if isinstance(estimator, str) and estimator == "auto":
        options = dict(candidates=config.estimators(), selection=config.training.selection.model_dump()) | options
    return train(
        config.dataset() if dataset is None else dataset,
        model=estimator,
        target=config.kind,
        escalation_days=config.escalation_days,
        **config.training_options(),
        **options,
    )
