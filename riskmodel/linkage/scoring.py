"""The threshold that a labelled sample sets: the match probability with the best pairwise F1
on the labelled pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["best_threshold"]


def best_threshold(pairs: pd.DataFrame, labels) -> tuple[float, float]:
    """The match probability that maximises pairwise F1 on the labelled pairs, and that F1.

    Parameters
    ----------
    pairs : DataFrame
        Scored pairs: ``case_id_l``, ``case_id_r``, ``match_probability``. A pair not in
        it is not linked at any threshold.
    labels : Series or DataFrame
        Either the true dispute of some cases (a Series ``case_id -> dispute_id``, or a
        frame with columns ``case_id`` and ``dispute_id``): every pair of labelled cases is
        labelled, a match when they share the dispute; or labelled pairs (a frame with
        ``case_id_l``, ``case_id_r`` and a boolean ``match``).

    Returns
    -------
    threshold, f1 : float
        Pairs at or above ``threshold`` are links.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.linkage.scoring import best_threshold
    >>> pairs = pd.DataFrame({"case_id_l": ["a", "a", "b"], "case_id_r": ["b", "c", "c"],
    ...                       "match_probability": [0.97, 0.6, 0.4]})
    >>> best_threshold(pairs, pd.Series({"a": "D1", "b": "D1", "c": "D2"}))
    (0.97, 1.0)
    """
    probability, is_match, positives = _labelled(pairs, labels)
    if positives == 0 or not is_match.any():
        raise ValueError(
            "labels: no labelled pair of the same dispute is among the scored pairs, so they cannot set the "
            "threshold; give cases of disputes reported more than once (e.g. {'K1': 'D1', 'K7': 'D1'}) "
            "or pairs with match=True"
        )
    order = np.argsort(-probability, kind="stable")
    probability, is_match = probability[order], is_match[order]
    true_links = np.cumsum(is_match)
    links = np.arange(1, len(probability) + 1)
    last = np.r_[probability[1:] != probability[:-1], True]  # a threshold links all pairs of equal probability
    f1 = 2 * true_links[last] / (links[last] + positives)
    best = int(np.argmax(f1))
    return float(probability[last][best]), float(f1[best])


def _labelled(pairs: pd.DataFrame, labels) -> tuple[np.ndarray, np.ndarray, int]:
    """The scored labelled pairs' probabilities and truth, and the number of true pairs."""
    low = np.minimum(pairs["case_id_l"].astype(str), pairs["case_id_r"].astype(str))
    high = np.maximum(pairs["case_id_l"].astype(str), pairs["case_id_r"].astype(str))
    scored = pd.DataFrame({"l": low, "r": high, "p": pairs["match_probability"].to_numpy(dtype=float)})
    if isinstance(labels, pd.DataFrame) and {"case_id_l", "case_id_r", "match"} <= set(labels.columns):
        a, b = labels["case_id_l"].astype(str), labels["case_id_r"].astype(str)
        truth = pd.DataFrame({"l": np.minimum(a, b), "r": np.maximum(a, b), "match": labels["match"].astype(bool)})
        found = truth.merge(scored, on=["l", "r"], how="inner")
        return found["p"].to_numpy(), found["match"].to_numpy(), int(truth["match"].sum())
    dispute = _case_labels(labels)
    both = scored[scored["l"].isin(dispute.index) & scored["r"].isin(dispute.index)]
    is_match = dispute.reindex(both["l"]).to_numpy() == dispute.reindex(both["r"]).to_numpy()
    sizes = dispute.value_counts().to_numpy()
    return both["p"].to_numpy(), is_match, int((sizes * (sizes - 1) // 2).sum())


def _case_labels(labels) -> pd.Series:
    if isinstance(labels, pd.DataFrame) and {"case_id", "dispute_id"} <= set(labels.columns):
        labels = labels.set_index("case_id")["dispute_id"]
    if not isinstance(labels, pd.Series):
        raise ValueError(
            "labels: expected a Series case_id -> dispute_id, a frame with columns case_id and dispute_id, "
            f"or a frame with case_id_l, case_id_r and match; got {type(labels).__name__}"
        )
    labels = labels.dropna()
    labels.index = labels.index.astype(str)
    return labels[~labels.index.duplicated()]
