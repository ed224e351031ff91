"""How well reports were linked into disputes: pairwise and B-cubed precision, recall and F1 of
predicted against true dispute ids (pure: counts of group sizes, no loop over pairs)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["bcubed_scores", "pairwise_scores"]


def _cells(true, predicted) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (true, predicted) table: each non-empty cell's size and its true and predicted
    group (as indices), and every true and every predicted group's size."""
    true, predicted = pd.Series(np.asarray(true)), pd.Series(np.asarray(predicted))
    if len(true) != len(predicted):
        raise ValueError(f"true and predicted: one dispute id per case each; got {len(true)} and {len(predicted)}")
    if true.isna().any() or predicted.isna().any():
        raise ValueError("true and predicted: every case needs a dispute id (a singleton its own); found missing ids")
    t, p = pd.factorize(true)[0], pd.factorize(predicted)[0]
    cells = pd.DataFrame({"t": t, "p": p}).value_counts()
    index = cells.index
    return cells.to_numpy(), index.get_level_values("t"), index.get_level_values("p"), np.bincount(t), np.bincount(p)


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def pairwise_scores(true, predicted) -> dict[str, float]:
    """Pairwise precision, recall and F1: of the pairs of cases put in one dispute, the share
    truly of one dispute, and of the truly linked pairs, the share found.

    Parameters
    ----------
    true, predicted : array-like
        Each case's true and predicted dispute id (one per case, in the same order).

    Returns
    -------
    dict
        ``precision``, ``recall`` and ``f1`` (1.0 when there is no pair to get wrong).

    Examples
    --------
    >>> from riskmodel.evaluation import pairwise_scores
    >>> pairwise_scores(["a", "a", "a", "b"], ["x", "x", "y", "y"])
    {'precision': 0.5, 'recall': 0.3333333333333333, 'f1': 0.4}
    """
    cell, _, _, t_size, p_size = _cells(true, predicted)
    pairs = lambda n: float((n * (n - 1) // 2).sum())  # noqa: E731
    together, t_pairs, p_pairs = pairs(cell), pairs(t_size), pairs(p_size)
    precision = together / p_pairs if p_pairs else 1.0
    recall = together / t_pairs if t_pairs else 1.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def bcubed_scores(true, predicted) -> dict[str, float]:
    """B-cubed precision, recall and F1: per case, the share of its predicted dispute that
    truly shares its dispute (precision) and the share of its true dispute found in its
    predicted one (recall), averaged over cases.

    Parameters
    ----------
    true, predicted : array-like
        Each case's true and predicted dispute id (one per case, in the same order).

    Returns
    -------
    dict
        ``precision``, ``recall`` and ``f1``.

    Examples
    --------
    >>> from riskmodel.evaluation import bcubed_scores
    >>> scores = bcubed_scores(["a", "a", "a", "b"], ["x", "x", "y", "y"])
    >>> {name: round(value, 4) for name, value in scores.items()}
    {'precision': 0.75, 'recall': 0.6667, 'f1': 0.7059}
    """
    cell, t_of, p_of, t_size, p_size = _cells(true, predicted)
    n = cell.sum()
    if n == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    precision = float((cell * cell / p_size[p_of]).sum() / n)
    recall = float((cell * cell / t_size[t_of]).sum() / n)
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}
