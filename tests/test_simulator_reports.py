"""The simulator's duplicate reports across platforms, and its raw platform exports."""

from __future__ import annotations

import glob

import numpy as np
import pandas as pd
import pytest
import yaml

from riskmodel.datasets import SOURCES, export_platforms, simulate_district
from riskmodel.validation import validate

from .conftest import simulated_disputes


def _duplicates(district) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The later reports, and their disputes' first reports row by row."""
    cases = district.cases
    later = cases[cases["case_id"] != cases["dispute_id"]].reset_index(drop=True)
    return later, cases.set_index("case_id").loc[later["dispute_id"]].reset_index()


def test_a_quarter_of_disputes_is_reported_on_two_to_four_platforms(small_district):
    cases = small_district.cases
    reports = cases.groupby("dispute_id")["source"].agg(["size", "nunique"])
    assert 0.22 < (reports["size"] > 1).mean() < 0.28, (reports["size"] > 1).mean()
    assert reports["size"].max() == 4 and (reports["size"] == reports["nunique"]).all()  # one report per platform
    assert (reports["size"].value_counts().sort_index().diff().dropna() < 0).all()  # two more often than three...
    # The first report is the dispute's: its case id is the dispute id, and it comes first.
    first = cases.groupby("dispute_id")["reported_at"].idxmin()
    assert (cases.loc[first, "case_id"] == first.index).all()
    assert cases["case_id"].is_unique and cases["reported_at"].is_monotonic_increasing
    assert validate(small_district).problems.empty


def test_duplicates_come_later_after_their_platforms_delay(small_district):
    later, first = _duplicates(small_district)
    delay = (later["reported_at"] - first["reported_at"]).dt.total_seconds() / 3600
    assert (delay > 0).all() and (later["source"] != first["source"]).all()
    median = delay.groupby(later["source"]).median()
    # police within hours, the hotline within a day, mediation and petitions days later
    assert median.sort_values().index.tolist() == [
        "police",
        "hotline",
        "grid_worker",
        "mediation_centre",
        "petition_office",
    ]
    assert 1 < median["police"] < 4 and 4 < median["hotline"] < 16 and median["petition_office"] > 120, median
    assert (later["reported_at"] < small_district.as_of).all()


def test_duplicates_keep_their_dispute_with_some_noise(small_district):
    later, first = _duplicates(small_district)
    assert (later["category"] == first["category"]).all() and (later["outcome"] == first["outcome"]).all()
    assert 0.8 < (later["severity"] == first["severity"]).mean() < 0.9  # 0.8, and steps clipped at 1 or 4
    assert ((later["severity"] - first["severity"]).abs() <= 1).all()
    grid = small_district.ancestors("grid")
    assert (later["grid_id"].map(grid) == first["grid_id"].map(grid)).all()  # the same grid, ...
    assert 0.85 < (later["grid_id"] == first["grid_id"]).mean() < 0.97  # mostly the same building
    for column in ("resolved_at", "escalated_at"):  # the dispute's, or the report's time when it came after
        known = first[column].notna()
        expected = first.loc[known, column].where(first.loc[known, column] >= later.loc[known, "reported_at"])
        assert later.loc[known, column].equals(expected.fillna(later.loc[known, "reported_at"]))
    # The party key: missing for a share of hotline reports, one character off in about one in ten.
    hotline = later["source"] == "hotline"
    assert 0.2 < later.loc[hotline, "party_key"].isna().mean() < 0.4
    assert later.loc[~hotline, "party_key"].notna().all()
    both = later["party_key"].notna().to_numpy()
    differ = np.array(
        [
            sum(a != b for a, b in zip(x, y, strict=True))
            for x, y in zip(later["party_key"][both], first["party_key"][both], strict=True)
        ]
    )
    assert set(np.unique(differ)) == {0, 1} and 0.07 < differ.mean() < 0.13
    # The truth follows each report: a duplicate has its dispute's escalation probability.
    truth = small_district.truth.escalation_probability
    assert truth.index.equals(pd.Index(small_district.cases["case_id"]))
    np.testing.assert_array_equal(truth[later["case_id"]].to_numpy(), truth[first["case_id"]].to_numpy())


def test_descriptions_are_similar_within_a_dispute_not_equal(small_district):
    later, first = _duplicates(small_district)
    cases = small_district.cases
    texts = cases["source"].isin(["hotline", "mediation_centre", "police", "petition_office"])
    assert cases.loc[texts, "description"].notna().all() and cases.loc[~texts, "description"].isna().all()
    both = (later["description"].notna() & first["description"].notna()).to_numpy()
    assert both.sum() > 500

    def overlap(a: pd.Series, b: pd.Series) -> np.ndarray:
        words = [(set(x.split()), set(y.split())) for x, y in zip(a, b, strict=True)]
        return np.array([len(x & y) / len(x | y) for x, y in words])

    same = overlap(later["description"][both], first["description"][both])
    shuffled = overlap(later["description"][both], first["description"][both].sample(frac=1, random_state=0))
    assert same.mean() > shuffled.mean() + 0.3 and (same < 1).mean() > 0.5, (same.mean(), shuffled.mean())


