"""The ``riskmodel`` command."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import time
import warnings
from pathlib import Path
from typing import Annotated, Literal, cast

import pandas as pd
import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from .config import load_config
from .contract import level_column
from .datasets import PRESETS, export_platforms, simulate_district
from .evaluation.report import HEADLINE
from .evaluation.targets import TARGETS
from .features.base import horizon_words
from .io import ingest, read_dataset, write_dataset
from .privacy import SALT_VARIABLE, hash_keys, salt_key
from .validation import validate

#: The commands as ``riskmodel --help`` lists them: the whole job, then its steps in the order of the work.
WORKFLOW = (
    "demo",
    "simulate",
    "ingest",
    "validate",
    "link",
    "features",
    "backtest",
    "train",
    "predict",
    "plan",
    "monitor",
    "report",
    "compare",
)


def _flags_untyped(params: list) -> list:
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""  # typer shows the metavar, else "<bool>", after a flag
    return params


class _Group(TyperGroup):
    """Typer's group with the commands in :data:`WORKFLOW` order and flags shown without ``<bool>``."""

    def list_commands(self, ctx) -> list[str]:
        return sorted(self.commands, key=lambda name: WORKFLOW.index(name) if name in WORKFLOW else len(WORKFLOW))

    def get_params(self, ctx) -> list:
        return _flags_untyped(super().get_params(ctx))


