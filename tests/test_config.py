"""Run configurations: the shipped files load, bad files name the key and the file, a run backtests."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel.cli import app
from riskmodel.config import ConfigError, load_config, run_backtest
from riskmodel.models import GBMCount, HistoricalRateBaseline

from .conftest import REAL_DATA

mlflow = pytest.importorskip("mlflow")

ROOT = Path(__file__).parents[1]
TINY = """
data: {kind: simulator, preset: tiny, seed: 0}
horizons: [28, 14]
cutoffs: {start: 2023-10-02, end: 2023-10-30, frequency: 4W-MON}
models:
  hist: {family: HistoricalRateBaseline}
  count: {family: GBMCount, params: {n_estimators: 20, min_child_samples: 5, n_jobs: 1}}
experiment: tiny
"""


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["grid_risk", "case_escalation", "anomaly", "chicago", "lancashire", "prevention"])
def test_the_shipped_configurations_load(name):
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    assert config.name == name and len(config.estimators()) >= 1


def test_chicago_asks_for_cells_weekly_over_2019_at_two_horizons():
    config = load_config(ROOT / "configs" / "chicago.yaml")
    assert config.data.cell_m == 500 and config.horizons == [7, 28]
    assert str(config.cutoffs.start) == "2019-01-07" and config.cutoffs.frequency == "W-MON"
    assert config.training.refit_every == 52
    assert {"KDEBaseline", "HistoricalRateBaseline"} <= set(config.estimators())


@pytest.mark.parametrize(
    "text, message",
    [
        (TINY + "colour: blue\n", r"colour: Extra inputs are not permitted \(got 'blue'\)"),
        (TINY.replace("seed: 0", "seed: zero"), r"data\.simulator\.seed: Input should be a valid integer"),
        (TINY.replace("kind: simulator", "kind: satellite"), r"data: Input tag 'satellite' .* does not match"),
        (
            TINY.replace("family: HistoricalRateBaseline", "family: Oracle"),
            r"models\.hist\.family: unknown family 'Oracle'; known: \[.*'GBMCount'",
        ),
        (TINY.replace("n_jobs: 1", "jobs: 1"), r"models\.count\.params: .*unexpected keyword argument 'jobs'"),
        (TINY.replace("horizons: [28, 14]", "horizons: []"), r"horizons: List should have at least 1 item"),
        ("- just\n- a list\n", "a configuration is a mapping of keys, got list"),
        (TINY + "features: {bogus: 1}\n", r"features: .*unexpected keyword argument 'bogus'"),
        (TINY + "tier_policy: {cut_points: [0.1, 0.3, 0.5]}\n", r"tier_policy: cut_points must be three decreasing"),
        (
            TINY.replace("horizons: [28, 14]", "horizons: -7"),
            r"horizons\.0\.constrained-int: Input should be greater than 0 \(got -7\)",
        ),
        (TINY.replace("family: HistoricalRateBaseline", "family: TierPolicy"), r"unknown family 'TierPolicy'"),
        (
            TINY.replace("models:", "target: escalation\nfeatures: {windows: [7]}\nmodels:"),
            r"features: options of the grid panel; the target 'escalation' takes none",
        ),
        (TINY.replace("seed: 0}", "seed: 0, policy: risk}"), r"data\.policy 'risk' needs a prevention section"),
        (
            TINY.replace("seed: 0}", "seed: 0, policy: psychic}"),
            r"data\.simulator\.policy: Input should be 'none', 'random', .* \(got 'psychic'\)",
        ),
        (TINY + "prevention: {capacity: 2, explore: 1.5}\n", r"prevention\.explore: .*less than or equal to 1"),
        (TINY + "prevention: {explore: 0.1}\n", r"prevention\.capacity: Field required"),
        (TINY + "prevention: {capacity: 2, cooldown: 7}\n", r"prevention\.cooldown: Extra inputs"),
        (
            TINY.replace("seed: 0}", "seed: 0, policy: random}") + "prevention: {capacity: 2}\n",
            r"prevention\.capacity: the random policy draws among all units; give a share below 1 or by: null",
        ),
    ],
)
def test_bad_configurations_name_the_file_and_the_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_the_prevention_section_builds_the_policy_and_plans(tmp_path):
    from riskmodel.prevention import HistoricalRateVisits, RiskVisits, UpliftVisits

    shipped = load_config(ROOT / "configs" / "prevention.yaml")
    policy = shipped.policy()
    assert isinstance(policy, UpliftVisits) and (policy.capacity, policy.by, policy.explore) == (2, "community", 0.2)
    assert policy.origins == ("resident",) and policy.retrain_every == 4 and policy.horizon == 28
    risk = load_config(
        _write(tmp_path, TINY.replace("seed: 0}", "seed: 0, policy: risk}") + "prevention: {capacity: 1}\n")
    )
    assert type(risk.policy()) is RiskVisits and risk.policy().origins == ("resident",)
    assert load_config(_write(tmp_path, TINY)).policy() is None

    config = load_config(
        _write(
            tmp_path,
            TINY.replace("seed: 0}", "seed: 0, policy: historical_rate}")
            + "prevention: {capacity: 0.25, explore: 0.5, cooldown_days: 7}\n",
        )
    )
    assert isinstance(config.policy(), HistoricalRateVisits)
    district = config.dataset()
    weekly = district.visits.groupby(district.visits["visited_at"].dt.to_period("W")).size()
    assert 0 < weekly.max() <= 25 * 0.25 + 3  # a quarter of each community's grids, rounded per community
    assert {"rank", "explore", "control"} <= set(district.plans["assignment"])

    forecast = district.plans.drop_duplicates("grid_id").assign(as_of=district.end)
    forecast = forecast[["grid_id", "as_of", "expected_count"]].assign(
        community_id=district.ancestors("community").reindex(forecast["grid_id"]).to_numpy()
    )
    plan = config.plan(forecast, seed=1)
    visits = plan[plan["assignment"] != "control"]
    sizes = forecast.groupby("community_id").size()
    assert (visits.groupby("group").size() <= (sizes * 0.25).round()).all() and len(visits) > 0


def test_a_configuration_backtests_every_horizon(tmp_path):
    config = load_config(_write(tmp_path, TINY))
    assert isinstance(config.estimators()["count"], GBMCount)
    assert isinstance(config.estimators()["hist"], HistoricalRateBaseline)
    results = run_backtest(config, track=False, progress=False)
    assert [r.horizon for r in results] == [pd.Timedelta(days=28), pd.Timedelta(days=14)]
    for result in results:
        assert set(result.leaderboard.index) == {"oracle", "hist", "count"}
        assert list(result.folds["cutoff"].unique()) == list(pd.to_datetime(["2023-10-02", "2023-10-30"]))


def test_backtest_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, ["backtest", "--config", str(_write(tmp_path, TINY))])
    assert result.exit_code == 0, result.output
    assert "run: horizon 28 days, 2 folds from 2023-10-02" in result.output and "MLflow run" in result.output
    assert "Hit rate at 1%" in result.output and "Best first by Hit rate at 5%" in result.output
    bad = CliRunner().invoke(app, ["backtest", "--config", str(_write(tmp_path, TINY + "colour: blue\n"))])
    assert bad.exit_code == 1 and "colour" in bad.output and "Traceback" not in bad.output
    assert CliRunner().invoke(app, ["backtest"]).exit_code == 2


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"the real data folder {REAL_DATA} is absent")
def test_lancashire_runs_by_area_and_month(monkeypatch):
    monkeypatch.chdir(ROOT)
    config = load_config("configs/lancashire.yaml")
    (result,) = run_backtest(config, track=False, progress=False)
    board = result.leaderboard
    assert len(result.folds["cutoff"].unique()) == 5 and "oracle" not in board.index
    assert board.loc["HistoricalRateBaseline", "hit_rate_at_5pct"] > 0.15  # far above the 5% of a blind pick


def test_features_train_and_report_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner, config = CliRunner(), str(_write(tmp_path, TINY))
    made = runner.invoke(app, ["features", "--config", config, "--out", "panel.parquet"])
    assert made.exit_code == 0, made.output
    panel = pd.read_parquet(tmp_path / "panel.parquet")
    assert {"grid_id", "cutoff", "count_28d", "y_count", "y"} <= set(panel.columns) and len(panel) % 25 == 0

    trained = runner.invoke(app, ["train", "--config", config, "--model", "count", "--register"])
    assert trained.exit_code == 0, trained.output
    assert "registered as 'dispute-risk-grid'" in trained.output
    assert (tmp_path / "models" / "dispute-risk-grid" / "model.json").is_file()
    unknown = runner.invoke(app, ["train", "--config", config, "--model", "nothing"])
    assert unknown.exit_code == 2 and "no model 'nothing'" in unknown.output

    written = runner.invoke(app, ["report", config, "--out", "report.html"])
    assert written.exit_code == 0, written.output
    page = (tmp_path / "report.html").read_text()
    assert "Leaderboard" in page and "data:image/png;base64," in page and "Top units" in page
    # nothing to fetch outside plotly.js's inline script (its own links are strings, not loads): it opens offline
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL))

    run_id = re.search(r"logged to MLflow run (\w+)", written.output).group(1)
    assert "report.html" in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    again = runner.invoke(app, ["report", run_id, "--out", "again.html"])
    assert again.exit_code == 0, again.output
    assert "hit rate curve" in (tmp_path / "again.html").read_text()
    missing = runner.invoke(app, ["report", "0123456789"])
    assert missing.exit_code == 1 and "no MLflow run" in missing.output


def test_other_targets_run_one_backtest_and_waves_train_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    escalation = load_config(
        _write(
            tmp_path,
            """
