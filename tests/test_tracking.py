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
from riskmodel.features.base import horizon_words
from riskmodel.io import write_dataset
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


WEEKLY = pd.date_range("2023-09-04", periods=5, freq="7D")
on_one_worker = pytest.mark.xdist_group("compare")  # the store below is built once


@pytest.fixture(scope="module")
def logged(tmp_path_factory, tiny):
    """A store of experiment ``cmp``: grid backtests A (weekly folds 0-3, models m and last)
    and B (folds 1-4, m another family), C on other data (folds 0-1), E of case escalation."""
    folder = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    fewer = tiny.replace(cases=tiny.cases.iloc[20:])  # other data: another fingerprint
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        common = dict(horizon=28, experiment="cmp", progress=False)
        runs = {
            "A": backtest(
                tiny, {"m": HistoricalRateBaseline(), "last": LastPeriodBaseline()}, cutoffs=WEEKLY[:4], **common
            ),
            "B": backtest(tiny, {"m": LastPeriodBaseline()}, cutoffs=WEEKLY[1:], **common),
            "C": backtest(fewer, {"m": HistoricalRateBaseline()}, cutoffs=WEEKLY[:2], **common),
            "E": backtest(
                tiny, {"m": LogisticRisk()}, cutoffs=["2023-09-04", "2023-10-02"], target="escalation", **common
            ),
        }
    return uri, folder, runs


@pytest.fixture()
def cmp(logged, monkeypatch):
    uri, _, runs = logged
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return runs


@on_one_worker
def test_compare_keeps_each_target_apart_and_says_what_each_run_was(cmp, tiny):
    board = tracking.compare("cmp")
    assert list(board.columns[: len(tracking.RUN_COLUMNS)]) == tracking.RUN_COLUMNS
    metrics = list(board.columns[len(tracking.RUN_COLUMNS) :])
    assert metrics[:3] == ["roc_auc", "roc_auc_oracle_ratio", "hit_rate_at_1pct"]  # the headline first
    assert "folds" not in metrics and not any(m.endswith("_by_fold") for m in metrics)
    assert board["target"].tolist() == ["grid"] * 7 + ["escalation"] * 2  # A: m, last, oracle; B, C, E: m, oracle
    runs = {name: board[board["backtest"] == result.run_id] for name, result in cmp.items()}
    assert set(runs["A"]["model"]) == {"m", "last", "oracle"}
    a, e = runs["A"].iloc[0], runs["E"].iloc[0]
    assert a["data"] == tracking.fingerprint(tiny)[:8] and a["run"] == cmp["A"].run_id[:8]
    assert (a["horizon"], a["folds"], a["first_cutoff"], a["last_cutoff"]) == ("28 days", 4, WEEKLY[0], WEEKLY[3])
    assert (e["horizon"], e["folds"]) == ("30 days", 2)  # the escalation window, not the unused horizon
    assert runs["C"]["data"].iloc[0] != a["data"]
    assert board["date"].dt.tz is not None and (board["date"].dt.date == pd.Timestamp.now("UTC").date()).all()
    m = runs["A"].set_index("model").loc["m"]
    assert m["hit_rate_at_5pct"] == pytest.approx(cmp["A"].leaderboard.loc["m", "hit_rate_at_5pct"])
    escalation = board[board["target"] == "escalation"].dropna(axis=1, how="all")
    assert not any(c.startswith("hit_rate") for c in escalation) and "roc_auc" in escalation
    grid = board[board["target"] == "grid"].dropna(axis=1, how="all")
    assert "hit_rate_at_5pct" in grid


