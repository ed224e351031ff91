"""Replays the probes of the hardening issue (issue 14) as regression tests: each
probe that once lost data silently, leaked a party key or ended in a raw traceback
now fails with one clear error, one test per probe, grouped by the issue's sections."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from riskmodel import validate
from riskmodel.io import DatasetFileError, read_dataset, write_dataset

from .conftest import make_dataset

# --- Dataset files (section 3): files cannot lose or change rows silently ---

_KEY = "p-alpha"  # a party_key of the fixture


def _folder(tmp_path, format="csv", dataset=None):
    return write_dataset(dataset or validate(make_dataset()).dataset, tmp_path / "d", format=format)


def _set_manifest(folder, change):
    manifest = json.loads((folder / "dataset.json").read_text())
    change(manifest)
    (folder / "dataset.json").write_text(json.dumps(manifest))


def _read_fails(folder, match, verify=True):
    with pytest.raises(DatasetFileError, match=match) as caught:
        read_dataset(folder, verify=verify)
    assert _KEY not in str(caught.value)
    return str(caught.value)


def test_dataset_files_a_truncated_csv_is_refused(tmp_path):
    """Probe: a CSV cut mid-row read 129 of 265 rows, its last value cut to "mediati"."""
    folder = _folder(tmp_path)
    cases = folder / "cases.csv"
    cases.write_bytes(cases.read_bytes()[:-9])
    _read_fails(folder, r"cases\.csv was changed or cut short.*SHA-256")


def test_dataset_files_values_outside_the_categories_are_refused(tmp_path):
    """Probe: values missing from the manifest's categories silently became NaN."""
    data = validate(make_dataset()).dataset
    folder = _folder(tmp_path, "parquet", data.replace(cases=data.cases.assign(source=data.cases["source"]
                                                                              .astype("category"))))
    _set_manifest(folder, lambda m: next(s for s in m["tables"]["cases"] if s["name"] == "source").update(
        categories=["hotline"]))
    _read_fails(folder, r"cases\.parquet: column 'source': 2 value\(s\) are not among the categories")


def test_dataset_files_a_column_the_file_lacks(tmp_path):
    """Probe: a column the manifest lists but the file lacks was ``KeyError: 'ghost'``."""
    folder = _folder(tmp_path)
    _set_manifest(folder, lambda m: m["tables"]["grids"].append({"name": "ghost", "dtype": "str"}))
    _read_fails(folder, r"grids\.csv lacks column\(s\) 'ghost'")


def test_dataset_files_an_unknown_table_name(tmp_path):
    """Probe: an unknown table was a ``TypeError`` from ``Dataset.__init__``; a path was opened."""
    folder = _folder(tmp_path)
    for name in ("people", "../outside", "/tmp/x"):
        _set_manifest(folder, lambda m, name=name: m["tables"].update({name: []}))
        _read_fails(folder, r"dataset\.json .*table name\(s\) .* are not among cases")
        _set_manifest(folder, lambda m, name=name: m["tables"].pop(name))


def test_dataset_files_an_empty_or_non_utf8_csv(tmp_path):
    """Probe: a 0-byte CSV, or UTF-16 or Latin-1 text, ended in pandas' own errors."""
    folder = _folder(tmp_path)
    grids = folder / "grids.csv"
    text = grids.read_bytes().decode()
    for content, match in ((b"", r"grids\.csv is empty \(0 bytes\)"),
                           (text.encode("utf-16"), r"grids\.csv is not UTF-8 text \(it looks like UTF-16\)"),
                           (text.replace("street", "stré").encode("latin-1"), r"grids\.csv .*column 'level'")):
        grids.write_bytes(content)
        _read_fails(folder, match, verify=False)


def test_dataset_files_an_integer_column_with_blanks(tmp_path):
    """Probe: a blank in an int64 column was pandas' "Integer column has NA values"."""
    folder = _folder(tmp_path)
    cases = folder / "cases.csv"
    cases.write_bytes(cases.read_bytes().replace(b",2,police", b",,police"))
    _read_fails(folder, r"cases\.csv: column 'severity': 1 value\(s\) are blank", verify=False)


def test_dataset_files_a_corrupt_parquet_file(tmp_path):
    """Probe: a corrupt Parquet file was pyarrow's traceback."""
    folder = _folder(tmp_path, "parquet")
    (folder / "grids.parquet").write_bytes(b"PAR1 not really")
    _read_fails(folder, r"grids\.parquet is not a readable Parquet file", verify=False)
    _read_fails(folder, r"grids\.parquet was changed or cut short")


def test_dataset_files_a_mixed_csv_column_is_not_written(tmp_path):
    """Probe: an object column holding 1 and "1" came back as two equal texts."""
    data = validate(make_dataset()).dataset
    mixed = data.replace(cases=data.cases.assign(code=pd.Series([1, "1", 2, None], dtype=object)))
    with pytest.raises(DatasetFileError, match=r"cases\.code to CSV: it mixes values of types int, str"):
        write_dataset(mixed, tmp_path / "d", format="csv")


def test_dataset_files_a_party_key_typed_int64_is_not_in_the_read_error(tmp_path):
    """Probe: a manifest typing party_key as int64 leaked "invalid literal for int() ... 'p-alpha'"."""
    for format in ("csv", "parquet"):
        folder = _folder(tmp_path / format, format)
        _set_manifest(folder, lambda m: next(s for s in m["tables"]["cases"] if s["name"] == "party_key").update(
            dtype="int64"))
        message = _read_fails(folder, rf"cases\.{format}: column 'party_key': .* \(first at row 0\)")
        assert "e.g." not in message


def test_dataset_files_a_party_key_is_not_in_pyarrows_write_error(tmp_path):
    """Probe: pyarrow's error writing a mixed party_key column quoted a key."""
    data = validate(make_dataset()).dataset
    mixed = data.replace(cases=data.cases.assign(party_key=pd.Series([_KEY, 3, _KEY, None], dtype=object)))
    with pytest.raises(DatasetFileError, match=r"cases\.party_key to cases\.parquet") as caught:
        write_dataset(mixed, tmp_path / "d")
    assert _KEY not in str(caught.value) and caught.value.__cause__ is None
