"""Everything that talks to MLflow: backtests as runs, models as pyfuncs, the registry.

The store is ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in the
working directory with artifacts in ``mlartifacts/`` beside it; open it with
``mlflow ui --backend-store-uri sqlite:///mlflow.db``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402 - after switching telemetry off
import pandas as pd  # noqa: E402
from filelock import FileLock  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from mlflow.pyfunc import PythonModel  # noqa: E402

from .evaluation.targets import TARGETS  # noqa: E402
from .privacy import warn_raw_keys  # noqa: E402
from .training import TrainedModel  # noqa: E402

__all__ = [
    "RiskPyfunc",
    "compare",
    "evidence_tags",
    "fingerprint",
    "load_logged",
    "log_backtest",
    "log_model",
    "log_report",
    "log_plan",
    "log_safely",
    "read_backtest",
    "resolve",
    "tracking_uri",
]

_ROLE = "riskmodel.role"
_ARTIFACT = "artifacts/model"  # where a logged pyfunc keeps the model's folder


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the SQLite store ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


_ready: set[str] = set()  # stores this process has opened (and so created or migrated)


def _connect() -> str:
    """Point MLflow's tracking and registry at :func:`tracking_uri`; return it.

    A SQLite store is opened the first time under a file lock beside it, so that two
    processes creating or migrating one new store do not collide.
    """
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri.startswith("sqlite:///") and uri not in _ready:
        path = Path(uri.removeprefix("sqlite:///"))
        with FileLock(f"{path}.lock", timeout=300):
            mlflow.MlflowClient(uri).search_experiments(max_results=1)  # creates or migrates the tables
        _ready.add(uri)
    return uri


def log_safely(log, *args, what: str, **kwargs):
    """``log(*args, **kwargs)``, or None with a warning naming the failure and the store:
    a finished backtest or training is never lost because it could not be logged."""
    try:
        return log(*args, **kwargs)
    except Exception as error:  # any failure of the store: the result is worth more than its log
        warnings.warn(
            f"{what} finished but could not be logged to the MLflow store {tracking_uri()} "
            f"({type(error).__name__}: {str(error)[:300]}); it is returned without a run",
            UserWarning,
            stacklevel=3,
        )
        return None


def _experiment(name: str) -> str:
    uri = _connect()
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def fingerprint(dataset) -> str:
    """A hash of the dataset's frames (values and column names, not the row order of the index)."""
    digest = hashlib.sha256()
    for name in ("grids", "cases", "grid_history"):
        frame = getattr(dataset, name)
        digest.update(name.encode() + json.dumps(list(map(str, frame.columns))).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _tags(**extra) -> dict[str, str]:
    from .version import __version__

    tags = {"riskmodel.version": __version__} | {k: str(v) for k, v in extra.items() if v is not None}
    commit = _git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def _finite(values: dict) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if pd.notna(v)}


def log_backtest(result, dataset, *, experiment: str = "riskmodel") -> str:
    """Log a backtest: a parent run (configuration, tags, leaderboard, plots) with one
    child run per model (its parameters; every metric's mean under its name and its
    value per fold as ``<metric>_by_fold`` with step = fold). Returns the parent run id."""
    warn_raw_keys(dataset, "logged to MLflow (their fingerprint)")
    experiment_id = _experiment(experiment)
    config_text = json.dumps(result.config, sort_keys=True, default=str)
    tags = _tags(
        **{
            "dataset_fingerprint": fingerprint(dataset),
            "config_hash": hashlib.sha256(config_text.encode()).hexdigest()[:16],
            "target": result.target,
        }
    )
    params = {k: v for k, v in result.config.items() if not k.startswith("model.") and k != "cutoffs"}
    params |= {
        "first_cutoff": result.config["cutoffs"][0],
        "last_cutoff": result.config["cutoffs"][-1],
        "folds": len(result.config["cutoffs"]),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"backtest-{result.target}", tags=tags | {_ROLE: "backtest"}
    ) as parent:
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            result.leaderboard.to_csv(folder / "leaderboard.csv")
            result.folds.to_csv(folder / "folds.csv", index=False)
            (folder / "config.json").write_text(json.dumps(result.config, indent=2, default=str))
            mlflow.log_artifacts(tmp)
            _log_plots(result, dataset)
        fold_metrics = [c for c in result.folds.columns if c not in ("model", "fold", "cutoff", "train_rows")]
        for name, row in result.leaderboard.iterrows():
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=str(name),
                nested=True,
                tags=tags | {_ROLE: "model", "model": str(name)},
            ) as child:
                model_config = result.config.get(f"model.{name}", "simulator truth")
                mlflow.log_params({"model": str(name), "estimator": model_config[:6000]})
                now = int(time.time() * 1000)
                values = [Metric(k, v, now, 0) for k, v in _finite(row.to_dict()).items()]
                for fold in result.folds[result.folds["model"] == name].itertuples(index=False):
                    by_fold = _finite({f"{m}_by_fold": getattr(fold, m) for m in fold_metrics})
                    values += [Metric(k, v, now, int(fold.fold)) for k, v in by_fold.items()]
                mlflow.MlflowClient().log_batch(child.info.run_id, metrics=values)  # one write, not one a fold
    return parent.info.run_id


