"""The simulator's world changes: a new reporting platform and a category surge, from a date."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from riskmodel import first_reports
from riskmodel.datasets import CategorySurge, NewPlatform, RandomVisits, simulate_district

from .conftest import simulated_disputes

START = pd.Timestamp("2024-01-01")  # the middle of the `small` preset's two years
CHANGES = {
    "platform": NewPlatform(start=START, factor=1.5, source="app"),
    "closing platform": NewPlatform(start=START, factor=0.5),
    "surge": CategorySurge(start=START, category="neighbour_noise"),
}


def _hash(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()).hexdigest()


@pytest.fixture(scope="module")
def unchanged():
    return simulate_district("small", seed=3)


@pytest.fixture(scope="module")
def changed():
    return {name: simulate_district("small", seed=3, changes=[change]) for name, change in CHANGES.items()}


# Frozen from the simulator before world changes existed.
FROZEN = {
    "tiny": (
        "3d447e643af9dd1a4e6affacba301d292b1484fc2f2c3ffc305624f0e2343786",
        "17b317b2ecf9db411aae46fa21662289c73285a33f835d70ebdfc86bab4c3834",
    ),
    "small": (
        "2bee5a58332e2c66ad6b6b85301df53ae0b841065169a3eeaae03a37c5e9b365",
        "11e274054134ec3f1b24b6d5dc96807b94548c678538f9eefc93fde344c4d034",
    ),
}


@pytest.mark.parametrize("preset", ["tiny", "small"])
@pytest.mark.parametrize("changes", [None, []])
def test_without_changes_the_frames_are_those_of_before(preset, changes):
    district = simulate_district(preset, seed=0, changes=changes)
    # The disputes (first reports); their further reports on other platforms came later.
    assert (_hash(simulated_disputes(district)), _hash(district.grids)) == FROZEN[preset]
    assert district.truth.changes.empty and list(district.truth.changes.columns) == [
        "change",
        "start",
        "factor",
        "source",
        "category",
        "street",
    ]


@pytest.mark.parametrize("name", list(CHANGES))
def test_before_the_change_every_frame_is_that_of_the_unchanged_run(unchanged, changed, name):
    district = changed[name]
    before = district.cases["reported_at"] < START
    plain_before = unchanged.cases["reported_at"] < START
    assert before.sum() == plain_before.sum() > 1000
    # Down to every detail and id: the rows before the change come first and are the same.
    pd.testing.assert_frame_equal(district.cases[before], unchanged.cases[plain_before])
    ids = unchanged.cases.loc[plain_before, "case_id"]
    pd.testing.assert_series_equal(
        district.truth.escalation_probability[ids], unchanged.truth.escalation_probability[ids]
    )
    for table in ("grids", "grid_history", "adjacency"):
        pd.testing.assert_frame_equal(getattr(district, table), getattr(unchanged, table))
    window = (START - pd.Timedelta(days=28), 28)  # ends the day before the change
    pd.testing.assert_series_equal(district.truth.expected_counts(*window), unchanged.truth.expected_counts(*window))
    # ... and after it the runs differ.
    assert len(district.cases) != len(unchanged.cases)


@pytest.mark.parametrize("name", ["platform", "closing platform"])
def test_a_platform_scales_what_is_recorded_not_what_happens(unchanged, changed, name):
    district, factor = changed[name], CHANGES[name].factor
    disputes, unchanged_disputes = first_reports(district.cases), first_reports(unchanged.cases)  # not reports
    after, plain_after = (d["reported_at"] >= START for d in (disputes, unchanged_disputes))
    n = int(plain_after.sum())
    # Recorded over unrecorded: Poisson extras of mean (f - 1) x the intensity, whose sum is n
    # up to a martingale of variance n; or Binomial(n, f) thinning. Either way an sd from the counts:
    sd = np.sqrt(n * ((factor - 1) * factor if factor > 1 else factor * (1 - factor))) / n
    assert abs(after.sum() / n - factor) < 4 * sd, (after.sum() / n, factor, sd)
    # Every street's reporting rises (or falls) alike.
    street = district.ancestors("street")
    per_street = disputes.loc[after, "grid_id"].map(street).value_counts()
    plain_per_street = unchanged_disputes.loc[plain_after, "grid_id"].map(street).value_counts()
    ratio = (per_street / plain_per_street).sort_index()
    street_sd = (sd * np.sqrt(n / plain_per_street)).sort_index()
    assert ((ratio - factor).abs() < 4 * street_sd).all(), ratio
    # The extra reports carry the platform's name, from its start only; the truth's
    # expected counts (of what happens) are those of the unchanged world.
    app = disputes["source"] == "app"
    assert (app.sum() > 0) == (factor > 1) and (disputes.loc[app, "reported_at"] >= START).all()
    if factor > 1:  # the process's own cases are untouched: the platform only adds
        assert (after & ~app).sum() == n
    pd.testing.assert_series_equal(
        district.truth.expected_counts(START, 91), unchanged.truth.expected_counts(START, 91), rtol=1e-12
    )
    assert district.truth.changes.iloc[0][["change", "factor", "source"]].tolist() == [
        "NewPlatform",
        factor,
        CHANGES[name].source,
    ]


def test_a_surge_doubles_its_category_in_its_street_only(unchanged, changed):
    district = changed["surge"]  # what is recorded: disputes (first reports), not every report
    street = district.truth.changes.loc[0, "street"]
    grids = district.grids
    sizes = (grids["level"] == "grid").groupby(grids["grid_id"].map(district.ancestors("street"))).sum()
    assert sizes[street] == sizes.max()  # the default: the street with the most grids

    def expected(d, category):
        return d.truth.expected_counts(START, 365, level="street", categories=[category])

    # The truth knows: the category's expected count doubles in the street but for its
    # waves, common to both runs (1.7 to 1.98 over seeds 0-5), barely moves elsewhere
    # (follow-ups cross into neighbouring streets), and other categories keep theirs.
    ratio = expected(district, "neighbour_noise") / expected(unchanged, "neighbour_noise")
    assert 1.5 < ratio[street] <= 2.0
    assert ratio.drop(street).between(1.0, 1.02).all(), ratio
    other = expected(district, "family") / expected(unchanged, "family")
    np.testing.assert_allclose(other, 1.0, atol=1e-12)

    # What is recorded follows, within a self-exciting count's noise (its variance
    # is about the mean over (1 - excitation)**2).
    def observed(d):
        cases = first_reports(d.cases)
        cases = cases[(cases["reported_at"] >= START) & (cases["category"] == "neighbour_noise")]
        return cases["grid_id"].map(d.ancestors("street")).value_counts()

    for d in (district, unchanged):
        mean = expected(d, "neighbour_noise")
        z = (observed(d)[mean.index] - mean) / (np.sqrt(mean) / (1 - 0.25 - 0.10))
        assert (z.abs() < 4).all(), z
    counts = observed(district) / observed(unchanged)
    assert counts[street] > 1.4 and counts.idxmax() == street, counts


JUNE = "2023-06-05"  # within the `tiny` preset's one year


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (CategorySurge(start=JUNE, category="noise"), r"CategorySurge.category must be one of \['neighbour_noise'"),
        (CategorySurge(start=JUNE, category="family", street="S9"), r"CategorySurge.street must be .*\(S1\) .* .S9."),
        (CategorySurge(start=JUNE, category="family", factor=0), "CategorySurge.factor must be a finite number"),
        (NewPlatform(start=JUNE, factor=-1.5), "NewPlatform.factor must be a finite number above 0, got -1.5"),
        (NewPlatform(start=JUNE, factor=float("nan")), "NewPlatform.factor must be a finite number above 0"),
        (NewPlatform(start="2022-12-31", factor=2), r"NewPlatform.start must be .*2023-01-01 to 2024-01-01"),
        (NewPlatform(start="2024-01-01", factor=2), "NewPlatform.start .* got '2024-01-01'"),
        (NewPlatform(start="2023-06-01 12:00", factor=2), "NewPlatform.start must be a midnight"),
        (NewPlatform(start=JUNE, factor=2, source=""), "NewPlatform.source must be a non-empty string"),
        ("NewPlatform", "changes.0. must be a NewPlatform or a CategorySurge, got str"),
    ],
)
def test_bad_changes_are_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        simulate_district("tiny", seed=0, changes=[change])


def test_changes_are_a_list_and_not_combined_with_a_policy():
    with pytest.raises(ValueError, match="changes must be a list of changes, got a single NewPlatform"):
        simulate_district("tiny", changes=NewPlatform(start=JUNE, factor=2))
    with pytest.raises(ValueError, match="changes and policy cannot be combined"):
        simulate_district("tiny", changes=[NewPlatform(start="2023-06-05", factor=2)], policy=RandomVisits(capacity=1))
