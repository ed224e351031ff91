"""Point-in-time features: agreement with the slow reference, no look-ahead, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskmodel import Dataset, ValidationError, first_reports
from riskmodel.features import (
    CaseFeatureBuilder,
    GridPanelBuilder,
    Target,
    build_case_features,
    build_grid_panel,
    describe,
)
from riskmodel.holidays import SPRING_FESTIVAL

from . import reference

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2024-01-01")
CATEGORIES = ["noise", "wages", "family"]


def random_dataset(seed: int, n_cases: int, visits: bool = False) -> Dataset:
    """A small random dataset with ties, missing values, cases above the grid level and sparse history.

    Every category occurs, and some cases are resolved or escalated at their report time.
    With ``visits``, the cases have an ``origin`` (resident or patrol) and the dataset a
    visits table: visits to units of every level, with ties in time and missing outcomes.
    """
    rng = np.random.default_rng(seed)
    grids = pd.DataFrame(
        {
            "grid_id": ["S1", "C1", "C2", "G1", "G2", "G3", "G4", "G5", "M1", "M2", "M3"],
            "parent_id": [None, "S1", "S1"]
            + list(rng.choice(["C1", "C2"], 5))
            + list(rng.choice(["G1", "G2", "G4"], 3)),
            "level": ["street", "community", "community"] + ["grid"] * 5 + ["microgrid"] * 3,
        }
    )
    pairs = [(a, b) for a in ("G1", "G2", "G3", "G4") for b in ("G1", "G2", "G3", "G4") if a < b and rng.random() < 0.5]
    adjacency = pd.DataFrame([p for a, b in pairs for p in ((a, b), (b, a))], columns=["grid_id", "neighbour_id"])
    minutes = rng.integers(0, 365 * 24 * 60, n_cases)
    minutes[rng.random(n_cases) < 0.2] = minutes[0]  # ties
    reported = START + pd.to_timedelta(minutes, unit="min")
    resolved, escalated = (
        reported + pd.to_timedelta(rng.integers(0, days * 24 * 60, n_cases) * (rng.random(n_cases) > 0.2), unit="min")
        for days in (60, 40)
    )
    category = rng.choice(CATEGORIES, n_cases)
    category[:3] = CATEGORIES
    cases = pd.DataFrame(
        {
            "case_id": [f"k{i}" for i in range(n_cases)],
            "reported_at": reported,
            "grid_id": rng.choice(["G1", "G2", "G3", "G4", "G5", "M1", "M2", "M3", "C1"], n_cases),
            "category": category,
            "severity": rng.integers(1, 5, n_cases),
            "source": rng.choice(["hotline", "police", None], n_cases),
            "party_key": rng.choice(["p1", "p2", "p3", "p4", None], n_cases),
            "resolved_at": pd.Series(resolved).where((rng.random(n_cases) < 0.7) & (resolved < END)),
            "escalated_at": pd.Series(escalated).where((rng.random(n_cases) < 0.3) & (escalated < END)),
        }
    )
    n_snap = 8
    history = pd.DataFrame(
        {
            "grid_id": rng.choice(["G1", "G2", "G3", "G5"], n_snap),
            "valid_from": START + pd.to_timedelta(rng.choice(np.arange(0, 365, 30), n_snap, replace=False), unit="D"),
            "population": rng.integers(100, 1000, n_snap).astype(float),
            "share": np.where(rng.random(n_snap) < 0.3, np.nan, rng.random(n_snap)),
        }
    )
    data = Dataset(cases=cases, grids=grids, grid_history=history, adjacency=adjacency, as_of=END)
    return _with_visits(data, rng) if visits else data


def _with_visits(data: Dataset, rng) -> Dataset:
    n = int(rng.integers(0, 30))
    days = rng.integers(0, 365 * 24, n)
    days[rng.random(n) < 0.2] = days[0] if n else 0  # ties
    visits = pd.DataFrame(
        {
            "visit_id": [f"v{i:02d}" for i in rng.permutation(n)],
            "grid_id": rng.choice(data.grids["grid_id"], n),
            "visited_at": START + pd.to_timedelta(days, unit="h"),
            "kind": rng.choice(["screening", "mediation"], n),
            "outcome": rng.choice(["issue_found", "resolved_on_site", "no_issue", "not_reached", None], n),
        }
    )
    origin = rng.choice(["resident", "patrol"], len(data.cases), p=[0.7, 0.3])
    return data.replace(cases=data.cases.assign(origin=origin), visits=visits)


OPTIONS = dict(windows=(7, 28, 91), half_lives=(3, 30), repeat_windows=(28, 91), trends=((7, 28), (28, 91)))


def _cutoffs(data: Dataset, rng) -> list[pd.Timestamp]:
    times = data.cases["reported_at"].sort_values()
    exact = list(times.sample(2, random_state=int(rng.integers(1 << 30))))  # cutoffs on a case time
    later = [times.iloc[0] + pd.Timedelta(minutes=int(m)) for m in rng.integers(1, 300 * 24 * 60, 2)]
    return sorted({t for t in exact + later if t <= END})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_cases=st.integers(3, 60))
def test_grid_panel_agrees_with_the_reference(seed, n_cases):
    data = random_dataset(seed, n_cases)
    cutoffs = _cutoffs(data, np.random.default_rng(seed))
    builder = GridPanelBuilder(cutoffs=cutoffs, horizon=14, target={"categories": ["noise", "wages"]}, **OPTIONS)
    panel = builder.fit(data).build(data)
    expected = reference.grid_panel(data, cutoffs, 14, builder, SPRING_FESTIVAL, target_categories={"noise", "wages"})
    assert list(panel.X.index) == list(expected.index)
    for name in panel.X.columns:
        np.testing.assert_allclose(
            panel.X[name].to_numpy(float), expected[name].to_numpy(float), rtol=2e-6, atol=1e-6, err_msg=name
        )
    known = panel.label_known.to_numpy()
    np.testing.assert_array_equal(panel.y_count.to_numpy()[known], expected["y_count"].to_numpy()[known])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_cases=st.integers(3, 60), level=st.sampled_from(["grid", "community"]))
def test_visit_and_patrol_features_agree_with_the_reference(seed, n_cases, level):
    data = random_dataset(seed, n_cases, visits=True)
    cutoffs = _cutoffs(data, np.random.default_rng(seed))
    visited = data.visits["visited_at"]
    visited = visited[visited >= data.cases["reported_at"].min()]
    if len(visited):  # cutoffs on a visit time too
        cutoffs = sorted({*cutoffs, *visited.sample(2, replace=True, random_state=seed)})
    builder = GridPanelBuilder(cutoffs=cutoffs, horizon=14, level=level, **OPTIONS).fit(data)
    panel = builder.build(data)
    new = [c for c in panel.X.columns if "visit" in c or c.startswith("patrol_")]
    assert len(new) == 9 and builder.visit_features_ and builder.patrol_features_
    expected = reference.grid_panel(data, cutoffs, 14, builder, SPRING_FESTIVAL)
    for name in new:
        np.testing.assert_allclose(
            panel.X[name].to_numpy(float), expected[name].to_numpy(float), rtol=2e-6, atol=1e-5, err_msg=name
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_cases=st.integers(3, 60))
def test_case_features_agree_with_the_reference(seed, n_cases):
    data = random_dataset(seed, n_cases)
    features = build_case_features(data, escalation_days=10, windows=(7, 28, 91), escalations_window=28)
    expected = reference.case_features(data, "grid", (7, 28, 91), 10, escalations_window=28)
    for name in expected.columns.drop("y"):
        np.testing.assert_array_equal(features.X[name].to_numpy(float), expected[name].to_numpy(float), err_msg=name)
    np.testing.assert_array_equal(features.y.to_numpy(), expected["y"].to_numpy())
    np.testing.assert_array_equal(features.label_known.to_numpy(), expected["y"].notna().to_numpy())


def _future_changes(data: Dataset, cutoff: pd.Timestamp, rng) -> Dataset:
    """Records at or after the cutoff: new cases, later resolutions and escalations, later snapshots.

    About 30% of the moved times and of the new cases fall exactly at the cutoff (or the
    report time, when later).
    """
    cases = data.cases.copy()
    for column in ("resolved_at", "escalated_at"):
        later = cases[column].isna() | (cases[column] >= cutoff)
        shift = pd.to_timedelta(rng.integers(0, 20 * 24 * 60, len(cases)) * (rng.random(len(cases)) > 0.3), unit="min")
        moved = np.maximum(cases["reported_at"], cutoff) + shift
        new = pd.Series(moved, index=cases.index).where((rng.random(len(cases)) < 0.7) & (moved < END))
        cases[column] = cases[column].where(~later, new)
    n_new = int(rng.integers(1, 10))
    offsets = pd.to_timedelta(
        rng.integers(0, max(int((END - cutoff) / pd.Timedelta(minutes=1)), 1), n_new) * (rng.random(n_new) > 0.3),
        unit="min",
    )
    added = pd.DataFrame(
        {
            "case_id": [f"new{i}" for i in range(n_new)],
            "reported_at": cutoff + offsets,
            "grid_id": rng.choice(["G1", "G3", "M2", "C2"], n_new),
            "category": rng.choice(CATEGORIES + ["brand_new"], n_new),
            "severity": rng.integers(1, 5, n_new),
            "source": "hotline",
            "party_key": rng.choice(["p1", "p2", "p9"], n_new),
        }
    )
    history = pd.concat(
        [
            data.grid_history,
            pd.DataFrame(
                {
                    "grid_id": ["G1", "G4"],
                    "valid_from": [cutoff + pd.Timedelta(seconds=1), END],
                    "population": [5.0, 6.0],
                    "share": [0.9, 0.1],
                }
            ),
        ],
        ignore_index=True,
    )
    if "origin" in cases.columns:
        added["origin"] = rng.choice(["resident", "patrol"], n_new)
    changed = data.replace(cases=pd.concat([cases, added], ignore_index=True), grid_history=history)
    if data.visits is not None:  # visits at or after the cutoff, and outcomes of those already there changed
        later = data.visits["visited_at"] >= cutoff
        visits = data.visits.assign(outcome=data.visits["outcome"].where(~later, "issue_found"))
        extra = pd.DataFrame(
            {
                "visit_id": [f"w{i}" for i in range(n_new)],
                "grid_id": rng.choice(data.grids["grid_id"], n_new),
                "visited_at": cutoff + offsets,
                "kind": "mediation",
                "outcome": rng.choice(["no_issue", None], n_new),
            }
        )
        changed = changed.replace(visits=pd.concat([visits, extra], ignore_index=True))
    return changed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n_cases=st.integers(3, 80), visits=st.booleans())
def test_nothing_at_or_after_the_cutoff_changes_a_feature(seed, n_cases, visits):
    rng = np.random.default_rng(seed)
    data = random_dataset(seed, n_cases, visits=visits)
    cutoffs = _cutoffs(data, rng)
    cutoff = cutoffs[int(rng.integers(0, len(cutoffs)))]
    changed = _future_changes(data, cutoff, rng)
    builder = GridPanelBuilder(cutoffs=[cutoff], horizon=28, **OPTIONS).fit(data)
    pd.testing.assert_frame_equal(builder.build(changed).X, builder.build(data).X)

    before = data.cases.loc[data.cases["reported_at"] < cutoff, "case_id"]
    cases = CaseFeatureBuilder().fit(data)
    pd.testing.assert_frame_equal(cases.transform(changed).loc[before], cases.transform(data).loc[before])


def test_panel_shape_labels_and_no_history(small_district):
    panel = build_grid_panel(
        small_district, cutoffs={"start": "2023-03-06", "end": "2024-12-30", "freq": "W-MON"}, horizon=28
    )
    n_grids = (small_district.grids["level"] == "grid").sum()
    assert panel.X.shape == (n_grids * 96, 116) and panel.X.dtypes.eq("float32").all()
    assert panel.X.columns.is_unique and list(panel.X.columns) == list(describe()["name"])
    # Every grid at every cutoff; the last four cutoffs' windows run past the end of the data.
    assert panel.X.groupby(level="cutoff").size().eq(n_grids).all()
    last = panel.X.index.get_level_values("cutoff") > pd.Timestamp("2024-12-03")
    assert last.sum() == 4 * n_grids
    assert panel.y_count[last].isna().all() and not panel.label_known[last].any()
    assert panel.y_count[~last].notna().all() and (panel.y[~last] == (panel.y_count[~last] >= 1)).all()
    # Units without history get zeros and the flag.
    quiet = panel.X["no_history"] == 1
    assert quiet.any() and (panel.X.loc[quiet, "count_364d"] == 0).all()
    # The expected counts of the truth track the label.
    cutoff = pd.Timestamp("2024-06-03")
    truth = small_district.truth.expected_counts(cutoff, 28)
    labels = panel.y_count.xs(cutoff, level="cutoff").reindex(truth.index)
    assert np.corrcoef(truth, labels)[0, 1] > 0.4


def test_targets_horizons_and_levels(small_district):
    cutoffs = ["2024-03-04", "2024-06-03"]
    every = build_grid_panel(small_district, cutoffs=cutoffs, horizon=28)
    noise = build_grid_panel(small_district, cutoffs=cutoffs, horizon="28D", target="neighbour_noise")
    severe = build_grid_panel(small_district, cutoffs=cutoffs, horizon=28, target=Target(min_severity=3))
    escalations = build_grid_panel(small_district, cutoffs=cutoffs, horizon=28, target={"escalations": True})
    assert (noise.y_count <= every.y_count).all() and noise.y_count.sum() < every.y_count.sum()
    assert (severe.y_count <= every.y_count).all() and severe.y_count.sum() > 0
    assert 0 < escalations.y_count.sum() < every.y_count.sum()
    month = build_grid_panel(small_district, cutoffs=cutoffs, horizon=pd.DateOffset(months=1))
    assert set(month.X["horizon_days"]) == {31.0, 30.0}
    community = build_grid_panel(small_district, cutoffs=cutoffs, horizon=28, level="community")
    assert len(community.X) == 2 * 16 and community.y_count.sum() == every.y_count.sum()
    street = build_grid_panel(small_district, cutoffs=cutoffs, horizon=28, level="street")
    assert street.X.filter(like="parent_").isna().all().all()  # the top level has no parent


def test_pipeline_protocol(small_district):
    from sklearn.base import clone

    builder = GridPanelBuilder(cutoffs=["2024-06-03"], horizon=28)
    X = builder.fit_transform(small_district)
    assert list(builder.get_feature_names_out()) == list(X.columns)
    assert clone(builder).get_params() == builder.get_params()
    # New data with an unseen category keeps the learned columns.
    cases = small_district.cases.assign(category=small_district.cases["category"].replace({"other": "new"}))
    assert list(builder.transform(small_district.replace(cases=cases)).columns) == list(X.columns)
    # The input is a dataset, not a matrix: there is no number of input features.
    assert not hasattr(builder, "n_features_in_")
    case_builder = CaseFeatureBuilder(escalation_days=14)
    assert list(case_builder.fit_transform(small_district).columns) == list(case_builder.get_feature_names_out())
    assert clone(case_builder).get_params() == case_builder.get_params()


def test_a_fitted_builder_gives_the_same_columns_on_any_data():
    data = random_dataset(0, 40)
    grid = GridPanelBuilder(cutoffs=["2023-09-01"], horizon=14, **OPTIONS).fit(data)
    cases = CaseFeatureBuilder().fit(data)
    assert "attr_population" in grid.get_feature_names_out() and "source_police" in cases.get_feature_names_out()
    # New data: no population column, no wages or police cases, a category never seen.
    other = data.replace(
        cases=data.cases.assign(
            category=data.cases["category"].replace({"wages": "brand_new"}),
            source=data.cases["source"].replace({"police": "hotline"}),
        ),
        grid_history=data.grid_history.drop(columns="population"),
    )
    X = grid.transform(other)
    assert list(X.columns) == list(grid.get_feature_names_out())
    assert X["attr_population"].isna().all() and (X.filter(regex="^count_.*_wages$") == 0).all().all()
    Z = cases.transform(other)
    assert list(Z.columns) == list(cases.get_feature_names_out())
    assert Z["attr_population"].isna().all() and (Z[["category_wages", "source_police"]] == 0).all().all()


def test_data_without_cases_at_the_level():
    data = random_dataset(1, 30)
    cutoffs = ["2023-06-01", "2023-09-01"]
    empty = build_grid_panel(data.replace(cases=data.cases.iloc[:0]), cutoffs=cutoffs, horizon=14)
    counts = empty.X.filter(regex="count|severe|escalations|decay|backlog|repeat")
    assert (counts.fillna(0) == 0).all().all() and (empty.X["no_history"] == 1).all()
    assert empty.X["days_since_last"].isna().all() and (empty.y_count == 0).all()  # no case, no first case
    above = data.replace(cases=data.cases.assign(grid_id="C1"))  # every case above the grid level
    panel = build_grid_panel(above, cutoffs=cutoffs, horizon=14)
    assert (panel.X["count_364d"] == 0).all() and (panel.X["no_history"] == 1).all()
    first = above.cases["reported_at"].min()
    since = (panel.X.index.get_level_values("cutoff") - first) / pd.Timedelta(days=1)
    np.testing.assert_allclose(panel.X["days_since_last"], since, rtol=1e-6)
    for level in ("grid", "microgrid"):
        features = build_case_features(above, level=level)
        assert features.X.filter(like="unit_").isna().all().all()
    assert len(build_case_features(data.replace(cases=data.cases.iloc[:0])).X) == 0


def test_builder_is_the_first_step_of_a_pipeline(small_district):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    builder = GridPanelBuilder(cutoffs={"start": "2023-06-05", "end": "2024-06-03", "freq": "4W-MON"}, horizon=28)
    panel = builder.fit(small_district).build(small_district)
    model = make_pipeline(builder, SimpleImputer(), LogisticRegression(max_iter=2000))
    model.fit(small_district, panel.y)
    assert not hasattr(model, "n_features_in_")  # what a dataset has is not a number of features
    scores = model.predict_proba(small_district)[:, 1]
    assert scores.shape == panel.y.shape and roc_auc_score(panel.y, scores) > 0.7


def test_bad_input(small_district, dataset):
    with pytest.raises(ValidationError):
        build_grid_panel(dataset.replace(cases=dataset.cases.assign(severity=9)), cutoffs=["2024-03-01"], horizon=7)
    with pytest.raises(ValueError, match="outside the data's span"):
        build_grid_panel(small_district, cutoffs=["2030-01-01"], horizon=28)
    with pytest.raises(ValueError, match="unknown level 'block'"):
        build_grid_panel(small_district, cutoffs=["2024-03-04"], horizon=28, level="block")
    with pytest.raises(ValueError, match=r"unknown target categories \['noise'\]"):
        build_grid_panel(small_district, cutoffs=["2024-03-04"], horizon=28, target="noise")
    for horizon in (0, -3, "-2D"):
        with pytest.raises(ValueError, match="horizon must be positive"):
            build_grid_panel(small_district, cutoffs=["2024-03-04"], horizon=horizon)
    with pytest.raises(ValueError, match="cutoff 'soon' is not a time"):
        build_grid_panel(small_district, cutoffs=["2024-03-04", "soon"], horizon=28)
    with pytest.raises(ValueError, match="cutoffs as a mapping"):
        build_grid_panel(small_district, cutoffs={"begin": "2024-01-01"}, horizon=28)
    with pytest.raises(ValueError, match="escalation_days must be positive"):
        build_case_features(small_district, escalation_days=0)
    with pytest.raises(ValueError, match="kind must be"):
        describe("unit")


def test_unknown_vocabulary_and_missing_escalation_times(small_district):
    cutoffs = ["2024-03-04"]
    with pytest.raises(ValueError, match=r"unknown categories \['nosie'\]; the data's categories are \['consumer'"):
        build_grid_panel(small_district, cutoffs=cutoffs, horizon=28, categories=["neighbour_noise", "nosie"])
    with pytest.raises(ValueError, match=r"unknown categories \['nosie'\]"):
        build_case_features(small_district, categories=["nosie"])
    with pytest.raises(ValueError, match=r"unknown sources \['fax'\]; the data's sources are \["):
        build_case_features(small_district, sources=["fax"])
    bare = small_district.replace(cases=small_district.cases.drop(columns="escalated_at"))
    with pytest.raises(ValueError, match="counts escalations by the cases' escalated_at time, but the cases have no"):
        build_grid_panel(bare, cutoffs=cutoffs, horizon=28, target={"escalations": True})


def test_data_without_optional_columns(dataset):
    bare = dataset.replace(
        cases=dataset.cases[["case_id", "reported_at", "grid_id", "category"]],
        grid_history=dataset.grid_history.iloc[:0, :2],
        adjacency=None,
    )
    panel = build_grid_panel(bare, cutoffs=["2024-03-01", "2024-07-01"], horizon=28)
    grid = panel.X.xs(pd.Timestamp("2024-07-01"), level="cutoff")
    assert grid.loc["G1", "backlog"] == 3  # nothing is known to be resolved: c1, c3 (in M1) and c4 stay open
    # Without adjacency, neighbours come from centroids: each of the two grids is the other's.
    assert grid.loc["G1", "nbr_count_91d"] == grid.loc["G2", "count_91d"]
    assert grid.loc["G2", "nbr_count_91d"] == grid.loc["G1", "count_91d"]
    cases = build_case_features(bare)
    assert cases.y.isna().all() and not cases.label_known.any()  # no escalation times, no labels


def test_describe_documents_every_feature():
    grid, case = describe("grid"), describe("case")
    assert len(grid) >= 80 and grid["name"].is_unique and grid["description"].str.len().gt(10).all()
    assert set(grid["family"]) >= {
        "count",
        "category_count",
        "severe",
        "escalations",
        "decay",
        "recency",
        "backlog",
        "repeat_parties",
        "trend",
        "parent",
        "neighbours",
        "attribute",
        "calendar",
        "flag",
        "history",
        "rate",
        "last_period",
        "shrunk_rate",
    }
    assert {"decay_730d", "nbr_decay_365d", "parent_decay_180d", "rate_all", "shrunk_rate_all"} <= set(grid["name"])
    assert case["name"].is_unique and {"party", "unit", "case", "time", "attribute"} <= set(case["family"])


def test_an_origins_filter_counts_only_those_cases_in_features_and_label():
    data = random_dataset(3, 60, visits=True)
    alone = data.replace(cases=data.cases[data.cases["origin"] == "resident"])
    options = dict(cutoffs=["2023-05-01 12:00", "2023-08-01"], horizon=91, **OPTIONS)
    resident = GridPanelBuilder(origins=("resident",), **options).fit(data)
    panel = resident.build(data)
    expected = GridPanelBuilder(**options).fit(alone).build(alone)
    patrol = [c for c in expected.X.columns if c.startswith("patrol_")]
    assert patrol and not resident.patrol_features_  # the patrol cases are left out of everything
    pd.testing.assert_frame_equal(panel.X, expected.X.drop(columns=patrol))
    pd.testing.assert_series_equal(panel.y_count, expected.y_count)
    everything = GridPanelBuilder(**options).fit(data).build(data)
    assert (
        everything.y_count.sum() > panel.y_count.sum() and everything.X["count_91d"].sum() > panel.X["count_91d"].sum()
    )


def test_an_origins_filter_needs_every_case_to_have_an_origin():
    data = random_dataset(4, 20, visits=True)
    builder = GridPanelBuilder(cutoffs=["2023-06-05"], horizon=28, origins="resident")
    unknown = data.cases.assign(origin=data.cases["origin"].where(data.cases.index % 7 != 1))
    with pytest.raises(ValueError, match=r"3 case\(s\) have no cases.origin \(e.g. case_id 'k1', 'k8', 'k15'\)"):
        builder.fit(data.replace(cases=unknown))
    with pytest.raises(ValueError, match="the cases have no origin column"):
        builder.fit(data.replace(cases=data.cases.drop(columns="origin")))
    fitted = builder.fit(data)
    with pytest.raises(ValueError, match="have no cases.origin"):
        fitted.build(data.replace(cases=unknown))
    with pytest.raises(
        ValueError, match=r"origins must be None \(every case\) or some of resident, patrol; got \['walk-in'\]"
    ):
        GridPanelBuilder(cutoffs=["2023-06-05"], origins=("walk-in",)).fit(data)
    with pytest.raises(ValueError, match="origins must be None"):
        GridPanelBuilder(cutoffs=["2023-06-05"], origins=()).fit(data)


def test_a_builder_fitted_with_visits_needs_them():
    data = random_dataset(5, 30, visits=True)
    builder = GridPanelBuilder(cutoffs=["2023-09-04"], horizon=28, **OPTIONS).fit(data)
    with pytest.raises(ValueError, match="fitted on data with a visits table.*this data has none"):
        builder.build(data.replace(visits=None))
    empty = builder.build(data.replace(visits=data.visits.iloc[:0]))  # an empty table: never visited
    assert (empty.X["days_since_visit"] == 365).all() and (empty.X["visits_91d"] == 0).all()
    with pytest.raises(ValueError, match="counts patrol cases, but these cases have no origin column"):
        builder.build(data.replace(cases=data.cases.drop(columns="origin")))
    catalog = builder.catalog().set_index("name")
    assert (
        catalog.loc["days_since_visit", "family"] == "visits"
        and "at most 365" in catalog.loc["days_since_visit", "description"]
    )
    assert catalog.loc["patrol_count_91d", "window"] == 91
    assert list(builder.get_feature_names_out()) == list(catalog.index)


def test_without_visits_or_origin_the_features_are_unchanged(small_district):
    builder = GridPanelBuilder(cutoffs=["2023-09-04"], horizon=28).fit(small_district)
    assert not builder.visit_features_ and not builder.patrol_features_
    assert not any("visit" in n or "patrol" in n for n in builder.get_feature_names_out())


def test_recursive_decays_equal_the_direct_sums(small_district):
    cutoffs = pd.date_range("2023-03-06", "2024-12-30", freq="W-MON")
    builder = GridPanelBuilder(cutoffs=cutoffs, horizon=28).fit(small_district)
    X = builder.build(small_district).X
    cases = first_reports(small_district.cases)  # the panel counts disputes
    cases = cases.assign(unit=cases["grid_id"].map(small_district.ancestors("grid")))
    parent_of = small_district.ancestors("community")
    for c in cutoffs[::10]:
        past = cases[cases["reported_at"] < c]
        age = ((c - past["reported_at"]) / pd.Timedelta(days=1)).to_numpy()
        rows = X.xs(c, level="cutoff")
        for h in builder.half_lives:
            weight = pd.Series(np.exp2(-age / h), index=past.index)
            direct = weight.groupby(past["unit"]).sum().reindex(rows.index, fill_value=0)
            np.testing.assert_allclose(rows[f"decay_{h}d"], direct, rtol=2e-6, atol=1e-9)
            above = weight.groupby(past["grid_id"].map(parent_of)).sum()
            expected = parent_of.reindex(rows.index).map(above).fillna(0)
            np.testing.assert_allclose(rows[f"parent_decay_{h}d"], expected, rtol=2e-6, atol=1e-9)
        open_cases = past[past["resolved_at"].isna() | (past["resolved_at"] >= c)]
        expected = open_cases["unit"].value_counts().reindex(rows.index, fill_value=0)
        np.testing.assert_array_equal(rows["backlog"], expected)
        assert rows["decay_730d"].sum() > rows["decay_60d"].sum() > 0


def test_count_last_period_follows_the_calendar_month():
    # Monthly records dated the 1st: with a one-month horizon the last period is the previous
    # calendar month (29 days in February 2024), not the 28 or 30 days before the cutoff.
    data = random_dataset(11, 5)
    months = pd.date_range("2023-01-01", "2023-12-01", freq="MS")
    rng = np.random.default_rng(11)
    n = 200
    cases = pd.DataFrame(
        {
            "case_id": [f"m{i}" for i in range(n)],
            "reported_at": rng.choice(months, n),
            "grid_id": rng.choice(["G1", "G2", "G3", "G4", "G5"], n),
            "category": rng.choice(CATEGORIES, n),
            "severity": 1,
        }
    )
    data = data.replace(cases=cases, as_of=pd.Timestamp("2024-01-01"))
    cutoffs = ["2023-03-01", "2023-04-01", "2023-12-01"]
    X = build_grid_panel(data, cutoffs=cutoffs, horizon=pd.DateOffset(months=1)).X
    for cutoff, previous, days in zip(cutoffs, ["2023-02-01", "2023-03-01", "2023-11-01"], [28, 31, 30], strict=True):
        rows = X.xs(pd.Timestamp(cutoff), level="cutoff")
        expected = cases[cases["reported_at"] == previous]["grid_id"].value_counts().reindex(rows.index, fill_value=0)
        np.testing.assert_array_equal(rows["count_last_period"], expected)
        assert (rows["last_period_days"] == days).all() and expected.sum() > 0
    weekly = build_grid_panel(data, cutoffs=["2023-03-01"], horizon=28).X  # 28 days before March 1st: Feb 1st
    assert weekly["count_last_period"].sum() == (cases["reported_at"] == "2023-02-01").sum()


def test_long_run_rates_and_their_shrinkage(small_district):
    builder = GridPanelBuilder(cutoffs=["2023-01-02", "2024-06-03"], horizon=28).fit(small_district)
    X = builder.build(small_district).X
    disputes = first_reports(small_district.cases)  # the panel counts disputes
    start = disputes["reported_at"].min()
    first, last = (X.xs(pd.Timestamp(c), level="cutoff") for c in ("2023-01-02", "2024-06-03"))
    assert (last["history_days"] == np.float32((pd.Timestamp("2024-06-03") - start) / pd.Timedelta(days=1))).all()
    before = disputes["reported_at"] < "2024-06-03"
    unit = disputes["grid_id"].map(small_district.ancestors("grid"))
    total = unit[before].value_counts().reindex(last.index, fill_value=0)
    np.testing.assert_allclose(last["rate_all"], total / last["history_days"], rtol=1e-6)
    shrunk = [c for c in X.columns if c.startswith("shrunk_rate_")]
    assert len(shrunk) == len(builder.half_lives) + 1 and np.isfinite(last[shrunk]).all().all()
    # Shrinking pulls the rates together: less spread than the raw rates, the same mean (near).
    assert last["shrunk_rate_all"].std() < last["rate_all"].std()
    assert last["shrunk_rate_all"].mean() == pytest.approx(last["rate_all"].mean(), rel=0.1)
    assert first.loc[first["history_days"] == 0, shrunk + ["rate_all"]].isna().all().all()  # no history, no rate


def test_a_builder_saved_before_the_long_run_features_keeps_its_features(small_district):
    builder = GridPanelBuilder(cutoffs=["2023-09-04"], horizon=28, half_lives=(3, 14, 60)).fit(small_district)
    new = ["history_days", "rate_all", "count_last_period", "shrunk_rate_all", "parent_rate_all", "nbr_rate_all"]
    del builder.long_run_features_  # as unpickled from a builder saved before they existed
    builder.feature_names_out_ = np.array(
        [n for n in builder.feature_names_out_ if n not in new and not n.startswith(("shrunk_", "last_period"))],
        dtype=object,
    )
    X = builder.build(small_district).X
    assert list(X.columns) == list(builder.catalog()["name"]) == list(builder.feature_names_out_)
    assert not set(new) & set(X.columns) and "decay_60d" in X.columns and "decay_180d" not in X.columns
