from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.models import ProfileOutlier


def test_odd_profiles_score_highest():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(500, 4)), columns=["a", "b", "c", "d"])
    X.iloc[:5] = 10.0
    X.iloc[10, 0] = np.nan
    detector = ProfileOutlier(contamination=0.01).fit(X)
    score = detector.anomaly_score(X)
    assert set(np.argsort(-score)[:5]) == {0, 1, 2, 3, 4}
    assert (detector.predict(X)[:5] == -1).all() and (detector.predict(X) == -1).sum() <= 10