def read_backtest(run_id: str) -> tuple[pd.DataFrame, dict, dict[str, bytes]]:
    """A logged backtest's leaderboard, configuration and plots (PNG bytes by name).

    Raises
    ------
    ValueError
        Naming the run and the store, when the store has no such backtest run.
    """
    store = _connect()
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ValueError(f"no MLflow run {run_id!r} in {store}") from None
    if run.data.tags.get(_ROLE) != "backtest":
        raise ValueError(f"the run {run_id} in {store} is not a backtest (it is {run.data.tags.get(_ROLE)!r})")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=tmp))
        board = pd.read_csv(folder / "leaderboard.csv", index_col="model")
        config = json.loads((folder / "config.json").read_text())
        figures = {png.stem.replace("_", " "): png.read_bytes() for png in sorted((folder / "plots").glob("*.png"))}
    return board, config, figures


def log_report(run_id: str, path) -> None:
    """Keep the HTML report ``path`` as an artifact of the run ``run_id``."""
    _connect()
    mlflow.MlflowClient().log_artifact(run_id, str(path))


def log_plan(plan: pd.DataFrame, *, model: str, settings: dict, experiment: str = "riskmodel-plans") -> str:
    """Log a visit plan (from :func:`riskmodel.plan_visits`) as ``plan.csv`` of a new run,
    with its ``plan_id`` as the run name and a tag, the model URI and the plan's settings,
    so that visits recorded with the plan id lead back to the forecast. Returns the run id."""
    plan_id = str(plan["plan_id"].iloc[0]) if len(plan) else "empty"
    counts = plan["assignment"].value_counts()
    with mlflow.start_run(experiment_id=_experiment(experiment), run_name=plan_id) as run:
        mlflow.set_tags(_tags(**{_ROLE: "plan", "plan_id": plan_id, "model": model}))
        mlflow.log_params({k: str(v) for k, v in settings.items()})
        mlflow.log_metrics({f"{name}_units": float(counts.get(name, 0)) for name in ("rank", "explore", "control")})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "plan.csv"
            plan.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
    return run.info.run_id


def _log_plots(result, dataset) -> None:
    from .evaluation import plots

    with tempfile.TemporaryDirectory() as tmp:
        plots.save_figures(result, dataset, tmp)
        mlflow.log_artifacts(tmp, artifact_path="plots")


class RiskPyfunc(PythonModel):
    """The MLflow face of a :class:`~riskmodel.training.TrainedModel`: feature rows in,
    ``probability`` (and for grids ``expected_count``) out. The serving environment needs
    riskmodel installed."""

    def load_context(self, context):
        self.trained = TrainedModel.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return _served(self.trained, pd.DataFrame(model_input))


def _served(trained: TrainedModel, X: pd.DataFrame) -> pd.DataFrame:
    """What the pyfunc returns: the scores without the tier (a per-date policy), by position."""
    return trained.score(X).drop(columns="tier", errors="ignore").reset_index(drop=True)


def log_model(
    trained: TrainedModel, *, example: pd.DataFrame, experiment: str = "riskmodel", register: bool = False
) -> str:
    """Log ``trained`` as a pyfunc with a signature and an input example; with ``register``
    register it under its name and point the alias ``champion`` at the new version.
    Returns the model URI."""
    experiment_id = _experiment(experiment)
    example = example.reset_index(drop=True)
    output = _served(trained, example)
    import lightgbm
    import numpy
    import sklearn

    requirements = [
        f"mlflow=={mlflow.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={numpy.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"lightgbm=={lightgbm.__version__}",
    ]
    with (
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"train-{trained.kind}",
            tags=_tags(schema_hash=trained.schema_hash) | {_ROLE: "train"} | evidence_tags(trained.evidence),
        ) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params(
            {
                "estimator": repr(trained.estimator)[:6000],
                "kind": trained.kind,
                "trained_through": str(trained.trained_through),
                "features": len(trained.feature_names),
            }
        )
        if trained.evidence is not None:
            mlflow.log_artifacts(_evidence_files(trained.evidence, Path(tmp) / "evidence"), artifact_path="evidence")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("_pyfunc_model.py")),  # models from code
            artifacts={"model": str(trained.save(Path(tmp) / "model"))},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=requirements,
            registered_model_name=trained.registered_name if register else None,
        )
    if register:
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(trained.registered_name, "champion", str(info.registered_model_version))
    trained.model_uri = info.model_uri
    trained.run_id = run.info.run_id
    return info.model_uri


