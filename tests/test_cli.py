from __future__ import annotations

import re
import shlex

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import riskmodel
from riskmodel import train
from riskmodel.cli import WORKFLOW, app
from riskmodel.datasets import simulate_district
from riskmodel.io import write_dataset
from riskmodel.models import HistoricalRateBaseline

runner = CliRunner()


def test_version_is_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"riskmodel {riskmodel.__version__}\n"
    assert riskmodel.__version__ != "0+unknown"  # read from the installed metadata of pyproject.toml
    assert "--version" in runner.invoke(app, ["--help"]).output


@pytest.mark.slow
def test_demo_runs_the_whole_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["demo", "--preset", "tiny", "--folds", "2", "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    # What it will do and how long that takes, before it starts; then each stage with its time.
    assert result.output.startswith("Simulate the 'tiny' district (25 grids, 1 year), backtest 10 grid models")
    assert "on 2 folds, choose and register the champions: about " in result.output.splitlines()[0]
    assert re.search(r"^\[\d+:\d\d\] Backtest of grid risk", result.output, re.M)
    assert (tmp_path / "data" / "tiny" / "dataset.json").is_file()
    for line in (
        "Backtest of grid risk, 28 days: 2 folds",
        "Backtest of case escalation, 30 days: 2 folds",
        "registered as 'dispute-risk-grid'",
        "registered as 'dispute-escalation-case'",
        "Hit rate at 5%, of best possible",
        "Best first by Hit rate at 5%",
        "mlflow ui --backend-store-uri sqlite:///",
    ):
        assert line in result.output
    assert "oracle" in result.output and "GBMRisk" in result.output
    # The registered champion is the one chosen by evidence, and the choice is printed.
    grid = re.search(r"Chose (\w+): .*?Champion (\w+) registered as 'dispute-risk-grid'", result.output, re.S)
    assert grid and grid.group(1) == grid.group(2), result.output
    board = runner.invoke(app, ["compare", "riskmodel-demo"])
    assert board.exit_code == 0 and "HistoricalRateBaseline" in board.output
    # The platforms' raw exports are written too, and the printed ingest command reads them.
    ingest_line = next(line for line in result.output.splitlines() if "riskmodel ingest --config" in line)
    program, *arguments = shlex.split(ingest_line)
    assert program == ".venv/bin/riskmodel"
    assert arguments[:3] == ["ingest", "--config", str(tmp_path / "data" / "tiny-platforms" / "sources.yaml")]
    ingested = runner.invoke(app, arguments)
    assert ingested.exit_code == 0 and "0 rejected row(s)" in ingested.output, ingested.output
    assert (tmp_path / "data" / "tiny-ingested" / "counts.csv").is_file()
    assert f"riskmodel link --data {tmp_path / 'data' / 'tiny-ingested'} --out " in result.output


def test_validate_exit_codes(tmp_path, dataset):
    good = write_dataset(dataset, tmp_path / "good")
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    bad = write_dataset(dataset.replace(cases=dataset.cases.assign(severity=[1, 9, 2, 3])), tmp_path / "bad")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1 and "cases.severity [range]" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["validate", str(bad), "--quarantine", str(tmp_path / "rejected.csv")])
    assert result.exit_code == 0 and "1 rejected row(s)" in result.output
    assert runner.invoke(app, ["validate", str(tmp_path / "nowhere")]).exit_code == 1
    assert runner.invoke(app, ["demo", "--no-such-option"]).exit_code == 2


def test_quarantined_visits_have_their_teams_pseudonymised(tmp_path, dataset, monkeypatch):
    from riskmodel.privacy import SALT_VARIABLE

    from .conftest import make_plans, make_visits

    visits = make_visits().assign(kind=["gossip", "mediation", "follow_up", "publicity", "screening"])
    bad = write_dataset(dataset.replace(visits=visits, plans=make_plans()), tmp_path / "bad")
    monkeypatch.delenv(SALT_VARIABLE, raising=False)
    result = runner.invoke(app, ["validate", str(bad), "--quarantine", str(tmp_path / "raw.csv")])
    assert result.exit_code == 0 and "hold raw teams:" in result.output  # only visits were rejected
    monkeypatch.setenv(SALT_VARIABLE, "a district's secret salt")
    result = runner.invoke(app, ["validate", str(bad), "--quarantine", str(tmp_path / "rejected.csv")])
    assert result.exit_code == 0 and "1 rejected row(s)" in result.output
    written = (tmp_path / "rejected.csv").read_text()
    assert "visits" in written and "gossip" in written and "team-east" not in written


def test_validate_checks_plans(tmp_path, dataset):
    from .conftest import make_plans, make_visits

    plans = make_plans().assign(priority=[1, 0, 3, 1])  # P1's explore row: priority 0
    bad = write_dataset(dataset.replace(visits=make_visits(), plans=plans), tmp_path / "bad")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1 and "plans.priority [range]" in result.output
    result = runner.invoke(app, ["validate", str(bad), "--quarantine", str(tmp_path / "rejected.csv")])
    assert result.exit_code == 0 and "1 rejected row(s)" in result.output
    rejected = pd.read_csv(tmp_path / "rejected.csv")
    assert rejected[["table", "plan_id", "grid_id", "reason"]].values.tolist() == [
        ["plans", "P1", "S1", "priority: range"]
    ]


