"""Conversion of raw columns to the contract's types, reporting what fails.

``to_time`` and ``to_number`` return the converted column and a boolean mask of the
values that were present in the input but could not be converted, so that the caller
can report them instead of losing them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["to_text", "to_time", "to_number"]

TIME_DTYPE = "datetime64[us]"


def _present(values: pd.Series) -> np.ndarray:
    return values.notna().to_numpy()


def to_text(values: pd.Series) -> pd.Series:
    """Strings (pandas ``str`` dtype); integral numbers lose their ``.0``.

    Empty or blank strings count as missing. Categorical columns of strings are
    kept categorical. Every value has a text form, so nothing fails.
    """
    if isinstance(values.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(values.cat.categories):
        blank = [c for c in values.cat.categories if not c.strip()]
        return values.cat.remove_categories(blank) if blank else values
    if pd.api.types.is_float_dtype(values):
        numbers = values.dropna().to_numpy()
        if np.all(np.mod(numbers, 1) == 0) and np.all(np.abs(numbers) < 2**53):
            values = values.astype("Int64")
    if values.dtype != "str":
        values = values.astype("str")
    blank = values.str.strip() == ""
    return values.mask(blank) if blank.any() else values


def to_time(values: pd.Series, tz: str = "UTC") -> tuple[pd.Series, np.ndarray]:
    """Naive ``datetime64[us]`` wall-clock times.

    Naive values (and strings without an offset) are kept as they are. Values that
    carry a time zone or an offset are converted to ``tz`` and the zone is dropped.
    Numbers are not times (an epoch count is ambiguous) and fail.
    """
    present = _present(values)
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return pd.Series(pd.NaT, index=values.index, dtype=TIME_DTYPE), present
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert(tz).dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values):
        out = values
    else:
        out = _parse_times(values, tz)
    out = out.astype(TIME_DTYPE)
    return out, present & out.isna().to_numpy()


def _parse_times(values: pd.Series, tz: str) -> pd.Series:
    """Strings in one format (inferred from the first) or in ISO 8601; no guessing
    per value, which could read 01/02 as January here and February there."""
    text = values.astype("str")
    out = _to_datetime(text, tz)
    retry = (out.isna() & text.notna()).to_numpy()
    if retry.any():  # the format inferred from the first value did not fit them all
        values = out.to_numpy(copy=True)
        values[retry] = _to_datetime(text[retry], tz, format="ISO8601").to_numpy()
        out = pd.Series(values, index=text.index)
    return out


def _to_datetime(text: pd.Series, tz: str, **kwargs) -> pd.Series:
    try:
        with warnings.catch_warnings():  # failures are reported by the caller
            warnings.filterwarnings("ignore", "Could not infer format", UserWarning)
            out = pd.to_datetime(text, errors="coerce", **kwargs)
    except (ValueError, TypeError):  # offsets that differ between rows
        out = pd.to_datetime(text, errors="coerce", utc=True, **kwargs)
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert(tz).dt.tz_localize(None)
    return out.astype(TIME_DTYPE)


def to_number(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Finite numbers: NumPy boolean, integer and float columns are kept, anything else is
    read as text and converted to ``float64``; infinities fail."""
    present = _present(values)
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
        out = values
    else:
        try:
            out = pd.to_numeric(values.astype("str"), errors="coerce").astype("float64")
        except (ValueError, TypeError):
            out = pd.Series(np.nan, index=values.index)
    finite = np.isfinite(out.to_numpy(dtype="float64"))
    return out, present & ~finite
