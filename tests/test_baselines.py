"""The count baselines: the time-weighted and smoothed rates choose their half-life by the
hit rate on the training rows, and the last period follows the horizon's calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_regressor
from sklearn.exceptions import NotFittedError

from riskmodel import TrainedModel
from riskmodel.evaluation import metrics
from riskmodel.features import GridPanelBuilder
from riskmodel.features.rates import exposure_days
from riskmodel.models import (
    LastPeriodBaseline,
    SmoothedRateBaseline,
    TimeWeightedRateBaseline,
    explain,
    grid_models,
)
from riskmodel.models.baselines import hit_rates_by_cutoff, longest_within_noise

HALF_LIVES = (3, 14, 60, 180, 365, 730)


def _panel(rates: np.ndarray, *, seed: int = 0, start: int = 400, step: int = 7, horizon: int = 7):
    """A panel built by hand from daily Poisson cases of ``rates`` (units x days): the decayed
    counts, rates and the next ``horizon`` days' counts at a cutoff every ``step`` days."""
    cases = np.random.default_rng(seed).poisson(rates)
    n_units, n_days = cases.shape
    cutoffs = np.arange(start, n_days - horizon + 1, step)
    days = np.arange(n_days)
    age = cutoffs[:, None] - days[None, :]  # days before each cutoff; cases of the cutoff's day onward are unseen
    past = age > 0
    columns = {f"decay_{h}d": cases @ np.where(past, np.exp2(-age / h), 0.0).T for h in HALF_LIVES}
    history = cutoffs.astype(float)
    columns["rate_all"] = cases @ past.T / history
    y = np.stack([cases[:, c : c + horizon].sum(axis=1) for c in cutoffs], axis=1)
    index = pd.MultiIndex.from_product(
        [[f"G{u:03d}" for u in range(n_units)], pd.Timestamp("2020-01-01") + pd.to_timedelta(cutoffs, "D")],
        names=["grid_id", "cutoff"],
    )
    X = pd.DataFrame({name: value.ravel() for name, value in columns.items()}, index=index)
    X["history_days"], X["horizon_days"] = np.tile(history, n_units), float(horizon)
    return X, pd.Series(y.ravel().astype(float), index=index)


def _stable(n_units=300, n_days=800, seed=1):
    """Sparse units whose rates never change: the longest memory estimates them best."""
    rate = np.random.default_rng(seed).lognormal(np.log(0.01), 1.0, n_units)
    return np.repeat(rate[:, None], n_days, axis=1)