def test_the_disputes_are_those_without_duplicates():
    plain = simulate_district("small", seed=1, duplicate_share=0)
    district = simulate_district("small", seed=1)
    assert plain.cases["case_id"].equals(plain.cases["dispute_id"])
    pd.testing.assert_frame_equal(simulated_disputes(district), simulated_disputes(plain))
    pd.testing.assert_frame_equal(simulate_district("small", seed=1).cases, district.cases)  # same seed, same data
    assert len(district.cases) > 1.3 * len(plain.cases)
    # ... on every path: with a policy (patrol finds are never duplicated) and with changes.
    from riskmodel.datasets import NewPlatform, RandomVisits

    visited = simulate_district("tiny", seed=1, policy=RandomVisits(capacity=2))
    patrol = visited.cases[visited.cases["origin"] == "patrol"]
    assert len(patrol) > 0 and visited.cases["dispute_id"].isin(patrol["case_id"]).sum() == len(patrol)
    changed = simulate_district("tiny", seed=1, changes=[NewPlatform(start="2023-07-03", factor=1.5)])
    assert changed.cases["dispute_id"].nunique() < len(changed.cases)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"duplicate_share": 1.5}, "duplicate_share must be within"), ({"duplicate_max": 6}, "duplicate_max must be")],
)
def test_duplicate_settings_are_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        simulate_district("tiny", **overrides)


def test_as_it_stood_drops_the_later_reports(small_district):
    cutoff = pd.Timestamp("2024-01-01")
    then = small_district.as_it_stood(cutoff).cases
    assert (then["reported_at"] < cutoff).all()
    later, first = _duplicates(small_district)
    straddling = later[(first["reported_at"] < cutoff).to_numpy() & (later["reported_at"] >= cutoff).to_numpy()]
    assert len(straddling) > 0 and not then["case_id"].isin(straddling["case_id"]).any()
    assert then["dispute_id"].isin(straddling["dispute_id"]).sum() >= straddling["dispute_id"].nunique()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    district = simulate_district("tiny", seed=0)
    folder = tmp_path_factory.mktemp("platforms")
    return district, export_platforms(district, folder)


def _read(path: str, source: dict) -> pd.DataFrame:
    if source["format"] == "csv":
        return pd.read_csv(path, dtype=str)
    if source["format"] == "parquet":
        return pd.read_parquet(path)
    return pd.read_excel(path, sheet_name=source["sheet"], dtype=str)


def test_each_platform_exports_its_own_columns_and_codes(exported):
    district, path = exported
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert config["version"] == 1 and config["timezone"] == "Asia/Shanghai"
    for table in ("grids", "grid_history", "adjacency"):
        assert len(pd.read_csv(path.parent / config[table])) == len(getattr(district, table))
    sources = config["sources"]
    assert [s["name"] for s in sources] == list(SOURCES) and {s["format"] for s in sources} == {
        "csv",
        "parquet",
        "excel",
    }
    assert len({s["time"]["format"] for s in sources}) == len(sources)
    total = 0
    for source in sources:
        files = sorted(glob.glob(str(path.parent / source["files"])))
        assert files, source["name"]
        raw = pd.concat([_read(f, source) for f in files], ignore_index=True)
        assert list(raw.columns) == [source["id"], *source["columns"].values()], source["name"]
        assert raw[source["id"]].is_unique and "dispute_id" not in raw
        for column, codes in source["codes"].items():  # every code present is mapped
            values = raw[source["columns"][column]].dropna()
            mapped = {str(k) for k in codes} if source["format"] != "parquet" else set(codes)
            assert set(values.astype(str) if source["format"] != "parquet" else values) <= mapped, (
                source["name"],
                column,
            )
        total += len(raw)
    assert total == len(district.cases)
    truth = pd.read_csv(path.parent / "truth_disputes.csv", dtype=str)
    assert len(truth) == total and set(truth["dispute_id"]) == set(district.cases["dispute_id"])
    assert "truth_disputes" not in path.read_text(encoding="utf-8")


def test_exported_times_are_the_cases_times_in_each_platforms_zone(exported):
    district, path = exported
    sources = {s["name"]: s for s in yaml.safe_load(path.read_text(encoding="utf-8"))["sources"]}
    cases = district.cases
    police = pd.read_parquet(path.parent / sources["police"]["files"])
    utc = pd.to_datetime(police["received_ms"], unit="ms", utc=True).dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    assert utc.tolist() == cases.loc[cases["source"] == "police", "reported_at"].tolist()
    hotline = pd.read_csv(path.parent / sources["hotline"]["files"], dtype=str)
    local = pd.to_datetime(hotline["call_time"], format=sources["hotline"]["time"]["format"])
    assert local.tolist() == cases.loc[cases["source"] == "hotline", "reported_at"].dt.floor("min").tolist()
    codes = sources["police"]["codes"]["category"]
    assert police["type_code"].map(codes).tolist() == cases.loc[cases["source"] == "police", "category"].tolist()


def test_the_example_sources_config_is_the_tiny_export(exported):
    from pathlib import Path

    _, path = exported
    example = Path(__file__).resolve().parents[1] / "configs" / "sources.yaml"
    assert yaml.safe_load(example.read_text(encoding="utf-8")) == yaml.safe_load(path.read_text(encoding="utf-8"))
