from __future__ import annotations

import hashlib
import json
import warnings

import pandas as pd
import pytest

import riskmodel.io
from riskmodel import validate
from riskmodel.checksums import content_digest
from riskmodel.io import DatasetFileError, read_dataset, write_dataset

from .conftest import make_plans, make_visits


@pytest.mark.parametrize("format", ["parquet", "csv"])
def test_round_trip_is_exact(tmp_path, small_district, format):
    original = validate(small_district).dataset
    folder = write_dataset(original, tmp_path / "ds", format=format)
    assert (folder / f"cases.{format}").exists() and (folder / "dataset.json").exists()
    back = read_dataset(folder)
    assert back.as_of == original.as_of
    for name, frame in original.tables.items():
        # The index is not part of the contract: a quarantined dataset comes back 0, 1, 2, ...
        pd.testing.assert_frame_equal(back.tables[name], frame.reset_index(drop=True), check_exact=True)


def test_round_trip_keeps_categoricals_text_and_user_columns(tmp_path, dataset):
    cases = dataset.cases.assign(
        category=pd.Categorical(
            dataset.cases["category"], categories=["family", "neighbour_noise", "consumer", "unused"], ordered=True
        ),
        note=["NA", None, "null", "n/a"],
        code=pd.Categorical([3, 1, 3, 2]),
        waited=pd.to_timedelta(["1 days", "2 hours", None, "30 min"]),
    )
    ds = validate(dataset.replace(cases=cases)).dataset
    for format in ("parquet", "csv"):
        back = read_dataset(write_dataset(ds, tmp_path / format, format=format))
        pd.testing.assert_frame_equal(back.cases, ds.cases, check_exact=True)
        assert back.cases["note"].tolist()[0] == "NA" and list(back.cases["category"].cat.categories)[-1] == "unused"


def test_stale_tables_do_not_come_back(tmp_path, dataset):
    write_dataset(dataset, tmp_path / "d", format="csv")
    write_dataset(dataset.replace(adjacency=None), tmp_path / "d")
    assert read_dataset(tmp_path / "d").adjacency is None
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "cases.parquet",
        "dataset.json",
        "grid_history.parquet",
        "grids.parquet",
    ]


def test_folder_without_manifest(tmp_path, dataset):
    folder = tmp_path / "plain"
    folder.mkdir()
    dataset.cases.assign(case_id=["007", "01", "1", "c4"]).to_csv(folder / "cases.csv", index=False)
    dataset.grids.to_csv(folder / "grids.csv", index=False)
    back = read_dataset(folder)
    assert back.adjacency is None and back.grid_history.empty
    assert back.cases["case_id"].tolist() == ["007", "01", "1", "c4"]
    assert back.cases["reported_at"].dtype.kind == "M"
    assert validate(back).counts.loc["cases", "valid"] == len(dataset.cases)


@pytest.mark.parametrize("format", ["parquet", "csv"])
def test_round_trip_with_visits_is_exact(tmp_path, dataset, format):
    original = validate(dataset.replace(visits=make_visits(), plans=make_plans())).dataset
    folder = write_dataset(original, tmp_path / "ds", format=format)
    manifest = json.loads((folder / "dataset.json").read_text())
    assert "visits" in manifest["tables"] and manifest["files"]["visits"]["rows"] == 5
    assert manifest["files"]["plans"]["rows"] == 4
    back = read_dataset(folder)
    assert repr(back) == repr(original)
    for name, frame in original.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], frame.reset_index(drop=True), check_exact=True)
    assert back.visits["visited_at"].dtype == "datetime64[us]" and back.visits["plan_id"].isna().sum() == 2
    assert back.plans["week"].dtype == "datetime64[us]" and back.plans["priority"].dtype == "int64"
    # Written again without visits and plans, the old files do not come back.
    write_dataset(original.replace(visits=None, plans=None), folder, format=format)
    back = read_dataset(folder)
    assert back.visits is None and not (folder / f"visits.{format}").exists()
    assert back.plans is None and not (folder / f"plans.{format}").exists()


