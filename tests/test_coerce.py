from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.coerce import to_number, to_text, to_time


def test_text():
    out = to_text(pd.Series([1.0, 2.0, np.nan]))
    assert out.tolist()[:2] == ["1", "2"] and pd.isna(out.iloc[2])
    assert to_text(pd.Series([1e19, 2.0])).tolist() == ["1e+19", "2.0"]  # too large for an integer
    assert to_text(pd.Series(["a", "  ", ""])).isna().tolist() == [False, True, True]
    category = to_text(pd.Series(["x", "y", " "], dtype="category"))
    assert category.dtype == "category" and category.isna().tolist() == [False, False, True]


def test_time():
    out, failed = to_time(pd.Series(["2024-01-05 10:00", "2024-01-06", "soon", None]))
    assert out.dtype == "datetime64[us]"
    assert out.iloc[0] == pd.Timestamp("2024-01-05 10:00") and out.iloc[1] == pd.Timestamp("2024-01-06")
    assert failed.tolist() == [False, False, True, False]
    # One format per column: a second format is not guessed value by value.
    out, failed = to_time(pd.Series(["01/02/2024", "13/02/2024"]))
    assert out.iloc[0] == pd.Timestamp("2024-01-02") and failed.tolist() == [False, True]
    aware = pd.Series(pd.to_datetime(["2024-01-05 10:00"]).tz_localize("Europe/London"))
    assert to_time(aware, "Asia/Shanghai")[0].iloc[0] == pd.Timestamp("2024-01-05 18:00")
    assert to_time(pd.Series([1, 2]))[1].all()


def test_number():
    out, failed = to_number(pd.Series(["1.5", "x", None, "inf"]))
    assert out.iloc[0] == 1.5 and failed.tolist() == [False, True, False, True]
    assert to_number(pd.Series([True, False]))[0].dtype == bool
    ints = pd.Series([1, 2], dtype="int32")
    assert to_number(ints)[0].dtype == "int32"
