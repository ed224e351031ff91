from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from riskmodel.models import TierPolicy


def _scores() -> pd.Series:
    index = pd.MultiIndex.from_product(
        [["G1", "G2", "G3", "G4"], pd.to_datetime(["2024-01-01", "2024-01-08"])], names=["grid_id", "cutoff"]
    )
    return pd.Series([0.9, 0.1, 0.5, 0.5, 0.5, 0.2, 0.05, 0.9], index=index)


def test_cut_points():
    tiers = TierPolicy(cut_points=(0.6, 0.4, 0.15)).assign(_scores())
    assert tiers.tolist() == ["red", "green", "orange", "orange", "orange", "yellow", "green", "red"]
    assert tiers.cat.ordered and tiers.max() == "red" and tiers.min() == "green"


def test_capacity_and_share_per_forecast_date():
    scores = _scores()
    tiers = TierPolicy(capacity=(1, 1, 1)).assign(scores)
    for _, group in tiers.groupby(level="cutoff"):
        assert sorted(group.value_counts().to_dict().items()) == [
            ("green", 1),
            ("orange", 1),
            ("red", 1),
            ("yellow", 1),
        ]
    # Ties keep the row order: G2 and G3 both score 0.5 on 2024-01-01; G2 comes first.
    first = tiers.xs(pd.Timestamp("2024-01-01"), level="cutoff")
    assert first.to_dict() == {"G1": "red", "G2": "orange", "G3": "yellow", "G4": "green"}
    assert (TierPolicy(share=0.25).assign(scores) == "red").sum() == 2
    assert TierPolicy(capacity=2).assign(scores).value_counts()["red"] == 4


def test_saturated_scores_are_ranked_by_the_tiebreak():
    """Probabilities saturated at 1.0 tie; the expected count orders them (not the row order)."""
    scores = pd.Series([1.0, 1.0, 1.0, 1.0, 0.3], index=["A", "B", "C", "D", "E"])
    expected = [55.4, 64.6, 55.2, 65.5, 0.4]
    tiers = TierPolicy(capacity=(1, 1, 1)).assign(scores, tiebreak=expected)
    assert tiers.to_dict() == {"A": "yellow", "B": "orange", "C": "green", "D": "red", "E": "green"}
    assert TierPolicy(share=0.4).assign(scores, tiebreak=expected).to_dict() == {
        "A": "green",
        "B": "red",
        "C": "green",
        "D": "red",
        "E": "green",
    }
    # Without ties the tiebreak changes nothing; cut-points give tied scores one tier.
    distinct = _scores() + np.arange(8) * 1e-3
    policy = TierPolicy(capacity=(1, 1, 1))
    assert policy.assign(distinct, tiebreak=-np.arange(8.0)).equals(policy.assign(distinct))
    # Cut-points on saturated probabilities would make nearly every unit red: the
    # expected count tiers them by saturated_share instead (None keeps the cut-points).
    by_count = TierPolicy(saturated_share=(0.2, 0.2, 0.2)).assign(scores, tiebreak=expected)
    assert by_count.to_dict() == {"A": "yellow", "B": "orange", "C": "green", "D": "red", "E": "green"}
    kept = TierPolicy(saturated_share=None).assign(scores, tiebreak=expected)
    assert (kept == ["red"] * 4 + ["orange"]).all()
    assert (TierPolicy().assign(scores) == ["red"] * 4 + ["orange"]).all()  # no tiebreak, nothing to rank by
    with pytest.raises(ValueError, match="tiebreak must have one value per score"):
        policy.assign(scores, tiebreak=[1.0, 2.0])


def test_bad_policies():
    with pytest.raises(ValueError, match="three decreasing"):
        TierPolicy(cut_points=(0.1, 0.5, 0.9)).assign(_scores())
    with pytest.raises(ValueError, match="not both"):
        TierPolicy(capacity=1, share=0.1).assign(_scores())
    with pytest.raises(ValueError, match="scores are missing"):
        TierPolicy().assign(np.array([0.5, np.nan]))


def test_bad_parameters_are_refused_by_name():
    with pytest.raises(InvalidParameterError, match="'capacity' parameter of TierPolicy"):
        TierPolicy(capacity=2.5).assign(_scores())
    with pytest.raises(InvalidParameterError, match="'share' parameter of TierPolicy"):
        TierPolicy(share=1.5).assign(_scores())
    with pytest.raises(InvalidParameterError, match="'cut_points' parameter of TierPolicy"):
        TierPolicy(cut_points=0.5).assign(_scores())
    with pytest.raises(ValueError, match="up to three non-negative sizes"):
        TierPolicy(capacity=(1, -1)).assign(_scores())


def test_scikit_learn_api():
    """scikit-learn's common checks need fit (and predict or transform), which a policy
    has not: it learns nothing and assigns tiers. What applies of them is checked here;
    tests/test_models.py checks that the constraints cover every parameter."""
    policy = TierPolicy(capacity=[50, 100, 150])  # a list, as a YAML configuration gives it
    copy = clone(policy)
    assert copy is not policy and copy.get_params() == policy.get_params()
    assert TierPolicy().set_params(**policy.get_params()).get_params() == policy.get_params()
    assert repr(policy) == "TierPolicy(capacity=[50, 100, 150])"
    assert set(TierPolicy._parameter_constraints) == set(policy.get_params())
    tiers = policy.assign(_scores())
    assert TierPolicy(capacity=(50, 100, 150)).assign(_scores()).equals(tiers)
