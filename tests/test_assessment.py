"""Fair assessment of communities: waves fall outside the funnel, quiet units inside; exact
limits, sums across levels, point in time, origins, the plot and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from riskmodel import first_reports, train
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import assess, plots
from riskmodel.evaluation.assessment import FLAGS, control_limits
from riskmodel.models import HistoricalRateBaseline

START, END = pd.Timestamp("2024-07-01"), pd.Timestamp("2024-08-26")  # two 28-day windows
SEEDS = range(20)


def _before(district, start=START):
    return district.replace(cases=district.cases[district.cases["reported_at"] < start], as_of=start)


def _model(district, start=START):
    return train(_before(district, start), model=HistoricalRateBaseline(), horizon=28, track=False)


@pytest.fixture(scope="module")
def small():
    return simulate_district("small", seed=0)


@pytest.fixture(scope="module")
def trained(small):
    return _model(small)


def _over_seeds() -> pd.DataFrame:
    """Every community of every seed: its flag, whether a community wave ran in the period
    and the cases the wave added there (its rate times its days in the period), and whether
    a one-grid wave touched it."""
    rows = []
    for seed in SEEDS:
        district = simulate_district("small", seed=seed)
        table = assess(district, _model(district), (START, END)).set_index("grid_id")
        waves = district.truth.waves
        waves = waves[(waves["start"] < END) & (waves["end"] > START)]
        days = (waves["end"].clip(upper=END) - waves["start"].clip(lower=START)).dt.days
        added = (days * waves["cases_per_day"])[waves["level"] == "community"].groupby(waves["unit_id"]).sum()
        touched = set(district.ancestors("community").reindex(waves.loc[waves["level"] == "grid", "unit_id"]))
        rows.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "flag": table["flag"],
                    "added": added.reindex(table.index, fill_value=0.0),
                    "grid_wave": table.index.isin(touched),
                }
            )
        )
    return pd.concat(rows)


@pytest.mark.slow  # 20 seeds simulated, trained and assessed end to end: about 20 s
def test_communities_hit_by_a_wave_fall_above_the_limits_and_quiet_ones_within():
    over_seeds = _over_seeds()  # one test: the 20 seeds are simulated once
    # Measured over seeds 0-19: 16 community waves ran in the period; 12 (75%) of those
    # communities are above the 95% limit, 10 above the 99.8% one; of the 8 whose wave
    # added 15 cases or more, all 8 are above the 95% limit and 6 above the 99.8% one.
    hit = over_seeds[over_seeds["added"] > 0]
    strong = over_seeds[over_seeds["added"] >= 15]
    assert len(hit) >= 12 and len(strong) >= 6
    assert hit["flag"].isin(["above_998", "above_95"]).mean() >= 0.6
    assert strong["flag"].isin(["above_998", "above_95"]).mean() >= 0.85
    assert (strong["flag"] == "above_998").mean() >= 0.6
    # Measured: 295 community-periods without any wave; 82% within the 95% limits (the
    # nominal 95% is not reached: the historical rate misses the quarterly changes of
    # each community's rate, and the true process is self-exciting; the simulator's
    # own expected counts put 93% within), 2.4% above the 99.8% limit.
    quiet = over_seeds[(over_seeds["added"] == 0) & ~over_seeds["grid_wave"]]
    assert len(quiet) >= 250
    assert (quiet["flag"] == "within").mean() >= 0.75
    assert (quiet["flag"] == "above_998").mean() <= 0.05
    assert hit["flag"].str.startswith("above").mean() >= 4 * quiet["flag"].str.startswith("above").mean()


@pytest.mark.parametrize("expected", [0.3, 2.0, 7.5, 40.0, 250.0])
@pytest.mark.parametrize("coverage", [0.95, 0.998])
def test_control_limits_are_the_exact_poisson_quantiles(expected, coverage):
    lower, upper = control_limits([expected], coverage)
    low, high = lower[0] * expected, upper[0] * expected
    tail = (1 - coverage) / 2
    assert low == round(low) and high == round(high)
    # The smallest counts whose cumulative probabilities reach the tails.
    assert stats.poisson.cdf(high, expected) >= 1 - tail > stats.poisson.cdf(high - 1, expected)
    assert stats.poisson.cdf(low, expected) >= tail
    assert low == 0 or stats.poisson.cdf(low - 1, expected) < tail


def test_flags_agree_with_the_limits_and_the_order(small, trained):
    table = assess(small, trained, (START, END), level="grid")
    none = table["expected"] == 0  # grids without history: any case there is beyond the model
    beyond = np.where(table.loc[none, "observed"] > 0, "above_998", "within")
    assert none.any() and (table.loc[none, "flag"] == beyond).all()
    assert table.loc[none, "ratio"].isna().all()
    table = table[~none]
    count = table["observed"].to_numpy()
    e = table["expected"].to_numpy()
    for flag, coverage in (("998", 0.998), ("95", 0.95)):
        lower, upper = control_limits(e, coverage)
        above = count > np.round(upper * e)
        below = count < np.round(lower * e)
        assert np.array_equal(above, table["flag"].isin(["above_998"] if flag == "998" else ["above_998", "above_95"]))
        assert np.array_equal(below, table["flag"].isin(["below_998"] if flag == "998" else ["below_998", "below_95"]))
    assert set(table["flag"]) <= set(FLAGS)
    assert table["p_value"].is_monotonic_increasing and table["flag"].nunique() >= 3
    assert np.allclose(table["ratio"], count / e) and np.allclose(table["z"], (count - e) / np.sqrt(e))


def test_expected_and_observed_sum_up_the_hierarchy(small, trained):
    period = (START, END + pd.Timedelta(days=10))  # a partial third window
    by_level = {level: assess(small, trained, period, level=level) for level in ("grid", "community", "street")}
    totals = {level: (t["expected"].sum(), t["observed"].sum()) for level, t in by_level.items()}
    assert np.allclose([e for e, _ in totals.values()], totals["grid"][0])
    assert len({o for _, o in totals.values()}) == 1
    grids = by_level["grid"].set_index("grid_id")
    up = small.ancestors("community").reindex(grids.index)
    community = by_level["community"].set_index("grid_id")
    assert np.allclose(grids["expected"].groupby(up).sum().reindex(community.index), community["expected"])
    in_period = first_reports(small.cases)["reported_at"].between(*period, inclusive="left")  # disputes
    assert totals["grid"][1] == in_period.sum()


def test_the_last_partial_window_counts_pro_rata(small, trained):
    whole = assess(small, trained, (START, START + pd.Timedelta(days=28)), level="street").set_index("grid_id")
    part = assess(small, trained, (START, START + pd.Timedelta(days=7)), level="street").set_index("grid_id")
    assert np.allclose(part["expected"], whole["expected"].reindex(part.index) / 4)
    assert part.attrs["windows"] == [START]
    assert len(assess(small, trained, (START, END + pd.Timedelta(days=1)), level="street").attrs["windows"]) == 3


def test_data_after_the_period_is_not_used(small, trained):
    cases = small.cases
    later = cases[cases["reported_at"] >= END].assign(grid_id=cases["grid_id"].iloc[0])  # all moved to one unit
    changed = small.replace(cases=pd.concat([cases[cases["reported_at"] < END], later]))
    pd.testing.assert_frame_equal(assess(small, trained, (START, END)), assess(changed, trained, (START, END)))


def test_only_the_chosen_origins_are_observed(small, trained):
    small = small.replace(cases=small.cases.drop(columns="dispute_id"))  # every report a dispute: origins by row
    origin = np.where(np.arange(len(small.cases)) % 3 == 0, "patrol", "resident")
    with_origin = small.replace(cases=small.cases.assign(origin=origin))
    unknown = assess(small, trained, (START, END))
    resident = assess(with_origin, trained, (START, END))
    both = assess(with_origin, trained, (START, END), origins=("resident", "patrol"))
    in_period = small.cases["reported_at"].between(START, END, inclusive="left").to_numpy()
    assert resident["observed"].sum() == (in_period & (origin == "resident")).sum()
    assert both["observed"].sum() == unknown["observed"].sum() == in_period.sum()
    assert set(unknown["origin"]) == {"unknown"} and set(resident["origin"]) == {"resident"}


def test_an_in_sample_model_gives_a_warning(small):
    with pytest.warns(UserWarning, match="in-sample"):
        assess(small, _model(small, pd.Timestamp("2024-12-01")), (START, END))


def test_funnel_plot_draws_the_limits_and_labels_the_units_outside(small, trained):
    table = assess(small, trained, (START, END), level="grid")
    figure = plots.funnel_plot(table)
    axes = figure.axes[0]
    assert len(axes.lines) == 5  # two limits at each coverage, the line at 1
    outside = set(table.loc[(table["flag"] != "within") & (table["expected"] > 0), "grid_id"])
    assert outside and {t.get_text() for t in axes.texts} == outside
    with pytest.raises(ValueError, match="lacks"):
        plots.funnel_plot(table.drop(columns="flag"))


@pytest.mark.parametrize(
    ("period", "options", "message"),
    [
        ((END, START), {}, "must end after it starts"),
        ((START, START), {}, "must end after it starts"),
        (("2022-01-01", "2022-03-01"), {}, "after the data's first case"),
        (("2024-12-01", "2025-02-01"), {}, "by the data's end"),
        (("not a time", END), {}, "pair of times"),
        ((START,), {}, "pair of times"),
        ((START, END), {"level": "county"}, "unknown level 'county'"),
        ((START, END), {"level": "microgrid"}, "below the model's level"),
        ((START, END), {"origins": ("hotline",)}, "origins must be"),
        ((START, END), {"origins": "resident"}, "origins must be"),
        ((START, END), {"origins": ()}, "origins must be"),
    ],
)
def test_bad_input_is_refused_clearly(small, trained, period, options, message):
    with pytest.raises(ValueError, match=message):
        assess(small, trained, period, **options)