def evidence_tags(evidence: dict | None) -> dict[str, str]:
    """The tags of a model chosen by evidence (:attr:`TrainedModel.evidence`): ``champion.chosen``,
    ``champion.reason``, ``champion.metric`` and ``champion.vs_runner_up`` /
    ``champion.vs_best_baseline`` (``<model>: <mean difference> [<low>, <high>] over <n> folds``).

    Examples
    --------
    >>> vs = {"model": "B", "mean": 0.01, "low": -0.002, "high": 0.022, "folds": 12}
    >>> evidence_tags({"chosen": "A", "reason": "r.", "metric": "m", "versus_runner_up": vs})["champion.vs_runner_up"]
    'B: +0.0100 [-0.0020, +0.0220] over 12 folds'
    """
    if evidence is None:
        return {}
    tags = {f"champion.{k}": str(evidence[k])[:5000] for k in ("chosen", "reason", "metric")}
    for key, tag in (("versus_runner_up", "vs_runner_up"), ("versus_best_baseline", "vs_best_baseline")):
        vs = evidence.get(key) or {}
        if vs and "mean" not in vs:
            tags[f"champion.{tag}"] = f"{vs['model']}: the chosen model itself"
        elif vs:
            low, high = (
                ("-inf" if vs["low"] is None else f"{vs['low']:+.4f}"),
                ("inf" if vs["high"] is None else f"{vs['high']:+.4f}"),
            )
            tags[f"champion.{tag}"] = f"{vs['model']}: {vs['mean']:+.4f} [{low}, {high}] over {vs['folds']} folds"
    return tags


def _evidence_files(evidence: dict, folder: Path) -> str:
    """The evidence as ``leaderboard.csv``, ``fold_differences.csv`` and ``evidence.json`` in ``folder``."""
    folder.mkdir(parents=True)
    pd.DataFrame(evidence["leaderboard"]).to_csv(folder / "leaderboard.csv", index=False)
    pd.DataFrame(evidence["differences"]).to_csv(folder / "fold_differences.csv", index=False)
    (folder / "evidence.json").write_text(json.dumps(evidence, indent=1))
    return str(folder)


def resolve(uri: str) -> str:
    """``models:/name@alias`` as the version the alias points at now
    (``models:/name/<version>``, when the registry has it); other URIs, and an alias
    the registry lacks, as they are. Errors other than "no such model" (an
    unreachable store) are raised, not taken for an absent model."""
    _connect()
    name, _, alias = uri.removeprefix("models:/").partition("@")
    if uri.startswith("models:/") and alias:
        try:
            return f"models:/{name}/{mlflow.MlflowClient().get_model_version_by_alias(name, alias).version}"
        except mlflow.exceptions.MlflowException as error:
            if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
    return uri


def load_logged(uri: str) -> TrainedModel:
    """The :class:`TrainedModel` behind a logged pyfunc (``models:/...`` or ``runs:/...``).

    The model's folder is downloaded and read by :meth:`TrainedModel.load`, with every
    file checked against its manifest; MLflow's own loader, which runs the logged
    model's code, is not used.

    Raises
    ------
    FileNotFoundError
        Naming the URI and the store, when MLflow has no model there.
    ValueError
        When the model there is not a riskmodel pyfunc, or its files were changed
        (:class:`~riskmodel.persistence.ModelFileError`).
    """
    store = _connect()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except (mlflow.exceptions.MlflowException, OSError) as error:
            raise FileNotFoundError(f"cannot load the model {uri} from the tracking store {store}: {error}") from error
        folder = local / _ARTIFACT
        if not folder.is_dir():
            raise ValueError(f"{uri} is not a riskmodel pyfunc model (it has no {_ARTIFACT} folder)")
        return TrainedModel.load(folder)


def compare(experiment: str = "riskmodel") -> pd.DataFrame:
    """Leaderboard of every model run of ``experiment``, read back from MLflow.

    One row per model run (newest backtest first, then by ``hit_rate_at_5pct``, or
    ``roc_auc`` or ``wave_detection_rate`` where the backtest's target has no hit rate):
    ``model``, ``backtest`` (the parent run), ``started`` and every metric.
    """
    uri = _connect()
    if mlflow.get_experiment_by_name(experiment) is None:
        raise ValueError(f"no MLflow experiment named {experiment!r} in {uri}")
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.`{_ROLE}` = 'model'")
    if runs.empty:
        return pd.DataFrame(columns=["model", "backtest", "started"])
    metrics = {
        c: c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.") and not c.endswith("_by_fold")
    }
    board = runs.rename(
        columns={"tags.model": "model", "tags.mlflow.parentRunId": "backtest", "start_time": "started"} | metrics
    )
    board = board[["model", "backtest", "started", *metrics.values()]]
    # Newest backtest first; within one, by its headline metric (whichever its target has).
    headline = [k for k in dict.fromkeys(kind.headline for kind in TARGETS.values()) if k in board]
    key = board[headline].bfill(axis=1).iloc[:, 0] if headline else board["started"]
    newest = board.groupby("backtest")["started"].transform("max")
    return (
        board.assign(_newest=newest, _key=key)
        .sort_values(["_newest", "_key"], ascending=False)
        .drop(columns=["_newest", "_key"])
        .reset_index(drop=True)
    )
