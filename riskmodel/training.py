"""The final model: trained on all labelled history, saved, loaded, and asked for the risk of the coming horizon."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .contract import Dataset
from .evaluation.selection import chosen_folds, select_champion
from .evaluation.targets import TARGETS, TargetKind, TrainingSet, target_kind
from .models import TierPolicy
from .models.distribution import NegativeBinomial
from .persistence import LEGACY_FILE, MANIFEST, ModelFileError, read_parts, write_parts
from .privacy import warn_raw_keys
from .threads import limit_threads
from .trackers import Tracker, default
from .version import __version__

__all__ = [
    "MODELS_FOLDER",
    "REGISTERED_NAMES",
    "Executor",
    "InMemory",
    "TrainedModel",
    "convert_legacy",
    "inputs",
    "train",
]

#: Registry names of the kinds of target that train a final model.
REGISTERED_NAMES: dict[str, str] = {
    name: kind.registered_name for name, kind in TARGETS.items() if kind.registered_name is not None
}
#: Where :meth:`TrainedModel.save` writes by default: ``models/<registered name>``.
MODELS_FOLDER = Path("models")


def library_version() -> str:
    """The installed riskmodel version."""
    return __version__


def model_file(folder) -> Path:
    """The manifest of a saved model in ``folder`` (its time tells when it was saved)."""
    return Path(folder) / MANIFEST


def schema_hash(X: pd.DataFrame) -> str:
    """A short hash of the feature names and types, in order."""
    text = json.dumps([[str(c), str(t)] for c, t in X.dtypes.items()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TrainedModel:
    """A fitted model with everything needed to score new data.

    Made by :func:`train`; :func:`predict` and :meth:`score` use it. It holds the
    fitted feature builder (``GridPanelBuilder`` or ``CaseFeatureBuilder``), the
    fitted estimator with its calibration, the tier
    policy, the library version and a hash of the feature schema.

    Attributes
    ----------
    kind : {"grid", "escalation"}
    estimator : estimator
    builder : GridPanelBuilder or CaseFeatureBuilder
        Fitted: new data gets the training columns.
    tier_policy : TierPolicy
    feature_names : list of str
    schema_hash : str
    version : str
        The riskmodel version that trained it.
    trained_through : Timestamp
        The last training cutoff (grid) or the last report time (cases).
    units : Index or None
        The units the grid model was trained on (others are cold starts).
    evidence : dict or None
        With ``model="auto"``: why the model was chosen
        (:meth:`riskmodel.evaluation.selection.Choice.to_dict`: the leaderboard and the
        fold-by-fold differences to the runner-up and to the best baseline) and the
        chosen model's own score at each fold (``folds``:
        :func:`~riskmodel.evaluation.selection.chosen_folds`, the monitor's expectation),
        saved in ``model.json``.
    inputs : dict
        The optional columns of each table the model was trained with, which the
        data to score must hold: ``{"cases": [...], "grid_history": [...]}``.
    dispersion : float
        The NB2 dispersion of a grid model's predictive distribution (variance =
        expected + dispersion x expected**2; see :mod:`riskmodel.models.distribution`),
        fitted out of sample on the latest training rows
        (:func:`~riskmodel.evaluation.targets.holdout_dispersion`); :meth:`score`'s
        ``low`` and ``high`` are its 80% interval. 0 is the Poisson law: the value of a
        case model, and of a grid model saved before the dispersion was kept (whose
        intervals are then Poisson intervals, narrower than the fitted ones would be).
    fingerprint : str
        A hash of its content, saved with it (see the property).
    model_uri, run_id : str or None
        Where MLflow keeps it, once logged.
    """

    #: The central interval that :meth:`score` gives as ``low`` and ``high``.
    interval_level = 0.8

    def __init__(
        self,
        *,
        kind,
        estimator,
        feature_names,
        schema_hash,
        trained_through,
        builder,
        tier_policy=None,
        version=None,
        units=None,
        inputs=None,
        dispersion=0.0,
        evidence=None,
        fingerprint=None,
    ):
        self.kind = kind
        self.estimator = estimator
        self.builder = builder
        self.tier_policy = tier_policy if tier_policy is not None else TierPolicy()
        self.feature_names = list(feature_names)
        self.schema_hash = schema_hash
        self.trained_through = trained_through
        self.version = version or library_version()
        self.units = units
        self.inputs = inputs or {}
        self.dispersion = float(dispersion or 0.0)
        self.evidence = evidence
        self._fingerprint = fingerprint
        self.model_uri = self.run_id = None

    @property
    def fingerprint(self) -> str:
        """``"sha256:"`` and 16 hex digits of a hash of the model's content (estimator,
        feature builder, tier policy, schema, training cutoff, dispersion, units),
        computed once and saved with the model: the version a forecast store records for
        a model outside the registry (:func:`riskmodel.store.model_identity`)."""
        if self._fingerprint is None:
            self._fingerprint = _content_hash(self)
        return self._fingerprint

    @property
    def target(self) -> TargetKind:
        """The kind of target (:mod:`riskmodel.evaluation.targets`)."""
        return TARGETS[self.kind]

    @property
    def registered_name(self) -> str:
        """The model's name in the MLflow registry."""
        return REGISTERED_NAMES[self.kind]

    def __repr__(self) -> str:
        return (
            f"TrainedModel(kind={self.kind!r}, estimator={type(self.estimator).__name__}, "
            f"features={len(self.feature_names)}, trained_through={self.trained_through}, "
            f"version={self.version!r})"
        )

    def features(self, dataset: Dataset, as_of) -> pd.DataFrame:
        """The feature rows to score: every unit at ``as_of`` (grid target), or the
        cases open at ``as_of`` (escalation target)."""
        return self.target.features(self.builder, dataset, pd.Timestamp(as_of))

    def score(self, X: pd.DataFrame) -> pd.DataFrame:
        """``probability`` (for grids also ``expected_count`` and the whole-number 80%
        interval ``low``, ``high`` of the count in the horizon) and ``tier`` of every row of ``X``.

        Tiers follow the ranking of :func:`~riskmodel.serving.riskiest_first`: the tier
        policy ranks by probability, then by expected count where probabilities tie
        (saturated at 1.0, with a case nearly every period), so that the units expecting
        most cases fill a capacity first, and saturated probabilities are tiered by the
        expected count (see :class:`~riskmodel.models.TierPolicy`)."""
        check_is_fitted(self.estimator)
        missing = [c for c in self.feature_names if c not in X.columns]
        extra = [c for c in X.columns if c not in self.feature_names]
        if missing or extra:
            raise ValueError(
                f"the features do not match the trained schema {self.schema_hash}: "
                f"missing {missing[:5]}, unexpected {extra[:5]}"
            )
        X = X[self.feature_names]
        out = pd.DataFrame({"probability": self.estimator.predict_proba(X)[:, 1]}, index=X.index)
        if self.target.counts:
            out["expected_count"] = self.estimator.predict_expected(X)
            low, high = NegativeBinomial(out["expected_count"], self.dispersion).interval(self.interval_level)
            out["low"], out["high"] = low, high
        # Units are tiered per cutoff; the open cases of one call are one group.
        dates = None if self.target.counts else np.zeros(len(out))
        out["tier"] = self.tier_policy.assign(out["probability"], dates, tiebreak=out.get("expected_count"))
        return out

    def save(self, path=None) -> Path:
        """Write the model to the folder ``path`` (default ``models/<registered name>``)
        in a format that cannot run code when loaded (see :mod:`riskmodel.persistence`):
        ``model.json`` (readable metadata, the feature builder and tier policy, and
        every other file's SHA-256), ``estimator.skops`` and one ``booster-<n>.txt``
        per LightGBM booster. With ``RISKMODEL_MODEL_KEY`` set, ``model.sig`` signs it.
        Returns the folder."""
        folder = Path(path) if path is not None else MODELS_FOLDER / self.registered_name
        meta = {
            "kind": self.kind,
            "estimator": repr(self.estimator),
            "version": self.version,
            "schema_hash": self.schema_hash,
            "feature_names": self.feature_names,
            "trained_through": str(self.trained_through),
            "registered_name": self.registered_name,
            "inputs": self.inputs,
            "dispersion": self.dispersion,
            "evidence": self.evidence,
            "fingerprint": self.fingerprint,
        }
        return write_parts(
            folder,
            meta=meta,
            estimator=self.estimator,
            builder=self.builder,
            tier_policy=self.tier_policy,
            units=self.units,
        )

    @classmethod
    def load(cls, path) -> TrainedModel:
        """The model saved in the folder ``path``, after checking every file against
        its manifest (and its signature, with ``RISKMODEL_MODEL_KEY`` set).

        Raises
        ------
        FileNotFoundError
            When there is no saved model at ``path``.
        riskmodel.persistence.ModelFileError
            Naming the file that is changed, missing, extra, unsigned or of another
            format (a pickle of riskmodel 0.1: see :func:`convert_legacy`).

        Examples
        --------
        >>> import tempfile
        >>> from riskmodel import TrainedModel, train
        >>> from riskmodel.datasets import simulate_district
        >>> from riskmodel.models import HistoricalRateBaseline
        >>> trained = train(simulate_district("tiny", seed=0), model=HistoricalRateBaseline(), track=False)
        >>> TrainedModel.load(trained.save(tempfile.mkdtemp())).schema_hash == trained.schema_hash
        True
        """
        parts = read_parts(path)
        meta = parts["meta"]
        trained = cls(
            kind=meta["kind"],
            estimator=parts["estimator"],
            feature_names=meta["feature_names"],
            schema_hash=meta["schema_hash"],
            trained_through=pd.Timestamp(meta["trained_through"]),
            builder=parts["builder"],
            tier_policy=parts["tier_policy"],
            version=meta["version"],
            units=parts["units"],
            inputs=meta["inputs"],
            dispersion=meta.get("dispersion", 0.0),  # saved before the dispersion was kept: Poisson
            evidence=meta.get("evidence"),
            fingerprint=meta.get("fingerprint"),  # saved before it was kept: hashed from what was loaded
        )
        if trained.version != library_version():
            warnings.warn(
                f"the model in {path} was trained with riskmodel {trained.version}, this is {library_version()}",
                stacklevel=2,
            )
        return trained


