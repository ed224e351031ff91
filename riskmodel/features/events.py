"""Events before a time, per group, for many (group, time) questions at once: counts,
the latest event, and the attribute snapshot in force."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import Dataset

DAY = 86_400 * 10**6
"""A day in microseconds, the unit of every event time."""


def us(times) -> np.ndarray:
    """Microseconds since the epoch (int64) of datetime-likes."""
    return np.asarray(times, dtype="datetime64[us]").astype(np.int64)


class EventIndex:
    """Events (group, time), indexed to answer "how many, or which last, in group g
    before time t" for arrays of questions in O(log n) each.

    Times are replaced by their rank among the distinct event times, so that a
    (group, rank) pair fits one sortable int64 key whatever the time span.

    Parameters
    ----------
    group : ndarray of int
        Non-negative group of every event (a unit, a party, a unit x category).
    time : ndarray of int64
        Event times (for example microseconds since the epoch).
    """

    def __init__(self, group: np.ndarray, time: np.ndarray):
        group = np.asarray(group, dtype=np.int64)
        time = np.asarray(time, dtype=np.int64)
        self._times = np.unique(time)
        self._width = len(self._times) + 1
        key = group * self._width + np.searchsorted(self._times, time)
        self._order = np.argsort(key, kind="stable")
        self._keys = key[self._order]

    def _positions(self, group, time, inclusive: bool) -> tuple[np.ndarray, np.ndarray]:
        group = np.asarray(group, dtype=np.int64)
        rank = np.searchsorted(self._times, time, side="right" if inclusive else "left")
        start = np.searchsorted(self._keys, group * self._width, side="left")
        return start, np.searchsorted(self._keys, group * self._width + rank, side="left")

    def count(self, group, time, *, inclusive: bool = False) -> np.ndarray:
        """Events of ``group`` with time < ``time`` (<= when ``inclusive``)."""
        start, stop = self._positions(group, time, inclusive)
        return stop - start

    def last(self, group, time, *, inclusive: bool = False) -> np.ndarray:
        """Row (in the order given) of the latest such event, or -1 when none."""
        start, stop = self._positions(group, time, inclusive)
        if not len(self._order):
            return np.full(len(stop), -1)
        return np.where(stop > start, self._order[np.maximum(stop - 1, 0)], -1)


def attribute_columns(data: Dataset, level: str) -> list[str]:
    """The attribute columns of ``grid_history`` with a value for some unit of ``level``."""
    filled = filled_attributes(data.grid_history, data.grids.loc[data.grids["level"] == level, "grid_id"])
    return filled.index[filled].tolist()


def filled_attributes(history: pd.DataFrame, units) -> pd.Series:
    """Whether each attribute column of ``history`` has a value for some of ``units``
    (over parts of the snapshots, the parts' answers or-ed give the whole's)."""
    attributes = [c for c in history.columns if c not in ("grid_id", "valid_from")]
    return history.loc[history["grid_id"].isin(units), attributes].notna().any()


def in_force(data: Dataset, units: pd.Index, attributes: list[str], unit: np.ndarray, time) -> np.ndarray:
    """Attributes of ``units[unit]`` in force at ``time`` (microseconds): the latest
    snapshot with ``valid_from <= time``.

    Returns an array (question x attribute), NaN without a snapshot, for ``unit < 0``,
    and for attributes the data lacks.
    """
    history = data.grid_history
    group = units.get_indexer(history["grid_id"])
    mine = group >= 0
    values = history.loc[mine].reindex(columns=attributes).to_numpy(dtype="float64", na_value=np.nan)
    row = EventIndex(group[mine], us(history.loc[mine, "valid_from"])).last(np.maximum(unit, 0), time, inclusive=True)
    row = np.where(unit >= 0, row, -1)
    out = np.full((len(row), len(attributes)), np.nan)
    out[row >= 0] = values[row[row >= 0]]
    return out
