"""UpliftRegressor: the cases a visit would prevent, learned from randomised visits."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from riskmodel.models import UpliftRegressor

FAST = dict(n_estimators=60, n_jobs=1)


def uplift_world(seed: int, n: int = 3000, treated_share: float = 0.3):
    """Risk grows with x0; the share of cases a visit prevents grows with x1 (and x2, x3 are
    noise), so ranking by risk and by cases prevented differ."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.random((n, 4)), columns=["x0", "x1", "x2", "x3"])
    risk = np.exp(-0.3 + 1.5 * X["x0"].to_numpy())
    effect = risk * 0.8 * X["x1"].to_numpy() ** 2
    treated = rng.random(n) < treated_share
    return X, rng.poisson(risk - treated * effect), treated, effect


def _prevented_in_top(score: np.ndarray, effect: np.ndarray, share: float = 0.1) -> float:
    return float(effect[np.argsort(-score, kind="stable")[: int(len(score) * share)]].sum())


@pytest.mark.parametrize("learner", ["t", "x"])
def test_the_ranking_recovers_the_effect_and_beats_ranking_by_risk(learner):
    X, y, treated, _ = uplift_world(0)
    X_new, _, _, effect = uplift_world(1)
    model = UpliftRegressor(learner=learner, **FAST).fit(X, y, treated)
    prevented = model.predict(X_new)
    assert spearmanr(prevented, effect).statistic > 0.5
    risk = model.control_estimator_.predict(X_new.to_numpy())  # the count without a visit
    assert _prevented_in_top(prevented, effect) > 1.2 * _prevented_in_top(risk, effect)
    assert abs(prevented.mean() - effect.mean()) < 0.25 * effect.mean()  # in cases, the right size
    assert (model.effect_estimators_ is None) == (learner == "t")


def test_same_seed_same_model_and_pickle_and_sample_weight():
    X, y, treated, _ = uplift_world(2, n=1500)
    model = UpliftRegressor(**FAST).fit(X, y, treated)
    np.testing.assert_array_equal(clone(model).fit(X, y, treated).predict(X), model.predict(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), model.predict(X))
    other = UpliftRegressor(**FAST, random_state=1).fit(X, y, treated)
    assert not np.array_equal(other.predict(X), model.predict(X))
    weighted = UpliftRegressor(**FAST).fit(X, y, treated, sample_weight=np.where(treated, 2.0, 1.0))
    assert weighted.treated_share_ > model.treated_share_
    np.testing.assert_array_equal(model.feature_names_in_, X.columns)


def test_bad_input():
    X, y, treated, _ = uplift_world(3, n=200)
    with pytest.raises(NotFittedError):
        UpliftRegressor().predict(X)
    with pytest.raises(ValueError, match="needs treated"):
        UpliftRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="one 0/1"):
        UpliftRegressor(**FAST).fit(X, y, treated[:-1])
    with pytest.raises(ValueError, match="one 0/1"):
        UpliftRegressor(**FAST).fit(X, y, np.where(treated, 2, 0))
    with pytest.raises(ValueError, match="each arm needs"):
        UpliftRegressor(**FAST).fit(X, y, np.ones(len(y), dtype=bool))
    with pytest.raises(ValueError, match="counts must be >= 0"):
        UpliftRegressor(**FAST).fit(X, -y - 1, treated)
    model = UpliftRegressor(**FAST).fit(X, y, treated)
    with pytest.raises(ValueError, match="x3"):
        model.predict(X.drop(columns="x3"))


# scikit-learn's check_estimator fits with fit(X, y) only; UpliftRegressor's fit needs the
# third argument `treated` (which arm each row was in) and refuses to fit without it, so
# every check that fits fails on that alone. The checks that do not fit run here.
@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_tags_renamed,
        estimator_checks.check_valid_tag_types,
    ],
    ids=lambda check: check.__name__,
)
def test_scikit_learn_checks_that_do_not_fit(check):
    check("UpliftRegressor", UpliftRegressor())
