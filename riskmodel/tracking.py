"""Everything that talks to MLflow: backtests as runs, models as pyfuncs, the registry.

The store is ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in the
working directory with artifacts in ``mlartifacts/`` beside it; open it with
``mlflow ui --backend-store-uri sqlite:///mlflow.db``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402 - after switching telemetry off
import pandas as pd  # noqa: E402
from filelock import FileLock  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from mlflow.pyfunc import PythonModel  # noqa: E402

from .evaluation.report import HEADLINE  # noqa: E402
from .evaluation.selection import overlap_lag, paired_difference  # noqa: E402
from .evaluation.targets import TARGETS  # noqa: E402
from .features.base import horizon_words, logged_horizon  # noqa: E402
from .privacy import warn_raw_keys  # noqa: E402
from .training import TrainedModel  # noqa: E402

__all__ = [
    "RUN_COLUMNS",
    "RiskPyfunc",
    "RunComparison",
    "compare",
    "compare_runs",
    "evidence_tags",
    "fingerprint",
    "load_logged",
    "log_backtest",
    "log_model",
    "log_monitoring",
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


#: The weekly scores logged by :func:`log_monitoring`, each at its week's step.
_MONITORED = ["oe_ratio", "hit_rate_at_5pct", "pai_at_5pct", "brier", "ece", "interval_coverage", "cold_start_share"]


def _monitoring_run(client, experiment_id: str, model: str, version: str) -> str:
    """The run of ``model`` ``version`` in the experiment (the latest started, if several), else a new one."""
    quoted = [value.replace("\\", "\\\\").replace("'", "\\'") for value in (model, version)]
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{_ROLE}` = 'monitoring' and tags.model = '{quoted[0]}' and tags.version = '{quoted[1]}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = _tags(**{_ROLE: "monitoring", "model": model, "version": version})
    return client.create_run(experiment_id, run_name=f"monitor {model} {version}", tags=tags).info.run_id


def _version_rows(frame: pd.DataFrame, model: str, version: str) -> pd.DataFrame:
    if frame.empty:  # perhaps without columns
        return frame.reindex(columns=["model", "version", "as_of", "week"])
    return frame[(frame["model"].astype(str) == model) & (frame["version"].astype(str) == version)]


def _weekly_metrics(scores: pd.DataFrame, first: pd.DataFrame, alarms: pd.DataFrame) -> list[Metric]:
    """Each week's scores, its first week's ``oe_ratio`` and its count of ``alarms``, at step = weeks
    since the version's first week and timestamp = the week."""
    weeks = pd.to_datetime(pd.concat([scores["as_of"], first["as_of"], alarms["week"]])).drop_duplicates()
    start = weeks.min()

    def at(name: str, week, value) -> Metric:
        week = pd.Timestamp(week)
        return Metric(name, float(value), int(week.value // 10**6), int((week - start).days // 7))

    named = [(scores, name, name) for name in _MONITORED] + [(first, "first_week_oe_ratio", "oe_ratio")]
    values = [
        at(name, week, value)
        for frame, name, column in named
        if column in frame
        for week, value in zip(frame["as_of"], frame[column], strict=True)
        if pd.notna(value)
    ]
    counts = pd.to_datetime(alarms["week"]).value_counts()
    return values + [at("alarms", week, counts.get(week, 0)) for week in weeks.sort_values()]


def log_monitoring(report, *, experiment: str = "riskmodel-monitoring", page: str | None = None) -> list[str]:
    """Log a :class:`~riskmodel.MonitorReport` to MLflow: one run per model version.

    Each model version of the report's scores, first weeks or alarms has one run in
    ``experiment``, named ``monitor <model> <version>`` and tagged ``model``, ``version``
    and ``riskmodel.role=monitoring``. The run is found by those tags and reused, so that
    monitoring every week appends to one run per version rather than adding runs. Its
    metrics are the weekly scores (``oe_ratio``, ``hit_rate_at_5pct``, ``pai_at_5pct``,
    ``brier``, ``ece``, ``interval_coverage``, ``cold_start_share``; NaN skipped), the
    first week's ``first_week_oe_ratio`` (what the calibration alarms read) and
    ``alarms``, the week's count of alarms, each with ``step`` the weeks since the
    version's first week (its earliest ``as_of`` in the report; the store keeps it, so
    steps agree from one call to the next) and ``timestamp`` the week's ``as_of``. A week
    logged again with the same value is stored once; with a new value (late cases) it is
    added at the same step, the latest value shown. The run keeps ``alarms.csv`` (the
    version's alarms) and ``monitor.html`` (the whole report's page,
    :func:`~riskmodel.evaluation.monitor_page.render_monitor_page`) as artifacts, both
    replaced on each call, and the tag ``healthy``. Two processes logging a new version
    at the same moment may each create its run. ``page`` is the page's HTML when the
    caller has rendered it already (default: rendered here).

    Returns
    -------
    list of str
        The run ids, one per model version (none when the report has nothing scored or alarmed).
    """
    from .evaluation.monitor_page import render_monitor_page

    client = mlflow.MlflowClient(_connect())
    experiment_id = _experiment(experiment)
    frames = (report.scores, report.weeks, report.alarms)
    versions = pd.concat([frame.reindex(columns=["model", "version"]) for frame in frames]).astype(str)
    page = render_monitor_page(report) if page is None else page
    run_ids = []
    for model, version in versions.drop_duplicates().itertuples(index=False):
        scores, first, alarms = (_version_rows(frame, model, version) for frame in frames)
        run_id = _monitoring_run(client, experiment_id, model, version)
        values = _weekly_metrics(scores, first, alarms)
        for start in range(0, len(values), 1000):  # MLflow takes at most 1000 metrics a batch
            client.log_batch(run_id, metrics=values[start : start + 1000])
        client.set_tag(run_id, "healthy", str(alarms.empty).lower())
        with tempfile.TemporaryDirectory() as tmp:
            alarms.to_csv(Path(tmp) / "alarms.csv", index=False)
            (Path(tmp) / "monitor.html").write_text(page, encoding="utf-8")
            client.log_artifacts(run_id, tmp)
        client.set_terminated(run_id)
        run_ids.append(run_id)
    return run_ids


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
    with warnings.catch_warnings():
        # The features are floats; only the output's interval (low, high) is whole numbers, which
        # MLflow's hint on integer columns that cannot hold missing values does not concern.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
        signature = infer_signature(example, output)
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
            signature=signature,
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


#: What says which backtest a row of :func:`compare` comes from, before its metrics.
RUN_COLUMNS = ["target", "model", "data", "horizon", "folds", "first_cutoff", "last_cutoff", "date", "run", "backtest"]
_SHORT = 8  # characters of a run id or a data fingerprint shown


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _window(target, horizon, escalation_days) -> str:
    """The label window in words: the horizon of a kind with horizons, the escalation window of cases."""
    kind = TARGETS.get(target)
    if kind is not None and kind.horizons:
        return horizon_words(str(horizon))
    if target == "escalation" and str(escalation_days).isdigit():
        return _plural(int(escalation_days), "day")
    return ""


def _backtests(experiment: str) -> pd.DataFrame:
    """One row per backtest run of ``experiment``: :data:`RUN_COLUMNS` but ``model``, with the
    full ``fingerprint`` and the logged ``horizon_text``; newest first."""
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.`{_ROLE}` = 'backtest'")
    columns = [c for c in RUN_COLUMNS if c != "model"] + ["fingerprint", "horizon_text"]
    if runs.empty:
        return pd.DataFrame(columns=columns)

    def logged(name):
        return runs[name] if name in runs else pd.Series(None, index=runs.index, dtype=object)

    target, horizon, days = logged("tags.target"), logged("params.horizon"), logged("params.escalation_days")
    frame = pd.DataFrame(
        {
            "target": target,
            "data": logged("tags.dataset_fingerprint").str[:_SHORT],
            "horizon": [_window(*row) for row in zip(target, horizon, days, strict=True)],
            "folds": pd.to_numeric(logged("params.folds")).astype("Int64"),
            "first_cutoff": pd.to_datetime(logged("params.first_cutoff")),
            "last_cutoff": pd.to_datetime(logged("params.last_cutoff")),
            "date": runs["start_time"],
            "run": runs["run_id"].str[:_SHORT],
            "backtest": runs["run_id"],
            "fingerprint": logged("tags.dataset_fingerprint"),
            "horizon_text": horizon,
        }
    )
    return frame.sort_values("date", ascending=False, kind="stable").reset_index(drop=True)


def _existing(backtests: pd.DataFrame, column: str) -> str:
    """What the backtests hold in ``column``, for an error that found nothing."""
    if column == "date":
        first, last = backtests["date"].min(), backtests["date"].max()
        return f"its backtests ran from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
    counts = backtests[column].fillna("(none)").value_counts().sort_index()
    return "it has: " + ", ".join(f"{value} ({_plural(n, 'backtest')})" for value, n in counts.items())


def _select(backtests: pd.DataFrame, experiment: str, *, target=None, data=None, since=None) -> pd.DataFrame:
    """The backtests that pass the filters of :func:`compare`; a ValueError naming what
    exists when a filter leaves none."""
    if target is not None and target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; the kinds are {', '.join(TARGETS)}")
    checks = []
    if target is not None:
        checks.append((backtests["target"] == target, f"of target {target!r}", "target"))
    if data is not None:
        prefix = _data_prefix(data)
        checks.append((backtests["fingerprint"].str.startswith(prefix, na=False), f"on data {prefix!r}", "data"))
    if since is not None:
        try:
            when = pd.Timestamp(since)
        except (ValueError, TypeError):
            raise ValueError(f"since must be a date such as 2024-06-01, got {since!r}") from None
        when = when.tz_localize("UTC") if when.tzinfo is None else when
        checks.append((backtests["date"] >= when, f"since {since}", "date"))
    keep = pd.Series(True, index=backtests.index)
    for mask, what, column in checks:
        if len(backtests) and not mask.any():
            raise ValueError(f"no backtest {what} in the experiment {experiment!r}; {_existing(backtests, column)}")
        keep &= mask
    if len(backtests) and not keep.any():
        together = " and ".join(what for _, what, _ in checks)
        raise ValueError(
            f"no backtest {together} in the experiment {experiment!r}, though each filter alone finds some"
        )
    return backtests[keep]


def _data_prefix(data) -> str:
    """A fingerprint prefix as given, or the fingerprint of a dataset folder."""
    if Path(data).is_dir():
        from .io import read_dataset

        return fingerprint(read_dataset(data))
    if not re.fullmatch(r"[0-9a-f]+", str(data)):
        raise ValueError(
            f"data must be a fingerprint prefix (hex digits, such as a1b70e72) or a dataset folder; "
            f"{str(data)!r} is neither"
        )
    return str(data)


def compare(experiment: str = "riskmodel", *, target=None, data=None, since=None) -> pd.DataFrame:
    """Every model run of ``experiment``'s backtests, read back from MLflow: one tidy frame.

    Parameters
    ----------
    experiment : str
    target : str, optional
        Only backtests of this kind of target (a key of
        :data:`~riskmodel.evaluation.targets.TARGETS`: ``grid``, ``escalation``, ``waves``).
    data : str or path, optional
        Only backtests on this data: a prefix of the dataset fingerprint
        (:func:`fingerprint`), or a dataset folder, whose fingerprint is computed.
    since : date, optional
        Only backtests started on or after it (UTC when no zone is given).

    Returns
    -------
    DataFrame
        One row per model run: :data:`RUN_COLUMNS` (``data``: the fingerprint's first 8
        characters; ``horizon``: the label window in words, ``"28 days"``, ``"1 month"``,
        the escalation window for cases; ``folds``, ``first_cutoff``, ``last_cutoff``;
        ``date``: when the backtest started; ``run``: the backtest's run id shortened,
        ``backtest`` in full), then the metrics' means over folds, the headline ones
        (:data:`~riskmodel.evaluation.report.HEADLINE`) first. Targets in the order of
        ``TARGETS``, newest backtest first, best by the kind's headline metric first. A
        metric of another kind is NaN: group by ``target`` and drop the all-NaN columns
        for one table per kind (as ``riskmodel compare`` prints them).

    Raises
    ------
    ValueError
        For an unknown experiment or target, and when a filter leaves no backtest
        (naming what the experiment has).

    Examples
    --------
    >>> import os, tempfile
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation import backtest
    >>> from riskmodel.models import HistoricalRateBaseline
    >>> os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    >>> _ = backtest(simulate_district("tiny", seed=0), [HistoricalRateBaseline()], cutoffs=["2023-09-04",
    ...              "2023-10-02"], horizon=28, experiment="doc", progress=False)
    >>> board = compare("doc", target="grid")
    >>> board[["target", "model", "horizon", "folds", "first_cutoff"]].astype(str).to_numpy().tolist()
    [['grid', 'oracle', '28 days', '2', '2023-09-04'], ['grid', 'HistoricalRateBaseline', '28 days', '2', '2023-09-04']]
    >>> for target, table in board.groupby("target"):
    ...     table = table.dropna(axis=1, how="all")  # one table per kind, its own metrics
    >>> del os.environ["MLFLOW_TRACKING_URI"]
    """
    uri = _connect()
    if mlflow.get_experiment_by_name(experiment) is None:
        raise ValueError(f"no MLflow experiment named {experiment!r} in {uri}")
    backtests = _select(_backtests(experiment), experiment, target=target, data=data, since=since)
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.`{_ROLE}` = 'model'")
    if backtests.empty or runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    names = [c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")]
    names = [c for c in names if not c.endswith("_by_fold") and c != "folds"]  # folds: a backtest's column
    metrics = [c for c in HEADLINE if c in names] + sorted(set(names) - set(HEADLINE))
    board = runs.rename(columns={"tags.model": "model", "tags.mlflow.parentRunId": "backtest"})
    board = board.rename(columns=lambda c: c.removeprefix("metrics."))[["model", "backtest", *metrics]]
    board = board.merge(backtests.drop(columns=["fingerprint", "horizon_text"]), on="backtest")
    headline = pd.Series(float("nan"), index=board.index)
    for name, kind in TARGETS.items():
        if kind.headline in board:
            rows = board["target"] == name
            headline[rows] = board.loc[rows, kind.headline]
    order = board["target"].map({name: i for i, name in enumerate(TARGETS)}).fillna(len(TARGETS))
    return (
        board.assign(_order=order, _headline=headline)
        .sort_values(["_order", "date", "backtest", "_headline"], ascending=[True, False, True, False])
        .loc[:, RUN_COLUMNS + metrics]
        .reset_index(drop=True)
    )


@dataclass
class RunComparison:
    """Two backtests' folds side by side (:func:`compare_runs`).

    Attributes
    ----------
    runs : DataFrame
        The two backtests, rows ``A`` and ``B``: :data:`RUN_COLUMNS` but ``model``.
    model, metric : str
    folds : DataFrame
        One row per shared fold cutoff: ``cutoff``, ``a``, ``b`` (the model's metric in
        each run) and ``difference`` (``b - a``).
    summary : dict
        ``mean``, ``se``, ``low``, ``high``, ``folds``, ``lag`` and ``verdict`` (``better``,
        ``worse`` or ``within noise``: B than A), from
        :func:`~riskmodel.evaluation.selection.paired_difference`.
    sentence : str
        Whether run B is really better than run A, in one sentence.
    warnings : list of str
        What makes the difference more than the models' (different data, horizons).
    """

    runs: pd.DataFrame
    model: str
    metric: str
    folds: pd.DataFrame
    summary: dict
    sentence: str
    warnings: list[str]


def _find_run(backtests: pd.DataFrame, run: str, experiment: str) -> pd.Series:
    """The backtest whose run id is or starts with ``run``."""
    found = backtests[backtests["backtest"].str.startswith(run)]
    if len(found) == 1:
        return found.iloc[0]
    listed = ", ".join(f"{r.run} ({r.target}, {r.date:%Y-%m-%d %H:%M})" for r in backtests.head(10).itertuples())
    if found.empty:
        raise ValueError(f"no backtest run {run!r} in the experiment {experiment!r}; its newest backtests: {listed}")
    raise ValueError(f"{run!r} names {len(found)} backtests ({', '.join(found['run'])}): give more of the run id")


def _folds(run_id: str) -> pd.DataFrame:
    """A logged backtest's ``folds.csv``: one row per model and fold with every metric."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="folds.csv", dst_path=tmp)
        folds = pd.read_csv(path)
    return folds.assign(cutoff=pd.to_datetime(folds["cutoff"]))


def _pick(choices, chosen, what: str, option: str) -> str:
    """``chosen`` if both runs have it; else the only choice; else a ValueError naming them."""
    if chosen is not None and chosen not in choices:
        raise ValueError(f"the two runs do not both have the {what} {chosen!r}; they share {sorted(choices)}")
    if chosen is None and len(choices) != 1:
        raise ValueError(f"the two runs share the {what}s {sorted(choices)}: choose one with {option}")
    return chosen if chosen is not None else next(iter(choices))


def compare_runs(
    experiment: str, a: str, b: str, *, model: str | None = None, metric: str | None = None, confidence: float = 0.95
) -> RunComparison:
    """Is backtest ``b`` really better than backtest ``a``? One model's metric fold by fold in both.

    The two runs are paired on the fold cutoffs they share; the mean difference ``b - a``
    has a ``confidence`` interval as :func:`~riskmodel.evaluation.selection.choose_champion`
    computes it (Newey-West with the folds' overlap as the lag, the longer of the two
    horizons', and a Student t quantile). The folds are read from each run's ``folds.csv``.

    Parameters
    ----------
    experiment : str
    a, b : str
        Backtest run ids, or prefixes that name one backtest of ``experiment``.
    model : str, optional
        A model both runs backtested (default: the one model, other than the oracle, they share).
    metric : str, optional
        A per-fold metric (default: the kind's headline, ``hit_rate_at_5pct`` for grids).
    confidence : float

    Returns
    -------
    RunComparison

    Raises
    ------
    ValueError
        When a run is unknown or ambiguous, the two are of different targets, share fewer
        than two fold cutoffs, or lack the model or the metric (naming what they have).

    Examples
    --------
    >>> import os, tempfile
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.evaluation import backtest
    >>> from riskmodel.models import HistoricalRateBaseline, LastPeriodBaseline
    >>> os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    >>> district, cutoffs = simulate_district("tiny", seed=0), ["2023-09-04", "2023-10-02", "2023-10-30"]
    >>> a, b = (backtest(district, {"rate": model}, cutoffs=cutoffs, experiment="doc", progress=False).run_id
    ...         for model in (HistoricalRateBaseline(), LastPeriodBaseline()))
    >>> comparison = compare_runs("doc", a[:8], b[:8])
    >>> len(comparison.folds), comparison.summary["verdict"] in ("better", "worse", "within noise")
    (3, True)
    >>> del os.environ["MLFLOW_TRACKING_URI"]
    """
    uri = _connect()
    if mlflow.get_experiment_by_name(experiment) is None:
        raise ValueError(f"no MLflow experiment named {experiment!r} in {uri}")
    backtests = _backtests(experiment)
    runs = pd.DataFrame({"A": _find_run(backtests, a, experiment), "B": _find_run(backtests, b, experiment)}).T
    first, second = runs.loc["A"], runs.loc["B"]
    if first["target"] != second["target"]:
        raise ValueError(
            f"run A ({first['run']}) backtests the target {first['target']!r} and run B ({second['run']}) "
            f"the target {second['target']!r}: runs compare only on the same target"
        )
    folds_a, folds_b = _folds(first["backtest"]), _folds(second["backtest"])
    shared_models = set(folds_a["model"]) & set(folds_b["model"])
    choices = shared_models if model is not None else shared_models - {"oracle"}
    model = _pick(choices, model, "model", "model= (--model)")
    metric = metric or TARGETS[first["target"]].headline
    per_fold = set(folds_a.columns[4:]) & set(folds_b.columns[4:])
    metric = _pick(per_fold, metric, "per-fold metric", "metric= (--metric)")
    series = [f[f["model"] == model].set_index("cutoff")[metric] for f in (folds_a, folds_b)]
    shared = series[0].index.intersection(series[1].index)
    if len(shared) < 2:
        raise ValueError(
            f"runs A ({first['run']}: {_span(first)}) and B ({second['run']}: {_span(second)}) share "
            f"{_plural(len(shared), 'fold cutoff')}; a paired comparison needs at least 2"
        )
    horizons = [
        h for h in (logged_horizon(first["horizon_text"]), logged_horizon(second["horizon_text"])) if h is not None
    ]
    lag = max((overlap_lag(shared, h) for h in horizons), default=0)
    table, summary = paired_difference(*series, metric=metric, lag=lag, confidence=confidence)
    return RunComparison(
        runs=runs.drop(columns=["fingerprint", "horizon_text"]),
        model=model,
        metric=metric,
        folds=table.rename_axis("cutoff").reset_index(),
        summary=summary,
        sentence=_verdict(summary, runs, model, metric, confidence),
        warnings=_caveats(first, second),
    )


def _span(run: pd.Series) -> str:
    return f"{run['folds']} folds from {run['first_cutoff']:%Y-%m-%d} to {run['last_cutoff']:%Y-%m-%d}"


def _verdict(summary: dict, runs: pd.DataFrame, model: str, metric: str, confidence: float) -> str:
    a, b = runs.loc["A", "run"], runs.loc["B", "run"]
    what = (
        f"the mean difference B - A in {model}'s {metric} is {summary['mean']:+.4f} "
        f"[{summary['low']:+.4f}, {summary['high']:+.4f}] ({confidence:.0%} interval over "
        f"{summary['folds']} shared folds, Newey-West lag {summary['lag']})"
    )
    if summary["verdict"] == "within noise":
        return f"Run B ({b}) is neither better nor worse than run A ({a}) by more than noise: {what}, which holds 0."
    return f"Run B ({b}) is {summary['verdict']} than run A ({a}) by more than noise: {what}."


def _caveats(first: pd.Series, second: pd.Series) -> list[str]:
    caveats = []
    if first["fingerprint"] != second["fingerprint"]:
        caveats.append(
            f"the runs used different data (A: {first['data']}, B: {second['data']}): the difference is the "
            "data's as well as the models'"
        )
    if first["horizon"] != second["horizon"]:
        caveats.append(f"the runs forecast different horizons (A: {first['horizon']}, B: {second['horizon']})")
    return caveats
