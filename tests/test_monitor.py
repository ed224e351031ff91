"""riskmodel.monitor and ``riskmodel monitor``: weekly forecasts served into a store, scored
once their windows close, and an exit code a scheduler can act on."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import MonitorReport, monitor, predict, train
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import MonitorSettings
from riskmodel.io import write_dataset
from riskmodel.models import HistoricalRateBaseline
from riskmodel.store import ForecastStore

from .test_serving import truncate

WEEKS = pd.date_range("2023-11-06", periods=8, freq="W-MON")  # tiny ends 2024-01-01: the last 3 are open


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def trained(tiny):
    return train(truncate(tiny, WEEKS[0]), model=HistoricalRateBaseline(), horizon=28, track=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny, trained):
    path = tmp_path_factory.mktemp("store") / "forecasts.db"
    for as_of in WEEKS:
        predict(truncate(tiny, as_of), as_of=as_of, model=trained, record=path)
    return path


def test_closed_windows_are_scored_and_open_ones_counted(tiny, store):
    report = monitor(store, tiny)
    assert isinstance(report, MonitorReport)
    closed = [w for w in WEEKS if w + pd.Timedelta(days=28) <= tiny.end]
    assert list(report.scores["as_of"]) == closed and len(closed) == 5
    assert (report.scores["units"] == 25).all()
    assert report.scores["observed"].sum() > 0 and report.scores["expected"].gt(0).all()
    assert set(report.unscored["reason"]) == {"window_open"}
    assert list(report.unscored["as_of"]) == list(WEEKS[5:]) and (report.unscored["forecasts"] == 25).all()
    assert report.healthy == report.alarms.empty


def test_tight_limits_raise_a_calibration_alarm(tiny, store):
    report = monitor(store, tiny, settings=MonitorSettings(weeks=1, limit_z=1e-3, cusum_h=1e-3))
    assert not report.healthy
    assert "calibration" in report.alarms["kind"].iloc[0] and report.alarms["message"].str.len().gt(20).all()


def test_an_empty_or_missing_store_is_refused(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="no forecast store at"):
        monitor(tmp_path / "absent.db", tiny)
    empty = ForecastStore(tmp_path / "empty.db")
    empty.read()  # creates its tables
    with pytest.raises(ValueError, match="holds no forecast"):
        monitor(empty, tiny)


def test_the_command_exits_0_healthy_3_on_an_alarm_1_on_bad_input(tmp_path, tiny, store):
    data = write_dataset(tiny, tmp_path / "d")
    strict = tmp_path / "strict.yaml"
    strict.write_text("weeks: 1\nlimit_z: 0.001\ncusum_h: 0.001\n")
    args = ["monitor", "--store", str(store), "--data", str(data), "--no-track"]  # tracking: test_monitor_page
    healthy = monitor(store, tiny).healthy
    default = CliRunner().invoke(app, [*args, "--config", "configs/monitoring.yaml", "--out", str(tmp_path / "s.csv")])
    assert default.exit_code == (0 if healthy else 3), default.output
    assert "75 forecast(s) window_open" in default.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == 5
    alarmed = CliRunner().invoke(app, [*args, "--config", str(strict)])
    assert alarmed.exit_code == 3 and "ALARM calibration" in alarmed.output
    missing = CliRunner().invoke(app, ["monitor", "--store", str(tmp_path / "none.db"), "--data", str(data)])
    assert missing.exit_code == 1 and "no forecast store at" in missing.output


def test_the_models_backtest_band_raises_a_hit_rate_alarm(tmp_path, tiny, trained, store):
    chosen = copy.copy(trained)  # the same content, so the same version in the store
    chosen.evidence = {"chosen": "rate", "folds": [{"cutoff": "2023-10-02", "hit_rate_at_5pct": 0.9, "brier": 0.1}]}
    loose = MonitorSettings(limit_z=100.0, cusum_h=100.0, psi_threshold=100.0)
    report = monitor(store, tiny, model=chosen, settings=loose)
    assert report.alarms["kind"].tolist() == ["hit_rate"]  # below 0.9 from the first week: the 4th in a row
    assert report.alarms["week"].iloc[0] == WEEKS[3] and "backtest band" in report.alarms["message"].iloc[0]
    assert report.backtest.set_index("metric")["mean"].to_dict() == {"hit_rate_at_5pct": 0.9, "brier": 0.1}
    assert monitor(store, tiny, model=trained).alarms["kind"].ne("hit_rate").all()  # no evidence, no band
    folder = chosen.save(tmp_path / "model")
    (tmp_path / "loose.yaml").write_text("limit_z: 100\ncusum_h: 100\npsi_threshold: 100\n")
    data = write_dataset(tiny, tmp_path / "d")
    args = [
        "--store",
        str(store),
        "--data",
        str(data),
        "--model",
        str(folder),
        "--config",
        str(tmp_path / "loose.yaml"),
    ]
    printed = CliRunner().invoke(app, ["monitor", *args, "--no-track"])
    assert printed.exit_code == 3 and "ALARM hit_rate" in printed.output, printed.output
    assert "Its backtest expects" in printed.output and "0.900 [0.900, 0.900]" in printed.output


def test_cold_starts_recorded_in_the_store_raise_their_alarm(tmp_path, tiny, trained):
    risk = predict(truncate(tiny, WEEKS[0]), as_of=WEEKS[0], model=trained)
    risk["alerts"] = ["cold_start;no_history"] * 10 + [""] * (len(risk) - 10)  # 40% of the units are new
    store = ForecastStore(tmp_path / "forecasts.db")
    store.record(risk, model=trained)
    assert store.read()["alerts"].str.startswith("cold_start").sum() == 10
    alarms = monitor(store, tiny).alarms
    cold = alarms[alarms["kind"] == "cold_start"]
    assert len(cold) == 1 and cold["message"].iloc[0].startswith("40% of the units (10 of 25) are cold starts")
