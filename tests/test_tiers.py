from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.models import TierPolicy


def _scores() -> pd.Series:
    index = pd.MultiIndex.from_product([["G1", "G2", "G3", "G4"], pd.to_datetime(["2024-01-01", "2024-01-08"])],
                                       names=["grid_id", "cutoff"])
    return pd.Series([0.9, 0.1, 0.5, 0.5, 0.5, 0.2, 0.05, 0.9], index=index)


def test_cut_points():
    tiers = TierPolicy(cut_points=(0.6, 0.4, 0.15)).assign(_scores())
    assert tiers.tolist() == ["red", "green", "orange", "orange", "orange", "yellow", "green", "red"]
    assert tiers.cat.ordered and tiers.max() == "red" and tiers.min() == "green"


def test_capacity_and_share_per_forecast_date():
    scores = _scores()
    tiers = TierPolicy(capacity=(1, 1, 1)).assign(scores)
    for _, group in tiers.groupby(level="cutoff"):
        assert sorted(group.value_counts().to_dict().items()) == [("green", 1), ("orange", 1), ("red", 1),
                                                                  ("yellow", 1)]
    # Ties keep the row order: G2 and G3 both score 0.5 on 2024-01-01; G2 comes first.
    first = tiers.xs(pd.Timestamp("2024-01-01"), level="cutoff")
    assert first.to_dict() == {"G1": "red", "G2": "orange", "G3": "yellow", "G4": "green"}
    assert (TierPolicy(share=0.25).assign(scores) == "red").sum() == 2
    assert TierPolicy(capacity=2).assign(scores).value_counts()["red"] == 4


def test_bad_policies():
    with pytest.raises(ValueError, match="three decreasing"):
        TierPolicy(cut_points=(0.1, 0.5, 0.9)).assign(_scores())
    with pytest.raises(ValueError, match="not both"):
        TierPolicy(capacity=1, share=0.1).assign(_scores())
    with pytest.raises(ValueError, match="scores are missing"):
        TierPolicy().assign(np.array([0.5, np.nan]))