def _moving(n_units=300, n_days=800, seed=1):
    """Hot spots that move every 30 days: only a short memory finds them."""
    rng = np.random.default_rng(seed)
    hot = rng.random((n_units, n_days // 30 + 1)) < 0.05
    return np.where(np.repeat(hot, 30, axis=1)[:, :n_days], 1.0, 0.01)


def test_a_stable_world_chooses_a_long_memory_and_a_moving_one_a_short_one():
    X, y = _panel(_stable())
    stable = TimeWeightedRateBaseline().fit(X, y)
    assert list(stable.scores_) == [np.inf, 730, 365, 180, 60, 14]  # 3 days is too short to be a candidate
    assert stable.half_life_ >= 365
    assert stable.scores_[stable.half_life_] > stable.scores_[14] + 0.05

    X, y = _panel(_moving())
    moving = TimeWeightedRateBaseline().fit(X, y)
    assert moving.half_life_ == 14
    assert moving.scores_[14] > moving.scores_[np.inf] + 0.2
    # Each score is the mean over cutoffs of metrics.hit_rate: the library's own metric.
    expected = moving.predict_expected(X)
    by_cutoff = pd.DataFrame({"y": y, "score": expected}).groupby(level="cutoff")
    hits = by_cutoff.apply(lambda d: metrics.hit_rate(d["y"], d["score"], k=0.05)).dropna()
    assert moving.scores_[14] == pytest.approx(hits.mean())


def test_the_rate_is_the_decayed_count_over_its_exposure_times_the_horizon():
    X, y = _panel(_stable(n_units=50, n_days=500))
    for half_life in (60, np.inf):
        model = TimeWeightedRateBaseline(half_lives=[half_life]).fit(X, y)
        rate = X["rate_all"] if np.isinf(half_life) else X["decay_60d"] / exposure_days(X["history_days"], 60)
        np.testing.assert_allclose(model.predict_expected(X), rate * 7.0)
        np.testing.assert_allclose(model.predict(X), model.predict_expected(X))
        np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 - np.exp(-model.predict_expected(X)))
    # One case a day for ever: every half-life gives one case a day.
    flat = X.assign(
        **{f"decay_{h}d": h / np.log(2) * -np.expm1(-X["history_days"] * np.log(2) / h) for h in HALF_LIVES}
    )
    for half_life in HALF_LIVES:
        out = TimeWeightedRateBaseline(half_lives=[half_life]).fit(flat, y).predict_expected(flat)
        np.testing.assert_allclose(out, 7.0)


def test_a_missing_rate_before_any_history_is_no_case():
    X, y = _panel(_stable(n_units=20, n_days=450))
    X.loc[X.index.get_level_values("grid_id") == "G000", "rate_all"] = np.nan
    expected = TimeWeightedRateBaseline(half_lives=[np.inf]).fit(X, y).predict_expected(X)
    assert not np.isnan(expected).any() and (expected[X["rate_all"].isna().to_numpy()] == 0).all()


def test_ties_go_to_the_longer_half_life():
    X, y = _panel(_stable(n_units=50, n_days=500))
    same = X.assign(**{f"decay_{h}d": X["decay_14d"] * h for h in HALF_LIVES}, rate_all=X["decay_14d"])
    model = TimeWeightedRateBaseline(half_lives=(14, 60, 365)).fit(same, y)
    assert model.scores_[14] == model.scores_[60] == model.scores_[365]
    assert model.half_life_ == 365
    assert TimeWeightedRateBaseline().fit(same, y).half_life_ == np.inf
    # No case at all in training: every score is NaN and the longest memory is kept.
    assert TimeWeightedRateBaseline().fit(X, y * 0).half_life_ == np.inf


def test_hit_rates_by_cutoff_are_the_library_hit_rates_with_shared_ties():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(6), 40)
    y = rng.poisson(0.5, len(groups)).astype(float)
    score = rng.integers(0, 4, len(groups)).astype(float)  # many ties at the boundary
    y[groups == 5] = 0  # a cutoff without cases
    expected = [metrics.hit_rate(y[groups == g], score[groups == g], k=0.1) for g in range(6)]
    shuffle = rng.permutation(len(groups))
    got = hit_rates_by_cutoff(groups[shuffle], y[shuffle], score[shuffle], 0.1)
    np.testing.assert_allclose(got, expected)
    assert np.isnan(got[5])


