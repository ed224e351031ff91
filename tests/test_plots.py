"""The backtest figures: what each draws, the hit rate matching the leaderboard, the files, and bad input."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from riskmodel import first_reports
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest, metrics, plots
from riskmodel.models import HistoricalRateBaseline, LastPeriodBaseline, LogisticRisk

CUTOFFS = ["2023-10-02", "2023-10-30"]
MODELS = {"oracle", "HistoricalRateBaseline", "LastPeriodBaseline"}


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def grid(tiny):
    return backtest(
        tiny, [HistoricalRateBaseline(), LastPeriodBaseline()], cutoffs=CUTOFFS, horizon=28, track=False, progress=False
    )


@pytest.fixture(scope="module")
def escalation(tiny):
    return backtest(tiny, [LogisticRisk()], cutoffs=CUTOFFS, target="escalation", track=False, progress=False)


def _lines(figure):
    assert isinstance(figure, Figure)
    return {line.get_label(): line for line in figure.axes[0].lines}


def test_hit_rate_curve_matches_the_leaderboard(grid):
    figure = plots.hit_rate_curve(grid)
    lines = _lines(figure)
    assert set(lines) == MODELS | {"random"}
    assert lines["oracle"].get_linestyle() == "--"
    assert figure.axes[0].get_xlabel() == "share of units chosen"
    assert "hit rate" in figure.axes[0].get_ylabel()
    for name in MODELS:
        x, y = lines[name].get_data()
        assert x[0] == 0 and y[0] == 0 and x.max() == pytest.approx(0.3)
        assert y[np.isclose(x, 0.05)][0] == pytest.approx(grid.leaderboard.loc[name, "hit_rate_at_5pct"])
        assert np.all(np.diff(y) >= -1e-12)  # choosing more units never catches fewer cases


def test_hit_rate_curve_custom_shares(grid):
    x, y = _lines(plots.hit_rate_curve(grid, shares=[0.05, 1.0]))["HistoricalRateBaseline"].get_data()
    assert list(x) == [0.05, 1.0] and y[1] == pytest.approx(1.0)


def test_hit_rate_curve_equals_hit_rate_per_fold_with_ties():
    """The curve ranks each fold once; every point is metrics.hit_rate's, ties shared alike,
    and a fold without a case is skipped at every share but 0."""
    rng = np.random.default_rng(3)
    rows = []
    for fold in range(4):
        y = rng.poisson(0.4, 200) * (fold != 3)  # the last fold has no case
        score = rng.integers(0, 12, 200) / 12  # many ties at every boundary
        rows.append(pd.DataFrame({"model": "m", "fold": fold, "probability": score, "y": y > 0, "y_count": y}))
    predictions = pd.concat(rows, ignore_index=True)
    result = type("Result", (), {"predictions": predictions, "leaderboard": pd.DataFrame(index=["m"])})()
    result.kind = type("Kind", (), {"counts": True})()
    shares = np.array([0.0, 0.013, 0.05, 0.3, 1.0])
    _, y = _lines(plots.hit_rate_curve(result, shares=shares))["m"].get_data()
    expected = [
        np.mean(
            [
                metrics.hit_rate(f["y_count"], f["probability"], k=k) if k > 0 else 0.0
                for _, f in predictions[predictions["fold"] < 3].groupby("fold")
            ]
        )
        for k in shares
    ]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"shares must lie in \[0, 1\], got \[1.5\]"):
        plots.hit_rate_curve(result, shares=[0.1, 1.5])


@pytest.mark.parametrize("which", ["grid", "escalation"])
def test_calibration_curve_both_targets(which, grid, escalation):
    result = {"grid": grid, "escalation": escalation}[which]
    figure = plots.calibration_curve(result, bins=5)
    lines = _lines(figure)
    assert set(lines) == set(result.leaderboard.index) | {"perfect"}
    assert (figure.axes[0].get_xlabel(), figure.axes[0].get_ylabel()) == (
        "mean predicted probability",
        "observed frequency",
    )
    for name in result.leaderboard.index:
        x, y = lines[name].get_data()
        assert 1 <= len(x) <= 5 and np.all((0 <= x) & (x <= 1)) and np.all((0 <= y) & (y <= 1))
        rows = result.predictions[result.predictions["model"] == name]
        # the bins hold every row: their mean predictions average (weighted) to the overall mean
        assert x.min() <= rows["probability"].mean() <= x.max()
    with pytest.raises(ValueError, match="bins"):
        plots.calibration_curve(grid, bins=0)


def test_risk_map_colours_the_units_and_counts_the_cases(grid, tiny):
    figure = plots.risk_map(grid, tiny)
    risk, seen = figure.axes[:2]
    assert figure.axes[2].get_ylabel() == "probability of at least one case" and figure.axes[3].get_ylabel() == "cases"
    assert (risk.get_xlabel(), risk.get_ylabel()) == ("longitude (°)", "latitude (°)")
    (units,), (counts,) = risk.collections, seen.collections  # no dot per case: counts per unit
    rows = grid.predictions[
        (grid.predictions["model"] == grid.best)
        & (grid.predictions.index.get_level_values("cutoff") == pd.Timestamp(CUTOFFS[-1]))
    ]
    assert np.allclose(units.get_array(), rows["probability"])
    cases = first_reports(tiny.cases)  # the map counts disputes
    reported = cases["reported_at"]
    window = (reported >= CUTOFFS[-1]) & (reported < pd.Timestamp(CUTOFFS[-1]) + pd.Timedelta(days=28))
    per_grid = cases.loc[window, "grid_id"].map(tiny.ancestors("grid")).value_counts()
    assert np.nansum(counts.get_array()) == per_grid.sum()  # the grid level is not the micro level: nothing hidden
    assert grid.best in risk.get_title() and "30 Oct 2023 to 26 Nov 2023" in seen.get_title()


def test_risk_map_frame_aggregates_a_micro_level(tiny):
    micro = backtest(
        tiny, [HistoricalRateBaseline()], cutoffs=CUTOFFS, horizon=28, level="microgrid", track=False, progress=False
    )
    units = plots.risk_map_frame(micro, tiny)
    assert units.attrs["level"] == "grid" and set(units.index) <= set(
        tiny.grids.loc[tiny.grids["level"] == "grid", "grid_id"]
    )
    rows = micro.predictions[
        (micro.predictions["model"] == micro.best)
        & (micro.predictions.index.get_level_values("cutoff") == pd.Timestamp(CUTOFFS[-1]))
    ]
    assert units["expected_count"].sum() == pytest.approx(rows["expected"].sum())  # expected counts add up
    owner = tiny.ancestors("grid").reindex(rows.index.get_level_values(0))
    one = owner.iloc[0]
    p = rows["probability"].to_numpy()[(owner == one).to_numpy()]
    assert units.loc[one, "probability"] == pytest.approx(1 - np.prod(1 - p))
    kept = plots.risk_map_frame(micro, tiny, aggregate=False)
    assert kept.attrs["level"] == "microgrid" and len(kept) == (tiny.grids["level"] == "microgrid").sum()
    # at the micro level, counts of 1 and 2 are hidden (light grey), never drawn as numbers
    seen = plots.risk_map(micro, tiny, aggregate=False, k=3).axes[1]
    shown, hidden = seen.collections
    values = shown.get_array()
    assert not np.any((values > 0) & (values < 3)) and "hidden" in seen.get_legend().get_texts()[0].get_text()
    assert len(hidden.get_paths()) == ((kept["cases"] > 0) & (kept["cases"] < 3)).sum() > 0


def test_risk_map_of_the_final_forecast_and_saturated_probabilities(grid, tiny):
    forecast = pd.DataFrame(
        {"grid_id": tiny.grids.loc[tiny.grids["level"] == "grid", "grid_id"], "as_of": pd.Timestamp("2023-12-01")}
    )
    forecast["probability"] = np.linspace(0.995, 1.0, len(forecast))
    forecast["expected_count"] = np.arange(len(forecast), dtype=float)
    assert plots.probability_saturated(forecast["probability"])
    figure = plots.risk_map(grid, tiny, forecast=forecast.assign(model="final"))
    risk, seen = figure.axes[:2]
    assert risk.get_title() == "final forecast: expected cases" and figure.axes[2].get_ylabel() == "expected cases"
    assert np.allclose(risk.collections[0].get_array(), forecast["expected_count"])
    assert "03 Nov 2023 to 30 Nov 2023" in seen.get_title()  # the cases of the horizon before as_of


def test_risk_map_options_and_fallbacks(grid, tiny):
    first = plots.risk_map(grid, tiny, model="oracle", fold=0).axes[1]
    assert first.get_title().startswith("cases reported 02 Oct 2023")
    # without areas the units are square markers
    data = tiny.replace(grids=tiny.grids.drop(columns="area_km2"), cases=tiny.cases.drop(columns=["lon", "lat"]))
    (units,) = plots.risk_map(grid, data).axes[0].collections
    assert len(units.get_offsets()) == (tiny.grids["level"] == "grid").sum()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"fold": 2}, "fold 2 is out of range: the result has 2 folds"),
    ],
)
def test_risk_map_bad_options(grid, tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plots.risk_map(grid, tiny, **kwargs)


def test_units_without_coordinates(grid, tiny, tmp_path):
    bare = tiny.replace(grids=tiny.grids.drop(columns=["lon", "lat"]))
    with pytest.raises(ValueError, match="the grid units have no coordinates"):
        plots.risk_map(grid, bare)
    assert [p.name for p in plots.save_figures(grid, bare, tmp_path)] == [
        "hit_rate_curve.png",
        "calibration_curve.png",
        "pit_histogram.png",
        "metrics_by_fold.png",
    ]


def test_metrics_by_fold(grid, escalation):
    figure = plots.metrics_by_fold(grid)
    lines = _lines(figure)
    assert set(lines) == MODELS and figure.axes[0].get_ylabel() == "Hit rate at 5%"
    legend = figure.axes[0].get_legend()
    assert legend.get_bbox_to_anchor().x0 > figure.axes[0].get_window_extent().x1 - 1  # outside the axes
    assert figure.axes[0].get_xlabel() == "test cutoff"
    folds = grid.folds[grid.folds["model"] == "oracle"]
    assert np.allclose(lines["oracle"].get_ydata(), folds["hit_rate_at_5pct"])
    assert set(_lines(plots.metrics_by_fold(escalation, "roc_auc"))) == {"oracle", "LogisticRisk"}
    with pytest.raises(ValueError, match=r"unknown metric 'hit_rate'; the folds have: roc_auc, .*brier"):
        plots.metrics_by_fold(grid, "hit_rate")
    with pytest.raises(ValueError, match="unknown metric 'hit_rate_at_5pct'"):  # not a metric of cases
        plots.metrics_by_fold(escalation)


def test_pit_histogram(grid, escalation):
    figure = plots.pit_histogram(grid, bins=5)
    stairs = {patch.get_label(): patch for patch in figure.axes[0].patches}
    assert set(stairs) == MODELS
    for patch in stairs.values():
        density, edges = patch.get_data().values, patch.get_data().edges
        assert len(density) == 5 and np.diff(edges) @ density == pytest.approx(1.0)  # a density over [0, 1]
    with pytest.raises(ValueError, match="PIT histogram needs a grid-target backtest"):
        plots.pit_histogram(escalation)


def test_grid_only_figures_refuse_the_escalation_target(escalation, tiny):
    with pytest.raises(ValueError, match="hit-rate curve needs a grid-target backtest.*'escalation'"):
        plots.hit_rate_curve(escalation)
    with pytest.raises(ValueError, match="risk map needs a grid-target backtest"):
        plots.risk_map(escalation, tiny)


def test_save_figures(grid, escalation, tiny, tmp_path):
    paths = plots.save_figures(grid, tiny, tmp_path / "grid")
    assert [p.name for p in paths] == [
        "hit_rate_curve.png",
        "calibration_curve.png",
        "pit_histogram.png",
        "risk_map.png",
        "metrics_by_fold.png",
    ]
    for path in paths:
        assert path.parent == tmp_path / "grid" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paths = plots.save_figures(escalation, tiny, tmp_path / "escalation")
    assert [p.name for p in paths] == ["calibration_curve.png", "metrics_by_fold.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_figures_draw_in_threads(grid, tiny):
    def render(draw):
        figure = draw()
        figure.savefig(io.BytesIO(), format="png")
        return figure

    with ThreadPoolExecutor(4) as pool:
        figures = list(
            pool.map(
                render,
                [
                    lambda: plots.hit_rate_curve(grid),
                    lambda: plots.calibration_curve(grid),
                    lambda: plots.risk_map(grid, tiny),
                    lambda: plots.metrics_by_fold(grid),
                ]
                * 2,
            )
        )
    assert all(isinstance(f, Figure) and f.axes for f in figures)
