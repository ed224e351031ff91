"""What every grid-risk model shares: probabilities and expected counts, columns, time order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

__all__ = ["GridRiskModel", "RiskMixin", "binary_target", "poisson_probability", "row_times", "time_order"]


def poisson_probability(expected: np.ndarray) -> np.ndarray:
    """P(at least one case) when the count is Poisson with mean ``expected``."""
    return -np.expm1(-np.clip(np.asarray(expected, dtype=float), 0, None))


def row_times(X) -> np.ndarray | None:
    """The time of each row: index level ``cutoff`` (a panel) or ``reported_at`` (case
    features); None for anything else."""
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex):
        for name in ("cutoff", "reported_at"):
            if name in index.names:
                return index.get_level_values(name).to_numpy()
    return None


def time_order(X) -> np.ndarray:
    """Positions of the rows of ``X`` from the earliest to the latest; rows without a
    time (see :func:`row_times`) are taken to be in time order already."""
    times = row_times(X)
    return np.arange(len(X)) if times is None else np.argsort(times, kind="stable")


class RiskMixin:
    """``predict_proba`` from ``predict_expected`` (through the Poisson law) or from
    ``_probability``: column 1 is the probability of at least one target case."""

    if TYPE_CHECKING:  # provided by the count models that use the Poisson law; not defined here

        def predict_expected(self, X) -> np.ndarray: ...

    def _probability(self, X) -> np.ndarray:
        return poisson_probability(self.predict_expected(X))

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of no case and of at least one case in the horizon."""
        check_is_fitted(self)
        p = self._probability(X)
        return np.column_stack([1 - p, p])


class GridRiskModel(ClassifierMixin, RiskMixin, BaseEstimator):
    """Base of the grid-risk classifiers: one protocol for the harness.

    Subclasses implement ``fit`` and ``predict_expected`` (the expected number of
    target cases in the horizon) or ``_probability``; ``predict_proba(X)[:, 1]``
    is the probability of at least one target case. Higher means riskier.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # a case or none
        tags.input_tags.allow_nan = True
        return tags

    def predict(self, X) -> np.ndarray:
        """The riskier class where a case is more likely than not, else the other."""
        check_is_fitted(self)
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def binary_target(y) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``y`` as 0/1 and its two classes (the riskier one second), refusing
    empty, missing, continuous or single-class labels."""
    y = column_or_1d(y, warn=True)
    if len(y) == 0:
        raise ValueError("cannot fit on an empty training set")
    missing = pd.isna(y)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} labels are missing (a label window that had not closed?); "
            "drop those rows, e.g. X[panel.label_known]"
        )
    check_classification_targets(y)
    kind = type_of_target(y, input_name="y")
    if kind not in ("binary", "unknown") and len(np.unique(y)) > 2:
        raise ValueError(f"Only binary classification is supported (a case or none). The type of the target is {kind}.")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"the training labels hold one class only ({classes[0]!r}); a risk model needs both")
    return codes.astype(int), classes
