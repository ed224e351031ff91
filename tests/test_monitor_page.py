"""The outputs of monitoring besides its table: the offline HTML page and the MLflow runs."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import MonitorReport, monitor, predict, train
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import MonitorSettings
from riskmodel.evaluation.alarms import ALARM_COLUMNS
from riskmodel.evaluation.monitor_page import monitor_figure, render_monitor_page, write_monitor_page
from riskmodel.io import write_dataset
from riskmodel.models import HistoricalRateBaseline

from .test_serving import truncate

WEEKS = pd.date_range("2024-01-01", periods=6, freq="W-MON")
STRICT = MonitorSettings(weeks=1, limit_z=1e-3, cusum_h=1e-3)


def scores(model: str, version: str, weeks, **columns) -> pd.DataFrame:
    n = len(weeks)
    frame = pd.DataFrame(
        {
            "model": model,
            "version": version,
            "as_of": weeks,
            "window_end": weeks + pd.Timedelta(days=28),
            "horizon_days": 28.0,
            "units": 25,
            "observed": np.linspace(10, 20, n),
            "expected": 10.0,
            "hit_rate_at_5pct": np.linspace(0.3, 0.1, n),
            "pai_at_5pct": np.linspace(6, 2, n),
            "brier": 0.1,
            "ece": 0.05,
            "interval_coverage": np.nan,  # a model without intervals
            "cold_start_share": 0.0,
        }
    )
    return frame.assign(oe_ratio=frame["observed"] / frame["expected"], **columns)


def alarm(model: str, version: str, week, kind: str, message: str) -> dict:
    return {
        "model": model,
        "version": version,
        "week": week,
        "known_at": week + pd.Timedelta(days=28),
        "kind": kind,
        "value": 2.0,
        "threshold": 1.0,
        "message": message,
    }


def first_weeks(model: str, version: str, weeks) -> pd.DataFrame:
    """The first weeks of the forecasts served ``weeks``: known a week after each."""
    observed = np.linspace(2, 5, len(weeks))
    return pd.DataFrame(
        {
            "model": model,
            "version": version,
            "as_of": weeks,
            "window_end": weeks + pd.Timedelta(days=7),
            "days": 7.0,
            "units": 25,
            "observed": observed,
            "expected": 2.5,
            "oe_ratio": observed / 2.5,
        }
    )


def backtest(model: str, version: str, **bands) -> pd.DataFrame:
    rows = [(model, version, m, (lo + hi) / 2, (hi - lo) / 4, lo, hi, 4) for m, (lo, hi) in bands.items()]
    return pd.DataFrame(rows, columns=["model", "version", "metric", "mean", "std", "low", "high", "folds"])


def healthy() -> MonitorReport:
    return MonitorReport(
        scores=scores("grid", "1", WEEKS),
        weeks=first_weeks("grid", "1", WEEKS),
        alarms=pd.DataFrame(columns=ALARM_COLUMNS),
        unscored=pd.DataFrame(columns=["model", "version", "as_of", "reason", "forecasts"]),
    )


def alarmed() -> MonitorReport:
    second = scores("grid", "2", WEEKS[[0, 1, 3]])
    second.loc[1, "brier"] = np.nan
    alarms = pd.DataFrame(
        [
            alarm("grid", "1", WEEKS[4], "calibration_cusum", "more cases than forecast: O/E 1.80 & rising"),
            alarm("grid", "1", WEEKS[5], "hit_rate", "hit_rate_at_5pct below its backtest band [0.200, 0.400]"),
            alarm("grid", "2", WEEKS[3], "input_drift", "the inputs drifted: <population> PSI 0.40"),
        ],
        columns=ALARM_COLUMNS,
    )
    drift = pd.DataFrame(
        {
            "model": "grid",
            "version": "2",
            "as_of": WEEKS[3],
            "feature": ["population", "month", "cases_28d"],
            "psi": [0.4, 0.0, 0.1],
            "usual": [0.05, np.inf, 0.2],
            "drifted": [True, False, False],
        }
    )
    unscored = pd.DataFrame(
        {"model": "grid", "version": "2", "as_of": WEEKS[4:], "reason": "window_open", "forecasts": 25}
    )
    return MonitorReport(
        scores=pd.concat([scores("grid", "1", WEEKS), second], ignore_index=True),
        weeks=first_weeks("grid", "2", WEEKS[[0, 1, 3, 4, 5]]),  # first weeks close before the windows
        alarms=alarms,
        unscored=unscored,
        drift=drift,
        backtest=backtest("grid", "1", hit_rate_at_5pct=(0.2, 0.4), brier=(0.05, 0.15)),
        bands={("grid", "1"): (0.2, 0.4)},
    )


def assert_offline_and_clean(page: str) -> None:
    text = re.sub(r"data:image/png;base64,[^']*", "", page)  # the figures' bytes say nothing
    assert not re.search(r"\b(nan|NaN|None|NaT|inf)\b", text), re.findall(r".{40}\b(?:nan|None|NaT|inf)\b.{20}", text)
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", page), "an external reference"
    assert "<script" not in page


def test_a_healthy_page_says_so_with_a_figure_and_the_glossary():
    page = render_monitor_page(healthy(), title="District A")
    assert "<title>District A</title>" in page
    assert "Healthy: no alarm over 6 weeks of forecasts of 1 model version, from 01 Jan 2024 to 05 Feb 2024." in page
    assert page.count("<img") == 1 and "<h2>Alarms</h2>" not in page and "Input drift" not in page
    assert "Every stored forecast was scored." in page and "over the 28 days after it" in page
    assert "Observed over expected:</dt>" in page and "Hit rate at 5%:</dt>" in page
    assert "Observed over expected, first week:</dt>" in page and "What the backtest expects" not in page
    assert_offline_and_clean(page)


def test_an_alarmed_page_names_the_alarms_drift_and_unscored():
    report = alarmed()
    page = render_monitor_page(report)
    assert "3 alarms: 1 calibration drift (CUSUM), 1 hit rate below its backtest band, 1 input drift;" in page
    for message in report.alarms["message"]:
        assert html.escape(message) in page
    assert "<population>" not in page  # escaped
    assert page.count("<img") == 2  # a figure per model version
    assert "grid 1: the weekly scores, alarms marked red; the backtest&#x27;s bands shaded green" in page
    expects = page[page.index("<h2>What the backtest expects</h2>") :]
    assert "<td>Hit rate at 5%</td>" in expects and "<td>Brier score</td>" in expects
    assert "Left unscored: 50 forecasts whose window is still open (the weeks of 29 Jan 2024 to 05 Feb 2024)." in page
    drift = page[page.index("<h2>Input drift</h2>") :]
    assert drift.index("population") < drift.index("cases_28d") < drift.index("month")  # drifted first, then PSI
    assert "a clock: never drifts" in drift and "Observed over expected, first week" in page
    assert_offline_and_clean(page)


def test_the_figure_marks_each_alarm_week_and_shades_the_band():
    report = alarmed()
    one = report.scores[report.scores["version"] == "1"]
    bands = {"hit_rate_at_5pct": (0.2, 0.4), "brier": (0.05, 0.15)}
    figure = monitor_figure(one, alarms=report.alarms[report.alarms["version"] == "1"], bands=bands)
    assert [a.get_ylabel() for a in figure.axes] == ["Observed over expected", "Hit rate at 5%", "Brier score"]
    assert "Observed over expected, first week" not in figure.axes[0].get_legend_handles_labels()[1]  # none given
    for axes in figure.axes:  # two alarm weeks: a vertical line at each, in every panel
        marks = [line for line in axes.lines if line.get_color() == "tab:red"]
        assert sorted(pd.Timestamp(m.get_xdata()[0]) for m in marks) == list(WEEKS[4:])
    assert [len(axes.patches) for axes in figure.axes] == [0, 1, 1]  # the bands
    two = report.scores[report.scores["version"] == "2"]
    lines = {line.get_label(): line for line in monitor_figure(two, first_weeks=report.weeks).axes[0].lines}
    assert len(lines["Observed over expected"].get_xdata()) == 3
    assert len(lines["Observed over expected, first week"].get_xdata()) == 5  # known sooner, drawn further


def test_an_empty_report_is_a_page_too(tmp_path):
    empty = MonitorReport(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=ALARM_COLUMNS), pd.DataFrame())
    path = write_monitor_page(empty, tmp_path / "deep" / "m.html")
    page = path.read_text()
    assert "nothing was scored and no alarm raised" in page and "<img" not in page
    assert_offline_and_clean(page)


@pytest.fixture
def tracked(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from riskmodel import tracking

    return tracking


def test_log_monitoring_keeps_one_run_per_version_and_appends(tracked):
    import mlflow

    report = alarmed()
    first = tracked.log_monitoring(report, experiment="mon")
    client = mlflow.MlflowClient(tracked.tracking_uri())
    assert len(first) == 2 and len(set(first)) == 2
    runs = {client.get_run(r).data.tags["version"]: client.get_run(r) for r in first}
    assert runs["1"].info.run_name == "monitor grid 1" and runs["1"].data.tags["healthy"] == "false"
    history = client.get_metric_history(runs["1"].info.run_id, "oe_ratio")
    assert [m.step for m in history] == [0, 1, 2, 3, 4, 5]
    assert [m.timestamp for m in history] == [w.value // 10**6 for w in WEEKS]
    assert "interval_coverage" not in runs["1"].data.metrics  # NaN every week: not logged
    two = runs["2"].info.run_id
    assert [m.step for m in client.get_metric_history(two, "oe_ratio")] == [0, 1, 3]  # a week's gap kept
    assert [m.step for m in client.get_metric_history(two, "brier")] == [0, 3]  # its NaN skipped
    assert [m.step for m in client.get_metric_history(two, "first_week_oe_ratio")] == [0, 1, 3, 4, 5]
    assert [(m.step, m.value) for m in client.get_metric_history(two, "alarms")] == [
        (0, 0),
        (1, 0),
        (3, 1),
        (4, 0),
        (5, 0),
    ]
    alarms = client.get_metric_history(runs["1"].info.run_id, "alarms")
    assert [(m.step, m.value) for m in alarms] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 1), (5, 1)]
    artifacts = {a.path for a in client.list_artifacts(two)}
    assert artifacts == {"alarms.csv", "monitor.html"}
    kept = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=two, artifact_path="alarms.csv"))
    assert kept["kind"].tolist() == ["input_drift"]

    later = MonitorReport(  # the next week: one more week scored, no new alarm
        scores=pd.concat([report.scores, scores("grid", "1", WEEKS[-1:] + pd.Timedelta(weeks=1))]),
        weeks=report.weeks,
        alarms=report.alarms,
        unscored=report.unscored,
    )
    assert tracked.log_monitoring(later, experiment="mon") == first
    history = client.get_metric_history(runs["1"].info.run_id, "oe_ratio")
    assert [m.step for m in history] == [0, 1, 2, 3, 4, 5, 6]  # appended, the weeks logged before kept once
    experiment = client.get_experiment_by_name("mon").experiment_id
    assert len(client.search_runs([experiment])) == 2


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Weekly forecasts of a tiny district in a store, and the district's folder."""
    tiny = simulate_district("tiny", seed=0)
    weeks = pd.date_range("2023-10-02", periods=5, freq="W-MON")
    trained = train(truncate(tiny, weeks[0]), model=HistoricalRateBaseline(), horizon=28, track=False)
    folder = tmp_path_factory.mktemp("served")
    for as_of in weeks:
        predict(truncate(tiny, as_of), as_of=as_of, model=trained, record=folder / "forecasts.db")
    return tiny, folder / "forecasts.db", write_dataset(tiny, folder / "data")


