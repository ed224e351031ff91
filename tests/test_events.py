from __future__ import annotations

import numpy as np

from riskmodel.features.events import EventIndex


def test_counts_and_last_match_a_loop():
    rng = np.random.default_rng(0)
    group, time = rng.integers(0, 5, 300), rng.integers(0, 50, 300)
    index = EventIndex(group, time)
    q_group, q_time = rng.integers(0, 6, 200), rng.integers(-5, 60, 200)
    for inclusive in (False, True):
        counts = index.count(q_group, q_time, inclusive=inclusive)
        last = index.last(q_group, q_time, inclusive=inclusive)
        for g, t, n, row in zip(q_group, q_time, counts, last, strict=True):
            hits = np.flatnonzero((group == g) & ((time <= t) if inclusive else (time < t)))
            assert n == len(hits)
            if len(hits):
                assert time[row] == time[hits].max() and group[row] == g
            else:
                assert row == -1


def test_empty():
    index = EventIndex(np.array([], dtype=int), np.array([], dtype=int))
    assert index.count([0, 1], [5, 5]).tolist() == [0, 0] and index.last([0], [5]).tolist() == [-1]