def test_simulate_writes_a_dataset(tmp_path):
    result = runner.invoke(app, ["simulate", str(tmp_path / "d"), "--preset", "tiny", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "cases.csv").exists()
    assert not (tmp_path / "raw").exists()


def test_simulate_writes_the_platform_exports_when_asked(tmp_path):
    raw = tmp_path / "raw"
    result = runner.invoke(app, ["simulate", str(tmp_path / "d"), "--preset", "tiny", "--platforms", str(raw)])
    assert result.exit_code == 0, result.output
    assert str(raw / "sources.yaml") in result.output
    assert {p.name for p in raw.iterdir()} >= {"sources.yaml", "grids.csv", "truth_disputes.csv", "hotline", "police"}


def test_predict_writes_every_unit_and_prints_the_top(tmp_path):
    tiny = simulate_district("tiny", seed=0)
    data = write_dataset(tiny, tmp_path / "tiny")
    model = train(tiny, model=HistoricalRateBaseline(), horizon=28, track=False).save(tmp_path / "model")
    for name in ("risk.csv", "risk.parquet"):
        out = tmp_path / name
        result = runner.invoke(
            app,
            [
                "predict",
                "--data",
                str(data),
                "--as-of",
                "2023-12-01",
                "--model",
                str(model),
                "--out",
                str(out),
                "--top",
                "3",
            ],
        )
        assert result.exit_code == 0, result.output
        risk = pd.read_csv(out) if name.endswith("csv") else pd.read_parquet(out)
        assert len(risk) == (tiny.grids["level"] == "grid").sum() and risk["rank"].tolist()[:2] == [1, 2]
        assert f"{len(risk)} rows written to {out}" in result.output
        top = risk.iloc[0]
        assert top["grid_id"] in result.output and top["top_drivers"][:40] in result.output
        assert result.output.splitlines()[1].startswith(
            f"As of 2023-12-01 00:00:00 (given), grid model over the next 28 days: the 3 riskiest of {len(risk)} units"
        )
    latest = runner.invoke(app, ["predict", "--data", str(data), "--model", str(model), "--top", "2"])
    assert latest.exit_code == 0, latest.output
    assert latest.output.startswith(f"As of {tiny.as_of} (the end of the data), grid model over the next 28 days")
    assert "alerts" in latest.output.splitlines()[1]  # the table's header
    missing = runner.invoke(app, ["predict", "--data", str(data), "--model", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "no saved model at" in missing.output and "Traceback" not in missing.output
    wrong = runner.invoke(app, ["predict", "--data", str(data), "--model", str(model), "--out", "risk.xlsx"])
    assert wrong.exit_code == 2 and "csv or .parquet" in wrong.output


def test_every_command_shows_an_example():
    for command in ("simulate", "validate", "features", "backtest", "train", "predict", "compare", "report", "demo"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example: riskmodel " + command in result.output, command


def test_bad_input_is_a_message_and_exit_code_1(tmp_path):
    for args, message in (
        (["simulate", str(tmp_path / "d"), "--preset", "galaxy"], "galaxy"),
        (["features", "--config", str(tmp_path / "none.yaml")], "cannot read the configuration"),
        (["predict", "--data", str(tmp_path / "nowhere")], "nowhere"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, args


def test_a_corrupted_dataset_folder_is_a_message_and_exit_code_1(tmp_path, dataset):
    folder = write_dataset(dataset, tmp_path / "d", format="csv")
    cases = folder / "cases.csv"
    cases.write_bytes(cases.read_bytes()[:-20])  # cut short
    for args in (["validate", str(folder)], ["predict", "--data", str(folder), "--model", str(tmp_path / "m")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "cases.csv was changed or cut short" in result.output, args
        assert "Traceback" not in result.output and "p-alpha" not in result.output


def test_help_lists_the_workflow_and_reads_as_prose():
    group = typer.main.get_command(app)
    assert sorted(group.commands) == sorted(WORKFLOW)  # every command has its place in the order
    listing = runner.invoke(app, ["--help"], terminal_width=100).output
    positions = [listing.index(f"│ {name} ") for name in WORKFLOW]
    assert positions == sorted(positions), listing  # demo first, then the steps of the work
    assert "<bool>" not in listing and ":func:" not in listing
    for name, command in group.commands.items():
        paragraphs = command.help.split("\n\n")
        assert "\n" not in command.short_help and all("\n" not in p for p in paragraphs), name  # reflowed
        assert command.short_help == paragraphs[0] and len(command.short_help) <= 110, name
        result = runner.invoke(app, [name, "--help"], terminal_width=100)
        assert result.exit_code == 0 and "<bool>" not in result.output and "{" not in result.output, name
    usage = runner.invoke(app, ["simulate", "--help"], prog_name="riskmodel", terminal_width=100).output
    assert "Usage: riskmodel simulate [OPTIONS] OUT" in usage