def _one_case_a_cutoff(hits_60: np.ndarray, hits_all: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """20 units a cutoff, one case each cutoff in unit 0; each column ranks unit 0 first where it hits."""
    n_cutoffs = len(hits_60)
    index = pd.MultiIndex.from_product(
        [[f"G{u:02d}" for u in range(20)], pd.date_range("2024-01-01", periods=n_cutoffs, freq="7D")],
        names=["grid_id", "cutoff"],
    )
    unit = np.repeat(np.arange(20), n_cutoffs)
    rng = np.random.default_rng(0)
    columns = {}
    for name, hits in (("decay_60d", hits_60), ("rate_all", hits_all)):
        value = rng.random(len(index))
        value[unit == 0] = np.where(hits, 2.0, -1.0)
        columns[name] = value
    X = pd.DataFrame(columns, index=index).assign(history_days=1000.0, horizon_days=7.0)
    return X, (unit == 0).astype(float)


def test_a_shorter_half_life_must_be_better_by_more_than_noise():
    hits_all = np.arange(40) % 2 == 0  # 20 hits
    lucky = ~hits_all  # 22 hits, on other cutoffs: the difference is noise
    lucky[[0, 2]] = True
    model = TimeWeightedRateBaseline(half_lives=(60, np.inf)).fit(*_one_case_a_cutoff(lucky, hits_all))
    assert model.scores_[60] > model.scores_[np.inf] and model.half_life_ == np.inf
    better = np.ones(40, dtype=bool)  # every cutoff against half of them: beyond noise
    model = TimeWeightedRateBaseline(half_lives=(60, np.inf)).fit(*_one_case_a_cutoff(better, hits_all))
    assert model.scores_[60] == 1.0 and model.half_life_ == 60
    # Without a case anywhere the longest is kept; with one cutoff only, the best mean.
    assert longest_within_noise({60.0: np.array([np.nan]), np.inf: np.array([np.nan])}) == np.inf
    assert longest_within_noise({60.0: np.array([0.5]), np.inf: np.array([0.4])}) == 60


def test_the_smoothed_rate_reads_the_shrunk_rates_and_chooses_the_same_way():
    X, y = _panel(_moving())
    shrunk = pd.DataFrame(
        {f"shrunk_rate_{h}d": X[f"decay_{h}d"] / exposure_days(X["history_days"], h) for h in HALF_LIVES},
        index=X.index,
    ).assign(shrunk_rate_all=X["rate_all"], horizon_days=X["horizon_days"])
    smoothed = SmoothedRateBaseline().fit(shrunk, y)
    plain = TimeWeightedRateBaseline().fit(X, y)
    assert smoothed.scores_ == pytest.approx(plain.scores_) and smoothed.half_life_ == plain.half_life_ == 14
    np.testing.assert_allclose(smoothed.predict_expected(shrunk), plain.predict_expected(X))
    assert smoothed.panel_columns() == ["shrunk_rate_14d", "horizon_days"]
    assert plain.panel_columns() == ["decay_14d", "horizon_days", "history_days"]


def test_explain_names_the_chosen_column():
    X, y = _panel(_moving(n_units=60, n_days=500))
    model = TimeWeightedRateBaseline().fit(X, y)
    drivers = explain(model, X.iloc[:3], top=1)
    assert (drivers["driver_1"] == "decay_14d").all()
    assert "half-life 14 days" in drivers["text"].iloc[0]


@pytest.mark.parametrize("cls", [TimeWeightedRateBaseline, SmoothedRateBaseline])
def test_scikit_learn_conventions(cls):
    X, y = _panel(_stable(n_units=30, n_days=450))
    X = X.assign(**{f"shrunk_rate_{h}d": X[f"decay_{h}d"] / h for h in HALF_LIVES}, shrunk_rate_all=X["rate_all"])
    model = cls(half_lives=(60, np.inf), top=0.1)
    assert is_regressor(model) and model.get_params() == {"half_lives": (60, np.inf), "top": 0.1}
    for method in (model.predict, model.predict_expected, model.predict_proba, model.panel_columns):
        with pytest.raises(NotFittedError):
            method(X) if method != model.panel_columns else method()
    with pytest.raises(NotFittedError):  # check_is_fitted before anything is read
        model.predict(X.to_numpy())
    fitted = clone(model).fit(X, y)
    assert not hasattr(model, "half_life_") and fitted.get_params() == model.get_params()
    np.testing.assert_array_equal(clone(model).fit(X, y).predict(X), fitted.predict(X))  # deterministic
    assert set(fitted.scores_) == {60.0, np.inf} and fitted.n_features_in_ == X.shape[1]


def test_bad_input_says_what_is_missing_and_how_to_build_it():
    X, y = _panel(_stable(n_units=20, n_days=450))
    with pytest.raises(ValueError, match=r"needs the panel column\(s\) \['rate_all'\].*build_grid_panel"):
        TimeWeightedRateBaseline().fit(X.drop(columns="rate_all"), y)
    with pytest.raises(ValueError, match=r"\['history_days'\]"):
        TimeWeightedRateBaseline().fit(X.drop(columns="history_days"), y)
    with pytest.raises(ValueError, match=r"\['decay_90d'\].*half_lives="):
        TimeWeightedRateBaseline(half_lives=(90, 365)).fit(X, y)
    with pytest.raises(ValueError, match=r"\['shrunk_rate_all', 'horizon_days'\]"):
        SmoothedRateBaseline().fit(X.drop(columns="horizon_days"), y)
    model = TimeWeightedRateBaseline(half_lives=[60]).fit(X, y)
    with pytest.raises(ValueError, match=r"\['decay_60d'\]"):
        model.predict_expected(X.drop(columns="decay_60d"))
    with pytest.raises(TypeError, match="pass panel.X, a DataFrame"):
        TimeWeightedRateBaseline().fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="positive half-lives"):
        TimeWeightedRateBaseline(half_lives=[0, 60]).fit(X, y)
    with pytest.raises(ValueError, match="positive half-lives"):
        TimeWeightedRateBaseline(half_lives=[]).fit(X, y)
    with pytest.raises(ValueError, match="counts must be finite, >= 0 and known"):
        TimeWeightedRateBaseline().fit(X, -y)
    with pytest.raises(ValueError, match="counts must be finite, >= 0 and known"):
        TimeWeightedRateBaseline().fit(X, y.where(y.index.get_level_values(0) != "G001"))
    with pytest.raises(ValueError, match="counts for"):
        TimeWeightedRateBaseline().fit(X, y.iloc[:-1])
    with pytest.raises(ValueError, match="empty training set"):
        TimeWeightedRateBaseline().fit(X.iloc[:0], y.iloc[:0])


