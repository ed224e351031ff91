from __future__ import annotations

from riskmodel import validate
from riskmodel.summary import summarize


def test_summary_tables(small_district):
    tables = summarize(small_district)
    cases = small_district.cases
    assert tables["units"]["units"].to_dict() == {"street": 4, "community": 16, "grid": 256, "microgrid": 769}
    assert tables["cases_by_month"].to_numpy().sum() == len(cases)
    assert tables["cases_by_month"].shape == (24, 8)
    escalation = tables["escalation"]
    assert escalation.loc["all", "cases"] == len(cases)
    assert escalation.loc["all", "rate"] == cases["escalated_at"].notna().mean()
    busiest = tables["busiest"]
    assert len(busiest) == 10 and busiest["cases"].is_monotonic_decreasing
    assert busiest.index.str.fullmatch(r"G\d{3}").all() and busiest["parent_id"].str.startswith("C").all()


def test_summary_of_hand_made_data(dataset):
    tables = summarize(validate(dataset).dataset, top=1)
    assert tables["busiest"]["cases"].tolist() == [3]  # c1, c3 (in M1) and c4 are in G1
    assert tables["escalation"].loc["all", "escalated"] == 1


def test_summary_without_outcomes(dataset):
    cases = dataset.cases.drop(columns=["escalated_at", "outcome"])
    escalation = summarize(validate(dataset.replace(cases=cases)).dataset)["escalation"]
    assert escalation["cases"].sum() == 2 * len(cases) and escalation["rate"].isna().all()
