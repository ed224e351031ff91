"""riskmodel.predict for services: the output contract, no lost unit, compatibility, threads,
determinism and the end-to-end no-leakage check (no MLflow here)."""

from __future__ import annotations

import copy
import pickle
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from riskmodel import load_model, predict, train
from riskmodel.datasets import simulate_district
from riskmodel.models import GBMCount, HistoricalRateBaseline, LogisticRisk, TierPolicy

FAST = dict(n_estimators=20, min_child_samples=5, n_jobs=1)
COLUMNS = [
    "grid_id",
    "level",
    "street_id",
    "community_id",
    "as_of",
    "horizon_days",
    "probability",
    "expected_count",
    "low",
    "high",
    "score",
    "tier",
    "rank",
    "top_drivers",
    "alerts",
]


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def trained(tiny):
    return train(tiny, model=GBMCount(**FAST), horizon=28, tier_policy=TierPolicy(capacity=(2, 3, 5)), track=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, trained):
    return trained.save(tmp_path_factory.mktemp("models") / "grid")


def truncate(dataset, as_of):
    """The data as it stood at ``as_of`` (:meth:`riskmodel.Dataset.as_it_stood`)."""
    return dataset.as_it_stood(as_of)


def test_one_row_per_unit_riskiest_first(tiny, trained):
    risk = predict(tiny, model=trained)
    grids = tiny.grids[tiny.grids["level"] == "grid"]
    assert list(risk.columns) == COLUMNS
    assert len(risk) == len(grids) and set(risk["grid_id"]) == set(grids["grid_id"])
    assert (risk["as_of"] == tiny.as_of).all()  # the time the data was extracted
    unstamped = predict(tiny.replace(as_of=None), model=trained)["as_of"]
    assert (unstamped == tiny.cases["reported_at"].max().normalize() + pd.Timedelta(days=1)).all()
    assert (risk["horizon_days"] == 28).all() and (risk["level"] == "grid").all()
    assert risk["probability"].is_monotonic_decreasing and risk["rank"].tolist() == list(range(1, len(risk) + 1))
    by_key = risk.sort_values(["probability", "expected_count", "grid_id"], ascending=[False, False, True])
    assert by_key.index.tolist() == list(range(len(risk)))  # ties by expected count, then grid_id
    np.testing.assert_array_equal(risk["score"], np.round(100 * risk["probability"], 1))
    assert risk["tier"].tolist() == ["red"] * 2 + ["orange"] * 3 + ["yellow"] * 5 + ["green"] * (len(risk) - 10)
    parents = tiny.grids.set_index("grid_id")["parent_id"]
    np.testing.assert_array_equal(risk["community_id"], parents.loc[risk["grid_id"]])
    np.testing.assert_array_equal(risk["street_id"], parents.loc[risk["community_id"]])
    assert risk["top_drivers"].str.count(r"\(expected cases ×\d+\.\d\d\)").eq(3).all()  # GBMCount's unit
    few = predict(tiny, model=trained, drivers=5)
    assert (few["top_drivers"].iloc[:5] == risk["top_drivers"].iloc[:5]).all()
    assert (few["top_drivers"].iloc[5:] == "").all()
    pd.testing.assert_frame_equal(few.drop(columns="top_drivers"), risk.drop(columns="top_drivers"))
    X = trained.features(tiny, risk["as_of"].iloc[0])
    expected = pd.Series(trained.estimator.predict_expected(X), index=X.index.get_level_values(0))
    np.testing.assert_allclose(risk["expected_count"], expected.loc[risk["grid_id"]])


class Saturated(BaseEstimator):
    """A count model whose probabilities saturate at 1.0 (a case every period), as on
    monthly counts of busy units: only the expected counts tell the units apart."""

    def __init__(self, inner=None):
        self.inner = inner

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def predict_expected(self, X):
        return 50 * self.inner.predict_expected(X)

    def predict_proba(self, X):
        return np.column_stack([np.zeros(len(X)), np.ones(len(X))])


