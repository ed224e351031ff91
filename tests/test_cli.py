from __future__ import annotations

from typer.testing import CliRunner

from riskmodel.cli import app
from riskmodel.io import write_dataset

runner = CliRunner()


def test_demo_runs_the_whole_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["demo", "--preset", "tiny", "--folds", "2", "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "tiny" / "dataset.json").is_file()
    for line in ("Backtest of grid risk, 28 days: 2 folds", "Backtest of case escalation, 30 days: 2 folds",
                 "registered as 'dispute-risk-grid'", "registered as 'dispute-escalation-case'",
                 "hit_rate_at_5pct_oracle_ratio", "mlflow ui --backend-store-uri sqlite:///"):
        assert line in result.output
    assert "oracle" in result.output and "GBMRisk" in result.output
    board = runner.invoke(app, ["compare", "riskmodel-demo"])
    assert board.exit_code == 0 and "HistoricalRateBaseline" in board.output


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


def test_simulate_writes_a_dataset(tmp_path):
    result = runner.invoke(app, ["simulate", str(tmp_path / "d"), "--preset", "tiny", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "cases.csv").exists()
