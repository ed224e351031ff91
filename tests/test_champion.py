"""model="auto": the final model chosen by a backtest, carrying its evidence to the folder, MLflow and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import TrainedModel, train
from riskmodel.cli import app
from riskmodel.config import ConfigError, load_config
from riskmodel.datasets import simulate_district
from riskmodel.models import GBMCount, HistoricalRateBaseline, LastPeriodBaseline

SELECTION = {"folds": 4, "refit_every": 2}


def candidates():
    return {
        "rate": HistoricalRateBaseline(),
        "last": LastPeriodBaseline(),
        "count": GBMCount(n_estimators=20, min_child_samples=5, n_jobs=1),
    }


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def chosen(tiny):
    return train(tiny, model="auto", candidates=candidates(), selection=SELECTION, track=False)


def test_auto_trains_the_chosen_candidate_and_keeps_the_evidence(tiny, chosen, tmp_path):
    evidence = chosen.evidence
    assert evidence["chosen"] in candidates() and evidence["metric"] == "hit_rate_at_5pct"
    assert type(chosen.estimator) is type(candidates()[evidence["chosen"]])
    assert {row["model"] for row in evidence["leaderboard"]} == set(candidates())  # no oracle
    assert len(evidence["differences"]) == 4 and evidence["versus_best_baseline"]["model"] in ("rate", "last")
    assert evidence["reason"].startswith(evidence["chosen"])
    folds = pd.DataFrame(evidence["folds"])  # the chosen model's own scores: the monitor's expectation
    assert list(folds["cutoff"]) == [row["cutoff"] for row in evidence["differences"]]
    mean = next(row["mean"] for row in evidence["leaderboard"] if row["model"] == evidence["chosen"])
    assert folds["hit_rate_at_5pct"].mean() == pytest.approx(mean) and folds["brier"].between(0, 1).all()
    cutoffs = pd.to_datetime([row["cutoff"] for row in evidence["differences"]])
    assert (cutoffs + pd.Timedelta(days=28) <= tiny.end).all() and cutoffs.max() > tiny.end - pd.Timedelta(days=35)
    loaded = TrainedModel.load(chosen.save(tmp_path / "model"))
    assert loaded.evidence == json.loads(json.dumps(evidence))
    named = train(tiny, model=HistoricalRateBaseline(), track=False)
    assert named.evidence is None


def test_auto_is_the_default_and_other_strings_are_refused(tiny):
    with pytest.raises(ValueError, match="'auto'"):
        train(tiny, model="best", track=False)
    import inspect

    assert inspect.signature(train).parameters["model"].default == "auto"


def test_the_evidence_is_logged_as_tags_and_artifacts(tiny, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trained = train(tiny, model="auto", candidates=candidates(), selection=SELECTION, experiment="auto")
    run = mlflow.MlflowClient().get_run(trained.run_id)
    tags = run.data.tags
    assert tags["champion.chosen"] == trained.evidence["chosen"]
    assert tags["champion.reason"] == trained.evidence["reason"]
    assert tags["champion.vs_best_baseline"].startswith(trained.evidence["versus_best_baseline"]["model"] + ": ")
    assert " over 4 folds" in tags["champion.vs_runner_up"]
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(trained.run_id, "evidence")}
    assert files == {"evidence/leaderboard.csv", "evidence/fold_differences.csv", "evidence/evidence.json"}
    folder = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="evidence", dst_path=str(tmp_path)
    )
    board = pd.read_csv(f"{folder}/leaderboard.csv")
    assert set(board["model"]) == set(candidates()) and {"mean", "eligible", "vs_baseline_low"} <= set(board.columns)


CONFIG = """
data: {kind: simulator, preset: tiny, seed: 0}
horizons: 28
training: {selection: {folds: 4, refit_every: 4}}
models:
  hist: {family: HistoricalRateBaseline}
  last: {family: LastPeriodBaseline}
  count: {family: GBMCount, params: {n_estimators: 20, min_child_samples: 5, n_jobs: 1}}
"""


def test_train_command_chooses_by_default_and_prints_the_choice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "run.yaml").write_text(CONFIG)
    assert load_config(tmp_path / "run.yaml").training.model == "auto"
    out = CliRunner().invoke(app, ["train", "--config", "run.yaml", "--out", "model"])
    assert out.exit_code == 0, out.output
    chosen = TrainedModel.load(tmp_path / "model").evidence["chosen"]
    assert f"Chose {chosen}: " in out.output and "best baseline" in out.output and "runner-up" in out.output
    assert f"{chosen} trained through" in out.output
    dask = CliRunner().invoke(app, ["train", "--config", "run.yaml", "--scheduler", "local"])
    assert dask.exit_code == 2 and "pass --model" in dask.output


def test_shipped_grid_configs_choose_by_evidence(monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name in ("grid_risk", "chicago", "lancashire", "prevention", "case_escalation"):
        text = (root / "configs" / f"{name}.yaml").read_text()
        assert "model: auto" in text, name


def test_a_training_model_must_be_auto_or_configured(tmp_path):
    (tmp_path / "run.yaml").write_text(CONFIG.replace("training: {", "training: {model: nothing, "))
    with pytest.raises(ConfigError, match="training.model"):
        load_config(tmp_path / "run.yaml")