def test_saturated_probabilities_rank_and_tier_by_expected_count(tiny, trained):
    saturated = copy.copy(trained)
    saturated.estimator = Saturated(trained.estimator).fit(None)
    risk = predict(tiny, model=saturated, drivers=0)
    assert (risk["probability"] == 1.0).all() and risk["expected_count"].nunique() > 10
    assert risk["expected_count"].is_monotonic_decreasing  # not grid_id order
    assert not risk["grid_id"].is_monotonic_increasing
    assert risk["tier"].tolist() == ["red"] * 2 + ["orange"] * 3 + ["yellow"] * 5 + ["green"] * (len(risk) - 10)
    tiers = saturated.score(trained.features(tiny, tiny.as_of)).sort_values("expected_count", ascending=False)
    assert tiers["tier"].iloc[:2].eq("red").all() and tiers["tier"].iloc[2:5].eq("orange").all()
    cut = copy.copy(saturated)
    cut.tier_policy = TierPolicy()  # cut-points on saturated probabilities: shares of the expected count
    tiers = predict(tiny, model=cut, drivers=0)["tier"].value_counts()
    n = len(risk)
    assert tiers.to_dict() == {
        "red": round(0.05 * n),
        "orange": round(0.15 * n) - round(0.05 * n),
        "yellow": round(0.35 * n) - round(0.15 * n),
        "green": n - round(0.35 * n),
    }
    cut.tier_policy = TierPolicy(saturated_share=None)  # the cut-points alone: every tied unit red
    assert (predict(tiny, model=cut, drivers=0)["tier"] == "red").all()


def test_same_inputs_same_outputs_and_no_peeking_past_as_of(tiny, trained):
    pd.testing.assert_frame_equal(predict(tiny, model=trained), predict(tiny, model=trained))
    as_of = pd.Timestamp("2023-10-16 09:30")
    middle = predict(tiny, as_of=as_of, model=trained)
    assert (middle["as_of"] == as_of).all()
    pd.testing.assert_frame_equal(middle, predict(truncate(tiny, as_of), as_of=as_of, model=trained))
    assert not middle.equals(predict(tiny, as_of=as_of + pd.Timedelta(days=7), model=trained))


def test_eight_threads_get_identical_frames(tiny, folder):
    assert load_model(folder) is load_model(str(folder))  # loaded once per path
    with ThreadPoolExecutor(8) as pool:
        frames = list(pool.map(lambda _: predict(tiny, model=folder), range(16)))
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])


def test_the_cache_keeps_one_object_until_the_model_changes(tmp_path, trained):
    folder = trained.save(tmp_path / "model")
    first = load_model(folder)
    assert load_model(str(folder)) is first
    again = load_model(folder, reload=True)
    assert again is not first and load_model(folder) is again
    time.sleep(0.01)
    other = train(simulate_district("tiny", seed=1), model=LogisticRisk(), horizon=28, track=False)
    other.save(folder)  # the folder now holds another model: it is read again
    assert type(load_model(folder).estimator) is LogisticRisk


def test_visits_change_nothing_for_a_model_trained_without_them(tiny, trained):
    grids = tiny.grids.loc[tiny.grids["level"] == "grid", "grid_id"].iloc[:4].tolist()
    visits = pd.DataFrame(
        {
            "visit_id": ["v1", "v2", "v3", "v4"],
            "grid_id": grids,
            "visited_at": [tiny.end - pd.Timedelta(days=d) for d in (30, 20, 10, 1)],
            "kind": ["screening", "mediation", "follow_up", "publicity"],
            "team": ["t1", "t2", "t1", None],
            "assignment": ["ad_hoc", "ad_hoc", "ad_hoc", None],
        }
    )
    pd.testing.assert_frame_equal(predict(tiny.replace(visits=visits), model=trained), predict(tiny, model=trained))
    frames = {**tiny.tables, "visits": visits}
    pd.testing.assert_frame_equal(predict(frames, model=trained), predict(tiny, model=trained))


def test_a_model_trained_with_visits_and_origins_needs_them_and_keeps_its_options(tmp_path, tiny):
    from riskmodel import load_model

    units = tiny.grids["grid_id"].iloc[::3].tolist()
    visits = pd.DataFrame(
        {
            "visit_id": [f"v{i}" for i in range(len(units))],
            "grid_id": units,
            "visited_at": [tiny.end - pd.Timedelta(days=3 * i + 1) for i in range(len(units))],
            "kind": "screening",
            "outcome": "no_issue",
        }
    )
    origin = pd.Series("resident", index=tiny.cases.index).where(tiny.cases.index % 5 > 0, "patrol")
    data = tiny.replace(cases=tiny.cases.assign(origin=origin), visits=visits)
    trained = train(data, model=HistoricalRateBaseline(), horizon=28, features={"origins": ["resident"]}, track=False)
    assert trained.inputs["visits"] == ["visit_id", "grid_id", "visited_at", "outcome"]
    assert "origin" in trained.inputs["cases"] and "visits_91d" in trained.feature_names
    with pytest.raises(ValueError, match="trained on data with a visits table .* but the data has no visits"):
        predict(data.replace(visits=None), model=trained)
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['origin'\]"):
        predict(data.replace(cases=tiny.cases), model=trained)
    loaded = load_model(trained.save(tmp_path / "model"))
    assert loaded.builder.origins == ["resident"] and loaded.builder.visit_features_
    assert not loaded.builder.patrol_features_
    pd.testing.assert_frame_equal(predict(data, model=loaded), predict(data, model=trained))