class _Command(TyperCommand):
    """Typer's command with flags shown without ``<bool>`` and arguments in the usage line
    as ``OUT`` (``[OUT]`` when optional), not ``{out}``."""

    def get_params(self, ctx) -> list:
        return _flags_untyped(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


app = typer.Typer(add_completion=False, no_args_is_help=True, help="Early warnings of community disputes.", cls=_Group)


def _show_version(value: bool) -> None:
    if value:
        from .version import __version__  # pyproject.toml's [project] version, through importlib.metadata

        typer.echo(f"riskmodel {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Early warnings of community disputes."""


def reflow(docstring: str) -> str:
    """A docstring as help text: each paragraph on one line, for the terminal to wrap.

    Examples
    --------
    >>> print(reflow('''Score every unit,
    ...     riskiest first.
    ...
    ...     Example: riskmodel predict'''))
    Score every unit, riskiest first.
    <BLANKLINE>
    Example: riskmodel predict
    """
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in inspect.cleandoc(docstring).split("\n\n"))


def command(name: str | None = None):
    """``app.command``, with bad input (a ``ValueError`` such as a ValidationError or a
    ConfigError, or a missing file) reported as its message and exit code 1, no traceback.
    Usage errors keep typer's exit code 2. The docstring is the help, reflowed (see
    :func:`reflow`); its first paragraph is the line of ``riskmodel --help``."""

    def register(function):
        text = reflow(function.__doc__ or "")

        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except (ValueError, FileNotFoundError) as error:
                typer.echo(str(error), err=True)
                raise typer.Exit(1) from None

        return app.command(name, cls=_Command, help=text, short_help=text.split("\n\n")[0])(run)

    return register


Preset = Annotated[str, typer.Option(help=f"District size: {', '.join(PRESETS)}.")]
Scheduler = Annotated[
    str | None,
    typer.Option(
        help="Run on Dask: a scheduler's address (tcp://host:8786), or 'local' for a cluster on this machine."
    ),
]
Partitions = Annotated[int | None, typer.Option(help="With --scheduler: groups of top-level units, one task each.")]
Seed = Annotated[int, typer.Option(help="Random seed; the same seed gives the same district.")]


#: The demo's time on this project's 2-core machine (2026-11-30, 6 folds): 'small' (256 grids,
#: 2 years) 105 s with both cores free, the grid backtest 93 s of it; 'tiny' (25 grids, 1 year)
#: 33 s with other jobs running. :func:`demo_estimate` fits seconds = fixed + folds x (per fold
#: + per grid-year x grids x years) to them.
DEMO_SECONDS = {"fixed": 9.0, "per_fold": 4.0, "per_fold_grid_year": 0.0226}


def demo_estimate(preset: str, folds: int) -> str:
    """What ``riskmodel demo`` will do and about how long it takes, from :data:`DEMO_SECONDS`.

    Examples
    --------
    >>> print(demo_estimate("small", 6))  # doctest: +NORMALIZE_WHITESPACE
    Simulate the 'small' district (256 grids, 2 years), backtest 10 grid models and 2
    escalation models (each against the oracle) on 6 folds, choose and register the
    champions: about 2 minutes on 2 free cores (measured with 6 folds: 'small' 105 s,
    'tiny' 33 s; other sizes scaled by grid-years); longer if other jobs share them.
    """
    from .datasets.presets import make_config

    config = make_config(preset, {})
    per_fold = DEMO_SECONDS["per_fold"] + DEMO_SECONDS["per_fold_grid_year"] * config.n_grids * config.years
    seconds = DEMO_SECONDS["fixed"] + folds * per_fold
    if seconds < 90:
        about = f"{max(10, round(seconds, -1)):.0f} seconds"
    else:
        about = f"{seconds / 60:.0f} minutes" if seconds < 90 * 60 else f"{seconds / 3600:.0f} hours"
    grids, escalation = len(TARGETS["grid"].roster()), len(TARGETS["escalation"].roster())
    years = f"{config.years:g} year" + ("" if config.years == 1 else "s")
    return (
        f"Simulate the {preset!r} district ({config.n_grids:,} grids, {years}), backtest "
        f"{grids} grid models and {escalation} escalation models (each against the oracle) on {folds} folds, "
        f"choose and register the champions: about {about} on 2 free cores (measured with 6 folds: 'small' 105 s, "
        "'tiny' 33 s; other sizes scaled by grid-years); longer if other jobs share them."
    )


def _clock(started: float) -> str:
    """Time since ``started`` as m:ss."""
    seconds = round(time.perf_counter() - started)
    return f"{seconds // 60}:{seconds % 60:02d}"


@command()
def demo(
    preset: Preset = "small",
    seed: Seed = 0,
    out: Annotated[Path, typer.Option(help="Parent of the dataset folder to write.")] = Path("data/simulated"),
    folds: Annotated[int, typer.Option(help="Test cutoffs, four weeks apart, ending at the last closed label.")] = 6,
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "riskmodel-demo",
) -> None:
    """The whole job on a simulated district, from data to registered champions.

    It simulates a district, validates and writes it (and its platforms' raw exports, to
    ingest and link), backtests every model family against the oracle (the simulator's true
    rates), logs the backtests to MLflow, chooses a champion for grid risk and one for case
    escalation by the evidence of the folds, registers them, and prints the leaderboards and
    the commands that ingest and link the exports. It says first how long it will take.

    Example: riskmodel demo --preset small --seed 0
    """
    from .evaluation import backtest
    from .evaluation.selection import choose_champion
    from .training import train

    typer.echo(demo_estimate(preset, folds) + "\n")
    started = time.perf_counter()
    district = simulate_district(preset, seed=seed)
    report = validate(district)
    folder = write_dataset(report.dataset, out / preset)
    sources = export_platforms(district, out / f"{preset}-platforms")
    typer.echo(
        f"[{_clock(started)}] Simulated the {preset!r} district (seed {seed}); validated "
        f"{int(report.counts['input'].sum())} rows, none rejected; written to {folder}, and each "
        f"platform's raw export to {sources.parent}\n"
    )
    horizon, escalation_days = 28, 30
    for kind, name, closed in (
        (TARGETS["grid"], "grid risk, 28 days", horizon),  # escalation: + the last fold
        (TARGETS["escalation"], "case escalation, 30 days", escalation_days + 28),
    ):
        models = kind.roster()
        last = (pd.Timestamp(district.end) - pd.Timedelta(days=closed)).normalize()
        cutoffs = pd.date_range(end=last, periods=folds, freq="4W-MON")
        result = backtest(
            district,
            models,
            cutoffs=cutoffs,
            horizon=horizon,
            target=kind,
            escalation_days=escalation_days,
            experiment=experiment,
        )
        typer.echo(
            f"[{_clock(started)}] Backtest of {name}: {folds} folds from {cutoffs[0].date()} to "
            f"{cutoffs[-1].date()} (MLflow run {result.run_id})"
        )
        _print_leaderboard(result.leaderboard)
        choice = choose_champion(result)
        typer.echo(_evidence_text(choice.to_dict()))
        champion = train(
            district, model=models[choice.chosen], horizon=horizon, target=kind, register=True, experiment=experiment
        )
        typer.echo(
            f"[{_clock(started)}] Champion {choice.chosen} registered as {champion.registered_name!r} "
            "(alias 'champion')\n"
        )
    from .tracking import tracking_uri

    typer.echo(
        f"Done in {time.perf_counter() - started:.0f} s. Read the runs back with:\n"
        f"  .venv/bin/riskmodel compare {experiment}\nor open them with:\n"
        f"  MLFLOW_DISABLE_TELEMETRY=true .venv/bin/mlflow ui --backend-store-uri {tracking_uri()}\n"
        "Ingest the platforms' raw exports into one dataset, then link their reports into disputes:\n"
        f"  .venv/bin/riskmodel ingest --config {sources} --out {out / f'{preset}-ingested'}\n"
        f"  .venv/bin/riskmodel link --data {out / f'{preset}-ingested'} --out {out / f'{preset}-linked'}"
    )


@command()
def compare(
    experiment: Annotated[str, typer.Argument(help="MLflow experiment to read.")],
    target: Annotated[str | None, typer.Option(help=f"Only backtests of this target: {', '.join(TARGETS)}.")] = None,
    data: Annotated[
        str | None,
        typer.Option(help="Only backtests on this data: a fingerprint prefix, or a dataset folder (fingerprinted)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only backtests run on or after this date (2024-06-01, UTC).")
    ] = None,
    runs: Annotated[
        tuple[str, str] | None,
        typer.Option(
            metavar="A B",
            help="Two backtests A B (run ids or unambiguous prefixes): one model's metric fold by fold in both, "
            "B - A, and whether B is really better than A.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="With --runs: the model (default: the one model both runs share).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="With --runs: a per-fold metric (default: the target's headline metric).")
    ] = None,
) -> None:
    """Compare an experiment's backtests: one table per target, or two runs fold by fold.

    Read back from MLflow: one table per target, with each model's data fingerprint, horizon,
    folds, date, run and headline metrics; or, with --runs, two backtests fold by fold with the
    mean difference and its 95% interval.

    Example: riskmodel compare riskmodel-demo --target grid --since 2024-06-01

    Example: riskmodel compare riskmodel-demo --runs 1a2b3c4d 5e6f7a8b --metric hit_rate_at_5pct
    """
    from . import tracking

    if runs is None:
        if model is not None or metric is not None:
            raise typer.BadParameter("--model and --metric choose what --runs compares", param_hint="--runs")
        _print_tables(tracking.compare(experiment, target=target, data=data, since=since), experiment)
        return
    if target is not None or data is not None or since is not None:
        raise typer.BadParameter(
            "--target, --data and --since filter the tables; --runs compares the two runs named", param_hint="--runs"
        )
    _print_comparison(tracking.compare_runs(experiment, *runs, model=model, metric=metric))


def _print_tables(board: pd.DataFrame, experiment: str) -> None:
    """One titled table per target: who, on what, when, and the headline metrics it has."""
    if board.empty:
        typer.echo(f"no backtest has been logged in the experiment {experiment!r}")
        return
    for target, rows in board.groupby("target", sort=False, dropna=False):
        rows = rows.dropna(axis=1, how="all")
        folds = [
            f"{n} ({first:%Y-%m-%d} to {last:%Y-%m-%d})"
            for n, first, last in zip(rows["folds"], rows["first_cutoff"], rows["last_cutoff"], strict=True)
        ]
        shown = rows.assign(folds=folds, date=rows["date"].dt.strftime("%Y-%m-%d %H:%M"))
        columns = ["model", "data", "horizon", "folds", "date", "run", *(c for c in HEADLINE if c in rows)]
        backtests = rows["backtest"].nunique()
        typer.echo(f"Target {target}: {backtests} backtest{'s' * (backtests != 1)}, {len(rows)} model runs")
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            typer.echo(shown[columns].to_string(index=False, float_format="{:.3f}".format) + "\n")


def _print_comparison(comparison) -> None:
    """The two runs, any warning, the folds side by side, the mean difference and the verdict."""
    for name, run in comparison.runs.iterrows():
        typer.echo(
            f"Run {name}: {run['run']} ({run['target']}, data {run['data']}, {run['horizon']}, {run['folds']} folds "
            f"from {run['first_cutoff']:%Y-%m-%d} to {run['last_cutoff']:%Y-%m-%d}, run {run['date']:%Y-%m-%d %H:%M})"
        )
    for warning in comparison.warnings:
        typer.echo(f"Warning: {warning}")
    a, b = (f"{name} {comparison.runs.loc[name, 'run']}" for name in ("A", "B"))
    folds = comparison.folds.rename(columns={"a": a, "b": b, "difference": "B - A"})
    folds["cutoff"] = folds["cutoff"].dt.strftime("%Y-%m-%d")
    typer.echo(f"\n{comparison.model}, {comparison.metric} by fold:")
    typer.echo(
        folds.to_string(index=False, formatters={a: "{:.4f}".format, b: "{:.4f}".format, "B - A": "{:+.4f}".format})
    )
    summary = comparison.summary
    typer.echo(
        f"mean B - A {summary['mean']:+.4f}, 95% interval [{summary['low']:+.4f}, {summary['high']:+.4f}] "
        f"({summary['folds']} folds, Newey-West lag {summary['lag']})\n{comparison.sentence}"
    )


@command("backtest")
def backtest_command(
    config: Annotated[Path, typer.Option(help="A YAML run configuration (see configs/).")],
    track: Annotated[bool, typer.Option(help="Log the backtest to MLflow.")] = True,
) -> None:
    """Backtest the configured models at every configured horizon and print the leaderboards.

    Example: riskmodel backtest --config configs/chicago.yaml
    """
    from .config import run_backtest

    started = time.perf_counter()
    run = load_config(config)
    results = run_backtest(run, track=track)
    for result in results:
        cutoffs = result.config["cutoffs"]
        what = f"horizon {horizon_words(result.horizon)}" if result.kind.horizons else f"target {result.target}"
        typer.echo(
            f"{run.name}: {what}, {len(cutoffs)} folds from {cutoffs[0]} to "
            f"{cutoffs[-1]}" + (f" (MLflow run {result.run_id})" if result.run_id else "")
        )
        _print_leaderboard(result.leaderboard)
    typer.echo(f"Done in {time.perf_counter() - started:.0f} s.")


@command()
def features(
    config: Annotated[Path, typer.Option(help="A YAML run configuration (see configs/).")],
    out: Annotated[Path, typer.Option(help="The panel to write: .parquet or .csv.")] = Path("panel.parquet"),
) -> None:
    """Build the configured grid panel and write it.

    The panel holds the features and labels of every unit at the training and test
    cutoffs, for the first horizon.

    Example: riskmodel features --config configs/grid_risk.yaml --out panel.parquet
    """
    from .features import GridPanelBuilder
    from .features.base import training_cutoffs

    _table_format(out)
    run = load_config(config)
    if not run.kind.panel:
        raise typer.BadParameter(
            f"features builds grid panels; {config} has target {run.target!r}", param_hint="--config"
        )
    dataset = run.dataset()
    tests = run.test_cutoffs(dataset)
    first = dataset.cases["reported_at"].min()
    cutoffs = training_cutoffs(first, run.training.start, tests[-1], run.training.frequency).union(tests)
    builder = GridPanelBuilder(cutoffs=cutoffs, horizon=run.horizon(), level=run.level, **run.features)
    panel = builder.fit(dataset).build(dataset)
    frame = panel.X.assign(y_count=panel.y_count, y=panel.y).reset_index()
    _write_table(frame, out)
    typer.echo(f"{len(frame):,} rows x {panel.X.shape[1]} features at {len(cutoffs)} cutoffs written to {out}")


@command()
def train(
    config: Annotated[Path, typer.Option(help="A YAML run configuration (see configs/).")],
    model: Annotated[
        str | None,
        typer.Option(
            help="A configured model's name, or 'auto': chosen by a backtest of the configured models "
            "(default: the configuration's training.model, itself 'auto' by default)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to save to (default models/<registered name>).")] = None,
    register: Annotated[bool, typer.Option(help="Register it as the champion in MLflow.")] = False,
    scheduler: Scheduler = None,
    partitions: Partitions = None,
) -> None:
    """Fit the final model of a configuration, save it, log it, and with --register make it the champion.

    The model is fitted on all labelled history (first horizon). With 'auto'
    the model is chosen first by a backtest of the configured models on the last folds
    (the best by the headline metric unless a simpler one is within noise, never one
    worse than the best baseline by more than noise), and the choice is printed. With
    --scheduler, a named model on a Dask cluster (GBMCount, the grid target).

    Example: riskmodel train --config configs/grid_risk.yaml --model GBMCount --register
    """
    from .config import train_final

    run = load_config(config)
    estimators = run.estimators()
    name = model or run.training.model
    if name != "auto" and name not in estimators:
        raise typer.BadParameter(f"no model {name!r} in {config}; it has {list(estimators)}", param_hint="--model")
    _check_scheduler(scheduler, partitions)
    if scheduler is not None and name == "auto":
        raise typer.BadParameter(
            "--scheduler trains a named model; choosing one (auto) backtests in memory: pass --model",
            param_hint="--model",
        )
    if scheduler is None:
        trained = train_final(run, estimators.get(name, name), register=register)
        if trained.evidence is not None:
            name = trained.evidence["chosen"]
            typer.echo(_evidence_text(trained.evidence))
    else:
        from .scaleout import train_final as train_on_dask

        with _cluster(scheduler) as client:
            trained = train_on_dask(run, estimators[name], partitions=partitions, client=client, register=register)
    folder = trained.save(out)
    logged = (
        (
            f"logged as {trained.model_uri}"
            + (f", registered as {trained.registered_name!r} (alias 'champion')" if register else "")
        )
        if trained.model_uri
        else "not logged"
    )
    typer.echo(f"{name} trained through {trained.trained_through}, saved to {folder}, {logged}")


@command()
def report(
    run_or_config: Annotated[str, typer.Argument(help="A backtest's MLflow run id, or a YAML configuration.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    k: Annotated[
        int | None,
        typer.Option(min=1, metavar="K", help="Smallest case count shown for a micro-grid (default: report.k, 3)."),
    ] = None,
    aggregate_map: Annotated[
        bool | None,
        typer.Option(
            "--aggregate/--no-aggregate", help="Map micro-grids at the level above (default: report.aggregate_map, on)."
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report of a backtest and log it to its MLflow run.

    From a configuration it runs the backtest (first horizon), trains its best model and
    maps and ranks the final model's forecast; from a run id it reads the logged
    leaderboard and figures. Small counts are hidden (disclosure control).

    Example: riskmodel report configs/lancashire.yaml --out lancashire.html
    """
    from . import tracking
    from .evaluation.report import render_report
    from .evaluation.report_figures import describe_run
    from .evaluation.report_words import headline_sentence

    if run_or_config.endswith((".yaml", ".yml")):
        run_id, page = _report_of_config(load_config(run_or_config), k=k, aggregate=aggregate_map)
    else:
        run_id = run_or_config
        leaderboard, config, figures = tracking.read_backtest(run_id)  # as logged, plots included
        kind = next((name for name, kind in TARGETS.items() if kind.headline in leaderboard), "grid")
        title, subtitle = describe_run(config, kind=kind)
        horizon = horizon_words(config["horizon"]) if kind == "grid" else ""
        headline = headline_sentence(leaderboard, horizon=horizon, unit=config.get("level", "grid"))
        page = render_report(
            title, leaderboard, subtitle=f"{subtitle} MLflow run {run_id}.", headlines=[headline], figures=figures
        )
    out.write_text(page, encoding="utf-8")
    tracking.log_report(run_id, out)
    typer.echo(f"written to {out} and logged to MLflow run {run_id}")


def _report_of_config(run, *, k: int | None, aggregate: bool | None) -> tuple[str, str]:
    """Backtest ``run`` (first horizon), train its champion and write the report's HTML."""
    from .config import run_backtest, train_final
    from .evaluation.report_figures import backtest_report
    from .evaluation.selection import choose_champion
    from .serving import predict

    dataset = run.dataset()
    result = run_backtest(run.model_copy(update={"horizons": run.horizons[:1]}), dataset)[0]
    champion = choose_champion(result)
    forecast, sections = None, []
    if run.kind.counts:  # a kind whose answer ranks units
        final = train_final(run, run.estimators()[champion.chosen], dataset, track=False)
        forecast = predict(dataset, model=final, drivers=200).assign(model=champion.chosen)
        if run.prevention is not None and dataset.visits is not None and len(dataset.visits):
            smallest = run.report.k if k is None else k
            sections.append(("Prevention", _prevention_section(run, dataset, final, smallest)))
    settings = run.report
    page = backtest_report(
        result,
        dataset,
        forecast=forecast,
        name=run.name,
        data=_data_words(run),
        k=settings.k if k is None else k,
        sensitive=settings.sensitive,
        aggregate=settings.aggregate_map if aggregate is None else aggregate,
        notes=[f"Final model: {champion.chosen}. {_in_words(champion.reason)} MLflow run {result.run_id}."],
        sections=sections,
    )
    return result.run_id, page


def _in_words(text: str) -> str:
    """``text`` with the metrics' column names (``hit_rate_at_5pct``) in words."""
    import re

    from .evaluation.report_words import metric_label

    return re.sub(r"\b[a-z]+(?:_[a-z0-9]+)+\b", lambda match: metric_label(match.group()), text)


def _data_words(run) -> str:
    data = run.data
    if data.kind == "simulator":
        return f"Simulated {data.preset!r} district (seed {data.seed})"
    return f"Data: {Path(data.path).name}"


#: The committed policy comparison of the prevention benchmark, shown by the report.
POLICY_TABLE = Path(__file__).parents[1] / "bench" / "results" / "prevention_policies.md"


def _prevention_section(run, dataset, final, k: int) -> str:
    from .evaluation.prevention_report import prevention_section

    settings = run.prevention
    return prevention_section(
        dataset,
        final,
        horizon=settings.effect_horizon,
        level=settings.by or "community",
        policies=POLICY_TABLE.read_text() if POLICY_TABLE.is_file() else None,
        k=k,
    )


def _evidence_text(evidence: dict) -> str:
    """The choice of ``model: auto`` in a few lines: the model, why, and its paired differences."""
    lines = [f"Chose {evidence['chosen']}: {_in_words(evidence['reason'])}"]
    for key, what in (("versus_runner_up", "runner-up"), ("versus_best_baseline", "best baseline")):
        vs = evidence.get(key) or {}
        if vs and "mean" not in vs:
            lines.append(f"  {evidence['chosen']} is the {what}")
        elif vs:
            lines.append(
                f"  vs the {what} {vs['model']}: {_interval(vs)} ({_in_words(evidence['metric'])}, {vs['folds']} folds)"
            )
    return "\n".join(lines)


def _interval(vs: dict) -> str:
    def number(x):
        return "inf" if x is None else f"{x:+.4f}"

    return f"{number(vs['mean'])} [{number(vs['low'])}, {number(vs['high'])}]"


def _check_scheduler(scheduler: str | None, partitions: int | None) -> None:
    if partitions is not None and scheduler is None:
        raise typer.BadParameter("partitions are for the Dask path: give --scheduler too", param_hint="--partitions")


@contextlib.contextmanager
def _cluster(scheduler: str):
    """A Dask client of the scheduler at an address, or of a cluster on this machine."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with LocalCluster(host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
    else:
        with Client(scheduler) as client:
            yield client


def _table_format(out: Path) -> str:
    if out.suffix not in (".csv", ".parquet"):
        raise typer.BadParameter(f"--out must end in .csv or .parquet, got {out}", param_hint="--out")
    return out.suffix


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    if _table_format(out) == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)


def _print_leaderboard(board: pd.DataFrame) -> None:
    """The report's main columns of a leaderboard, headed in words, and the sort named (the
    other metrics are in MLflow and the report)."""
    from .evaluation.report import MAIN
    from .evaluation.report_words import metric_label

    columns = [c for c in MAIN if c in board][:5] or list(board.columns[:5])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        table = board[columns].rename(columns=metric_label).to_string(float_format="{:.3f}".format)
    typer.echo(f"{table}\nBest first by {metric_label(columns[0])}; every metric is in MLflow and the report.\n")


@command()
def simulate(
    out: Annotated[Path, typer.Argument(help="Dataset folder to write.")],
    preset: Preset = "small",
    seed: Seed = 0,
    format: Annotated[str, typer.Option(help="parquet or csv.")] = "parquet",
    platforms: Annotated[
        Path | None,
        typer.Option(help="Also write each platform's raw export and their sources.yaml to this folder."),
    ] = None,
) -> None:
    """Simulate a district and write it as a dataset folder.

    Example: riskmodel simulate data/district --preset district --seed 1 --platforms data/district-raw
    """
    district = simulate_district(preset, seed=seed)
    folder = write_dataset(district, out, format=cast(Literal["parquet", "csv"], format))  # write_dataset checks it
    typer.echo(f"written to {folder}")
    if platforms is not None:
        typer.echo(f"platform exports and {export_platforms(district, platforms)} written")


@command("ingest")
def ingest_command(
    config: Annotated[Path, typer.Option(help="The sources YAML: each platform's files, columns, times, codes.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write, with rejected.csv and counts.csv.")],
) -> None:
    """Read many platforms' raw exports into one dataset folder; exit 1 on bad input.

    Every source of the YAML (see configs/sources.yaml) is read, mapped onto the contract and
    validated. The rows it rejects go to OUT/rejected.csv with their source, file, row and
    reason; the rows per source (read = mapped + rejected) to OUT/counts.csv, and are printed.

    Example: riskmodel ingest --config exports/sources.yaml --out data/district
    """
    with warnings.catch_warnings(record=True) as caught:  # a time format that fails some rows: said plainly
        warnings.simplefilter("always", UserWarning)
        ingested = ingest(config)
    for warning in caught:
        typer.echo(str(warning.message), err=True)
    folder = write_dataset(ingested.dataset, out)
    ingested.rejected.to_csv(folder / "rejected.csv", index=False)
    ingested.counts.to_csv(folder / "counts.csv", index=False)
    typer.echo(ingested.counts.to_string(index=False))
    rejected = int(ingested.counts["rejected"].sum())
    typer.echo(f"written to {folder}; {rejected} rejected row(s), with their reasons, in rejected.csv")


@command()
def link(
    data: Annotated[Path, typer.Option(help="Dataset folder of reports to link.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write, its cases with dispute_id; weights.csv beside.")],
    labels: Annotated[
        Path | None,
        typer.Option(help="CSV of a labelled sample (case_id, dispute_id) that sets the threshold."),
    ] = None,
    charts: Annotated[Path | None, typer.Option(help="Folder for Splink's charts (HTML and JSON).")] = None,
    threshold: Annotated[float | None, typer.Option(help="Match probability that links two reports.")] = None,
    part_reports: Annotated[
        int, typer.Option(help="Above this many reports, link in parts of whole top-level units (0: never).")
    ] = 1_000_000,
) -> None:
    """Link reports of one dispute (Splink) and write the dataset with each case's dispute_id.

    Example: riskmodel link --data data/raw --out data/linked --charts charts
    """
    from .linkage import link_reports

    sample = None if labels is None else pd.read_csv(labels, dtype=str)
    dataset = validate(read_dataset(data)).dataset
    linked = link_reports(dataset, threshold=threshold, labels=sample, charts=charts, part_reports=part_reports or None)
    folder = write_dataset(linked.dataset, out)
    linked.weights.to_csv(Path(folder) / "weights.csv", index=False)
    typer.echo(f"{linked!r}\nwritten to {folder} (match weights in weights.csv)")


_SECRET_NAMES = {"party_key": "party keys", "team": "teams"}  # what the quarantine file may hold raw


@command("validate")
def validate_command(
    folder: Annotated[Path, typer.Argument(help="Dataset folder to check.")],
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Write the rejected rows here (CSV) instead of failing. Their party_key and "
            f"(visits) team are pseudonymised when {SALT_VARIABLE} is set; otherwise the file "
            "holds them as given."
        ),
    ] = None,
) -> None:
    """Check a dataset folder against the data contract; exit 1 if it breaks it.

    Example: riskmodel validate data/simulated/small --quarantine rejected.csv
    """
    report = validate(read_dataset(folder), errors="quarantine" if quarantine else "raise")
    typer.echo(report.counts.to_string())
    if quarantine:
        rejected = report.rejected
        secret = [column for column in _SECRET_NAMES if column in rejected.columns]
        if secret:
            if os.environ.get(SALT_VARIABLE):
                key = salt_key()
                rejected = rejected.assign(**{column: hash_keys(rejected[column], key) for column in secret})
            else:
                typer.echo(
                    f"The rejected rows hold raw {' and '.join(_SECRET_NAMES[c] for c in secret)}: set "
                    f"{SALT_VARIABLE} to pseudonymise them.",
                    err=True,
                )
        rejected.to_csv(quarantine, index=False)
        typer.echo(f"{len(rejected)} rejected row(s) written to {quarantine}")


@command("predict")
def predict_command(
    data: Annotated[Path, typer.Option(help="Dataset folder to score.")],
    as_of: Annotated[str | None, typer.Option(help="Forecast time (default: the end of the data).")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Registry URI or model folder (default: models:/dispute-risk-grid@champion, else "
            "models/dispute-risk-grid)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every row here: .csv or .parquet (with --scheduler: a folder of Parquet files)."),
    ] = None,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 10,
    scheduler: Scheduler = None,
    partitions: Partitions = None,
    record: Annotated[
        str | None,
        typer.Option(
            help="Keep the forecast in this store: a SQLite file, a SQLAlchemy URL, a folder (Parquet), "
            "or 'default' ($RISKMODEL_FORECAST_STORE, else forecasts.db beside mlflow.db).",
            metavar="STORE",
        ),
    ] = None,
) -> None:
    """Score every unit (or open case) as of a time, print the riskiest with their drivers.

    It prints the forecast time (given, or the end of the data) and the horizon first.
    The alerts column flags cold starts, units without history or attributes, and
    anomalies. With --scheduler, every unit is scored on a Dask cluster, one Parquet file
    per partition. With --record, the forecast is kept for later scoring (once per model,
    time and unit; a store that cannot be written is a warning, not a lost forecast).

    Example: riskmodel predict --data data/simulated/small --as-of 2024-12-01 --out risk.csv
    """
    from .serving import model_for, predict

    _check_scheduler(scheduler, partitions)
    store = None
    if record is not None:
        from .store import open_store

        store = open_store(None if record == "default" else record)
    if scheduler is not None:
        if out is None:
            raise typer.BadParameter("with --scheduler, give the folder to write to", param_hint="--out")
        from .scaleout import open_dataset, predict_partitioned

        parts = open_dataset(data, partitions=partitions)
        trained = model_for(model, None)  # loaded once, for its horizon too
        with _cluster(scheduler) as client:
            folder = predict_partitioned(
                parts,
                out,
                as_of=as_of,
                model=trained,
                partitions=partitions,
                client=client,
            )
        heads = [pd.read_parquet(f).head(top) for f in sorted(folder.glob("part.*.parquet"))]  # each sorted by rank
        risk = pd.concat(heads, ignore_index=True).sort_values("rank")
        typer.echo(f"{len(heads)} Parquet files written to {folder}")
    else:
        if out is not None:
            _table_format(out)
        dataset = read_dataset(data)
        trained = model_for(model, None)
        risk = predict(dataset, as_of=as_of, model=trained)
        if out is not None:
            _write_table(risk, out)
            typer.echo(f"{len(risk)} rows written to {out}")
    if store is not None:
        from .store import record_safely

        written = record_safely(store, pd.read_parquet(folder) if scheduler is not None else risk, trained)
        if written is not None:
            typer.echo(f"{written} forecast(s) recorded in {store.url} (the others were there already)")
    key = "grid_id" if "expected_count" in risk else "case_id"
    shown = [key, "probability", "score", "tier", "rank", "top_drivers", "alerts"]
    if len(risk):
        when = "given" if as_of is not None else "the end of the data"
        window = trained.target.window(trained.builder)
        typer.echo(
            f"As of {risk['as_of'].iloc[0]} ({when}), {trained.kind} model over the next {horizon_words(window)}: "
            f"the {min(top, len(risk))} riskiest of {len(risk)} {'units' if key == 'grid_id' else 'open cases'}"
        )
    with pd.option_context("display.width", 250, "display.max_colwidth", 120):
        typer.echo(risk[shown].head(top).to_string(index=False, float_format="{:.3f}".format))


@command("monitor")
def monitor_command(
    store: Annotated[
        str, typer.Option(help="The forecast store: a SQLite file, a SQLAlchemy URL or a Parquet folder.")
    ],
    data: Annotated[Path, typer.Option(help="Dataset folder with the cases that happened.")],
    config: Annotated[Path | None, typer.Option(help="Alarm thresholds (YAML), e.g. configs/monitoring.yaml.")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="The served model (registry URI or folder): its backtest gives the hit rate's band."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the weekly scores here: .csv or .parquet.")] = None,
    page: Annotated[
        Path | None, typer.Option("--html", help="Write the monitoring page here: curves and alarms, offline HTML.")
    ] = None,
    track: Annotated[bool, typer.Option(help="Log the weekly scores to MLflow, one run per model version.")] = True,
    experiment: Annotated[str, typer.Option(help="MLflow experiment of the monitoring runs.")] = "riskmodel-monitoring",
) -> None:
    """Score the stored forecasts whose windows closed; exit 3 on an alarm.

    Each model version's week of forecasts is scored against the cases that happened
    (observed over expected, hit rate, Brier, coverage), and each alarm is printed with
    its reason. The exit code is 0 when healthy and 3 on any alarm, for a scheduler.
    As backtest and train do, it logs to MLflow unless --no-track: each model version's
    weekly scores on its one run (step = week), the alarms and the page; a store that
    cannot be written to is warned of and changes no exit code.

    Example: riskmodel monitor --store forecasts.db --data data/district --config configs/monitoring.yaml
    --html monitor.html
    """
    import yaml

    from .evaluation import MonitorSettings
    from .monitor import monitor

    if out is not None:
        _table_format(out)
    settings = MonitorSettings.from_dict(yaml.safe_load(config.read_text()) if config is not None else None)
    report = monitor(store, read_dataset(data), settings=settings, model=model)
    if out is not None:
        _write_table(report.scores, out)
        typer.echo(f"{len(report.scores)} weekly score(s) written to {out}")
    html = None  # the page, rendered once for the file and the run
    if page is not None:
        from .evaluation.monitor_page import write_monitor_page

        html = write_monitor_page(report, page).read_text(encoding="utf-8")
        typer.echo(f"monitoring page written to {page}")
    if track:
        from .tracking import log_monitoring, log_safely

        runs = log_safely(log_monitoring, report, experiment=experiment, page=html, what="the monitoring")
        if runs:
            typer.echo(f"logged to MLflow experiment {experiment}: run(s) {', '.join(runs)}")
    shown = ["model", "version", "as_of", "units", "observed", "expected", "oe_ratio", "hit_rate_at_5pct", "brier"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(
            report.scores[[c for c in shown if c in report.scores]].to_string(index=False, float_format="{:.3f}".format)
        )
    for (name, version), expected in report.backtest.groupby(["model", "version"]):
        typer.echo(
            f"Its backtest expects ({name} {version}, mean and band over {expected['folds'].max()} folds): "
            + _expected(expected)
        )
    if len(report.unscored):
        counts = report.unscored.groupby("reason")["forecasts"].sum()
        typer.echo("Unscored: " + ", ".join(f"{n} forecast(s) {reason}" for reason, n in counts.items()))
    for alarm in report.alarms.itertuples():
        typer.echo(
            f"ALARM {alarm.kind} ({alarm.model} {alarm.version}, week of {alarm.week:%Y-%m-%d}): {alarm.message}"
        )
    if not report.healthy:
        raise typer.Exit(3)
    typer.echo("Healthy: no alarm.")


def _expected(expected: pd.DataFrame) -> str:
    """The backtest's expectation of each watched metric, in words: ``label mean [low, high]``."""
    from .evaluation.report_words import metric_label

    return "; ".join(
        f"{metric_label(row.metric)} {row.mean:.3f} [{row.low:.3f}, {row.high:.3f}]" for row in expected.itertuples()
    )


@command("plan")
def plan_command(
    data: Annotated[Path, typer.Option(help="Dataset folder to plan from.")],
    capacity: Annotated[
        str, typer.Option(help="Visits per group and week: a number, or a CSV with <by>_id and capacity columns.")
    ],
    out: Annotated[Path, typer.Option(help="The plan to write: .csv or .parquet.")] = Path("plan.csv"),
    model: Annotated[
        str | None,
        typer.Option(help="Registry URI or model folder (default: as for riskmodel predict)."),
    ] = None,
    by: Annotated[
        str, typer.Option(help="The level whose units share a capacity ('none': one for all).")
    ] = "community",
    explore: Annotated[float, typer.Option(help="Share of visits drawn at random at the capacity margin.")] = 0.1,
    as_of: Annotated[str | None, typer.Option(help="Forecast time (default: the end of the data).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the draws at the margin: same seed, same plan.")] = 0,
) -> None:
    """Plan the week's visits from the forecast.

    Each group gets its riskiest units within its capacity, a share drawn at random at
    the margin. A plan from a registry model is logged to MLflow (experiment
    riskmodel-plans) with its plan id.

    Example: riskmodel plan --data data/simulated/small --capacity 2 --out plan.csv
    """
    from .prevention import plan_visits
    from .serving import predict

    _table_format(out)
    try:
        limit: object = float(capacity)
    except ValueError:
        limit = pd.read_csv(capacity, dtype={level_column(by): "str"})
    forecast = predict(read_dataset(data), as_of=as_of, model=model, drivers=None)
    group = None if by == "none" else by
    plan = plan_visits(forecast, capacity=limit, by=group, explore=explore, seed=seed)
    _write_table(plan, out)
    counts = plan["assignment"].value_counts()
    typer.echo(
        f"plan {plan['plan_id'].iloc[0] if len(plan) else '(empty)'} for the week of "
        f"{plan['week'].iloc[0].date() if len(plan) else '-'}: {counts.get('rank', 0)} visits by rank, "
        f"{counts.get('explore', 0)} drawn at the margin, {counts.get('control', 0)} comparison units; written to {out}"
    )
    if model is not None and model.startswith(("models:/", "runs:/")):
        from .tracking import log_plan

        settings = {
            "capacity": capacity,
            "by": by,
            "explore": explore,
            "seed": seed,
            "as_of": forecast["as_of"].iloc[0],
        }
        run_id = log_plan(plan, model=model, settings=settings)
        typer.echo(f"logged to MLflow run {run_id}")