def test_a_changed_visits_file_is_refused(tmp_path, dataset):
    folder = write_dataset(dataset.replace(visits=make_visits()), tmp_path / "d", format="csv")
    with (folder / "visits.csv").open("a") as file:
        file.write("v6,G1,2024-07-01,screening,,,,\n")
    with pytest.raises(DatasetFileError, match=r"visits\.csv was changed or cut short"):
        read_dataset(folder)


def test_folder_without_manifest_reads_visits(tmp_path, dataset):
    folder = tmp_path / "plain"
    folder.mkdir()
    dataset.cases.to_csv(folder / "cases.csv", index=False)
    dataset.grids.to_csv(folder / "grids.csv", index=False)
    make_visits().assign(visit_id=["001", "1", "v3", "v4", "v5"]).to_csv(folder / "visits.csv", index=False)
    make_plans().to_csv(folder / "plans.csv", index=False)
    back = read_dataset(folder)
    assert back.visits["visit_id"].tolist() == ["001", "1", "v3", "v4", "v5"]  # text, not numbers
    report = validate(back)  # times of mixed formats stay text until validate reads them
    assert report.counts.loc["visits", "valid"] == 5 and report.dataset.visits["visited_at"].dtype.kind == "M"
    assert report.counts.loc["plans", "valid"] == 4 and back.plans["plan_id"].tolist() == ["P1", "P1", "P1", "P2"]


def test_missing_folder_and_tables(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset folder"):
        read_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="cases.parquet or cases.csv"):
        read_dataset(tmp_path / "empty")


def test_unknown_format(tmp_path, dataset):
    with pytest.raises(ValueError, match="format must be"):
        write_dataset(dataset, tmp_path, format="xlsx")


# --- Checksums, counts and clear failures (issue 14, section 3) ---

SECRET = "p-alpha"  # a party_key of the fixture: never in a message


def _manifest(folder):
    return json.loads((folder / "dataset.json").read_text())


def _edit_manifest(folder, change):
    """Edit the manifest and recompute its own checksum, as a tool that rewrites it would,
    so that the checks behind the checksum are reached."""
    manifest = _manifest(folder)
    manifest.pop("manifest_sha256", None)
    change(manifest)
    if "version" in manifest:
        manifest["manifest_sha256"] = content_digest(manifest)
    (folder / "dataset.json").write_text(json.dumps(manifest))
    return folder


def test_an_edited_manifest_is_refused_by_its_own_checksum(tmp_path, dataset):
    folder = write_dataset(dataset, tmp_path / "d", format="csv")
    manifest = _manifest(folder)
    next(s for s in manifest["tables"]["grids"] if s["name"] == "lon")["dtype"] = "float32"  # values still fit
    (folder / "dataset.json").write_text(json.dumps(manifest))
    _refused(folder, "dataset.json", "does not match its own checksum")


def _refused(folder, *names, verify=True):
    """Read a folder that must fail; the message names every one of ``names``."""
    with pytest.raises(DatasetFileError) as caught:
        read_dataset(folder, verify=verify)
    message = str(caught.value)
    assert all(name in message for name in names), message
    assert SECRET not in message and caught.value.__cause__ is None
    return message


