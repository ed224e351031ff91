from __future__ import annotations

import pandas as pd
import pytest

from riskmodel import validate
from riskmodel.io import read_dataset, write_dataset


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
        category=pd.Categorical(dataset.cases["category"], categories=["family", "neighbour_noise", "consumer",
                                                                       "unused"], ordered=True),
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
        "cases.parquet", "dataset.json", "grid_history.parquet", "grids.parquet"]


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


def test_missing_folder_and_tables(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset folder"):
        read_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="cases.parquet or cases.csv"):
        read_dataset(tmp_path / "empty")


def test_unknown_format(tmp_path, dataset):
    with pytest.raises(ValueError, match="format must be"):
        write_dataset(dataset, tmp_path, format="xlsx")