def _content_hash(trained: TrainedModel) -> str:
    import joblib  # scikit-learn's: a stable hash of numpy arrays, frames and estimators

    parts = (
        trained.kind,
        trained.estimator,
        trained.builder,
        trained.tier_policy.get_params(),
        trained.schema_hash,
        str(trained.trained_through),
        trained.dispersion,
        None if trained.units is None else [str(u) for u in trained.units],
    )
    return "sha256:" + hashlib.sha256(joblib.hash(parts).encode()).hexdigest()[:16]


def convert_legacy(folder, *, trusted: bool = False) -> Path:
    """Rewrite a model folder saved by riskmodel 0.1 (a pickle, ``model.pkl``) in the
    format that cannot run code, in place.

    Reading the pickle runs whatever code it holds: call this only for a folder whose
    origin you trust, and say so with ``trusted=True``.

    Returns
    -------
    Path
        The folder, now loadable by :func:`riskmodel.load_model`.

    Raises
    ------
    ValueError
        Without ``trusted=True``, or when the pickle is not a riskmodel model.
    """
    import pickle

    folder = Path(folder)
    if trusted is not True:
        raise ValueError(
            f"convert_legacy reads {folder / LEGACY_FILE} with pickle, which runs any code it holds; "
            "pass trusted=True if you trust its origin"
        )
    file = folder / LEGACY_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no legacy model at {folder} (expected the file {file})")
    with open(file, "rb") as f:
        trained = pickle.load(f)  # noqa: S301 - the caller vouched for the file
    if not isinstance(trained, TrainedModel) or not all(hasattr(trained, n) for n in ("units", "inputs")):
        raise ModelFileError(
            f"{file} does not hold a TrainedModel of riskmodel 0.1 with its units and inputs; train the model again"
        )
    return trained.save(folder)


