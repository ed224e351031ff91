"""Run configurations: YAML files that say what to backtest, validated on load.

A configuration names its data (a simulator preset, a dataset folder, or incident
records turned into cells or areas), the level and target, the horizons, the test
cutoffs, the training cutoffs, feature options, the model families with their
parameters, the tier policy and the MLflow experiment. Unknown keys and wrong
types are errors that name the key and the file. See ``configs/`` for examples.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from .contract import Dataset
from .evaluation.targets import TARGETS, TargetKind

__all__ = ["ConfigError", "RunConfig", "load_config", "run_backtest", "train_final"]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Simulator(_Strict):
    """The simulated district of a preset and seed."""

    kind: Literal["simulator"]
    preset: str = "small"
    seed: int = 0


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


class Training(_Strict):
    """Training cutoffs every ``frequency`` from ``start`` (default: 91 days after the
    first case); the models are refitted every ``refit_every`` folds."""

    start: datetime.date | None = None
    frequency: str = "W-MON"
    refit_every: int = Field(1, ge=1)


class ModelSpec(_Strict):
    """A model family of :mod:`riskmodel.models` and its parameters."""

    family: str
    params: dict[str, Any] = {}


class Tiers(_Strict):
    """The parameters of :class:`~riskmodel.models.TierPolicy`."""

    cut_points: tuple[float, float, float] = (0.5, 0.25, 0.1)
    capacity: int | tuple[int, ...] | None = None
    share: float | tuple[float, ...] | None = None


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
            dataset = simulate_district(data.preset, seed=data.seed)
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

    config.estimators()
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


def train_final(config: RunConfig, estimator, dataset: Dataset | None = None, **options):
    """The final model of ``config`` (first horizon, its tier policy) fitted on all
    labelled history by :func:`riskmodel.train`; ``options`` go to it (``track``,
    ``register``)."""
    from .training import train

    if config.kind.registered_name is None:
        raise ConfigError(
            f"{config.name}: the {config.target} target has no final model to train: its detectors "
            "(SpikeDetector) learn nothing from labels"
        )
    return train(
        config.dataset() if dataset is None else dataset,
        model=estimator,
        target=config.kind,
        escalation_days=config.escalation_days,
        **config.training_options(),
        **options,
    )
