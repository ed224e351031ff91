from __future__ import annotations

from typer.testing import CliRunner

from riskmodel.cli import app
from riskmodel.io import read_dataset, write_dataset
from riskmodel.summary import summarize

runner = CliRunner()


def test_demo_prints_the_summary(tmp_path):
    result = runner.invoke(app, ["demo", "--preset", "tiny", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for heading in ("Units per level", "Cases per month and category", "Escalation", "Busiest grids"):
        assert heading in result.output
    district = read_dataset(tmp_path / "tiny")
    assert f"validated {sum(len(f) for f in district.tables.values())} rows" in result.output
    busiest = summarize(district)["busiest"]
    assert busiest.index[0] in result.output


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
