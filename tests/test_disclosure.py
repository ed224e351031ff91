"""Disclosure control: small counts hidden in tables and text, a micro-grid map drawn a level up."""

from __future__ import annotations

import pandas as pd
import pytest

from riskmodel.datasets import simulate_district
from riskmodel.evaluation.disclosure import map_level, suppress_small_counts, suppress_small_counts_in_text


def test_suppress_small_counts_hides_one_to_k_minus_one_only():
    table = pd.DataFrame({"unit": list("ABCDEF"), "cases": [0, 1, 2, 3, 4, None], "other": [1, 1, 1, 1, 1, 1]})
    out = suppress_small_counts(table, ["cases"], k=3)
    assert out["cases"].tolist()[:5] == [0, "< 3", "< 3", 3, 4] and pd.isna(out["cases"].iloc[5])
    assert out["other"].tolist() == [1] * 6 and table["cases"].iloc[1] == 1  # other columns and the input unchanged
    assert suppress_small_counts(table, ["cases"], k=5)["cases"].tolist()[:5] == [0, "< 5", "< 5", "< 5", "< 5"]
    assert suppress_small_counts(table, ["cases"], k=1)["cases"].tolist()[:5] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ["nope"]}, r"no column \['nope'\]"),
        ({"k": 0}, "k must be a whole number >= 1"),
        ({"k": 2.5}, "k must"),
    ],
)
def test_suppress_small_counts_bad_input(kwargs, message):
    table = pd.DataFrame({"cases": [1]})
    with pytest.raises(ValueError, match=message):
        suppress_small_counts(table, **({"columns": ["cases"]} | kwargs))


def test_small_counts_in_text():
    text = "1 case in the last period; 2 family cases in 28 days; 14 neighbour noise cases in 28 days; 0.5 cases a day"
    assert suppress_small_counts_in_text(text, k=3) == (
        "< 3 case in the last period; < 3 family cases in 28 days; 14 neighbour noise cases in 28 days; "
        "0.5 cases a day"  # a rate, not a count
    )
    above = suppress_small_counts_in_text(text, k=3, everything=False)  # above the micro level: sensitive only
    assert above.startswith("1 case in the last period; < 3 family cases") and "0.5 cases a day" in above
    assert suppress_small_counts_in_text("28 days of history", k=3) == "28 days of history"  # not a count of cases


def test_map_level():
    district = simulate_district("tiny", seed=0)
    assert map_level(district, "microgrid") == "grid" and map_level(district, "community") == "community"
    assert map_level(district, "microgrid", aggregate=False) == "microgrid"
    # the level above has no coordinates: the map stays at the micro level
    bare = district.replace(
        grids=district.grids.assign(lon=district.grids["lon"].where(district.grids["level"] == "microgrid"))
    )
    assert map_level(bare, "microgrid") == "microgrid"
    with pytest.raises(ValueError, match="unknown level 'lsoa'"):
        map_level(district, "lsoa")