def test_no_unit_is_lost(tiny, trained):
    # A new grid after training, with no case and no attributes: a cold start.
    grids = pd.concat(
        [
            tiny.grids,
            pd.DataFrame(
                {
                    "grid_id": ["G99"],
                    "parent_id": ["C1"],
                    "level": ["grid"],
                    "lon": [tiny.grids["lon"].mean()],
                    "lat": [tiny.grids["lat"].mean()],
                    "area_km2": [0.25],
                }
            ),
        ],
        ignore_index=True,
    )
    risk = predict(tiny.replace(grids=grids), model=trained).set_index("grid_id")
    assert len(risk) == (grids["level"] == "grid").sum()
    assert risk.loc["G99", "alerts"] == "cold_start;no_history;no_attributes"
    assert risk.loc["G99", "community_id"] == "C1" and 0 <= risk.loc["G99", "probability"] <= 1
    assert not risk.drop(index="G99")["alerts"].str.contains("cold_start").any()
    # Without attribute history every unit is still scored, each flagged.
    frames = {"cases": tiny.cases, "grids": tiny.grids}
    bare = predict(frames, model=trained)
    assert len(bare) == len(risk) - 1 and bare["alerts"].str.contains("no_attributes").all()
    assert bare["probability"].notna().all()


def test_a_burst_of_cases_is_flagged_as_an_anomaly(tiny, trained):
    end = tiny.end.normalize()
    burst = pd.DataFrame(
        {
            "case_id": [f"B{i}" for i in range(8)],
            "grid_id": "G07",
            "category": "neighbour_noise",
            "reported_at": [end - pd.Timedelta(hours=6 * i) for i in range(8)],
        }
    )
    risk = predict(tiny.replace(cases=pd.concat([tiny.cases, burst], ignore_index=True)), model=trained)
    alerts = risk.set_index("grid_id")["alerts"]
    assert "anomaly:neighbour_noise" in alerts.loc["G07"]
    assert not predict(tiny, model=trained).set_index("grid_id").loc["G07", "alerts"].count("anomaly")


def test_case_model_scores_the_open_cases(tiny):
    trained = train(tiny, model=LogisticRisk(), target="escalation", escalation_days=30, track=False)
    as_of = pd.Timestamp("2023-10-02")
    risk = predict(tiny, as_of=as_of, model=trained)
    assert list(risk.columns) == [
        "case_id",
        "grid_id",
        "as_of",
        "horizon_days",
        "probability",
        "score",
        "tier",
        "rank",
        "top_drivers",
        "alerts",
    ]
    cases = tiny.cases.set_index("case_id").loc[risk["case_id"]]
    assert len(risk) > 0 and (cases["reported_at"] < as_of).all() and (risk["horizon_days"] == 30).all()
    assert not (cases["resolved_at"] < as_of).any() and not (cases["escalated_at"] < as_of).any()
    assert len(predict(tiny, as_of=tiny.cases["reported_at"].min() + pd.Timedelta(seconds=1), model=trained)) == 1
    resolved = tiny.cases.assign(resolved_at=tiny.cases["reported_at"])  # nothing stays open
    empty = predict(tiny.replace(cases=resolved), as_of=as_of, model=trained)
    assert len(empty) == 0 and list(empty.columns) == list(risk.columns)
    still_open = tiny.cases[
        (tiny.cases["reported_at"] < as_of)
        & ~(tiny.cases["resolved_at"] < as_of)
        & ~(tiny.cases["escalated_at"] < as_of)
    ]
    assert set(risk["case_id"]) == set(still_open["case_id"])
    np.testing.assert_array_equal(risk["grid_id"], cases["grid_id"])


