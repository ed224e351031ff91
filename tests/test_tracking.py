"""MLflow: backtests as runs, models in the registry, read back, on a temporary SQLite store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import load_model, predict, train
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.models import GBMRisk, HistoricalRateBaseline, LastPeriodBaseline, LogisticRisk, SpikeDetector

mlflow = pytest.importorskip("mlflow")
from riskmodel import tracking  # noqa: E402

FAST = dict(n_estimators=20, min_child_samples=5, n_jobs=1)


@pytest.fixture()
def store(tmp_path, monkeypatch):
    """An empty default store (sqlite:///mlflow.db in the working directory)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


def test_backtest_is_a_parent_run_with_a_child_per_model(store, tiny):
    result = backtest(
        tiny,
        {"hist": HistoricalRateBaseline(), "last": LastPeriodBaseline()},
        cutoffs=["2023-09-04", "2023-10-02"],
        horizon=28,
        experiment="exp",
        progress=False,
    )
    assert (store / "mlflow.db").is_file()
    client = mlflow.MlflowClient(tracking.tracking_uri())
    parent = client.get_run(result.run_id)
    tags = parent.data.tags
    assert tags["riskmodel.version"] and tags["dataset_fingerprint"] == tracking.fingerprint(tiny)
    assert len(tags["config_hash"]) == 16 and tags["target"] == "grid"
    assert parent.data.params["horizon"] == "28" and parent.data.params["folds"] == "2"
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"leaderboard.csv", "folds.csv", "config.json", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert "plots/hit_rate_curve.png" in plots
    assert parent.info.artifact_uri.startswith((store / "mlartifacts").as_uri())

    children = mlflow.search_runs(
        experiment_names=["exp"], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert set(children["tags.model"]) == {"oracle", "hist", "last"}
    for _, row in children.iterrows():
        model = row["tags.model"]
        assert row["metrics.hit_rate_at_5pct"] == pytest.approx(result.leaderboard.loc[model, "hit_rate_at_5pct"])
        history = client.get_metric_history(row["run_id"], "roc_auc_by_fold")
        folds = result.folds[result.folds["model"] == model]
        assert [m.step for m in history] == [0, 1]
        np.testing.assert_allclose([m.value for m in history], folds["roc_auc"])
    assert children.loc[children["tags.model"] == "hist", "metrics.roc_auc_oracle_ratio"].iloc[0] == pytest.approx(
        result.leaderboard.loc["hist", "roc_auc_oracle_ratio"]
    )

    board = tracking.compare("exp")
    assert set(board["model"]) == {"oracle", "hist", "last"} and (board["backtest"] == result.run_id).all()
    printed = CliRunner().invoke(app, ["compare", "exp"])
    assert printed.exit_code == 0 and "hist" in printed.output and "hit_rate_at_5pct" in printed.output
    missing = CliRunner().invoke(app, ["compare", "nowhere"])
    assert missing.exit_code == 1 and "no MLflow experiment named 'nowhere'" in missing.output


def test_tracking_uri_overrides_the_default(store, monkeypatch, tiny):
    uri = f"sqlite:///{store / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.tracking_uri() == uri
    backtest(tiny, [HistoricalRateBaseline()], cutoffs=["2023-10-02"], horizon=28, experiment="e", progress=False)
    assert (store / "elsewhere.db").is_file() and not (store / "mlflow.db").exists()


def test_registered_champion_predicts_as_in_memory(store, tiny):
    trained = train(tiny, model=GBMRisk(**FAST), horizon=28, register=True, experiment="exp")
    client = mlflow.MlflowClient(tracking.tracking_uri())
    version = client.get_model_version_by_alias("dispute-risk-grid", "champion")
    assert version.run_id == trained.run_id
    X = trained.features(tiny, tiny.end)
    served = mlflow.pyfunc.load_model("models:/dispute-risk-grid@champion")
    assert served.metadata.signature is not None
    out = served.predict(X.reset_index(drop=True))
    np.testing.assert_allclose(out["probability"], trained.score(X)["probability"])
    np.testing.assert_allclose(out["expected_count"], trained.score(X)["expected_count"])
    pd.testing.assert_frame_equal(
        predict(tiny, model="models:/dispute-risk-grid@champion"), predict(tiny, model=trained)
    )
    assert load_model(trained.model_uri).schema_hash == trained.schema_hash
    pd.testing.assert_frame_equal(predict(tiny), predict(tiny, model=trained))  # the default: the champion
    with pytest.raises(FileNotFoundError, match="cannot load the model models:/nothing@champion from the tracking"):
        predict(tiny, model="models:/nothing@champion")
    # A second registration moves the alias to the new version.
    train(tiny, model=LogisticRisk(), horizon=28, register=True, experiment="exp")
    assert int(client.get_model_version_by_alias("dispute-risk-grid", "champion").version) == int(version.version) + 1


def test_escalation_champion_has_its_own_name(store, tiny):
    trained = train(tiny, model=LogisticRisk(), target="escalation", register=True, experiment="exp")
    X = trained.features(tiny, "2023-10-02")
    out = mlflow.pyfunc.load_model("models:/dispute-escalation-case@champion").predict(X.reset_index(drop=True))
    assert list(out.columns) == ["probability"]
    np.testing.assert_allclose(out["probability"], trained.score(X)["probability"])


def test_waves_backtest_is_logged_too(store):
    small = simulate_district("small", seed=0)
    result = backtest(
        small,
        [SpikeDetector()],
        start="2024-01-01",
        end="2024-12-16",
        frequency="26W-MON",
        target="waves",
        experiment="w",
        progress=False,
    )
    client = mlflow.MlflowClient(tracking.tracking_uri())
    assert {a.path for a in client.list_artifacts(result.run_id, "plots")} == {"plots/metrics_by_fold.png"}
    board = tracking.compare("w")
    assert board.loc[0, "wave_detection_rate"] == pytest.approx(
        result.leaderboard.loc["SpikeDetector", "wave_detection_rate"]
    )


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_mlflow_serves_the_champion_over_http(store, tiny):
    trained = train(tiny, model=GBMRisk(**FAST), horizon=28, register=True, experiment="exp")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/dispute-risk-grid@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the MLflow model server did not answer /ping within 120 s")
        risk = predict(tiny, model=trained).set_index("grid_id")
        X = trained.features(tiny, risk["as_of"].iloc[0])
        rows = X.reset_index(drop=True).astype(object).where(X.notna().to_numpy(), None)
        split = {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}
        status, answer = _post(f"{url}/invocations", {"dataframe_split": split})  # every unit
        assert status == 200, answer
        served = pd.DataFrame(answer["predictions"], index=X.index.get_level_values("grid_id"))
        np.testing.assert_allclose(served["probability"], risk.loc[served.index, "probability"], rtol=1e-6)
        np.testing.assert_allclose(served["expected_count"], risk.loc[served.index, "expected_count"], rtol=1e-6)
        status, answer = _post(f"{url}/invocations", {"dataframe_split": split | {"data": split["data"][:1]}})
        assert status == 200 and len(answer["predictions"]) == 1
        short = {"columns": split["columns"][1:], "data": [row[1:] for row in split["data"][:1]]}
        status, answer = _post(f"{url}/invocations", {"dataframe_split": short})  # a column missing
        assert status == 400 and "count_7d" in json.dumps(answer)
    finally:
        server.terminate()
        server.wait(timeout=30)