def test_a_saved_model_loads_and_predicts_the_same(tmp_path):
    X, y = _panel(_moving(n_units=40, n_days=450))
    X = X.assign(**{f"shrunk_rate_{h}d": X[f"decay_{h}d"] / h for h in HALF_LIVES}, shrunk_rate_all=X["rate_all"])
    X = X.assign(count_last_period=y.groupby(level="grid_id").shift(1).fillna(0.0), last_period_days=7.0)
    for model in (TimeWeightedRateBaseline(), SmoothedRateBaseline(), LastPeriodBaseline()):
        fitted = model.fit(X, y)
        trained = TrainedModel(
            kind="grid",
            estimator=fitted,
            feature_names=list(X.columns),
            schema_hash="hand-made",
            trained_through=X.index.get_level_values("cutoff").max(),
            builder=GridPanelBuilder(horizon=7),
        )
        back = TrainedModel.load(trained.save(tmp_path / type(model).__name__))
        pd.testing.assert_frame_equal(back.score(X), trained.score(X), check_exact=True)
        if not isinstance(model, LastPeriodBaseline):
            assert back.estimator.half_life_ == fitted.half_life_ and back.estimator.scores_ == fitted.scores_


def test_last_period_follows_the_horizon_calendar():
    """A one-month horizon on monthly records: the previous calendar month, scaled to this one."""
    cutoffs = pd.to_datetime(["2024-02-01", "2024-03-01", "2024-04-01"])
    index = pd.MultiIndex.from_product([["A", "B"], cutoffs], names=["grid_id", "cutoff"])
    last_month = pd.Series([31.0, 29.0, 31.0] * 2, index=index)  # January, February (a leap year), March
    this_month = pd.Series([29.0, 31.0, 30.0] * 2, index=index)
    X = pd.DataFrame(
        {
            "count_last_period": [3.0, 0.0, 6.0, 0.0, 2.0, 0.0],
            "last_period_days": last_month,
            "horizon_days": this_month,
            "count_28d": 0.0,  # records dated the 1st: 28 days back sees nothing
        },
        index=index,
    )
    model = LastPeriodBaseline().fit(X)
    assert model.panel_columns()[0] == "count_last_period"
    np.testing.assert_allclose(model.predict_expected(X), [3 * 29 / 31, 0, 6 * 30 / 31, 0, 2 * 31 / 29, 0])
    assert (LastPeriodBaseline(window=28).fit(X).predict_expected(X) == 0).all()
    with pytest.raises(ValueError, match=r"\['count_last_period', 'last_period_days'\]"):
        LastPeriodBaseline().fit(X[["horizon_days"]])


def test_the_roster_lists_the_simplest_first():
    names = list(grid_models())
    assert names[:4] == [
        "LastPeriodBaseline",
        "HistoricalRateBaseline",
        "TimeWeightedRateBaseline",
        "SmoothedRateBaseline",
    ]
    assert all(is_regressor(grid_models()[n]) for n in ("TimeWeightedRateBaseline", "SmoothedRateBaseline"))


def test_a_backtest_of_the_new_baselines_on_a_simulated_district():
    """End to end on the panel's own columns (decays, rates, shrunk rates, the last period)."""
    from riskmodel.datasets import simulate_district
    from riskmodel.evaluation import backtest

    district = simulate_district("small", seed=0)
    names = ("HistoricalRateBaseline", "TimeWeightedRateBaseline", "SmoothedRateBaseline", "LastPeriodBaseline")
    models = {name: grid_models()[name] for name in names}
    cutoffs = pd.date_range("2024-06-03", periods=6, freq="4W-MON")
    hit = backtest(district, models, cutoffs=cutoffs, horizon=28, track=False, progress=False).leaderboard[
        "hit_rate_at_5pct"
    ]
    assert (hit[list(names)] > 0.1).all()  # twice a blind pick's 5%
    # Time-weighting, with or without shrinkage, is no worse than the 364-day rate.
    assert min(hit["TimeWeightedRateBaseline"], hit["SmoothedRateBaseline"]) >= 0.95 * hit["HistoricalRateBaseline"]