def inputs(builder, dataset: Dataset) -> dict[str, list[str]]:
    """The optional columns the model's features were built from, by table; ``visits``
    when its features count visits (then the data it scores needs a visits table), and
    ``dispute_id`` when they count disputes (reports without it would each count)."""
    read = (*builder.optional_inputs, *(("dispute_id",) if builder.count == "disputes" else ()))
    found = {
        "cases": [c for c in read if c in dataset.cases.columns],
        "grid_history": list(builder.attributes_),
    }
    if getattr(builder, "visit_features_", False) and dataset.visits is not None:
        found["visits"] = [c for c in ("visit_id", "grid_id", "visited_at", "outcome") if c in dataset.visits.columns]
    return found


class Executor(Protocol):
    """Where a final model's rows are built and fitted (see :func:`train`)."""

    def training_set(self, kind: TargetKind, data, model, **options) -> TrainingSet: ...

    def fit(self, model, rows: TrainingSet): ...


class InMemory:
    """The default executor of :func:`train`: the kind's training rows built in memory, a
    clone of the model fitted on them. Raw party keys give one warning."""

    def training_set(self, kind: TargetKind, data: Dataset, model, **options) -> TrainingSet:
        warn_raw_keys(data, "trained on")
        return kind.training_set(data, model, **options)

    def fit(self, model, rows: TrainingSet):
        with limit_threads():  # the model's threads fit the cores given (riskmodel.threads)
            return clone(model).fit(rows.X, rows.y)


