"""The simulator: sizes, determinism, and the statistical claims it makes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import first_reports
from riskmodel.datasets import CATEGORIES, PRESETS, simulate_district
from riskmodel.holidays import days_until_next


def _grid_of(district, cases: pd.DataFrame | None = None) -> pd.Series:
    cases = district.cases if cases is None else cases
    return cases["grid_id"].map(district.ancestors("grid"))


def test_same_seed_same_frames_and_truth():
    a, b = simulate_district("tiny", seed=3), simulate_district("tiny", seed=3)
    for name, frame in a.tables.items():
        pd.testing.assert_frame_equal(frame, b.tables[name], check_exact=True)
    pd.testing.assert_series_equal(
        a.truth.expected_counts("2023-05-01", 14), b.truth.expected_counts("2023-05-01", 14), check_exact=True
    )
    pd.testing.assert_frame_equal(a.truth.waves, b.truth.waves)
    other = simulate_district("tiny", seed=4)
    assert not other.cases["reported_at"].equals(a.cases["reported_at"])


def test_presets_and_overrides():
    assert PRESETS["tiny"]["n_grids"] == 25 and 200 <= PRESETS["small"]["n_grids"] <= 300
    assert PRESETS["district"]["n_grids"] == 3000 and PRESETS["province"]["n_grids"] == 100_000
    tiny = simulate_district("tiny", seed=0)
    assert (tiny.grids["level"] == "grid").sum() == 25
    assert tiny.as_of == pd.Timestamp("2024-01-01")  # one year from 2023-01-01
    custom = simulate_district("tiny", seed=0, n_grids=40, years=0.5, cases_per_grid_year=20)
    assert (custom.grids["level"] == "grid").sum() == 40
    assert custom.cases["reported_at"].max() < pd.Timestamp("2023-07-03")
    with pytest.raises(TypeError, match="unknown simulation setting.*n_grid"):
        simulate_district("tiny", n_grid=10)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        simulate_district("huge")
    with pytest.raises(ValueError, match="or the process explodes"):
        simulate_district("tiny", excitation_self=0.7, excitation_neighbours=0.4)
    with pytest.raises(ValueError, match="cases_per_grid_year must be positive; wave weeks need"):
        simulate_district("tiny", cases_per_grid_year=0, wave_weeks_low=5, wave_weeks_high=2)


def test_hierarchy_and_adjacency(small_district):
    grids = small_district.grids
    assert small_district.levels == ["street", "community", "grid", "microgrid"]
    assert grids.groupby("level").size().to_dict() == {"street": 4, "community": 16, "grid": 256, "microgrid": 769}
    # Queen contiguity on a 16 x 16 lattice: corners 3, edges 5, inside 8 neighbours.
    degree = small_district.adjacency.groupby("grid_id").size()
    assert degree.value_counts().to_dict() == {8: 196, 5: 56, 3: 4}
    pairs = set(zip(small_district.adjacency["grid_id"], small_district.adjacency["neighbour_id"], strict=True))
    assert all((b, a) in pairs for a, b in pairs)
    # Cases sit in buildings (microgrids) and carry the contract's columns.
    assert small_district.cases["grid_id"].isin(grids.loc[grids["level"] == "microgrid", "grid_id"]).all()


def test_truth_is_calibrated(small_district):
    """The truth's expected counts match what happens, window by window and grid by grid
    (disputes: a duplicate report on another platform is not another dispute)."""
    cases = first_reports(small_district.cases)
    grid = _grid_of(small_district, cases)
    expected, observed = [], []
    for cutoff in pd.date_range("2023-02-01", "2024-11-15", freq="21D"):
        e = small_district.truth.expected_counts(cutoff, 21)
        inside = (cases["reported_at"] >= cutoff) & (cases["reported_at"] < cutoff + pd.Timedelta(days=21))
        expected.append(e.to_numpy())
        observed.append(grid[inside].value_counts().reindex(e.index, fill_value=0).to_numpy())
    expected, observed = np.concatenate(expected), np.concatenate(observed)
    assert abs(observed.sum() / expected.sum() - 1) < 0.04
    deciles = pd.qcut(expected, 10, labels=False)
    ratio = pd.Series(observed).groupby(deciles).sum() / pd.Series(expected).groupby(deciles).sum()
    assert ratio.between(0.8, 1.2).all(), ratio
    # Filters: categories and severity split the total as they should.
    e = small_district.truth.expected_counts("2024-03-04", 28)
    by_category = sum(small_district.truth.expected_counts("2024-03-04", 28, categories=[c]) for c in CATEGORIES)
    np.testing.assert_allclose(by_category, e)
    severe = small_district.truth.expected_counts("2024-03-04", 28, min_severity=3)
    assert (severe < e).all() and 0.1 < severe.sum() / e.sum() < 0.3
    community = small_district.truth.expected_counts("2024-03-04", 28, level="community")
    assert community.sum() == pytest.approx(e.sum()) and len(community) == 16


def test_truth_rejects_bad_arguments(small_district):
    truth = small_district.truth
    with pytest.raises(ValueError, match="midnight"):
        truth.expected_counts("2024-03-04 12:00", 7)
    with pytest.raises(ValueError, match="positive number of days"):
        truth.expected_counts("2024-03-04", 0)
    with pytest.raises(ValueError, match="outside the simulated period"):
        truth.expected_counts("2021-01-01", 7)
    with pytest.raises(ValueError, match="unknown categories"):
        truth.expected_counts("2024-03-04", 7, categories=["noise"])
    with pytest.raises(ValueError, match="unknown level"):
        truth.expected_counts("2024-03-04", 7, level="city")


def test_rates_differ_by_more_than_an_order_of_magnitude_partly_unseen(small_district):
    effects = small_district.truth.grid_effects
    assert effects["base_rate"].quantile(0.95) / effects["base_rate"].quantile(0.05) > 10
    counts = _grid_of(small_district).value_counts().reindex(effects.index, fill_value=0)
    assert counts.quantile(0.9) / max(counts.quantile(0.1), 1) > 5
    # The observed attributes explain part of the log rate, the latent factor most of the rest.
    first = small_district.grid_history.groupby("grid_id").first().reindex(effects.index)
    attributes = first.drop(columns="valid_from").assign(population=np.log(first["population"]))
    design = np.column_stack([attributes.to_numpy(float), np.ones(len(first))])
    target = np.log(effects["base_rate"].to_numpy())
    residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
    r2 = 1 - residual.var() / target.var()
    assert 0.2 < r2 < 0.8
    assert np.corrcoef(effects["latent"], residual)[0, 1] > 0.8


def _lag_one_correlation(district) -> float:
    """Correlation of a grid's weekly count of disputes with its next week's, after grid and week means."""
    cases = first_reports(district.cases)
    week = (cases["reported_at"] - pd.Timestamp("2023-01-01")).dt.days // 7
    grids = district.grids.loc[district.grids["level"] == "grid", "grid_id"]
    counts = pd.crosstab(_grid_of(district, cases), week).reindex(grids, fill_value=0).to_numpy(float)
    residual = counts - counts.mean(1, keepdims=True) - counts.mean(0, keepdims=True) + counts.mean()
    return float(np.corrcoef(residual[:, :-1].ravel(), residual[:, 1:].ravel())[0, 1])


def test_self_excitation_matters():
    on = simulate_district("small", seed=1, waves_per_year=0)
    off = simulate_district("small", seed=1, waves_per_year=0, excitation_self=0, excitation_neighbours=0)
    assert _lag_one_correlation(on) > 0.06
    assert abs(_lag_one_correlation(off)) < 0.03
    assert on.cases["dispute_id"].nunique() > 1.3 * off.cases["dispute_id"].nunique()  # a dispute brings others


def test_seasons_and_spring_festival(small_district):
    cases = small_district.cases
    month = cases["reported_at"].dt.month
    noise = cases["category"] == "neighbour_noise"
    assert (noise & month.isin([6, 7, 8])).sum() > 1.4 * (noise & month.isin([12, 1, 2])).sum()
    wages = cases.loc[cases["category"] == "unpaid_wages", "reported_at"]
    days = pd.date_range("2023-01-01", small_district.as_of, inclusive="left")
    before_festival = days_until_next(days) < 28
    rate_before = (days_until_next(wages) < 28).sum() / before_festival.sum()
    assert rate_before > 1.5 * len(wages) / len(days)


def test_escalation_rate_and_its_drivers(small_district):
    cases = first_reports(small_district.cases)  # the disputes: a duplicate is not a party's second dispute
    escalated = cases["escalated_at"].notna()
    assert 0.05 <= escalated.mean() <= 0.15
    assert escalated[cases["severity"] >= 3].mean() > 2 * escalated[cases["severity"] == 1].mean()
    repeat = cases.groupby("party_key").cumcount() > 0
    assert escalated[repeat].mean() > 1.3 * escalated[~repeat].mean()
    delay = cases["resolved_at"] - cases["reported_at"]
    assert escalated[delay > delay.median()].mean() > 3 * escalated[delay <= delay.median()].mean()
    # The true probabilities match the escalations seen (away from the cut-off at the end).
    early = (cases["reported_at"] < small_district.as_of - pd.Timedelta(days=180)).to_numpy()
    truth = small_district.truth.escalation_probability[cases["case_id"]]
    assert truth.index.equals(pd.Index(cases["case_id"]))
    assert abs(truth.to_numpy()[early].mean() - escalated.to_numpy()[early].mean()) < 0.015
    # Outcomes agree with the times that are known at the end of the data.
    assert (cases.loc[cases["outcome"] == "escalated", "escalated_at"].notna()).all()
    assert cases.loc[cases["outcome"] == "open", "resolved_at"].isna().all()


def test_repeat_parties(small_district):
    counts = small_district.cases["party_key"].value_counts()
    assert counts.max() >= 5
    assert 0.1 < small_district.cases["party_key"].map(counts).gt(1).mean() < 0.6


def test_waves_raise_their_category(small_district):
    waves = small_district.truth.waves
    assert 6 <= len(waves) <= 20
    assert waves["cases_per_day"].between(0.3, 1.5).all()
    weeks = (waves["end"] - waves["start"]).dt.days / 7
    assert weeks.between(1, 6).all() and (weeks == weeks.round()).all()
    cases = small_district.cases
    grid = _grid_of(small_district)
    community = grid.map(small_district.ancestors("community"))
    inside = outside = 0.0
    for wave in waves.itertuples():
        unit = grid if wave.level == "grid" else community
        mine = (unit == wave.unit_id) & (cases["category"] == wave.category)
        during = (cases["reported_at"] >= wave.start) & (cases["reported_at"] < wave.end)
        days = (wave.end - wave.start).days
        inside += (mine & during).sum() / days
        outside += (mine & ~during).sum() / (730 - days)
    # Each wave adds its cases per day (and their follow-ups) on top of the usual rate.
    assert 0.9 < (inside - outside) / waves["cases_per_day"].sum() < 2.0
