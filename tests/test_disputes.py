"""Counting disputes, not reports: a dispute reported on several platforms counts once."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd
import pytest

from riskmodel import first_reports, validate
from riskmodel.datasets import simulate_district
from riskmodel.evaluation.monitoring import observed_counts
from riskmodel.features import CaseFeatureBuilder, GridPanelBuilder
from riskmodel.models import SpikeDetector

CUTOFFS = {"start": "2023-07-03", "end": "2023-11-27", "freq": "2W-MON"}


@pytest.fixture(scope="module")
def tiny():
    # One report a dispute: the tests add their own further reports.
    return validate(simulate_district("tiny", seed=0, duplicate_share=0)).dataset


def with_duplicates(dataset, *, share=0.3, seed=0, grids=None):
    """``dataset`` whose cases carry their ``dispute_id`` (their own case id), with a later
    report of ``share`` of them on another platform, in another unit (of ``grids``, default
    any grid) and open: what linkage finds."""
    rng = np.random.default_rng(seed)
    cases = dataset.cases.assign(dispute_id=dataset.cases["case_id"])
    again = cases.sample(frac=share, random_state=seed)
    grids = dataset.grids.loc[dataset.grids["level"] == "grid", "grid_id"].to_numpy() if grids is None else grids
    later = again["reported_at"] + pd.to_timedelta(rng.integers(1, 72 * 60, len(again)), unit="min")
    again = again.assign(
        case_id="app:" + again["case_id"],
        reported_at=later.where(later < dataset.end, again["reported_at"] + pd.Timedelta(seconds=1)),
        grid_id=rng.choice(grids, len(again)),
        source="app",
        resolved_at=pd.NaT,
        escalated_at=pd.NaT,
        outcome="open",
    )
    return dataset.replace(cases=pd.concat([cases, again], ignore_index=True))


def test_first_reports_keep_the_earliest_report_and_carry_the_escalation():
    cases = pd.DataFrame(
        {
            "case_id": ["b", "a", "c", "d", "e", "f"],
            "reported_at": pd.to_datetime(
                ["2024-05-01", "2024-05-01", "2024-04-30", "2024-05-02", "2024-05-03", "2024-05-03"]
            ),
            "grid_id": ["G1", "G2", "G3", "G1", "G2", "G2"],
            "dispute_id": ["x", "x", "y", "y", None, None],
            "outcome": ["resolved", "resolved", "resolved", "escalated", "open", "open"],
            "escalated_at": pd.to_datetime([None, "2024-05-09", None, "2024-05-04", None, None]),
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    first = first_reports(cases)
    # x: a and b tie on time, the smaller case_id wins; y: c is earlier; e and f: their own disputes
    assert first["case_id"].tolist() == ["a", "c", "e", "f"] and first.index.tolist() == [11, 12, 14, 15]
    assert first["grid_id"].tolist() == ["G2", "G3", "G2", "G2"]  # the first report's unit
    assert first["outcome"].tolist() == ["escalated", "escalated", "open", "open"]  # d escalated y
    assert first["escalated_at"].tolist()[:2] == [pd.Timestamp("2024-05-09"), pd.Timestamp("2024-05-04")]
    assert cases["outcome"].tolist()[0] == "resolved"  # the input is left alone
    without = cases.drop(columns="dispute_id")
    assert first_reports(without) is without


def test_first_reports_are_fast():
    n = 300_000
    rng = np.random.default_rng(0)
    cases = pd.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "reported_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
            "dispute_id": [f"d{i}" for i in rng.integers(0, n // 2, n)],
            "outcome": rng.choice(["resolved", "escalated"], n),
            "escalated_at": pd.NaT,
        }
    )
    start = time.perf_counter()
    first = first_reports(cases)
    assert time.perf_counter() - start < 5.0
    assert len(first) == cases["dispute_id"].nunique()
    earliest = cases.groupby("dispute_id")["reported_at"].min()
    assert (first.set_index("dispute_id")["reported_at"] == earliest.reindex(first["dispute_id"])).all()


def test_duplicated_reports_give_the_panel_of_the_deduplicated_data(tiny):
    duplicated = with_duplicates(tiny)
    assert len(duplicated.cases) > len(tiny.cases) + 50
    builder = GridPanelBuilder(cutoffs=CUTOFFS, horizon=28)
    got = builder.fit(duplicated).build(duplicated)
    want = GridPanelBuilder(cutoffs=CUTOFFS, horizon=28).fit(tiny).build(tiny)
    pd.testing.assert_frame_equal(got.X, want.X)
    pd.testing.assert_series_equal(got.y_count, want.y_count)
    pd.testing.assert_series_equal(got.y, want.y)
    # without dispute_id every report is a dispute: the default is the builder of before
    raw = duplicated.replace(cases=duplicated.cases.drop(columns="dispute_id"))
    before = GridPanelBuilder(cutoffs=CUTOFFS, horizon=28, count="reports").fit(raw).build(raw)
    pd.testing.assert_frame_equal(GridPanelBuilder(cutoffs=CUTOFFS, horizon=28).fit(raw).build(raw).X, before.X)


def test_counting_reports_counts_every_report(tiny):
    duplicated = with_duplicates(tiny)
    panel = GridPanelBuilder(cutoffs=CUTOFFS, horizon=28, count="reports").fit(duplicated).build(duplicated)
    raw = duplicated.replace(cases=duplicated.cases.drop(columns="dispute_id"))
    pd.testing.assert_frame_equal(panel.X, GridPanelBuilder(cutoffs=CUTOFFS, horizon=28).fit(raw).build(raw).X)
    cutoff = pd.Timestamp(CUTOFFS["start"])
    window = duplicated.cases["reported_at"].between(cutoff, cutoff + pd.Timedelta(days=27, hours=23, minutes=59))
    assert panel.y_count.xs(cutoff, level="cutoff").sum() == window.sum()  # every report of the window
    disputes = GridPanelBuilder(cutoffs=CUTOFFS, horizon=28).fit(duplicated).build(duplicated)
    assert disputes.y_count.xs(cutoff, level="cutoff").sum() == first_reports(duplicated.cases[window]).shape[0]
    assert disputes.y_count.sum() < panel.y_count.sum()


def test_case_features_learn_on_each_dispute_first_report(tiny):
    duplicated = with_duplicates(tiny)
    got = CaseFeatureBuilder().fit(duplicated).build(duplicated)
    want = CaseFeatureBuilder().fit(tiny).build(tiny)
    pd.testing.assert_frame_equal(got.X, want.X)
    pd.testing.assert_series_equal(got.y, want.y)
    reports = CaseFeatureBuilder(count="reports").fit(duplicated).build(duplicated)
    assert len(reports.X) == len(duplicated.cases) and "source_app" in reports.X.columns


def test_a_later_report_escalating_makes_the_dispute_escalated(tiny):
    duplicated = with_duplicates(tiny)
    cases = duplicated.cases.copy()
    copy = cases["case_id"].str.startswith("app:")
    late = copy & cases["reported_at"].lt(tiny.end - pd.Timedelta(days=40))
    cases.loc[late, "escalated_at"] = cases.loc[late, "reported_at"] + pd.Timedelta(days=2)
    cases.loc[late, "outcome"] = "escalated"
    features = CaseFeatureBuilder(escalation_days=30).fit(duplicated).build(duplicated.replace(cases=cases))
    ids = cases.loc[late, "dispute_id"]
    assert (features.y.reindex(ids, level="case_id") == 1.0).all() and len(ids) > 10


def test_spike_detector_sees_a_duplicated_wave_as_its_disputes(tiny):
    unit = tiny.grids.loc[tiny.grids["level"] == "grid", "grid_id"].iloc[0]
    start = pd.Timestamp("2023-10-16")  # two new disputes, each reported on three platforms
    wave = pd.DataFrame(
        {
            "case_id": ["w0", "w1"],
            "reported_at": start + pd.to_timedelta([10, 40], unit="h"),
            "grid_id": unit,
            "category": tiny.cases["category"].iloc[0],
            "severity": 2,
            "outcome": "open",
        }
    )
    deduplicated = tiny.replace(cases=pd.concat([tiny.cases, wave], ignore_index=True))
    duplicated = with_duplicates(deduplicated, share=0.0)
    again = wave.loc[wave.index.repeat(2)].assign(dispute_id=lambda f: f["case_id"])
    again["case_id"] = [f"p{k}:{c}" for k, c in enumerate(again["case_id"])]
    again["reported_at"] = again["reported_at"] + pd.Timedelta(hours=5)
    duplicated = duplicated.replace(cases=pd.concat([duplicated.cases, again], ignore_index=True))
    watch = {"start": "2023-10-23", "end": "2023-10-23", "freq": "D"}

    def alarms(data, **options):
        X = GridPanelBuilder(cutoffs=watch, horizon=1, **options).fit(data).build(data).X
        return SpikeDetector().fit(X).alarms(X)

    pd.testing.assert_frame_equal(alarms(duplicated), alarms(deduplicated))
    assert not alarms(deduplicated).loc[unit].to_numpy().any()  # two disputes are too few to alarm
    assert alarms(duplicated, count="reports").loc[unit].to_numpy().sum() == 1  # six reports alarm


def test_monitoring_counts_disputes_unless_told_reports(tiny):
    duplicated = with_duplicates(tiny)
    dates = ["2023-07-03", "2023-09-04"]
    pd.testing.assert_frame_equal(observed_counts(duplicated, dates, 28), observed_counts(tiny, dates, 28))
    reports = observed_counts(duplicated, dates, 28, count="reports")
    in_windows = sum(
        duplicated.cases["reported_at"].between(pd.Timestamp(d), pd.Timestamp(d) + pd.Timedelta(days=28)).sum()
        for d in dates
    )
    assert reports["observed"].sum() == in_windows > observed_counts(tiny, dates, 28)["observed"].sum()


def test_a_builder_saved_before_count_existed_counts_reports(tiny):
    duplicated = with_duplicates(tiny)
    builder = GridPanelBuilder(cutoffs=CUTOFFS, horizon=28).fit(tiny)
    del builder.__dict__["count"]  # what unpickling a builder of an older version gives
    old = pickle.loads(pickle.dumps(builder))
    assert old.get_params()["count"] == "reports"
    reports = GridPanelBuilder(cutoffs=CUTOFFS, horizon=28, count="reports").fit(tiny)
    pd.testing.assert_frame_equal(old.build(duplicated).X, reports.build(duplicated).X)


@pytest.mark.parametrize("builder", [GridPanelBuilder, CaseFeatureBuilder])
def test_an_unknown_count_is_refused_naming_the_choices(tiny, builder):
    with pytest.raises(ValueError, match="count must be 'disputes'.*or 'reports'.*got 'cases'"):
        builder(count="cases").fit(tiny)


def test_a_model_that_counted_disputes_needs_them_to_score(tiny):
    from riskmodel import predict, train
    from riskmodel.models import HistoricalRateBaseline

    duplicated = with_duplicates(tiny)
    trained = train(duplicated, model=HistoricalRateBaseline(), horizon=28, track=False)
    assert trained.inputs["cases"][-1] == "dispute_id"
    raw = duplicated.replace(cases=duplicated.cases.drop(columns="dispute_id"))
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['dispute_id'\]"):
        predict(raw, as_of="2023-10-02", model=trained)
    served = predict(duplicated, as_of="2023-10-02", model=trained)
    linked = tiny.replace(cases=tiny.cases.assign(dispute_id=tiny.cases["case_id"]))
    pd.testing.assert_frame_equal(served, predict(linked, as_of="2023-10-02", model=trained))