@pytest.mark.parametrize("format", ["parquet", "csv"])
def test_manifest_records_counts_and_hashes(tmp_path, dataset, format):
    folder = write_dataset(dataset, tmp_path / "d", format=format)
    manifest = _manifest(folder)
    assert manifest["version"] == 2
    for name, frame in dataset.tables.items():
        path = folder / f"{name}.{format}"
        assert manifest["files"][name] == {"rows": len(frame), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_dataset(folder)
    pd.testing.assert_frame_equal(back.cases, dataset.cases)
    pd.testing.assert_frame_equal(read_dataset(folder, verify=False).grids, dataset.grids)


def test_a_file_cut_short_is_refused(tmp_path, small_district):
    folder = write_dataset(small_district, tmp_path / "d", format="csv")
    path = folder / "cases.csv"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = _refused(folder, "cases.csv", "SHA-256", "cut short")
    assert _manifest(folder)["files"]["cases"]["sha256"] in message
    rows = _refused(folder, "cases.csv", "rows", f"records {len(small_district.cases)}", verify=False)
    assert "SHA-256" not in rows


def test_a_changed_byte_is_refused(tmp_path, dataset):
    folder = write_dataset(dataset, tmp_path / "d")
    path = folder / "grids.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _refused(folder, "grids.parquet", "SHA-256")


def test_a_legacy_manifest_is_read_with_a_warning(tmp_path, dataset):
    folder = _edit_manifest(
        write_dataset(dataset, tmp_path / "d", format="csv"), lambda m: [m.pop("version"), m.pop("files")]
    )
    with pytest.warns(UserWarning, match="no row counts or checksums") as caught:
        back = read_dataset(folder)
    assert len(caught) == 1 and "dataset.json" in str(caught[0].message)
    pd.testing.assert_frame_equal(back.cases, dataset.cases)


def test_values_outside_the_categories_are_refused(tmp_path, dataset):
    cases = dataset.cases.assign(source=dataset.cases["source"].astype("category"))
    for format in ("parquet", "csv"):
        folder = write_dataset(dataset.replace(cases=cases), tmp_path / format, format=format)
        _edit_manifest(folder, lambda m: m["tables"]["cases"][5].update(categories=["hotline"]))
        message = _refused(folder, f"cases.{format}", "'source'", "2 value(s)", "categories", "'police'")
        assert "row 1" in message


def _rewrite(name, change):
    """Change a table's file through its text (verify=False below: the checksum would catch it first)."""

    def corrupt(folder):
        path = folder / name
        path.write_bytes(change(path.read_bytes()))

    return corrupt


def _manifest_change(change):
    return lambda folder: _edit_manifest(folder, change)


def _column(table, column, **changes):
    def change(manifest):
        next(s for s in manifest["tables"][table] if s["name"] == column).update(changes)

    return change


# (case, format, corruption, words the message must hold)
FAILURES = [
    (
        "bad JSON",
        "csv",
        lambda f: (f / "dataset.json").write_text('{"format": "csv",'),
        ["dataset.json", "not valid JSON", "line 1"],
    ),
    ("missing key", "csv", _manifest_change(lambda m: m.pop("tables")), ["dataset.json", "lacks 'tables'"]),
    (
        "wrong shape",
        "csv",
        _manifest_change(lambda m: m.update(tables=["cases"])),
        ["dataset.json", "'tables' is not an object"],
    ),
    (
        "wrong column shape",
        "csv",
        _manifest_change(lambda m: m["tables"].update(grids={"grid_id": "str"})),
        ["dataset.json", "columns of grids"],
    ),
    ("empty CSV", "csv", _rewrite("cases.csv", lambda b: b""), ["cases.csv", "empty (0 bytes)"]),
    (
        "UTF-16",
        "csv",
        _rewrite("grids.csv", lambda b: b.decode().encode("utf-16")),
        ["grids.csv", "not UTF-8", "UTF-16", "must be UTF-8"],
    ),
    (
        "Latin-1",
        "csv",
        _rewrite("cases.csv", lambda b: b.replace(b"police", "polic\xe9".encode("latin-1"))),
        ["cases.csv", "not UTF-8", "row 1, column 'source'", "must be UTF-8"],
    ),
    (
        "integer with blanks",
        "csv",
        _rewrite("cases.csv", lambda b: b.replace(b",2,police", b",,police")),
        ["cases.csv", "'severity'", "blank", "row 1"],
    ),
    (
        "listed column missing",
        "csv",
        _manifest_change(lambda m: m["tables"]["adjacency"].append({"name": "ghost", "dtype": "str"})),
        ["adjacency.csv", "lacks column(s) 'ghost'"],
    ),
    (
        "column not listed",
        "parquet",
        _manifest_change(lambda m: m["tables"]["adjacency"].pop()),
        ["adjacency.parquet", "'neighbour_id'", "does not list"],
    ),
    (
        "unknown table",
        "csv",
        _manifest_change(lambda m: m["tables"].update(people=[])),
        ["dataset.json", "'people'", "not among"],
    ),
    (
        "text in int64",
        "parquet",
        _manifest_change(_column("cases", "case_id", dtype="int64")),
        ["cases.parquet", "'case_id'", "4 value(s)", "'c1'"],
    ),
    (
        "text in float64",
        "csv",
        _manifest_change(_column("cases", "outcome", dtype="float64")),
        ["cases.csv", "'outcome'", "'resolved'"],
    ),
    (
        "invalid time",
        "csv",
        _rewrite("cases.csv", lambda b: b.replace(b"2024-02-01 21:30:00", b"next tuesday")),
        ["cases.csv", "'reported_at'", "row 1", "'next tuesday'"],
    ),
    (
        "unknown dtype",
        "parquet",
        _manifest_change(_column("grids", "lon", dtype="float65")),
        ["dataset.json", "grids.lon", "'float65'", "not a pandas dtype"],
    ),
    (
        "corrupt Parquet",
        "parquet",
        _rewrite("grids.parquet", lambda b: b[:100] + b"\0" * 64 + b[164:]),
        ["grids.parquet", "not a readable Parquet file"],
    ),
    ("unknown format", "csv", _manifest_change(lambda m: m.update(format="xlsx")), ["dataset.json", "'xlsx'"]),
]


@pytest.mark.parametrize("case, format, corrupt, words", FAILURES, ids=[f[0] for f in FAILURES])
def test_every_failure_names_the_file_and_column(tmp_path, dataset, case, format, corrupt, words):
    folder = write_dataset(validate(dataset).dataset, tmp_path / "d", format=format)
    corrupt(folder)
    _refused(folder, *words, verify=False)


def test_a_party_key_typed_as_a_number_is_not_shown(tmp_path, dataset):
    for format in ("parquet", "csv"):
        folder = write_dataset(dataset, tmp_path / format, format=format)
        _edit_manifest(folder, _column("cases", "party_key", dtype="int64"))
        message = _refused(folder, f"cases.{format}", "'party_key'", "first at row 0")
        assert "e.g." not in message


@pytest.mark.parametrize("name", ["/tmp/x", "../outside", "cases.parquet", "Cases"])
def test_table_names_are_the_contracts_before_any_file_is_opened(tmp_path, dataset, monkeypatch, name):
    folder = _edit_manifest(
        write_dataset(dataset, tmp_path / "d"), lambda m: m["tables"].update({name: m["tables"].pop("adjacency")})
    )
    monkeypatch.setattr(riskmodel.io, "_read_table", lambda *a: pytest.fail("a file was opened"))
    _refused(folder, "dataset.json", repr(name), "not among")


def test_a_csv_column_of_mixed_types_is_not_written(tmp_path, dataset):
    mixed = dataset.replace(grids=dataset.grids.assign(code=pd.Series([1, "1", None, 2, "x"], dtype=object)))
    with pytest.raises(DatasetFileError, match=r"grids\.code.*int, str"):
        write_dataset(mixed, tmp_path / "d", format="csv")
    assert not (tmp_path / "d").exists()


def test_a_parquet_write_error_names_the_column_not_the_value(tmp_path, dataset):
    cases = dataset.cases.assign(party_key=pd.Series([SECRET, 7, SECRET, None], dtype=object))
    with pytest.raises(DatasetFileError) as caught:
        write_dataset(dataset.replace(cases=cases), tmp_path / "d")
    message = str(caught.value)
    assert "cases.party_key" in message and "cases.parquet" in message and SECRET not in message
    assert caught.value.__cause__ is None and not (tmp_path / "d" / "cases.parquet").exists()
