"""Source adapters: raw exports of several platforms (CSV, Parquet, Excel) ingested through a sources YAML."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import riskmodel
from riskmodel.cli import app
from riskmodel.io import ingest, read_dataset

# One dispute at 10:00 in Shanghai on 1 May 2024, as each platform writes it.
MAY_FIRST = pd.Timestamp("2024-05-01 10:00")
EPOCH = int(pd.Timestamp("2024-05-01 02:00", tz="UTC").timestamp())  # the same instant, in seconds

SOURCES = {
    "version": 1,
    "timezone": "Asia/Shanghai",
    "grids": "grids.csv",
    "as_of": "2024-07-01",
    "sources": [
        {
            "name": "hotline",
            "files": "hotline/*.csv",
            "id": "ticket_no",
            "columns": {
                "reported_at": "call_time",
                "grid_id": "unit_code",
                "category": "issue_type",
                "severity": "urgency",
                "party_key": "caller_key",
                "description": "summary",
            },
            "time": {"format": "%d/%m/%Y %H:%M"},
            "codes": {
                "category": {"NOISE": "neighbour_noise", "PROP": "property"},
                "severity": {"LOW": 1, "HIGH": 3},
            },
        },
        {
            "name": "police",
            "files": "police/*.parquet",
            "id": "incident",
            "columns": {"reported_at": "ts", "grid_id": "grid", "category": "code", "severity": "level"},
            "time": {"format": "epoch_s"},
            "codes": {"category": {11: "neighbour_noise", 12: "property"}},
        },
        {
            "name": "mediation",
            "files": "mediation.xlsx",
            "id": "record",
            "columns": {"reported_at": "opened", "grid_id": "unit", "category": "kind", "resolved_at": "closed"},
            "time": {"format": "iso", "timezone": "UTC"},
        },
    ],
}


def write_config(folder, config=SOURCES, name="sources.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def exports(tmp_path):
    """A folder of raw exports: two hotline CSV files, one police Parquet file, one mediation sheet."""
    pd.DataFrame(
        {"grid_id": ["S1", "G1", "G2"], "parent_id": [None, "S1", "S1"], "level": ["street", "grid", "grid"]}
    ).to_csv(tmp_path / "grids.csv", index=False)
    (tmp_path / "hotline").mkdir()
    pd.DataFrame(
        {
            "ticket_no": ["0001", "0002"],
            "call_time": ["01/05/2024 10:00", "03/05/2024 18:45"],
            "unit_code": ["G1", "G2"],
            "issue_type": ["NOISE", "PROP"],
            "urgency": ["LOW", "HIGH"],
            "caller_key": ["k1", "k2"],
            "summary": ["music at night", "fence moved"],
            "operator": ["x", "y"],  # not declared: not read
        }
    ).to_csv(tmp_path / "hotline" / "2024-05.csv", index=False)
    pd.DataFrame(
        {
            "ticket_no": ["0003"],
            "call_time": ["02/06/2024 08:00"],
            "unit_code": ["G1"],
            "issue_type": ["NOISE"],
            "urgency": ["LOW"],
            "caller_key": ["k3"],
            "summary": [None],
        }
    ).to_csv(tmp_path / "hotline" / "2024-06.csv", index=False)
    (tmp_path / "police").mkdir()
    pd.DataFrame(
        {"incident": [501, 502], "ts": [EPOCH, EPOCH + 3600], "grid": ["G1", "G2"], "code": [11, 12], "level": [2, 4]}
    ).to_parquet(tmp_path / "police" / "2024.parquet")
    pd.DataFrame(
        {
            "record": ["M-1"],
            "opened": ["2024-05-01T02:00:00"],
            "unit": ["G1"],
            "kind": ["neighbour_noise"],
            "closed": ["2024-05-02T02:00:00"],
        }
    ).to_excel(tmp_path / "mediation.xlsx", index=False)
    return tmp_path


def test_every_source_is_mapped_onto_the_contract(exports):
    ingested = ingest(write_config(exports))
    assert ingested.counts.to_dict("records") == [
        {"source": "hotline", "files": 2, "read": 3, "mapped": 3, "rejected": 0},
        {"source": "police", "files": 1, "read": 2, "mapped": 2, "rejected": 0},
        {"source": "mediation", "files": 1, "read": 1, "mapped": 1, "rejected": 0},
    ]
    assert ingested.rejected.empty
    cases = ingested.dataset.cases.set_index("case_id")
    assert list(cases.index) == [
        "hotline:0001",  # the platform's id as text: its leading zeros kept
        "hotline:0002",
        "hotline:0003",
        "police:501",
        "police:502",
        "mediation:M-1",
    ]
    assert cases.loc["police:502", ["source", "source_case_id", "category", "severity"]].tolist() == [
        "police",
        "502",
        "property",
        4,
    ]
    assert cases.loc["hotline:0002", ["category", "severity", "party_key", "description"]].tolist() == [
        "property",
        3,
        "k2",
        "fence moved",
    ]
    assert "operator" not in cases.columns
    assert ingested.dataset.as_of == pd.Timestamp("2024-07-01")
    assert riskmodel.ingest is ingest


def test_times_of_every_zone_and_format_agree_in_the_datasets_zone(exports):
    cases = ingest(write_config(exports)).dataset.cases.set_index("case_id")
    # local text, UTC epoch seconds and UTC ISO text: one instant, the same naive Shanghai time
    assert cases.loc[["hotline:0001", "police:501", "mediation:M-1"], "reported_at"].tolist() == [MAY_FIRST] * 3
    assert cases.loc["mediation:M-1", "resolved_at"] == pd.Timestamp("2024-05-02 10:00")
    assert cases["reported_at"].dtype == "datetime64[us]"


def test_rejected_rows_have_their_reasons_and_the_counts_reconcile(exports):
    police = pd.read_parquet(exports / "police" / "2024.parquet")
    extra = pd.DataFrame(
        {"incident": [503, 504, 505], "ts": [EPOCH, EPOCH, EPOCH], "grid": ["G1", "G9", "G2"], "code": [11, 11, 12]}
    ).assign(level=[7, 1, 1])  # 503: no severity 7; 504: no unit G9
    pd.concat([police, extra]).to_parquet(exports / "police" / "2024.parquet")
    hotline = pd.read_csv(exports / "hotline" / "2024-06.csv", dtype="str")
    hotline.loc[1] = hotline.loc[0].replace({"0003": "0004", "02/06/2024 08:00": "2024-06-02 08:00"})
    hotline.to_csv(exports / "hotline" / "2024-06.csv", index=False)
    with pytest.warns(UserWarning, match=r"source 'hotline': column 'call_time' \(reported_at\): 1 row\(s\) rejected"):
        ingested = ingest(write_config(exports))
    rejected = ingested.rejected
    assert rejected[["source", "file", "row", "source_case_id", "column", "value"]].values.tolist() == [
        ["hotline", "hotline/2024-06.csv", 1, "0004", "call_time", "2024-06-02 08:00"],
        ["police", "police/2024.parquet", 2, "503", "level", "7"],
        ["police", "police/2024.parquet", 3, "504", "grid", "G9"],
    ]
    assert rejected["reason"].tolist() == [
        "time_format: does not match the time format '%d/%m/%Y %H:%M'",
        "range: severity must be an integer from 1 to 4",
        "unknown_grid: grid_id must be a grid_id of the grids table",
    ]
    counts = ingested.counts.set_index("source")
    assert counts.loc["police"].tolist() == [1, 5, 3, 2]
    assert counts.loc["hotline"].tolist() == [2, 4, 3, 1]
    assert (counts["read"] == counts["mapped"] + counts["rejected"]).all()
    assert ingested.dataset.cases["source"].value_counts().to_dict() == counts["mapped"].to_dict()


def test_a_code_without_a_mapping_is_an_error_with_its_counts(exports):
    police = pd.read_parquet(exports / "police" / "2024.parquet")
    police.assign(code=[11, 99]).pipe(lambda f: pd.concat([f, f.assign(incident=[601, 602])])).to_parquet(
        exports / "police" / "2024.parquet"
    )
    with pytest.raises(ValueError, match="codes that the code table does not map") as error:
        ingest(write_config(exports))
    assert "source 'police'" in str(error.value)
    assert "column 'code' (category): '99' (2 rows); first at row 1 of police/2024.parquet" in str(error.value)


def test_a_time_format_that_fails_every_row_is_an_error(exports):
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][0]["time"]["format"] = "%Y-%m-%d %H:%M"
    with pytest.raises(ValueError, match="column 'call_time' \\(reported_at\\): no value does not match") as error:
        ingest(write_config(exports, config))
    assert "row 0 of hotline/2024-05.csv ('01/05/2024 10:00')" in str(error.value)


def test_a_file_without_a_declared_column_names_what_it_has(exports):
    frame = pd.read_csv(exports / "hotline" / "2024-06.csv", dtype="str")
    frame.drop(columns="caller_key").to_csv(exports / "hotline" / "2024-06.csv", index=False)  # absent in one file
    with pytest.raises(ValueError, match="source 'hotline'") as error:
        ingest(write_config(exports))
    message = str(error.value)
    assert "2024-06.csv lacks the declared column(s) 'caller_key' (party_key)" in message
    assert "its columns are 'ticket_no', 'call_time', 'unit_code', 'issue_type', 'urgency', 'summary'" in message


def test_a_code_given_twice_in_the_yaml_is_an_error(exports):
    text = yaml.safe_dump(SOURCES, sort_keys=False, default_flow_style=None)
    assert "{NOISE: neighbour_noise, PROP: property}" in text
    (exports / "sources.yaml").write_text(text.replace("PROP: property", "PROP: property, NOISE: other"))
    with pytest.raises(ValueError, match=r"sources.yaml: .*key 'NOISE' is given twice \(first on line 13\)"):
        ingest(exports / "sources.yaml")
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][1]["codes"]["category"] = {11: "neighbour_noise", "11": "property"}
    with pytest.raises(ValueError, match=r"sources\.1 \(police\)\.codes: .*category: code '11' is given twice"):
        ingest(write_config(exports, config))


def test_bad_configurations_are_errors_naming_the_key(exports):
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][1]["name"] = "hotline"
    with pytest.raises(ValueError, match=r"source name\(s\) \['hotline'\] are given twice"):
        ingest(write_config(exports, config))
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][0]["colums"] = {}
    config["timezone"] = "Mars/Olympus"
    with pytest.raises(ValueError, match="2 problem") as error:
        ingest(write_config(exports, config))
    assert "sources.0 (hotline).colums: Extra inputs are not permitted" in str(error.value)
    assert "timezone: Value error, 'Mars/Olympus' is not a time zone" in str(error.value)
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][0]["codes"]["severity"] = {False: 1}  # an unquoted NO
    with pytest.raises(ValueError, match="code False is a YAML boolean: quote it"):
        ingest(write_config(exports, config))
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][2]["files"] = "mediation/*.xlsx"
    with pytest.raises(ValueError, match="source 'mediation': files 'mediation/\\*.xlsx' match no file"):
        ingest(write_config(exports, config))
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][2]["sheet"] = "ledger"
    with pytest.raises(ValueError, match=r"'mediation': cannot read .*mediation.xlsx \(sheet 'ledger'\) as Excel"):
        ingest(write_config(exports, config))


def test_the_command_writes_the_dataset_the_rejected_rows_and_the_counts(exports):
    config = yaml.safe_load(yaml.safe_dump(SOURCES))
    config["sources"][0]["time"]["timezone"] = "Europe/London"  # so 10:00 is 17:00 in Shanghai
    runner = CliRunner()
    out = exports / "dataset"
    result = runner.invoke(app, ["ingest", "--config", str(write_config(exports, config)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "hotline      2     3       3         0" in result.output
    dataset = read_dataset(out)
    assert dataset.cases.set_index("case_id").loc["hotline:0001", "reported_at"] == pd.Timestamp("2024-05-01 17:00")
    assert pd.read_csv(out / "counts.csv")["read"].tolist() == [3, 2, 1]
    assert pd.read_csv(out / "rejected.csv").empty
    config["sources"][0]["files"] = "nowhere/*.csv"
    result = runner.invoke(app, ["ingest", "--config", str(write_config(exports, config)), "--out", str(out)])
    assert result.exit_code == 1 and "source 'hotline': files 'nowhere/*.csv' match no file" in result.output
    assert "Traceback" not in result.output


def test_the_simulators_platform_exports_come_back_as_its_reports(tmp_path):
    """End to end: every platform's raw export of a simulated district, ingested through the
    sources.yaml written beside it, gives back each report with its unit, category, times and party."""
    from riskmodel.datasets import export_platforms, simulate_district

    district = simulate_district("tiny", seed=0)
    ingested = ingest(export_platforms(district, tmp_path))
    assert ingested.rejected.empty
    counts = ingested.counts.set_index("source")
    assert counts["read"].to_dict() == district.cases["source"].value_counts().to_dict()
    assert (counts["mapped"] == counts["read"]).all()
    truth = pd.read_csv(tmp_path / "truth_disputes.csv", dtype="str")  # each platform's rows in the cases' order
    reports = pd.concat([district.cases[district.cases["source"] == s] for s in truth["source"].unique()])
    got = ingested.dataset.cases.set_index("case_id").loc[truth["source"] + ":" + truth["source_case_id"]]
    for column in ("grid_id", "category", "severity", "outcome", "party_key", "source"):
        assert got[column].tolist() == reports[column].tolist(), column
    for column in ("reported_at", "resolved_at"):  # the hotline writes minutes
        pd.testing.assert_series_equal(
            got[column].dt.floor("min").reset_index(drop=True),
            reports[column].dt.floor("min").reset_index(drop=True),
            check_names=False,
        )
