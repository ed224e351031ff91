"""Kinds of target: grid risk, case escalation and wave detection.

Each kind is one object that the backtest, training, serving, the configuration, the
plots and the command line ask for what differs between kinds, instead of comparing
names: its default models, the last test cutoff whose labels have closed, how a fold
is fitted and scored, its headline metric and plots, its registry name, the rows a
final model is trained on and the rows it answers. Adding a kind of target is one
class here (registered in :data:`TARGETS`) and its tests.

The word *target* also names what a grid label counts (:class:`riskmodel.features.Target`:
categories, a minimum severity, escalations); that is an option of the grid kind.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone, is_regressor
from tqdm.auto import tqdm

from ..contract import Dataset, level_column
from ..features import CaseFeatureBuilder, GridPanelBuilder, build_case_features
from ..features.base import Target, counted_cases, parse_horizon, parse_target, training_cutoffs
from ..models import SpikeDetector, case_models, grid_models
from ..models.baselines import Baseline
from ..models.calibration import latest_start
from ..models.distribution import fit_dispersion
from ..models.protocol import poisson_probability
from . import metrics

if TYPE_CHECKING:  # the trained model asks its kind; the kind only reads it
    from ..training import TrainedModel

__all__ = [
    "TARGETS",
    "CaseEscalation",
    "GridRisk",
    "TargetKind",
    "TrainingSet",
    "WaveDetection",
    "alert_text",
    "anomaly_alerts",
    "holdout_dispersion",
    "open_cases",
    "target_kind",
    "unit_rows",
]


class TrainingSet:
    """The rows a final model is fitted on: features ``X``, labels ``y`` (counts for a
    regressor), the fitted ``builder``, the last time they cover, the units seen, and an
    ``example`` of the feature rows (pandas, a few rows: the schema and MLflow's input
    example). ``X`` and ``y`` are what the executor that built them fits on (pandas in
    memory; the Dask path keeps a Dask panel in ``X``). ``counts``: a grid panel's counts
    in memory, from which :meth:`dispersion` is fitted (None on the Dask path and for cases)."""

    def __init__(self, *, X, y, builder, trained_through, units=None, example=None, counts=None):
        self.X, self.y, self.builder, self.counts = X, y, builder, counts
        self.trained_through, self.units = trained_through, units
        self.example = X.iloc[:5] if example is None else example

    def dispersion(self, model, fitted) -> float:
        """The NB2 dispersion of ``fitted`` (``model`` fitted on these rows), by
        :func:`holdout_dispersion`; 0, the Poisson law, without counts in memory."""
        if self.counts is None:
            return 0.0
        counts = np.asarray(self.counts, dtype=float)
        horizon = parse_horizon(self.builder.horizon)
        return holdout_dispersion(model, self.X, (counts >= 1).astype(float), counts, horizon, fitted=fitted)


class TargetKind:
    """What differs between kinds of target (see the module's docstring).

    Attributes
    ----------
    name : str
        The kind's name in configurations, MLflow tags and saved models.
    registered_name : str or None
        The MLflow registry name of its final model; None when it has none.
    headline : str
        The leaderboard's sort metric (best first).
    horizons : bool
        Whether the configuration's horizons apply (else one backtest is run).
    counts : bool
        Whether its models give expected counts and its rows are units (ranked and
        tiered per cutoff); else its rows are cases, tiered as one group.
    panel : bool
        Whether its features are the grid panel (a configuration's ``features``
        options apply).
    probabilities : bool
        Whether its models give probabilities (a calibration curve applies).
    """

    name: ClassVar[str]
    registered_name: ClassVar[str | None] = None
    headline: ClassVar[str]
    horizons: ClassVar[bool] = False
    counts: ClassVar[bool] = False
    panel: ClassVar[bool] = False
    probabilities: ClassVar[bool] = True

    def roster(self) -> dict:
        """Fresh default models of the kind, by name."""
        raise NotImplementedError

    def last_cutoff(self, end: pd.Timestamp, *, horizons, frequency: str, escalation_days: int) -> pd.Timestamp:
        """The last test cutoff whose labels have closed by ``end``."""
        return end

    def run_folds(self, dataset: Dataset, models: dict, cutoffs: pd.DatetimeIndex, **options):
        """Fit and score every model on every fold: the folds' metrics and the predictions."""
        raise NotImplementedError

    def training_set(self, dataset: Dataset, model, **options) -> TrainingSet:
        """The rows a final model is fitted on."""
        raise ValueError(f"the {self.name} target has no final model to train: its detectors learn nothing from labels")

    @staticmethod
    def features(builder, dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
        """The feature rows a final model scores at ``as_of``."""
        raise NotImplementedError

    @staticmethod
    def window(builder) -> pd.Timedelta | pd.DateOffset:
        """The forecast window of a final model's answer (its ``horizon_days``)."""
        raise NotImplementedError

    @staticmethod
    def rows(trained, dataset: Dataset, X: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
        """The identifying columns and ``alerts`` of :func:`riskmodel.predict`'s answer, one row per row of ``X``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _fits(models, fold: int, refit_every: int, fitted: dict, X, y, y_count):
    if fold % refit_every == 0 or not fitted:
        for name, model in models.items():
            fitted[name] = clone(model).fit(X, y_count if is_regressor(model) else y)
    return fitted


class GridRisk(TargetKind):
    """Risk of every unit of a level: cases (of a :class:`~riskmodel.features.Target`)
    reported in the horizon after each cutoff."""

    name = "grid"
    registered_name = "dispute-risk-grid"
    headline = "hit_rate_at_5pct"
    horizons = True
    counts = True
    panel = True

    def roster(self) -> dict:
        return grid_models()

    def last_cutoff(self, end, *, horizons, frequency, escalation_days):
        return min(end - parse_horizon(h) for h in horizons)

    def run_folds(
        self,
        dataset,
        models,
        cutoffs,
        *,
        horizon,
        target,
        level,
        train_start,
        train_frequency,
        refit_every,
        capacity,
        features,
        progress,
        **_,
    ):
        horizon = parse_horizon(horizon)
        parsed = parse_target(target)
        panel = _backtest_panel(dataset, cutoffs, horizon, parsed, level, train_start, train_frequency, features)
        cutoff = panel.X.index.get_level_values("cutoff")
        units = panel.X.index.get_level_values(0)
        streets = _streets(dataset, level, units)
        area = dataset.grids.set_index("grid_id")["area_km2"] if "area_km2" in dataset.grids else None
        oracle = _oracle(dataset, horizon, level, parsed)
        rows, predictions, fitted, dispersion = [], [], {}, {}
        for fold, c in enumerate(tqdm(cutoffs, desc="backtest", disable=not progress)):
            train = np.asarray(cutoff + horizon <= c) & panel.label_known.to_numpy()
            test = np.asarray(cutoff == c)
            if not train.any():
                raise ValueError(
                    f"fold {fold} (test cutoff {c.date()}) has no training rows whose label window "
                    "closed before it; start the test cutoffs later or train_start earlier"
                )
            y, y_count = panel.y[train], panel.y_count[train]
            fitted = _fits(models, fold, refit_every, fitted, panel.X[train], y, y_count)
            if fold % refit_every == 0 or not dispersion:  # with the models' refits
                dispersion = _dispersions(models, fitted, oracle, panel.X[train], y, y_count, horizon)
            X = panel.X[test]
            outputs = {name: (m.predict_proba(X)[:, 1], m.predict_expected(X)) for name, m in fitted.items()}
            latest = panel.X[np.asarray(cutoff == cutoff[train].max())]  # drift: the last training cutoff's scores
            drift = {
                name: metrics.population_stability_index(m.predict_proba(latest)[:, 1], outputs[name][0])
                for name, m in fitted.items()
            }
            if oracle is not None:
                expected = oracle(c).reindex(units[test]).to_numpy()
                outputs = {"oracle": (poisson_probability(expected), expected)} | outputs
            truth = panel.y_count[test].to_numpy()
            for name, (p, e) in outputs.items():
                scores = metrics.score_fold(
                    truth,
                    p,
                    e,
                    area=None if area is None else area.reindex(units[test]).to_numpy(),
                    capacity=capacity,
                    street=None if streets is None else streets[test],
                    dispersion=dispersion[name],
                )
                scores["psi_score"] = drift.get(name, np.nan)
                rows.append({"model": name, "fold": fold, "cutoff": c, "train_rows": int(train.sum())} | scores)
                predictions.append(
                    pd.DataFrame(
                        {
                            "model": name,
                            "fold": fold,
                            "probability": p,
                            "expected": e,
                            "dispersion": dispersion[name],
                            "y": panel.y[test].to_numpy(),
                            "y_count": truth,
                        },
                        index=X.index,
                    )
                )
        return pd.DataFrame(rows), pd.concat(predictions)

    @staticmethod
    def training_builder(
        first: pd.Timestamp,
        end: pd.Timestamp,
        *,
        horizon=28,
        target=None,
        level="grid",
        frequency="W-MON",
        train_start=None,
        features=None,
        **_,
    ) -> GridPanelBuilder:
        """The (unfitted) builder of a final model's panel, for data from the case at
        ``first`` to ``end``: cutoffs at ``frequency`` from ``train_start`` (default 91
        days after the first case) to the last whose horizon closed by ``end``. In memory
        and on Dask alike.

        Raises
        ------
        ValueError
            When there is no such cutoff.
        """
        horizon = parse_horizon(horizon)
        last = pd.Timestamp(end) - horizon
        cutoffs = training_cutoffs(first, train_start, last, frequency)
        if len(cutoffs) == 0:
            raise ValueError(
                f"no training cutoff at {frequency!r} from {train_start or 'the default start'} to "
                f"{last} (the end of the data minus the horizon {horizon})"
            )
        return GridPanelBuilder(
            cutoffs=cutoffs, horizon=horizon, level=level, target=parse_target(target), **(features or {})
        )

    def training_set(self, dataset, model, **options) -> TrainingSet:
        builder = self.training_builder(dataset.cases["reported_at"].min(), dataset.end, **options)
        panel = builder.fit(dataset).build(dataset)
        known = panel.label_known.to_numpy()
        X = panel.X[known]
        return TrainingSet(
            X=X,
            y=(panel.y_count if is_regressor(model) else panel.y)[known],
            builder=builder,
            trained_through=builder.cutoffs[-1],
            units=X.index.get_level_values(0).unique(),
            counts=panel.y_count[known],
        )

    @staticmethod
    def features(builder, dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
        """Every unit's features at ``as_of``."""
        return copy.copy(builder).set_params(cutoffs=[as_of]).transform(dataset)

    @staticmethod
    def window(builder) -> pd.Timedelta | pd.DateOffset:
        return parse_horizon(builder.horizon)

    @staticmethod
    def rows(trained, dataset: Dataset, X: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
        """The units of the feature rows ``X`` with their parents and alerts; every unit of
        the level, or an error (a unit is never lost)."""
        out = unit_rows(trained, dataset, X, as_of)
        level = trained.builder.level
        expected = dataset.grids.loc[dataset.grids["level"] == level, "grid_id"]
        if len(out) != len(expected) or not out["grid_id"].isin(expected).all():
            raise RuntimeError(
                f"scored {len(out)} units of the {len(expected)} at level {level!r}: a unit would "
                "be lost; please report this"
            )
        return out


#: The share of the training rows (the latest, in whole cutoffs) that a fold's
#: dispersion is fitted on.
DISPERSION_SLICE = 0.2


def holdout_dispersion(model, X: pd.DataFrame, y, y_count, horizon, fitted=None) -> float:
    """The NB2 dispersion of ``model``'s forecasts, fitted out of sample inside the training rows.

    Three ways, the cheapest that is out of sample:

    - ``fitted`` (the model fitted on all of ``X``) exposes ``holdout_``: positions in ``X``
      and its expected counts there from a fit that did not see them (the calibration slice
      of :class:`~riskmodel.models.GBMCount`, :class:`~riskmodel.models.GBMRisk` and
      :class:`~riskmodel.models.LogisticRisk`; the validation blocks of
      :class:`~riskmodel.models.EnsembleCount`). No extra fit.
    - ``fitted`` is a :class:`~riskmodel.models.Baseline`: it learns nothing from the
      labels, so its forecasts of the latest :data:`DISPERSION_SLICE` of the rows are honest.
    - Otherwise the latest :data:`DISPERSION_SLICE` of the rows, in whole cutoffs, are held
      out, a clone of ``model`` is fitted on the rows whose label window closed before the
      slice begins (the backtest's embargo), and the dispersion is fitted on its forecasts
      for the slice (with no such row, on the whole-rows model's own slice forecasts).

    The dispersion is fitted by maximum likelihood
    (:func:`~riskmodel.models.distribution.fit_dispersion`) against the counts ``y_count``;
    ``y`` are the 0/1 labels (a classifier is fitted on them, a regressor on ``y_count``).

    Why out of sample: a learned model's expected counts on its own training rows are
    closer to the counts than its forecasts will be (LightGBM's trees fit the noise of
    the training rows), so an in-sample dispersion is too small and the intervals too
    narrow. Measured on the ``district`` simulator (seed 0, 28 days, folds at 2025-06-02
    and 2025-06-30): GBMCount's dispersion fitted in sample on the latest slice was
    0.41-0.44, out of sample 0.52-0.57, and the 80% PIT coverage 0.802/0.796 against
    0.808/0.802.
    """
    y_count = np.asarray(y_count, dtype=float)
    holdout = getattr(fitted, "holdout_", None)
    if holdout is not None:
        positions, expected = holdout
        return fit_dispersion(expected, y_count[positions])
    cutoff = X.index.get_level_values("cutoff")
    start = latest_start(pd.Series(cutoff).value_counts(), DISPERSION_SLICE) if cutoff.nunique() > 1 else cutoff.min()
    slice_ = np.asarray(cutoff >= start)
    if isinstance(fitted, Baseline):
        return fit_dispersion(fitted.predict_expected(X[slice_]), y_count[slice_])
    early = np.asarray(cutoff + horizon <= start)
    if early.any():
        try:
            model = clone(model).fit(X[early], (y_count if is_regressor(model) else y)[early])
        except ValueError:  # the earlier rows cannot fit it (one class only): fit on all rows
            early = np.zeros(len(X), dtype=bool)
    if not early.any():  # the whole-rows model's own slice forecasts
        model = fitted if fitted is not None else clone(model).fit(X, y_count if is_regressor(model) else y)
    return fit_dispersion(model.predict_expected(X[slice_]), y_count[slice_])


def _dispersions(models: dict, fitted: dict, oracle, X: pd.DataFrame, y, y_count, horizon) -> dict[str, float]:
    """Every model's :func:`holdout_dispersion`, and the oracle's when there is one."""
    found = {
        name: holdout_dispersion(model, X, y, y_count, horizon, fitted=fitted[name]) for name, model in models.items()
    }
    return found if oracle is None else found | {"oracle": _oracle_dispersion(oracle, X, y_count)}


def _oracle_dispersion(oracle, X: pd.DataFrame, y_count, cutoffs: int = 4) -> float:
    """The truth's dispersion on the last ``cutoffs`` training cutoffs: it learns nothing
    from the labels, so they are honest; the counts of a self-exciting process are more
    spread than Poisson around even the exact conditional mean."""
    cutoff = X.index.get_level_values("cutoff")
    last = np.asarray(cutoff.isin(np.sort(cutoff.unique())[-cutoffs:]))
    units = X.index.get_level_values(0)[last]
    expected = np.concatenate([oracle(c).reindex(units[cutoff[last] == c]).to_numpy() for c in cutoff[last].unique()])
    order = np.concatenate([np.flatnonzero(cutoff[last] == c) for c in cutoff[last].unique()])
    return fit_dispersion(np.nan_to_num(expected), np.asarray(y_count)[last][order])


def _backtest_panel(dataset, cutoffs, horizon, target: Target, level, train_start, train_frequency, features):
    """One panel at the training and the test cutoffs; every test cutoff's labels must have closed."""
    train_cutoffs = training_cutoffs(dataset.cases["reported_at"].min(), train_start, cutoffs[-1], train_frequency)
    builder = GridPanelBuilder(
        cutoffs=train_cutoffs.union(cutoffs), horizon=horizon, level=level, target=target, **features
    )
    panel = builder.fit(dataset).build(dataset)
    unknown = [str(c.date()) for c in cutoffs if not panel.label_known.xs(c, level="cutoff").all()]
    if unknown:
        raise ValueError(
            f"test cutoff(s) {unknown[:5]} have label windows of {horizon} that had not closed by "
            f"the end of the data ({dataset.end}); end the backtest earlier"
        )
    return panel


def _streets(dataset, level, units):
    if "street" not in dataset.levels or dataset.levels.index("street") >= dataset.levels.index(level):
        return None
    return pd.Index(units).map(dataset.ancestors("street")).to_numpy()


def _oracle(dataset, horizon, level, target: Target):
    truth = getattr(dataset, "truth", None)
    if truth is None or not isinstance(horizon, pd.Timedelta) or target.escalations:
        return None
    days = horizon.days

    def expected(c):
        return truth.expected_counts(
            c, days, level=level, categories=target.categories, min_severity=target.min_severity
        )

    return expected


class CaseEscalation(TargetKind):
    """Which new case escalates within ``escalation_days`` of its report."""

    name = "escalation"
    registered_name = "dispute-escalation-case"
    headline = "roc_auc"

    def roster(self) -> dict:
        return case_models()

    def last_cutoff(self, end, *, horizons, frequency, escalation_days):
        period = pd.date_range(end, periods=2, freq=frequency)  # the last fold's cases need their window too
        return end - pd.Timedelta(days=escalation_days) - (period[1] - period[0])

    def run_folds(self, dataset, models, cutoffs, *, level, refit_every, escalation_days, progress, **_):
        cases = build_case_features(dataset, escalation_days=escalation_days, level=level)
        reported = cases.X.index.get_level_values("reported_at")
        known_by = reported + pd.Timedelta(days=escalation_days)
        truth = getattr(dataset, "truth", None)
        bounds = list(cutoffs[1:]) + [
            cutoffs[-1] + (cutoffs[-1] - cutoffs[-2] if len(cutoffs) > 1 else pd.Timedelta(days=7))
        ]
        closes = bounds[-1] + pd.Timedelta(days=escalation_days)
        if closes > pd.Timestamp(dataset.end):
            raise ValueError(
                f"the last fold's cases (reported until {bounds[-1].date()}) have escalation windows "
                f"of {escalation_days} days that close on {closes.date()}, after the end of the data "
                f"({dataset.end}); end the backtest earlier"
            )
        rows, predictions, fitted = [], [], {}
        for fold, (c, until) in enumerate(
            tqdm(list(zip(cutoffs, bounds, strict=True)), desc="backtest", disable=not progress)
        ):
            train = np.asarray(known_by <= c) & cases.label_known.to_numpy()
            test = np.asarray((reported >= c) & (reported < until)) & cases.label_known.to_numpy()
            if not train.any() or not test.any():
                raise ValueError(
                    f"fold {fold} (test cutoff {c.date()}) has no "
                    f"{'training' if not train.any() else 'test'} cases with a known label"
                )
            fitted = _fits(models, fold, refit_every, fitted, cases.X[train], cases.y[train], cases.y[train])
            X, y = cases.X[test], cases.y[test].to_numpy()
            outputs = {name: m.predict_proba(X)[:, 1] for name, m in fitted.items()}
            if truth is not None:
                outputs = {
                    "oracle": truth.escalation_probability.reindex(X.index.get_level_values("case_id")).to_numpy()
                } | outputs
            for name, p in outputs.items():
                rows.append(
                    {"model": name, "fold": fold, "cutoff": c, "train_rows": int(train.sum())}
                    | metrics.score_cases(y, p)
                )
                predictions.append(pd.DataFrame({"model": name, "fold": fold, "probability": p, "y": y}, index=X.index))
        return pd.DataFrame(rows), pd.concat(predictions)

    def training_set(self, dataset, model, *, escalation_days=30, level="grid", **_) -> TrainingSet:
        builder = CaseFeatureBuilder(escalation_days=escalation_days, level=level)
        cases = builder.fit(dataset).build(dataset)
        known = cases.label_known.to_numpy()
        if not known.any():
            raise ValueError(f"no case has a known escalation label ({escalation_days} days after its report)")
        X = cases.X[known]
        return TrainingSet(
            X=X, y=cases.y[known], builder=builder, trained_through=X.index.get_level_values("reported_at").max()
        )

    @staticmethod
    def features(builder, dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
        """The features of the cases open at ``as_of``."""
        cases = builder.transform(dataset)
        ids = cases.index.get_level_values("case_id")
        return cases[ids.isin(open_cases(counted_cases(dataset.cases, builder.count), as_of))]

    @staticmethod
    def window(builder) -> pd.Timedelta:
        return pd.Timedelta(days=builder.escalation_days)

    @staticmethod
    def rows(trained, dataset: Dataset, X: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
        """The open cases of the feature rows ``X`` with their units (cases carry no alerts)."""
        ids = X.index.get_level_values("case_id")
        grid = dataset.cases.set_index("case_id")["grid_id"].reindex(ids).to_numpy()
        return pd.DataFrame({"case_id": ids, "grid_id": grid, "alerts": ""})


def open_cases(cases: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Index:
    """The ids of the cases reported before ``cutoff`` and neither resolved nor escalated before it."""
    open_ = cases["reported_at"] < cutoff
    for column in ("resolved_at", "escalated_at"):
        if column in cases:
            open_ &= ~(cases[column] < cutoff)
    return pd.Index(cases.loc[open_, "case_id"])


class WaveDetection(TargetKind):
    """Injected dispute waves of a simulated district, watched daily by detectors."""

    name = "waves"
    headline = "wave_detection_rate"
    probabilities = False

    def roster(self) -> dict:
        return {"SpikeDetector": SpikeDetector()}

    def run_folds(self, dataset, models, cutoffs, *, level, progress, **_):
        truth = getattr(dataset, "truth", None)
        if truth is None:
            raise ValueError("the waves target needs a simulated district: the injected waves are its truth")
        if len(cutoffs) < 2:
            raise ValueError("the waves target needs at least two test cutoffs: fold i watches [c_i, c_i+1)")
        levels = [lv for lv in (level, dataset.parent_level(level)) if lv is not None]
        watch = pd.date_range(cutoffs[0], cutoffs[-1] + pd.Timedelta(days=13), freq="D")
        panels = {
            lv: GridPanelBuilder(cutoffs=watch, horizon=1, level=lv).fit(dataset).build(dataset).X for lv in levels
        }
        parent = dataset.ancestors(levels[-1]) if len(levels) > 1 else None
        units = sum(X.index.get_level_values(0).nunique() for X in panels.values())
        rows, predictions = [], []
        for name, model in models.items():
            alarms = pd.concat([clone(model).fit(X).alarm_table(X) for X in panels.values()])
            predictions.append(alarms.assign(model=name))
            for fold, (c, until) in enumerate(zip(cutoffs[:-1], cutoffs[1:], strict=True)):
                unit_weeks = units * (until - c).days / 7
                waves = truth.waves[(truth.waves["start"] >= c) & (truth.waves["start"] < until)]
                seen = alarms[(alarms["time"] >= c) & (alarms["time"] < until + pd.Timedelta(days=14))]
                found = metrics.wave_detection(seen, waves, unit_weeks=unit_weeks, parent=parent)
                inside = alarms[(alarms["time"] >= c) & (alarms["time"] < until)]
                false = metrics.wave_detection(inside, truth.waves, unit_weeks=unit_weeks, parent=parent)
                rows.append(
                    {
                        "model": name,
                        "fold": fold,
                        "cutoff": c,
                        "train_rows": 0,
                        "waves": len(waves),
                        "wave_detection_rate": found["wave_detection_rate"],
                        "wave_median_delay_days": found["wave_median_delay_days"],
                        "false_alarms_per_1000_unit_weeks": false["false_alarms_per_1000_unit_weeks"],
                    }
                )
        return pd.DataFrame(rows), pd.concat(predictions, ignore_index=True)


def unit_rows(
    trained: TrainedModel,
    dataset: Dataset,
    X: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    anomalies: bool = True,
    levels: list[str] | None = None,
) -> pd.DataFrame:
    """``grid_id``, ``level``, the parents' ids and the ``alerts`` of the units of the
    feature rows ``X`` (see :func:`predict`); the ``anomaly:`` alerts only with ``anomalies``.
    ``levels`` (default: the dataset's) name the parents' columns; a level the dataset
    lacks (a part of the data) gets missing ids."""
    level = trained.builder.level
    units = X.index.get_level_values(0)
    out = pd.DataFrame({"grid_id": units, "level": level})
    levels = dataset.levels if levels is None else levels
    for parent in levels[: levels.index(level)]:
        ids = dataset.ancestors(parent) if parent in dataset.levels else pd.Series(dtype="str")
        out[level_column(parent)] = ids.reindex(units).astype("str").array
    alerts = {}
    if trained.units is not None:
        alerts["cold_start"] = ~units.isin(trained.units)
    cases = counted_cases(dataset.cases, trained.builder.count)  # as the features count them
    reported = pd.unique(cases.loc[cases["reported_at"] < as_of, "grid_id"])  # few, then mapped
    alerts["no_history"] = ~units.isin(dataset.ancestors(level).reindex(reported).dropna().unique())
    attributes = [c for c in X.columns if c.startswith("attr_")]
    if attributes:
        alerts["no_attributes"] = X[attributes].isna().all(axis=1).to_numpy()
    if anomalies:
        alerts |= anomaly_alerts(X)
    out["alerts"] = alert_text(alerts, len(units))
    return out


def anomaly_alerts(X: pd.DataFrame, totals: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """``anomaly:<category>`` of every row of ``X`` by :class:`~riskmodel.models.SpikeDetector`
    (``totals``: its seasonal factor's sums over all units, when ``X`` holds some of them)."""
    try:
        alarms = SpikeDetector().fit(X).alarms(X, totals)
    except ValueError:  # the features lack the per-category windows the detector reads
        return {}
    return {f"anomaly:{c}": alarms[c].to_numpy() for c in alarms.columns}


def alert_text(alerts: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The raised alerts of each of ``n`` rows, joined by ``;``."""
    text = np.full(n, "", dtype=object)
    if not alerts:
        return text
    table = np.column_stack(list(alerts.values()))
    names = np.array(list(alerts))
    raised = table.any(axis=1)
    text[raised] = [";".join(names[row]) for row in table[raised]]
    return text


#: Every kind of target by name.
TARGETS: dict[str, TargetKind] = {kind.name: kind for kind in (GridRisk(), CaseEscalation(), WaveDetection())}


def target_kind(target) -> tuple[TargetKind, object]:
    """The kind of a ``target`` argument, and what its grid label counts: a kind or a
    kind's name is that kind (the label counting every case); anything else (None, a
    :class:`~riskmodel.features.Target`, a dict, a category name) is the grid kind
    with that label.

    Examples
    --------
    >>> from riskmodel.evaluation.targets import target_kind
    >>> kind, label = target_kind("escalation")
    >>> kind.registered_name, label
    ('dispute-escalation-case', None)
    >>> target_kind("family")[0].name, target_kind("family")[1]
    ('grid', 'family')
    """
    if isinstance(target, TargetKind):
        return target, None
    if isinstance(target, str) and target in TARGETS:
        return TARGETS[target], None
    return TARGETS["grid"], target