def test_a_monitored_store_renders_every_alarm(served):
    tiny, store, _ = served
    report = monitor(store, tiny, settings=STRICT)
    assert not report.healthy
    page = render_monitor_page(report)
    for message in report.alarms["message"]:
        assert html.escape(message) in page
    assert_offline_and_clean(page)


def test_the_command_writes_the_page_and_tracks(served, tmp_path, tracked):
    import mlflow

    _, store, data = served
    strict = tmp_path / "strict.yaml"
    strict.write_text("weeks: 1\nlimit_z: 0.001\ncusum_h: 0.001\n")
    args = ["monitor", "--store", str(store), "--data", str(data), "--config", str(strict)]
    result = CliRunner().invoke(app, [*args, "--html", str(tmp_path / "m.html"), "--experiment", "cli"])
    assert result.exit_code == 3, result.output
    assert f"monitoring page written to {tmp_path / 'm.html'}" in result.output
    assert "logged to MLflow experiment cli: run(s) " in result.output
    assert "calibration drift" in (tmp_path / "m.html").read_text()
    client = mlflow.MlflowClient(tracked.tracking_uri())
    runs = client.search_runs([client.get_experiment_by_name("cli").experiment_id])
    assert len(runs) == 1
    logged = client.download_artifacts(runs[0].info.run_id, "monitor.html", str(tmp_path))
    assert Path(logged).read_text() == (tmp_path / "m.html").read_text()  # the one page, rendered once
    untracked = CliRunner().invoke(app, [*args, "--no-track", "--experiment", "other"])
    assert untracked.exit_code == 3 and "logged to MLflow" not in untracked.output
    assert client.get_experiment_by_name("other") is None


def test_the_page_fits_a_browser_window_and_fetches_nothing(tmp_path):
    from .test_report_browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).is_file():
        pytest.skip("no chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    path = write_monitor_page(alarmed(), tmp_path / "monitor.html")
    fetched: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else fetched.append(r.url))
        page.goto(path.as_uri(), wait_until="load")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no horizontal overflow
        widths = page.evaluate("[...document.images].map(image => image.naturalWidth)")
        text = page.inner_text("body")
        browser.close()
    assert fetched == [] and len(widths) == 2 and min(widths) > 500  # both figures drawn from the page itself
    assert "3 alarms" in text and "hit rate below its backtest band" in text
