"""Linking reports of one dispute (riskmodel.link_reports) and the linkage scores."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from riskmodel import link_reports
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import bcubed_scores, pairwise_scores
from riskmodel.linkage.scoring import best_threshold

pytestmark = pytest.mark.xdist_group("linkage")


def first_year():
    """The simulated district's first year: a quarter of its disputes reported on 2 to 4
    platforms, with delays, typos in the party key and descriptions; the truth in ``dispute_id``."""
    data = simulate_district("small", seed=0)
    cases = data.cases
    return dataclasses.replace(data, cases=cases[cases["reported_at"] < "2024-01-01"].reset_index(drop=True))


@pytest.fixture(scope="module")
def truth():
    return first_year()


@pytest.fixture(scope="module")
def charts(tmp_path_factory):
    return tmp_path_factory.mktemp("charts")


@pytest.fixture(scope="module")
def linked(truth, charts):
    raw = dataclasses.replace(truth, cases=truth.cases.drop(columns="dispute_id"))
    return link_reports(raw, charts=charts)


def test_reports_of_one_dispute_share_an_id(truth, linked):
    scores = pairwise_scores(truth.cases["dispute_id"], linked.dataset.cases["dispute_id"])
    assert scores["precision"] > 0.85 and scores["recall"] > 0.85, scores
    assert linked.reports == len(truth.cases)
    assert linked.disputes == linked.dataset.cases["dispute_id"].nunique()
    assert linked.dataset.cases["dispute_id"].notna().all()
    # a dispute is named by its first report's case id
    first = linked.dataset.cases.sort_values("reported_at", kind="stable").groupby("dispute_id")["case_id"].first()
    assert (first.index == first.to_numpy()).all()
    assert 0 < linked.comparisons < len(truth.cases) * 10


def test_typos_in_the_party_key_are_still_linked(truth, linked):
    cases = linked.dataset.cases.assign(true=truth.cases["dispute_id"].to_numpy())
    first = cases.set_index("case_id")
    later = cases[(cases["case_id"] != cases["true"]) & cases["party_key"].notna()]
    typos = later[later["party_key"] != later["true"].map(first["party_key"])]
    assert len(typos) > 10
    assert (typos["dispute_id"] == typos["true"].map(first["dispute_id"])).mean() > 0.9


def test_one_partys_disputes_far_apart_in_time_stay_apart(linked):
    cases = linked.dataset.cases
    party = cases.dropna(subset=["party_key"]).groupby("party_key")["reported_at"].agg(lambda t: t.max() - t.min())
    repeats = party[party > pd.Timedelta(days=60)].index
    assert len(repeats) > 5
    apart = cases[cases["party_key"].isin(repeats)].groupby("party_key")["dispute_id"].nunique()
    assert (apart > 1).all()


def test_weights_come_from_the_trained_model(linked):
    weights = linked.weights.set_index(["comparison", "level"])
    compared = set(weights.index.get_level_values("comparison"))
    assert compared == {"party_key", "unit", "time_gap", "category", "source", "words"}
    assert weights.loc[("party_key", "Exact match on party_key"), "match_weight"] > 5
    assert weights.loc[("time_gap", "All other comparisons"), "match_weight"] < 0
    assert weights.loc[("words", "Array intersection size >= 4"), "match_weight"] > 0
    assert linked.threshold == 0.99 and linked.threshold_from == "default"
    assert (linked.pairs["match_probability"] >= 0.01).all()


def test_charts_are_saved_without_the_network(linked, charts):
    assert {p.name for p in charts.iterdir()} >= {"match_weights.html", "m_u_parameters.json"}
    assert "https://cdn" not in (charts / "match_weights.html").read_text()
    assert json.loads((charts / "m_u_parameters.json").read_text())["data"]["values"]


def test_labels_set_the_threshold_and_the_same_seed_gives_the_same_ids(truth, linked):
    raw = dataclasses.replace(truth, cases=truth.cases.drop(columns="dispute_id"))
    sample = truth.cases.set_index("case_id")["dispute_id"].iloc[::3]
    labelled = link_reports(raw, labels=sample)
    assert labelled.threshold_from == "labels" and labelled.labelled_f1 > 0.8
    assert labelled.threshold == best_threshold(labelled.pairs, sample)[0]
    assert (labelled.pairs["match_probability"] == labelled.threshold).any()
    # the same seed, the same scores (and so the same ids at the same threshold)
    pd.testing.assert_frame_equal(labelled.pairs, linked.pairs)


def test_best_threshold_on_labelled_pairs():
    pairs = pd.DataFrame(
        {
            "case_id_l": ["a", "a", "b", "c"],
            "case_id_r": ["b", "c", "c", "d"],
            "match_probability": [0.99, 0.8, 0.7, 0.5],
        }
    )
    labelled = pd.DataFrame({"case_id_l": ["b", "c", "a"], "case_id_r": ["a", "a", "d"], "match": [True, True, True]})
    # links at 0.8: a-b, a-c, both true; a-d (true) is never scored: F1 = 2*2 / (2 + 3)
    assert best_threshold(pairs, labelled) == (0.8, 0.8)
    with pytest.raises(ValueError, match="labels"):
        best_threshold(pairs, pd.Series({"a": "D1", "b": "D2"}))


def test_scores_against_hand_counts():
    true = ["a", "a", "a", "b", "b", "c"]
    predicted = [1, 1, 2, 2, 2, 3]
    # pairs: true {a:3, b:1} = 4; predicted {1:1, 2:3} = 4; both (a,1) and (b,2) = 2
    assert pairwise_scores(true, predicted) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    # B-cubed precision: cases of 1: 2/2 each; of 2: 1/3, 2/3, 2/3; of 3: 1 -> (2 + 5/3 + 1) / 6
    scores = bcubed_scores(true, predicted)
    assert scores["precision"] == pytest.approx((2 + 5 / 3 + 1) / 6)
    # recall: a's cases 2/3, 2/3, 1/3; b's 1, 1; c's 1 -> (5/3 + 3) / 6
    assert scores["recall"] == pytest.approx((5 / 3 + 3) / 6)
    assert pairwise_scores(["a", "b"], ["x", "y"]) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    with pytest.raises(ValueError, match="one dispute id per case"):
        pairwise_scores(["a"], ["x", "y"])
