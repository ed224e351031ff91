from __future__ import annotations

import pandas as pd
import pytest

from riskmodel import Dataset
from riskmodel.contract import unit_depths


def test_frames_are_required(dataset):
    with pytest.raises(TypeError, match="Dataset.cases must be a pandas DataFrame"):
        Dataset(cases=[1, 2], grids=dataset.grids)
    with pytest.raises(TypeError, match="Dataset.adjacency"):
        Dataset(cases=dataset.cases, grids=dataset.grids, adjacency="G1-G2")


def test_levels_ancestors_and_end(dataset):
    assert dataset.levels == ["street", "community", "grid", "microgrid"]
    grid = dataset.ancestors("grid")
    assert grid.isna().tolist() == [True, True, False, False, False]  # street and community are above
    assert grid.dropna().to_dict() == {"G1": "G1", "G2": "G2", "M1": "G1"}
    assert dataset.ancestors("street").tolist() == ["S1"] * 5
    with pytest.raises(ValueError, match="unknown level 'block'"):
        dataset.ancestors("block")
    assert dataset.end == pd.Timestamp("2024-12-31")
    assert dataset.replace(as_of=None).end == pd.Timestamp("2024-06-01 12:00")


def test_unit_depths_marks_cycles_and_orphans():
    grids = pd.DataFrame({"grid_id": ["a", "b", "c", "d", "e", "f"], "parent_id": [None, "a", "b", "e", "d", "zzz"]})
    assert unit_depths(grids).tolist() == [0, 1, 2, -1, -1, -1]


def test_repr(dataset):
    assert repr(dataset) == "Dataset(cases=4, grids=5, grid_history=3, adjacency=2, as_of=2024-12-31 00:00:00)"


def test_visits_are_an_optional_table(dataset):
    from .conftest import make_visits

    assert dataset.visits is None and "visits" not in dataset.tables
    with_visits = dataset.replace(visits=make_visits())
    assert list(with_visits.tables) == ["cases", "grids", "grid_history", "adjacency", "visits"]
    assert repr(with_visits) == (
        "Dataset(cases=4, grids=5, grid_history=3, adjacency=2, visits=5, as_of=2024-12-31 00:00:00)"
    )
    with pytest.raises(TypeError, match="Dataset.visits must be a pandas DataFrame or None"):
        dataset.replace(visits=[("v1", "G1")])


@pytest.mark.parametrize(
    "old, new",
    [
        ("riskmodel.dataset", "riskmodel.contract"),
        ("riskmodel.features.options", "riskmodel.features.base"),
        ("riskmodel.datasets.config", "riskmodel.datasets.presets"),
        ("riskmodel.scaleout.training", "riskmodel.scaleout.executor"),
    ],
)
def test_renamed_modules_keep_their_old_path_for_one_release(old, new):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: import from {new}"):
        shim = importlib.import_module(old)
    target = importlib.import_module(new)
    assert shim.__all__ == target.__all__ and all(getattr(shim, n) is getattr(target, n) for n in target.__all__)
