"""Property tests of dataset folders: a folder that was cut short, had bytes flipped or
had its manifest edited reads back as what was written, or fails with a
``ValueError`` that names a file; never another exception, never different data.

The manifest carries its own checksum, so an edit is refused; an edit whose checksum was
recomputed on purpose is read through the manifest as it now stands (it is the only
record of ``as_of`` and of the columns' types, so an edit of those that the values fit,
``int64`` to ``float64``, is honoured), while the values themselves, which the row counts
and the files' checksums protect, must come back unchanged.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel import Dataset, validate
from riskmodel.checksums import content_digest
from riskmodel.io import DatasetFileError, read_dataset, write_dataset

from .conftest import make_dataset

EXAMPLES = settings(max_examples=50, deadline=None)
FORMATS = st.sampled_from(["parquet", "csv"])
TABLES = ["cases", "grids", "grid_history", "adjacency"]
DTYPES = [
    "int64",
    "int8",
    "float64",
    "str",
    "object",
    "bool",
    "datetime64[us]",
    "datetime64[s]",
    "timedelta64[ns]",
    "category",
    "int65",
    "",
    "datetime64[parsec]",
]
NAMES = TABLES + ["/tmp/x", "../outside", "Cases", "cases.csv", ""]


def _written() -> Dataset:
    """The fixture's dataset, validated, with a categorical column."""
    data = validate(make_dataset()).dataset
    return data.replace(cases=data.cases.assign(source=data.cases["source"].astype("category")))


WRITTEN = _written()


def _write(folder: Path, format: str) -> Path:
    return write_dataset(WRITTEN, folder / "d", format=format)


def _expected(values: pd.Series, spec: dict) -> pd.Series | None:
    """The values written, in the type the manifest names (``object`` holds their text, as
    in CSV); None when they do not fit it."""
    try:
        dtype = (
            pd.CategoricalDtype(pd.Index(spec["categories"]).astype(spec["categories_dtype"]), spec["ordered"])
            if "categories" in spec
            else spec["dtype"]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = values.astype(dtype) if dtype != "object" else values.astype("str").astype(object)
    except (ValueError, TypeError, OverflowError):
        return None
    if (values.notna() & converted.isna()).any() or (converted.notna() & values.isna()).any():
        return None
    return converted


def _check(folder: Path) -> None:
    """The property: an error naming a file, or the data written (as the manifest types it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a manifest edited into an older one
            back = read_dataset(folder)
    except ValueError as error:  # DatasetFileError among them
        assert any(name in str(error) for name in ("dataset.json", ".parquet", ".csv")), str(error)
        return
    manifest = json.loads((folder / "dataset.json").read_bytes())
    assert back.as_of == (None if manifest["as_of"] is None else pd.Timestamp(manifest["as_of"]))
    assert set(back.tables) == set(WRITTEN.tables)
    for name, frame in WRITTEN.tables.items():
        specs = {spec["name"]: spec for spec in manifest["tables"][name]}
        expected = {column: _expected(frame[column], specs[column]) for column in frame.columns}
        assert all(values is not None for values in expected.values()), f"{name}: values that do not fit were read"
        pd.testing.assert_frame_equal(back.tables[name], pd.DataFrame(expected), check_exact=True)


def _manifest_edit(draw, manifest: dict) -> None:
    table = draw(st.sampled_from(sorted(manifest["tables"])))
    what = draw(st.sampled_from(["dtype", "categories", "rows", "table"]))
    if what == "dtype":
        draw(st.sampled_from(manifest["tables"][table]))["dtype"] = draw(st.sampled_from(DTYPES))
    elif what == "categories":
        for spec in (s for specs in manifest["tables"].values() for s in specs if "categories" in s):
            spec["categories"] = draw(
                st.lists(st.sampled_from(["hotline", "police", "grid_worker", "mediation", 1]), max_size=4)
            )
    elif what == "rows":
        manifest["files"][table]["rows"] = draw(st.integers(-1, 8))
    else:
        new = draw(st.sampled_from(NAMES))
        manifest["tables"][new] = manifest["tables"].pop(table)
        manifest["files"][new] = manifest["files"].pop(table)


@EXAMPLES
@given(format=FORMATS, table=st.sampled_from(TABLES), cut=st.floats(0, 1))
def test_a_file_cut_short(format, table, cut):
    with tempfile.TemporaryDirectory() as tmp:
        folder = _write(Path(tmp), format)
        path = folder / f"{table}.{format}"
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
        _check(folder)


@EXAMPLES
@given(format=FORMATS, file=st.sampled_from(TABLES + ["dataset.json"]), data=st.data())
def test_flipped_bytes(format, file, data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = _write(Path(tmp), format)
        path = folder / (file if file.endswith(".json") else f"{file}.{format}")
        content = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 3))):
            position = data.draw(st.integers(0, len(content) - 1))
            content[position] ^= data.draw(st.integers(1, 255))
        path.write_bytes(bytes(content))
        _check(folder)


@EXAMPLES
@given(format=FORMATS, data=st.data(), rehash=st.booleans())
def test_manifest_edits(format, data, rehash):
    """An edit is refused by the manifest's own checksum; an edit whose checksum was recomputed
    (by a tool, on purpose) reaches the checks behind it and gives the property."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = _write(Path(tmp), format)
        written = json.loads((folder / "dataset.json").read_text())
        manifest = json.loads(json.dumps(written))
        checksum = manifest.pop("manifest_sha256")
        for _ in range(data.draw(st.integers(1, 2))):
            _manifest_edit(data.draw, manifest)
        manifest["manifest_sha256"] = content_digest(manifest) if rehash else checksum
        (folder / "dataset.json").write_text(json.dumps(manifest))
        if not rehash and manifest != written:
            with pytest.raises(DatasetFileError, match="does not match its own checksum"):
                read_dataset(folder)
        _check(folder)


@pytest.mark.parametrize("format", ["parquet", "csv"])
def test_an_untouched_folder_passes_the_property(tmp_path, format):
    _check(_write(tmp_path, format))