@on_one_worker
def test_compare_filters_by_target_data_and_date(cmp, tiny, logged, tmp_path):
    def runs(**filters):
        return set(tracking.compare("cmp", **filters)["backtest"])

    ids = {name: result.run_id for name, result in cmp.items()}
    assert runs(target="escalation") == {ids["E"]}
    assert runs(target="grid") == {ids["A"], ids["B"], ids["C"]}
    assert runs(data=tracking.fingerprint(tiny)[:5]) == {ids["A"], ids["B"], ids["E"]}
    assert runs(data=str(write_dataset(tiny, tmp_path / "tiny")), target="grid") == {ids["A"], ids["B"]}
    assert runs(since="2020-01-01") == set(ids.values())
    with pytest.raises(ValueError, match="unknown target 'cases'; the kinds are grid, escalation, waves"):
        tracking.compare("cmp", target="cases")
    with pytest.raises(
        ValueError, match=r"no backtest of target 'waves' .*: escalation \(1 backtest\), grid \(3 backtests\)"
    ):
        tracking.compare("cmp", target="waves")
    fingerprint = tracking.fingerprint(tiny)[:8]
    with pytest.raises(ValueError, match=f"no backtest on data 'ffff'.*{fingerprint} \\(3 backtests\\)"):
        tracking.compare("cmp", data="ffff")
    with pytest.raises(ValueError, match="fingerprint prefix .* or a dataset folder; 'nowhere' is neither"):
        tracking.compare("cmp", data="nowhere")
    with pytest.raises(ValueError, match="no backtest since 2999-01-01 .* its backtests ran from 20"):
        tracking.compare("cmp", since="2999-01-01")
    with pytest.raises(ValueError, match="since must be a date such as 2024-06-01, got 'soon'"):
        tracking.compare("cmp", since="soon")
    other = tracking.fingerprint(tiny.replace(cases=tiny.cases.iloc[20:]))  # C's data: no escalation backtest
    with pytest.raises(ValueError, match=f"no backtest of target 'escalation' and on data '{other}' .*each filter"):
        tracking.compare("cmp", target="escalation", data=other)


@on_one_worker
def test_compare_prints_one_table_per_target(cmp):
    printed = CliRunner().invoke(app, ["compare", "cmp"])
    assert printed.exit_code == 0, printed.output
    grid, escalation = printed.output.split("Target escalation: 1 backtest, 2 model runs\n")
    assert grid.startswith("Target grid: 3 backtests, 7 model runs\n")
    header = escalation.splitlines()[0].split()
    assert header[:6] == ["model", "data", "horizon", "folds", "date", "run"] and "roc_auc" in header
    assert not any(h.startswith("hit_rate") for h in header) and "hit_rate_at_5pct" in grid.splitlines()[1]
    assert "28 days" in grid and "4 (2023-09-04 to 2023-09-25)" in grid and cmp["A"].run_id[:8] in grid
    assert "30 days" in escalation and "DateOffset" not in printed.output and "nan" not in printed.output
    assert cmp["A"].run_id not in printed.output  # the short id only
    only = CliRunner().invoke(app, ["compare", "cmp", "--target", "escalation"])
    assert only.exit_code == 0 and "Target grid" not in only.output and "Target escalation" in only.output
    unknown = CliRunner().invoke(app, ["compare", "cmp", "--target", "cases"])
    assert unknown.exit_code == 1 and "the kinds are grid, escalation, waves" in unknown.output
    mixed = CliRunner().invoke(app, ["compare", "cmp", "--target", "grid", "--runs", "a", "b"])
    assert mixed.exit_code == 2 and "--runs" in mixed.output


