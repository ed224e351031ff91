"""The report's prevention section: the visits, their estimated effect and what it prevented,
the policy table as committed (or not yet), and the funnel plot; from a configuration too."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import train
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import visit_effect
from riskmodel.evaluation.prevention_report import prevention_section
from riskmodel.evaluation.report import render_report
from riskmodel.models import HistoricalRateBaseline
from riskmodel.prevention import HistoricalRateVisits

POLICIES = """# Policies

Machine: 2 cores.

| policy | prevented per 100 visits |
| --- | --- |
| risk | 4.2 ± 0.3 |
| uplift <b> | 6.1 ± 0.4 |
"""


@pytest.fixture(scope="module")
def looped():
    district = simulate_district("tiny", seed=0, policy=HistoricalRateVisits(capacity=2, explore=0.5, seed=0))
    return district, train(district, model=HistoricalRateBaseline(), horizon=28, track=False)


def test_the_section_shows_the_data_numbers(looped):
    district, trained = looped
    page = prevention_section(district, trained, horizon=28)
    counts = district.visits["assignment"].value_counts()
    for assignment in ("rank", "explore"):
        assert re.search(rf"<th>{assignment}</th>.*?<td>{counts[assignment]}</td>", page, re.S)[0].count("<th>") == 1
    assert f"<td>{len(district.visits)}</td>\n    </tr>\n  </tbody>" in page  # the total of totals, last
    controls = int((district.plans["assignment"] == "control").sum())
    assert f"{controls} units of the plans&#x27; pools" in page

    effect = visit_effect(district, horizon=28, by="kind").iloc[0]
    assert f"<td>{effect['effect']:.3f}</td>" in page and f"<td>{effect['ci_high']:.3f}</td>" in page
    truth = district.truth.visit_effect(28, window="week").merge(
        district.visits[["visit_id", "plan_id"]], on="visit_id"
    )
    plans = district.plans
    closed = plans[(plans["assignment"] == "explore") & (plans["week"] + pd.Timedelta(days=28) <= district.end)]
    ordered = truth.merge(closed[["plan_id", "grid_id"]], on=["plan_id", "grid_id"])["prevented"].sum() / len(closed)
    assert f"truth: {ordered:.3f} cases prevented per visit ordered" in page
    assert f"{truth['prevented'].mean():.3f} per visit made" in page
    n = len(district.visits)
    assert (
        f"{effect['effect'] * n:.1f} resident-reported disputes prevented by the {n} visits made "
        f"(90% interval {effect['ci_low'] * n:.1f} to {effect['ci_high'] * n:.1f})"
    ) in page
    assert "not measured yet" in page and page.count("data:image/png;base64,") == 1
    assert "Assessment of each community, last 12 weeks" in page


def test_the_policy_table_is_the_committed_one_escaped(looped):
    district, trained = looped
    page = prevention_section(district, trained, policies=POLICIES)
    assert "<td>risk</td><td>4.2 ± 0.3</td>" in page and "<td>uplift &lt;b&gt;</td>" in page
    assert "not measured yet" not in page and "<th>prevented per 100 visits</th>" in page


def test_a_report_takes_further_sections_at_its_end():
    board = pd.DataFrame({"roc_auc": [0.7]}, index=pd.Index(["m"], name="model"))
    page = render_report("Demo", board, sections=[("Prevention", "<p>body</p>")])
    assert page.index("<h2>Leaderboard</h2>") < page.index("<h2>Prevention</h2>\n<p>body</p>")
    assert "Prevention" not in render_report("Demo", board)


CONFIG = """
data: {kind: simulator, preset: tiny, seed: 0, policy: historical_rate}
horizons: 28
cutoffs: {start: 2023-10-02, end: 2023-10-30, frequency: 4W-MON}
models:
  hist: {family: HistoricalRateBaseline}
prevention: {capacity: 1, explore: 0.5, cooldown_days: 7}
experiment: tiny-prevention
"""


def test_the_report_command_adds_the_section_for_a_prevention_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "run.yaml").write_text(CONFIG)
    (tmp_path / "plain.yaml").write_text(CONFIG.replace(", policy: historical_rate", ""))
    runner = CliRunner()
    written = runner.invoke(app, ["report", "run.yaml", "--out", "report.html"])
    assert written.exit_code == 0, written.output
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Prevention</h2>" in page and "Visits by assignment" in page and "randomised" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL))
    plain = runner.invoke(app, ["report", "plain.yaml", "--out", "plain.html"])  # no visits: no section
    assert plain.exit_code == 0, plain.output
    assert "Prevention" not in (tmp_path / "plain.html").read_text()


def test_micro_grid_counts_under_k_are_hidden_with_their_ratios(looped):
    district, _ = looped
    micro = train(district, model=HistoricalRateBaseline(), horizon=28, track=False, level="microgrid")
    page = prevention_section(district, micro, level="microgrid", k=10**6)
    section = page.split("Assessment of each microgrid")[1]
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in section.split("<tr>")[2:]]  # grid, observed, ..., ratio
    hidden = [row for row in rows if row[1] == "&lt; 1000000"]
    assert hidden and all(row[3] == "" for row in hidden)  # the ratio would tell the count
    assert all(row[3] != "" for row in rows if row[1] == "0")
    shown = prevention_section(district, micro, level="microgrid", k=1)  # k=1 hides nothing
    assert "&lt; 1" not in shown and "< 1" not in shown
