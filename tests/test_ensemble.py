"""EnsembleCount: members by name from the roster, weights from validation blocks inside the training rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import TrainedModel, train
from riskmodel.datasets import simulate_district
from riskmodel.features import build_grid_panel
from riskmodel.models import EnsembleCount, HistoricalRateBaseline, grid_models, roster
from riskmodel.models.ensemble import poisson_blend

FAST = ["HistoricalRateBaseline", "LastPeriodBaseline", "LogisticRisk"]


@pytest.fixture(scope="module")
def panel():
    district = simulate_district("tiny", seed=0)
    built = build_grid_panel(
        district, cutoffs={"start": "2023-04-03", "end": "2023-12-04", "freq": "W-MON"}, horizon=28
    )
    known = built.label_known.to_numpy()
    return district, built.X[known], built.y_count[known]


def test_the_roster_lists_it_last_and_its_default_members_are_the_baselines_and_two_learners():
    assert list(grid_models())[-1] == "EnsembleCount"
    members = list(EnsembleCount().member_models())
    assert {"HistoricalRateBaseline", "LastPeriodBaseline", "KDEBaseline", "LogisticRisk", "GBMCount"} <= set(members)
    assert "GBMRisk" not in members and "EnsembleCount" not in members
    assert all(n.endswith("Baseline") for n in members if n not in ("LogisticRisk", "GBMCount"))


def test_unknown_members_are_refused_by_name():
    with pytest.raises(ValueError, match="Nope"):
        EnsembleCount(members=["Nope"]).member_models()


def test_poisson_blend_recovers_a_mixture():
    rng = np.random.default_rng(1)
    a, b, c = rng.gamma(1.0, 1.0, (3, 20000))
    counts = rng.poisson(0.7 * a + 0.3 * b)
    weights = poisson_blend(np.column_stack([a, b, c]), counts)
    assert weights == pytest.approx([0.7, 0.3, 0.0], abs=0.04)
    assert (weights >= 0).all()


def test_fit_blends_the_members_non_negatively(panel):
    _, X, y = panel
    model = EnsembleCount(members=FAST, blocks=2, block_cutoffs=3).fit(X, y)
    assert list(model.members_) == FAST and model.weights_.shape == (3,) and (model.weights_ >= 0).all()
    assert model.validation_rows_ == 6 * X.index.get_level_values(0).nunique()
    expected = np.column_stack([m.predict_expected(X) for m in model.members_.values()]) @ model.weights_
    assert model.predict_expected(X) == pytest.approx(expected)
    assert model.predict_proba(X)[:, 1] == pytest.approx(1 - np.exp(-expected))
    again = EnsembleCount(members=FAST, blocks=2, block_cutoffs=3).fit(X, y)
    assert np.array_equal(again.weights_, model.weights_)  # same data, same weights


def test_validation_fits_see_only_labels_closed_before_their_block(panel, monkeypatch):
    _, X, y = panel
    seen = []

    class Spy(HistoricalRateBaseline):
        def fit(self, X, y=None):
            seen.append(X.index.get_level_values("cutoff").max() + pd.Timedelta(days=28))
            return super().fit(X, y)

    monkeypatch.setattr(roster, "grid_models", lambda: {"Spy": Spy()})
    model = EnsembleCount(members=["Spy"], blocks=2, block_cutoffs=3).fit(X, y)
    cutoffs = X.index.get_level_values("cutoff").unique().sort_values()
    starts = cutoffs[-6::3]
    assert len(seen) == 3  # two blocks, then all rows
    assert seen[0] <= starts[0] and seen[1] <= starts[1] and seen[2] == cutoffs[-1] + pd.Timedelta(days=28)
    assert model.weights_[0] > 0


def test_it_needs_panel_rows(panel):
    _, X, y = panel
    with pytest.raises(ValueError, match="cutoff"):
        EnsembleCount(members=FAST).fit(X.reset_index(drop=True), y)


def test_a_trained_ensemble_saves_and_loads(panel, tmp_path):
    district, X, _ = panel
    trained = train(district, model=EnsembleCount(members=[*FAST, "GBMCount"], blocks=2), track=False)
    loaded = TrainedModel.load(trained.save(tmp_path / "model"))
    assert np.array_equal(loaded.estimator.weights_, trained.estimator.weights_)
    rows = trained.features(district, district.end)
    assert loaded.score(rows)["expected_count"].to_numpy() == pytest.approx(
        trained.score(rows)["expected_count"].to_numpy()
    )


def test_members_fit_uncalibrated_and_the_blocks_are_the_holdout(panel):
    _, X, y = panel
    times = X.index.get_level_values("cutoff")
    eligible = times.unique()[times.unique() >= times.min() + pd.Timedelta(days=28)]
    half = len(eligible) // 2
    # The first block starts once one cutoff's labels have closed: enough for an uncalibrated member.
    model = EnsembleCount(members=["HistoricalRateBaseline", "LogisticRisk"], blocks=2, block_cutoffs=half).fit(X, y)
    assert model.members_["LogisticRisk"].calibration is None
    assert model.validation_rows_ == int((times >= eligible[-2 * half]).sum())
    positions, expected = model.holdout_
    assert len(positions) == len(expected) == model.validation_rows_
    assert times[positions].min() == eligible[-2 * half]
    assert (expected >= 0).all() and expected.sum() > 0
