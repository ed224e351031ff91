from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.models import Scorecard


def _data(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "count_28d": rng.poisson(2, n).astype(float),
            "quiet_days": rng.exponential(30, n),
            "noise": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.05, "noise"] = np.nan
    logit = -2.5 + 0.5 * X["count_28d"].clip(0, 6) - 0.02 * X["quiet_days"].clip(0, 90)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_bins_are_monotone_and_points_scale_with_the_odds():
    X, y = _data()
    card = Scorecard(n_bins=6, base_score=600, base_odds=1 / 20, pdo=20).fit(X, y)
    table = card.table()
    for feature, direction in (("count_28d", 1), ("quiet_days", -1)):
        woe = table.loc[(table["feature"] == feature) & (table["bin"] != "missing"), "woe"].to_numpy()
        assert len(woe) >= 3 and (direction * np.diff(woe) > 0).all()
    assert table.loc[table["feature"] == "noise", "rows"].sum() == len(X)
    points = card.predict_points(X)
    assert np.allclose(points.drop(columns="total").sum(axis=1), points["total"])
    # Twenty points double the odds; 600 points are odds of 1 in 20.
    p = card.predict_proba(X)[:, 1]
    log_odds = np.log(p / (1 - p))
    assert np.allclose(points["total"], 600 + 20 / np.log(2) * (log_odds - np.log(1 / 20)))


def test_unseen_missing_values_weigh_nothing():
    X, y = _data()
    card = Scorecard().fit(X.fillna(0), y)
    points = card.predict_points(X.assign(count_28d=np.nan))
    assert (points["count_28d"] == 0).all()
