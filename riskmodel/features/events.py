"""Counting events before a time, per group, for many (group, time) questions at once."""

from __future__ import annotations

import numpy as np

#: One day in microseconds, the unit of the times the builders count with.
DAY = 86_400 * 10**6


def as_us(times) -> np.ndarray:
    """Times as int64 microseconds."""
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
