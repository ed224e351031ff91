"""The HTML report as its reader sees it: words not codes, headlines, tables that fit, the
final forecast ranked and mapped, small counts hidden, nothing fetched from the network."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.evaluation.report import render_report
from riskmodel.evaluation.report_figures import backtest_report, describe_run
from riskmodel.models import HistoricalRateBaseline, LastPeriodBaseline

CUTOFFS = ["2023-10-02", "2023-10-30"]
FETCHED = re.compile(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def result(tiny):
    return backtest(
        tiny, [HistoricalRateBaseline(), LastPeriodBaseline()], cutoffs=CUTOFFS, horizon=28, track=False, progress=False
    )


def _forecast(tiny, probability, *, flags="flags"):
    units = tiny.grids.loc[tiny.grids["level"] == "grid", "grid_id"].to_numpy()
    frame = pd.DataFrame({"grid_id": units, "as_of": pd.Timestamp("2023-12-01"), "model": "LastPeriodBaseline"})
    frame["probability"] = probability(len(units))
    frame["expected_count"] = np.linspace(0.1, 5, len(units))[::-1][np.argsort(np.arange(len(units)) % 7)]
    frame["low"], frame["high"], frame["tier"] = 0, 6, "red"
    frame["top_drivers"] = "1 case in the last period; 2 family cases in 28 days; 9 cases in 91 days"
    frame[flags] = "no_history"
    return frame.sort_values("probability", ascending=False, kind="stable")


def _text(page: str) -> str:
    body = re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_words_not_codes(result, tiny):
    page = backtest_report(result, tiny, forecast=_forecast(tiny, lambda n: np.linspace(0.9, 0.1, n)), name="tiny")
    text = _text(page)
    assert "tiny: risk by grid unit, 28 days ahead" in text
    assert "None" not in text and "DateOffset" not in text and "GridRisk()" not in text
    assert "LastPeriodBaseline finds" in text and "of the next 28 days' cases in 5% of the grid units" in text
    assert "best first by Hit rate at 5%" in text and "Hit rate at 5%:" in text  # the sort and a glossary line
    headers = re.findall(r"<th[^>]*>(.*?)</th>", page)
    assert headers and not [h for h in headers if "_" in h]  # no snake_case header anywhere
    folded = page[page.index("<details>") : page.index("</details>")]
    assert "± over folds" in folded and "± over folds" not in page[: page.index("<details>")]
    main = re.search(r"<table.*?</table>", page, re.DOTALL).group(0)
    assert len(re.findall(r"<th[ >]", main)) <= 6  # the model and five metrics: narrow enough for 1280 px


def test_self_contained(result, tiny):
    page = backtest_report(result, tiny, forecast=_forecast(tiny, lambda n: np.linspace(0.9, 0.1, n)))
    assert not FETCHED.search(re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL))
    assert not re.search(r"<script[^>]*\ssrc=", page)  # every script is inline
    assert (
        page.count("Plotly.newPlot") == 2 and len(re.findall(r"<script[^>]*>\s*/\*\*", page)) <= 1
    )  # one copy of plotly.js
    outside = re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL)
    assert outside.count("data:image/png;base64,") == 4  # map, hit-rate curve, calibration, hit rate by fold


def test_top_units_of_the_final_forecast(result, tiny):
    forecast = _forecast(tiny, lambda n: np.linspace(0.9, 0.1, n), flags="alerts")
    page = backtest_report(result, tiny, forecast=forecast, top=5)
    table = page[page.index("Top units") :]
    shown = re.findall(r"<td class=text>(G\d+)</td>", table)
    assert shown == forecast["grid_id"].head(5).tolist()  # in the forecast's order, the final model's units
    assert "Alerts" in table and "no_history" in table and "by probability" in table
    # the grid level is not the micro level: only the sensitive category's small count is hidden
    assert "1 case in the last period; &lt; 3 family cases in 28 days; 9 cases in 91 days" in table
    assert "Risk map: the final model's forecast" in html.unescape(page)


def test_saturated_probabilities_rank_by_expected_cases(result, tiny):
    forecast = _forecast(tiny, lambda n: np.full(n, 0.999), flags="flags")
    page = backtest_report(result, tiny, forecast=forecast, top=5)
    table = page[page.index("Top units") :]
    expected = forecast.sort_values(["expected_count", "grid_id"], ascending=[False, True])["grid_id"].head(5)
    assert re.findall(r"<td class=text>(G\d+)</td>", table) == expected.tolist()
    assert "Probability of" not in table and "Tier" not in table and "Alerts" in table  # flags shown as alerts
    assert "that probability says little" in page and "expected cases" in page


def test_micro_level_counts_hidden_and_map_aggregated(tiny):
    micro = backtest(
        tiny, [HistoricalRateBaseline()], cutoffs=CUTOFFS, horizon=28, level="microgrid", track=False, progress=False
    )
    units = tiny.grids.loc[tiny.grids["level"] == "microgrid", "grid_id"]
    forecast = pd.DataFrame({"grid_id": units, "as_of": pd.Timestamp("2023-12-01"), "probability": 0.3})
    forecast = forecast.assign(expected_count=0.4, top_drivers="2 cases in 28 days; 5 cases in 91 days")
    page = backtest_report(micro, tiny, forecast=forecast, k=3)
    assert "2 cases in 28 days" not in page and "&lt; 3 cases in 28 days; 5 cases in 91 days" in page
    assert "counts of fewer than 3 cases at the microgrid level or of family cases" in page
    assert "the map of the microgrid units is drawn at the grid level" in page
    assert "the map of the microgrid" not in backtest_report(micro, tiny, forecast=forecast, aggregate=False)


def test_describe_run_monthly_and_other_targets():
    config = {"cutoffs": ["2022-07-01", "2022-08-01", "2022-09-01"], "horizon": "<DateOffset: months=1>"}
    title, subtitle = describe_run(config | {"target": "None", "level": "grid"}, name="lancashire", data="Data: x")
    assert title == "lancashire: risk by grid unit, 1 month ahead"
    assert (
        subtitle == "Data: x. Backtest of 3 test cutoffs, monthly, from 01 Jul 2022 to 01 Sep 2022, counting all cases."
    )
    weekly = describe_run({"cutoffs": ["2023-10-02", "2023-10-30"], "horizon": "28", "target": "family"})[1]
    assert "every 4 weeks" in weekly and "counting family" in weekly
    assert describe_run(config | {"horizon": "28"}, kind="escalation")[0] == "Backtest: escalation of open cases"


def test_render_report_from_a_logged_leaderboard():
    board = pd.DataFrame(
        {"roc_auc": [0.81, 0.7], "ece": [0.02, 0.05], "roc_auc_fold_std": [0.01, 0.02]},
        index=pd.Index(["LogisticRisk", "GBMRisk"], name="model"),
    )
    page = render_report("Escalation", board, headlines=["LogisticRisk ranks ..."], figures={"by fold": b"\x89PNG"})
    assert (
        "best first by ROC AUC" in page and "Calibration error" in page and "<figcaption>by fold</figcaption>" in page
    )
    assert "Top units" not in page and "<script" not in page


def test_report_settings_in_the_configuration(tmp_path):
    from riskmodel.config import ConfigError, load_config

    path = tmp_path / "run.yaml"
    path.write_text(
        "data: {kind: simulator, preset: tiny}\nreport: {k: 5, sensitive: [family, consumer], aggregate_map: false}\n"
    )
    settings = load_config(path).report
    assert (settings.k, settings.sensitive, settings.aggregate_map) == (5, ["family", "consumer"], False)
    path.write_text("data: {kind: simulator, preset: tiny}\n")
    assert load_config(path).report.k == 3 and load_config(path).report.sensitive == ["family"]
    path.write_text("data: {kind: simulator, preset: tiny}\nreport: {k: 0}\n")
    with pytest.raises(ConfigError, match="report.k"):
        load_config(path)


def test_report_command_disclosure_options(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from riskmodel.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "tiny.yaml").write_text(
        "data: {kind: simulator, preset: tiny, seed: 0}\nhorizons: [28]\n"
        "cutoffs: {start: 2023-10-02, end: 2023-10-30, frequency: 4W-MON}\n"
        "models: {hist: {family: HistoricalRateBaseline}}\nreport: {k: 4, sensitive: [family, consumer]}\n"
    )
    asked = CliRunner().invoke(app, ["report", "tiny.yaml", "--out", "asked.html", "--k", "2", "--no-aggregate"])
    assert asked.exit_code == 0, asked.output
    page = html.unescape((tmp_path / "asked.html").read_text())
    assert "fewer than 2 cases at the microgrid level or of family, consumer cases" in page  # --k over report.k


def test_escalation_report(tiny):
    from riskmodel.models import LogisticRisk

    escalation = backtest(tiny, [LogisticRisk()], cutoffs=CUTOFFS, target="escalation", track=False, progress=False)
    text = _text(backtest_report(escalation, tiny, name="tiny"))
    assert "tiny: escalation of open cases" in text and "None" not in text
    assert "ranks a case that escalates above one that does not" in text and "best first by ROC AUC" in text
    assert "Top units" not in text and "Risk map" not in text
