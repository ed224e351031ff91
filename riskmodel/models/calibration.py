"""Calibration on the latest slice of the training rows, in time order."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from .protocol import row_times, time_order


def split_latest(X, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the earlier rows (to fit on) and of the latest ``fraction`` (to
    calibrate on). Rows of one time stay on one side: no cutoff is split."""
    order = time_order(X)
    times = row_times(X)
    if times is None:
        cut = _cut(len(order), fraction)
    else:
        ordered = times[order]
        cut = np.searchsorted(ordered, latest_start(pd.Series(ordered).value_counts(), fraction), side="left")
    return order[:cut], order[cut:]


def latest_start(counts: pd.Series, fraction: float):
    """The first time of the calibration slice: ``counts`` holds the rows of each time
    (its index); the slice is the latest ``fraction`` of the rows, in whole times."""
    counts = counts.sort_index()
    ends = counts.cumsum().to_numpy()
    total = int(ends[-1]) if len(ends) else 0
    k = int(np.searchsorted(ends, _cut(total, fraction), side="right"))  # the time of the slice's first row
    if k == 0:  # that time opens the data: the slice starts at the next one
        k = 1
    if k >= len(counts):
        raise ValueError(
            f"calibration_fraction={fraction} leaves no rows to fit or no rows to calibrate on "
            f"({total} training rows at {len(counts)} time(s))"
        )
    return counts.index[k]


def _cut(n: int, fraction: float) -> int:
    cut = n - int(round(n * fraction))
    if not 0 < fraction < 1 or not 0 < cut < n:
        raise ValueError(
            f"calibration_fraction={fraction} leaves no rows to fit or no rows to calibrate on ({n} training rows)"
        )
    return cut


def fit_calibrator(method: str, score: np.ndarray, y: np.ndarray) -> Calibrator:
    """A :class:`Calibrator` fitted on the calibration slice's scores and 0/1 outcomes.

    Raises
    ------
    ValueError
        When the slice holds one class only.
    """
    if len(np.unique(y)) < 2:
        raise ValueError(
            "the latest training rows (the calibration slice) hold one class only; "
            "give more cutoffs or set calibration=None"
        )
    return Calibrator(method).fit(score, y)


class Calibrator:
    """Isotonic regression, or Platt's sigmoid on the score's log-odds."""

    def __init__(self, method: str):
        if method not in ("isotonic", "sigmoid"):
            raise ValueError(f"calibration must be 'isotonic', 'sigmoid' or None, got {method!r}")
        self.method = method

    def fit(self, score: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method == "isotonic":
            self.model_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(score, y)
        else:
            self.model_ = LogisticRegression().fit(_logit(score)[:, None], y)
        return self

    def transform(self, score: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return self.model_.predict(score)
        return self.model_.predict_proba(_logit(score)[:, None])[:, 1]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