def train(
    dataset: Dataset,
    *,
    model="auto",
    candidates: dict | None = None,
    selection: dict | None = None,
    horizon=28,
    target=None,
    level: str = "grid",
    frequency: str = "W-MON",
    train_start=None,
    features: dict | None = None,
    tier_policy: TierPolicy | None = None,
    escalation_days: int = 30,
    track: bool = True,
    register: bool = False,
    experiment: str = "riskmodel",
    tracker: Tracker | None = None,
    executor: Executor | None = None,
) -> TrainedModel:
    """Fit a final model on all labelled history.

    Grid target: a panel at ``frequency`` cutoffs from ``train_start`` (default:
    91 days after the first case) to the last cutoff whose ``horizon`` closed by
    the end of the data; the model (a clone) is fitted on it, a regressor on the
    counts. Escalation target (``target="escalation"``): the case features of
    every case whose label is known. With ``track`` the model is logged to
    MLflow as a pyfunc; with ``register`` it is also registered as
    ``dispute-risk-grid`` (or ``dispute-escalation-case``) with alias ``champion``.
    A failure to log is a warning naming it and the store: the model is returned,
    with ``model_uri`` None. ``tracker`` logs instead of the default MLflow one
    (:mod:`riskmodel.trackers`). ``executor`` builds the training rows and fits the
    model: in memory by default (:class:`InMemory`); the Dask path passes
    :class:`riskmodel.scaleout.DaskExecutor`, so that the cutoffs, their errors and the
    :class:`TrainedModel` are made here for both. Raw (not pseudonymised) party keys in the data give
    one warning.

    With ``model="auto"`` (the default) the model is chosen by evidence first:
    :func:`riskmodel.evaluation.selection.select_champion` backtests the ``candidates``
    (default: the kind's roster) on the last folds of the data, with the options in
    ``selection`` (``folds``, ``refit_every``, ``metric``, ``confidence``), and
    :func:`~riskmodel.evaluation.selection.choose_champion` picks one; the chosen is
    trained on all labelled history and carries the evidence (:attr:`TrainedModel.evidence`).

    Returns
    -------
    TrainedModel

    Examples
    --------
    >>> from riskmodel import train
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> district = simulate_district("tiny", seed=0)
    >>> trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False)
    >>> trained.kind, len(trained.units)
    ('grid', 25)
    """
    if register and not track:
        raise ValueError("register=True needs track=True: the registry holds logged models")
    kind, label = target_kind(target)
    executor = InMemory() if executor is None else executor
    evidence = None
    if isinstance(model, str):
        if model != "auto":
            raise ValueError(f"model must be an estimator or 'auto', got {model!r}")
        pool = kind.roster() if candidates is None else candidates
        choice, result = select_champion(
            dataset,
            pool,
            horizon=horizon,
            target=target,
            level=level,
            train_start=train_start,
            train_frequency=frequency,
            features=features,
            escalation_days=escalation_days,
            **(selection or {}),
        )
        evidence = choice.to_dict() | {"folds": chosen_folds(result, choice.chosen)}
        model = pool[choice.chosen]
    rows = executor.training_set(
        kind,
        dataset,
        model,
        horizon=horizon,
        target=label,
        level=level,
        frequency=frequency,
        train_start=train_start,
        features=features,
        escalation_days=escalation_days,
    )
    X = rows.example
    estimator = executor.fit(model, rows)
    trained = TrainedModel(
        kind=kind.name,
        estimator=estimator,
        feature_names=X.columns,
        schema_hash=schema_hash(X),
        builder=rows.builder,
        tier_policy=tier_policy,
        trained_through=rows.trained_through,
        units=rows.units,
        inputs=inputs(rows.builder, dataset),
        dispersion=rows.dispersion(model, estimator),
        evidence=evidence,
    )
    if track:
        (tracker or default()).log_model(trained, example=X, experiment=experiment, register=register)
    return trained