data: {kind: simulator, preset: tiny, seed: 0}
target: escalation
horizons: [7, 28]
cutoffs: {last_days: 56, frequency: 4W-MON}
models: {logistic: {family: LogisticRisk}}
""",
        )
    )
    (result,) = run_backtest(escalation, track=False, progress=False)
    assert result.target == "escalation" and set(result.leaderboard.index) == {"oracle", "logistic"}
    waves = _write(tmp_path, "data: {kind: simulator, preset: tiny}\ntarget: waves\n")
    trained = CliRunner().invoke(app, ["train", "--config", str(waves)])
    assert trained.exit_code == 1 and "the waves target has no final model" in trained.output


def test_earliest_bounds_the_configured_data(tmp_path):
    from riskmodel.datasets import simulate_district
    from riskmodel.io import write_dataset

    district = simulate_district("tiny", seed=0)
    cases = district.cases.copy()
    cases.loc[0, "reported_at"] = pd.Timestamp("1985-06-01")
    folder = write_dataset(district.replace(cases=cases), tmp_path / "old")
    strict = load_config(_write(tmp_path, f"data: {{kind: folder, path: {folder}}}\n"))
    with pytest.raises(ValueError, match=r"cases.reported_at \[before_earliest\] 1 row"):
        strict.dataset()
    lenient = strict.model_copy(update={"earliest": pd.Timestamp("1980-01-01").date()})
    assert len(lenient.dataset().cases) == len(cases)
