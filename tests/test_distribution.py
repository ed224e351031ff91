"""The negative-binomial predictive distribution, its metrics, and where it reaches the answer."""

import json

import numpy as np
import pytest
import scoringrules
from scipy import stats

from riskmodel import TrainedModel, predict, train
from riskmodel.checksums import content_digest
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, metrics
from riskmodel.models import HistoricalRateBaseline
from riskmodel.models.distribution import NegativeBinomial, fit_dispersion


def _draws(rng, mu, dispersion):
    return rng.negative_binomial(1 / dispersion, 1 / (1 + dispersion * mu))


@pytest.mark.parametrize("dispersion", [0.05, 0.5, 2.0])
def test_the_dispersion_of_simulated_draws_is_recovered(dispersion):
    rng = np.random.default_rng(1)
    mu = rng.gamma(1.0, 1.0, 50_000)
    found = fit_dispersion(mu, _draws(rng, mu, dispersion))
    assert found == pytest.approx(dispersion, rel=0.1)


def test_the_poisson_limit():
    rng = np.random.default_rng(2)
    mu = rng.gamma(1.0, 1.0, 50_000)
    assert fit_dispersion(mu, rng.poisson(mu)) < 0.01
    assert fit_dispersion([1.0, 1.0, 1.0], [1, 1, 1]) == 0.0  # less spread than Poisson
    k = np.arange(12)
    np.testing.assert_allclose(NegativeBinomial([3.0], 0.0).cdf(k), stats.poisson(3.0).cdf(k))
    np.testing.assert_allclose(NegativeBinomial([3.0], 1e-8).cdf(k), stats.poisson(3.0).cdf(k), atol=1e-7)


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="whole numbers"):
        fit_dispersion([1.0, 2.0], [0.5, 1])
    with pytest.raises(ValueError, match="differ in length"):
        fit_dispersion([1.0], [1, 2])
    with pytest.raises(ValueError, match="dispersion must be"):
        NegativeBinomial([1.0], -0.1)


def test_the_pit_of_a_calibrated_forecast_is_uniform_and_of_a_poisson_one_is_not():
    rng = np.random.default_rng(3)
    mu = rng.gamma(2.0, 1.0, 20_000)
    y = _draws(rng, mu, 0.5)
    for dispersion, calibrated in ((0.5, True), (0.0, False)):
        mass = metrics.pit_histogram(*NegativeBinomial(mu, dispersion).pit(y), bins=10) * len(y)
        p = stats.chisquare(mass).pvalue
        assert (p > 0.01) if calibrated else (p < 1e-6), (dispersion, p)


@pytest.mark.parametrize("mu", [0.05, 0.7, 4.0, 30.0])
@pytest.mark.parametrize("dispersion", [0.0, 0.6])
def test_pit_coverage_is_exactly_nominal_in_expectation(mu, dispersion):
    forecast = NegativeBinomial([mu], dispersion)
    y = np.arange(int(forecast.ppf(1 - 1e-13)[0]) + 2)
    weight = forecast.frozen().pmf(y)
    lower, upper = NegativeBinomial(np.full(len(y), mu), dispersion).pit(y)
    for level in metrics.COVERAGE_LEVELS:
        inside = [metrics.pit_coverage(lower[[i]], upper[[i]], level) for i in range(len(y))]
        assert weight @ inside == pytest.approx(level, abs=1e-9)
    low, high = forecast.interval(0.8)
    held = weight[(y >= low[0]) & (y <= high[0])].sum()
    assert held >= 0.8 - 1e-12  # a whole-number interval holds at least its level
    if mu == 0.05:
        assert (low[0], high[0]) == (0, 0) and held > 0.95


def test_crps_agrees_with_scoringrules_and_with_the_sum():
    y = np.array([0, 1, 3, 0, 12])
    mu = np.array([0.05, 0.8, 2.5, 1.2, 6.0])
    for dispersion in (0.1, 1.0, 4.0):
        own = np.mean(scoringrules.crps_negbinom(y, 1 / dispersion, mu=mu))
        assert metrics.crps(y, mu, dispersion) == pytest.approx(own, rel=1e-10)
    assert metrics.crps(y, mu, 0.0) == pytest.approx(np.mean(scoringrules.crps_poisson(y, mu)), rel=1e-10)
    assert metrics.crps_poisson(y, mu) == metrics.crps(y, mu, 0.0)
    # a large mean with a dispersion near 0, where the closed form gives NaN, by the plain sum
    k = np.arange(2000)
    cdf = NegativeBinomial([200.0], 1e-5).cdf(k)
    assert metrics.crps([150], [200.0], 1e-5) == pytest.approx(np.sum((cdf - (k >= 150)) ** 2), rel=1e-9)


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


def test_the_backtest_scores_the_distribution(tiny):
    result = backtest(
        tiny, [HistoricalRateBaseline()], cutoffs=["2023-10-02", "2023-10-30"], horizon=28, track=False, progress=False
    )
    for column in ("crps", "coverage_50", "coverage_80", "coverage_90", "interval_coverage_80"):
        assert result.folds[column].notna().all(), column
    rows = result.predictions[(result.predictions["model"] == "HistoricalRateBaseline")]
    fold = rows[rows["fold"] == 0]
    dispersion = fold["dispersion"].iloc[0]
    assert dispersion >= 0 and (fold["dispersion"] == dispersion).all()
    scored = result.folds.set_index(["model", "fold"]).loc[("HistoricalRateBaseline", 0)]
    assert scored["crps"] == pytest.approx(metrics.crps(fold["y_count"], fold["expected"], dispersion))


def test_the_dispersion_is_saved_loaded_and_gives_the_interval(tiny, tmp_path):
    trained = train(tiny, model=HistoricalRateBaseline(), horizon=28, track=False)
    assert trained.dispersion > 0  # a self-exciting district is more spread than Poisson
    loaded = TrainedModel.load(trained.save(tmp_path / "model"))
    assert loaded.dispersion == trained.dispersion
    risk = predict(tiny, model=loaded)
    low, high = NegativeBinomial(risk["expected_count"], trained.dispersion).interval(0.8)
    np.testing.assert_array_equal(risk["low"], low)
    np.testing.assert_array_equal(risk["high"], high)
    assert risk["low"].dtype.kind == "i" and (risk["low"] <= risk["high"]).all()
    # a model saved before the dispersion was kept is read as Poisson
    manifest = json.loads((tmp_path / "model" / "model.json").read_text())
    del manifest["dispersion"], manifest["manifest_sha256"]
    manifest["manifest_sha256"] = content_digest(manifest)
    (tmp_path / "model" / "model.json").write_text(json.dumps(manifest))
    assert TrainedModel.load(tmp_path / "model").dispersion == 0.0
