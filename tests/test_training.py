"""The final model: train, save, load, predict, and bad input (no MLflow here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import riskmodel
from riskmodel import load_model, predict, train
from riskmodel.datasets import simulate_district
from riskmodel.models import GBMRisk, LogisticRisk, TierPolicy

FAST = dict(n_estimators=20, min_child_samples=5, n_jobs=1)


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def trained(tiny):
    return train(tiny, model=GBMRisk(**FAST), horizon=28, tier_policy=TierPolicy(capacity=3), track=False)


def test_trains_on_every_closed_label_and_predicts_every_unit(tiny, trained):
    assert trained.kind == "grid" and trained.registered_name == "dispute-risk-grid"
    assert trained.trained_through + pd.Timedelta(days=28) <= pd.Timestamp(tiny.end)
    assert trained.trained_through + pd.Timedelta(days=35) > pd.Timestamp(tiny.end)
    assert trained.version == riskmodel.__version__ and len(trained.schema_hash) == 16
    assert set(trained.units) == set(tiny.grids.loc[tiny.grids["level"] == "grid", "grid_id"])
    # What the features read.
    assert trained.inputs["cases"] == ["party_key", "resolved_at", "escalated_at", "dispute_id"]
    assert trained.inputs["grid_history"] == [c for c in tiny.grid_history if c not in ("grid_id", "valid_from")]
    X = trained.features(tiny, "2023-11-06")
    scores = trained.score(X)
    assert len(scores) == 25 and (scores["tier"] == "red").sum() == 3
    np.testing.assert_allclose(scores["probability"], trained.estimator.predict_proba(X)[:, 1])


def test_save_and_load_round_trip(tmp_path, tiny, trained):
    folder = trained.save(tmp_path / "model")
    assert (folder / "model.json").read_text().count(trained.schema_hash) == 1
    back = load_model(folder)
    pd.testing.assert_frame_equal(predict(tiny, model=back), predict(tiny, model=trained))
    pd.testing.assert_frame_equal(predict(tiny, model=str(folder)), predict(tiny, model=trained))


def test_a_model_of_another_version_loads_with_a_warning(tmp_path, tiny):
    old = train(tiny, model=LogisticRisk(), horizon=28, track=False)
    old.version = "0.0.1"
    with pytest.warns(UserWarning, match="trained with riskmodel 0.0.1"):
        load_model(old.save(tmp_path / "old"))


def test_escalation_model_scores_the_open_cases(tiny):
    trained = train(tiny, model=LogisticRisk(), target="escalation", escalation_days=30, track=False)
    assert trained.registered_name == "dispute-escalation-case"
    cutoff = pd.Timestamp("2023-10-02")
    X = trained.features(tiny, cutoff)
    cases = tiny.cases.set_index("case_id").loc[X.index.get_level_values("case_id")]
    assert len(X) > 0 and (cases["reported_at"] < cutoff).all()
    assert not (cases["resolved_at"] < cutoff).any() and not (cases["escalated_at"] < cutoff).any()


def test_features_must_match_the_schema(tiny, trained):
    X = trained.features(tiny, tiny.end)
    with pytest.raises(ValueError, match=r"missing \['count_7d'\], unexpected \['surprise'\]"):
        trained.score(X.drop(columns="count_7d").assign(surprise=1.0))
    reordered = X[X.columns[::-1]]
    pd.testing.assert_frame_equal(trained.score(reordered), trained.score(X))  # reordered by name


def test_bad_input(tmp_path, tiny):
    with pytest.raises(ValueError, match="register=True needs track=True"):
        train(tiny, model=LogisticRisk(), horizon=28, track=False, register=True)
    with pytest.raises(ValueError, match="no training cutoff"):
        train(tiny, model=LogisticRisk(), horizon=400, track=False)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load_model(tmp_path / "nothing")