def test_compatibility_errors_name_what_is_wrong(tmp_path, tiny, trained):
    other = pickle.loads(pickle.dumps(trained))
    other.schema_hash = "0123456789abcdef"
    with pytest.raises(ValueError, match=rf"schema 0123456789abcdef .*have schema {trained.schema_hash}"):
        predict(tiny, model=other)
    with pytest.raises(ValueError, match=r"cases lack the column\(s\) \['party_key'\]"):
        predict(tiny.replace(cases=tiny.cases.drop(columns=["party_key", "source"])), model=trained)
    # A column the features do not read is not needed.
    pd.testing.assert_frame_equal(
        predict(tiny.replace(cases=tiny.cases.drop(columns="source")), model=trained), predict(tiny, model=trained)
    )
    attribute = trained.inputs["grid_history"][0]
    with pytest.raises(ValueError, match=rf"grid_history lack the column\(s\) \['{attribute}'\]"):
        predict(tiny.replace(grid_history=tiny.grid_history.drop(columns=attribute)), model=trained)
    with pytest.raises(FileNotFoundError, match="no saved model at .*nowhere"):
        predict(tiny, model=tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="broken holds a model saved by riskmodel 0.1 as a pickle"):
        predict(tiny, model=broken)
    with pytest.raises(ValueError, match=r"as_of must be after the data's first case .* got 2020-01-01"):
        predict(tiny, as_of="2020-01-01", model=trained)
    with pytest.raises(ValueError, match="naive wall-clock time"):
        predict(tiny.replace(as_of=None), as_of="2023-10-02 00:00+08:00", model=trained)
    with pytest.raises(ValueError, match="no case and no as_of"):
        predict(tiny.replace(cases=tiny.cases.iloc[:0], as_of=None), model=trained)
    with pytest.raises(ValueError, match="drivers must be None or at least 0"):
        predict(tiny, model=trained, drivers=-1)
    with pytest.raises(ValueError, match=r"needs 'cases' and 'grids'"):
        predict({"cases": tiny.cases}, model=trained)


def test_without_a_model_it_looks_in_the_registry_then_in_models(tmp_path, monkeypatch, tiny, trained):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(FileNotFoundError, match=r"neither models:/dispute-risk-grid@champion .* models/dispute-risk"):
        predict(tiny)
    assert not (tmp_path / "mlflow.db").exists()  # looking does not create a store
    trained.save()  # to models/dispute-risk-grid
    pd.testing.assert_frame_equal(predict(tiny), predict(tiny, model=trained))


def test_a_micro_grid_model_keeps_its_own_ids_and_names_the_grid_above():
    """Below a level named ``grid``, the answer's ``grid_id`` is the unit's own id and the
    grid above it is ``parent_grid_id`` (it once overwrote the unit's id)."""
    district = simulate_district("tiny", seed=0)
    trained = train(district, model=HistoricalRateBaseline(), horizon=28, track=False, level="microgrid")
    risk = predict(district, model=trained, drivers=0)
    micro = district.grids.loc[district.grids["level"] == "microgrid", "grid_id"]
    assert sorted(risk["grid_id"]) == sorted(micro)
    assert (risk["parent_grid_id"] == risk["grid_id"].map(district.ancestors("grid"))).all()
    assert {"street_id", "community_id"} <= set(risk.columns)


def test_the_data_as_it_stood_knows_nothing_later(tiny):
    as_of = pd.Timestamp("2023-07-03")
    day = pd.Timedelta(days=1)
    visits = pd.DataFrame({"visit_id": ["V1", "V2"], "grid_id": "G1", "visited_at": [as_of - day, as_of]})
    plans = pd.DataFrame({"plan_id": "P", "grid_id": "G1", "week": [as_of, as_of + pd.Timedelta(weeks=1)]})
    then = tiny.replace(visits=visits, plans=plans).as_it_stood(as_of)
    assert then.end == as_of and (then.cases["reported_at"] < as_of).all()
    assert then.visits["visit_id"].tolist() == ["V1"] and then.plans["week"].tolist() == [as_of]
    later = tiny.cases.set_index("case_id").loc[then.cases["case_id"]]
    closed_later = (later["resolved_at"] >= as_of).to_numpy() & later["escalated_at"].isna().to_numpy()
    assert closed_later.any() and (then.cases.loc[closed_later, "outcome"] == "open").all()
    assert then.cases.loc[closed_later, "resolved_at"].isna().all()
    escalated = then.cases["escalated_at"].notna()
    assert (then.cases.loc[escalated, "outcome"] == "escalated").all()
    assert len(then.grid_history) < len(tiny.grid_history) and (then.grid_history["valid_from"] <= as_of).all()