@on_one_worker
def test_two_runs_side_by_side_match_a_hand_computation(cmp):
    from scipy import stats

    a, b = cmp["A"], cmp["B"]
    comparison = tracking.compare_runs("cmp", a.run_id[:10], b.run_id[:10])
    assert (comparison.model, comparison.metric) == ("m", "hit_rate_at_5pct") and comparison.warnings == []
    # By hand: fold cutoffs 1-3 are shared; B's m minus A's m on each.
    folds = [r.folds[r.folds["model"] == "m"].set_index("cutoff")["hit_rate_at_5pct"] for r in (a, b)]
    d = (folds[1] - folds[0]).dropna()
    assert list(d.index) == list(WEEKLY[1:4])
    np.testing.assert_allclose(comparison.folds["difference"], d.to_numpy())
    np.testing.assert_allclose(comparison.folds["a"], folds[0].loc[WEEKLY[1:4]])
    lag = 2  # a 28-day window after a weekly cutoff overlaps the next two folds' windows (of three)
    e = d.to_numpy() - d.mean()
    se = np.sqrt((e @ e + 2 * (1 - 1 / (lag + 1)) * (e[1:] @ e[:-1]) + 2 * (1 - 2 / (lag + 1)) * (e[2:] @ e[:-2])) / 9)
    half = stats.t.ppf(0.975, 2) * se
    summary = comparison.summary
    assert summary["lag"] == lag and summary["folds"] == 3 and summary["mean"] == pytest.approx(d.mean())
    assert (summary["low"], summary["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    expected = "better" if d.mean() - half > 0 else "worse" if d.mean() + half < 0 else "within noise"
    assert summary["verdict"] == expected
    assert comparison.sentence.startswith(f"Run B ({b.run_id[:8]}) is ")
    assert f"{d.mean():+.4f} [{d.mean() - half:+.4f}, {d.mean() + half:+.4f}]" in comparison.sentence

    printed = CliRunner().invoke(app, ["compare", "cmp", "--runs", a.run_id[:8], b.run_id[:8]])
    assert printed.exit_code == 0, printed.output
    assert "m, hit_rate_at_5pct by fold:" in printed.output and comparison.sentence in printed.output
    row = next(line for line in printed.output.splitlines() if line.startswith("2023-09-18"))
    assert row.split()[-1] == f"{d.loc[WEEKLY[2]]:+.4f}" and "Warning" not in printed.output


@on_one_worker
def test_two_runs_on_other_data_or_targets_are_flagged_or_refused(cmp):
    ids = {name: result.run_id for name, result in cmp.items()}
    other = tracking.compare_runs("cmp", ids["A"], ids["C"], metric="brier")
    assert len(other.folds) == 2 and "different data" in other.warnings[0]
    printed = CliRunner().invoke(app, ["compare", "cmp", "--runs", ids["A"], ids["C"]])
    assert printed.exit_code == 0 and "Warning: the runs used different data" in printed.output
    for (first, second), options, message in (
        (("A", "E"), {}, "backtests the target 'grid' and run B .* the target 'escalation'"),
        (("B", "C"), {}, "share 1 fold cutoff; a paired comparison needs at least 2"),
        (("A", "A"), {}, r"share the models \['last', 'm'\]: choose one"),
        (("A", "B"), {"model": "last"}, r"do not both have the model 'last'; they share \['m', 'oracle'\]"),
        (("A", "B"), {"metric": "accuracy"}, "do not both have the per-fold metric 'accuracy'"),
    ):
        with pytest.raises(ValueError, match=message):
            tracking.compare_runs("cmp", ids[first], ids[second], **options)
    with pytest.raises(ValueError, match=r"no backtest run 'zzzz' in the experiment 'cmp'; its newest backtests: "):
        tracking.compare_runs("cmp", "zzzz", ids["A"])
    with pytest.raises(ValueError, match="'' names 4 backtests"):
        tracking.compare_runs("cmp", "", ids["A"])
    refused = CliRunner().invoke(app, ["compare", "cmp", "--runs", ids["A"], ids["E"]])
    assert refused.exit_code == 1 and "runs compare only on the same target" in refused.output


def test_horizons_read_in_words():
    assert horizon_words("28") == "28 days" and horizon_words("1") == "1 day"
    assert horizon_words(str(pd.Timedelta(days=7))) == "7 days" and horizon_words("14D") == "14 days"
    assert horizon_words(str(pd.DateOffset(months=1))) == "1 month"
    assert horizon_words(pd.DateOffset(months=3, days=2)) == "3 months 2 days"
    assert horizon_words("None") == horizon_words(None) == ""


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
