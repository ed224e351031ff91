from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from riskmodel import validate
from riskmodel.io import events_to_dataset


def _events() -> pd.DataFrame:
    # Three points: two 100 m apart, one 2 km east; one without a time, one without a place.
    lat, lon = 41.88, -87.63
    metre_lon = 1 / (111_320 * np.cos(np.radians(lat)))
    return pd.DataFrame(
        {
            "when": ["2019-01-01 10:00", "2019-01-02 11:00", "2019-01-03 12:00", None, "2019-01-04 09:00"],
            "x": [lon, lon + 100 * metre_lon, lon + 2000 * metre_lon, lon, None],
            "y": [lat, lat, lat, lat, lat],
            "kind": ["street", "street", "residence", "street", "park"],
        }
    )


def test_points_become_cells_of_the_given_size():
    with pytest.warns(UserWarning, match="2 of 5 records left out"):
        report = events_to_dataset(_events(), time="when", lon="x", lat="y", category="kind", cell_m=500)
    ds = report.dataset
    assert report.counts.loc["events"].to_dict() == {"input": 5, "valid": 3, "rejected": 2}
    assert set(report.rejected["reason"]) == {"when: missing", "x, y: missing"}
    assert ds.cases["case_id"].tolist() == ["E1", "E2", "E3"]
    assert ds.cases["category"].tolist() == ["street", "street", "residence"]
    cells = ds.cases["grid_id"]
    assert cells.iloc[0] != cells.iloc[2]
    grids = ds.grids.set_index("grid_id")
    assert grids.loc["city", "level"] == "city" and pd.isna(grids.loc["city", "parent_id"])
    assert (grids.loc[cells, "area_km2"] == 0.25).all()
    # 2 km east is four 500 m cells further along x.
    ix = cells.str.extract(r"c(-?\d+)_(-?\d+)").astype(int)
    assert ix.iloc[2, 0] - ix.iloc[0, 0] in (3, 4, 5) and ix.iloc[2, 1] == ix.iloc[0, 1]
    assert validate(ds).counts["rejected"].sum() == 0


def test_cell_size_is_metric():
    rng = np.random.default_rng(0)
    lat = 41.8 + rng.uniform(0, 0.2, 2000)
    lon = -87.7 + rng.uniform(0, 0.2, 2000)
    events = pd.DataFrame({"t": "2019-05-01 10:00", "lon": lon, "lat": lat})
    coarse = events_to_dataset(events, time="t", lon="lon", lat="lat", cell_m=2000).dataset
    fine = events_to_dataset(events, time="t", lon="lon", lat="lat", cell_m=1000).dataset
    # The area is ~16.6 km x 22.3 km: about 4x as many 1 km cells as 2 km cells.
    ratio = (len(fine.grids) - 1) / (len(coarse.grids) - 1)
    assert 3.3 < ratio < 4.3
    # Neighbouring cell centroids are 1 km apart on the ground (geodesic distance).
    cells = fine.grids.iloc[1:].reset_index(drop=True)
    ij = cells["grid_id"].str.extract(r"c(-?\d+)_(-?\d+)").astype(int)
    position = {(i, j): k for k, (i, j) in enumerate(zip(ij[0], ij[1], strict=True))}
    east = [(k, position[(i + 1, j)]) for (i, j), k in position.items() if (i + 1, j) in position]
    north = [(k, position[(i, j + 1)]) for (i, j), k in position.items() if (i, j + 1) in position]
    geod = Geod(ellps="WGS84")
    for pairs in (east, north):
        a, b = np.array(pairs).T
        _, _, metres = geod.inv(cells["lon"][a], cells["lat"][a], cells["lon"][b], cells["lat"][b])
        assert np.allclose(metres, 1000, rtol=0.002)
    degree = fine.adjacency.groupby("grid_id").size()
    assert degree.max() == 8


def test_area_codes_become_units():
    events = pd.DataFrame({"month": ["2022-01-01", "2022-02-01", "2022-02-01"], "lsoa": ["E01", "E02", None]})
    with pytest.warns(UserWarning):
        report = events_to_dataset(events, time="month", area="lsoa")
    ds = report.dataset
    assert sorted(ds.grids.loc[ds.grids["level"] == "grid", "grid_id"]) == ["E01", "E02"]
    assert report.rejected["reason"].tolist() == ["lsoa: missing"]
    assert ds.adjacency is None


def test_ids_as_of_root_and_nothing_usable():
    events = _events().assign(ref=["a", "a", "b", "c", None])
    with pytest.warns(UserWarning):
        report = events_to_dataset(events, time="when", lon="x", lat="y", case_id="ref", as_of="2019-01-02 12:00")
    reasons = report.rejected.set_index("row")["reason"].to_dict()
    assert reasons == {
        0: "ref: unique",
        1: "ref: unique",
        2: "when: after_as_of",
        3: "when: missing",
        4: "x, y: missing; when: after_as_of; ref: missing",
    }
    assert report.dataset.cases.empty and report.counts.loc["events", "rejected"] == 5
    assert report.dataset.grids["grid_id"].tolist() == ["city"]
    assert validate(report.dataset).counts["rejected"].sum() == 0
    areas = pd.DataFrame({"t": ["2020-01-01", "2020-01-02"], "code": ["city", "E1"]})
    with pytest.warns(UserWarning):
        report = events_to_dataset(areas, time="t", area="code")
    assert report.rejected["reason"].tolist() == ["code: root"]
    assert validate(report.dataset).counts["rejected"].sum() == 0


def test_bad_arguments():
    events = _events()
    with pytest.raises(ValueError, match="no column"):
        events_to_dataset(events, time="time", lon="x", lat="y")
    with pytest.raises(ValueError, match="lon= and lat=, or an area="):
        events_to_dataset(events, time="when", lon="x")
    with pytest.raises(ValueError, match="cell_m must be a finite positive number"):
        events_to_dataset(events, time="when", lon="x", lat="y", cell_m=0)


def test_chicago(real_data):
    frame = pd.read_csv(real_data / "chicago_aggravated_assaults.csv.gz")
    with_place = frame["longitude"].notna() & frame["latitude"].notna()
    report = events_to_dataset(frame, time="date", lon="longitude", lat="latitude", category="loc_cat")
    ds = validate(report.dataset).dataset
    assert len(ds.cases) == with_place.sum() == len(frame) - len(report.rejected)
    assert ds.cases["reported_at"].min() >= pd.Timestamp("2010-01-01")
    assert ds.cases["reported_at"].max() < pd.Timestamp("2020-01-01")
    # Chicago spans roughly 40 km x 25 km: between 1,500 and 5,000 occupied 500 m cells.
    assert 1500 < (ds.grids["level"] == "grid").sum() < 5000
    # Violence concentrates: the busiest 5% of cells hold over a fifth of the cases.
    busiest = ds.cases["grid_id"].value_counts()
    assert busiest.head(len(busiest) // 20).sum() > 0.2 * len(ds.cases)


def test_lancashire(real_data):
    frame = pd.read_csv(real_data / "lancashire_asb.tsv.gz", sep="\t")
    report = events_to_dataset(frame, time="month", area="lsoa_code", lon="longitude", lat="latitude", category=None)
    ds = validate(report.dataset).dataset
    assert report.rejected.empty and len(ds.cases) == len(frame)
    assert (ds.grids["level"] == "grid").sum() == frame["lsoa_code"].nunique()
    assert ds.cases["reported_at"].dt.day.eq(1).all()  # monthly data
    assert ds.grids["lat"].iloc[1:].between(53, 55).all()
