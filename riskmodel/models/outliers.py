"""Units whose profile is unlike the others: an Isolation Forest over their features."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ProfileOutlier"]


class ProfileOutlier(OutlierMixin, BaseEstimator):
    """Isolation Forest over unit feature profiles (medians for missing values,
    robust scaling). Higher anomaly scores are more unusual.

    Parameters
    ----------
    n_estimators : int
        Trees of the forest.
    contamination : float or "auto"
        Expected share of outliers; sets the threshold of ``predict``.
    random_state : int
        Seed.

    Attributes
    ----------
    pipeline_ : Pipeline
        The imputer, the scaler and the Isolation Forest, fitted on the profiles.
    offset_ : float
        The forest's threshold: ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``, when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from riskmodel.models import ProfileOutlier
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(200, 3)), [[8.0, 8.0, 8.0]]])
    >>> detector = ProfileOutlier(contamination=0.01).fit(X)
    >>> int(np.argmax(detector.anomaly_score(X))), int(detector.predict(X)[-1])
    (200, -1)
    """

    _parameter_constraints = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_estimators=200, contamination="auto", random_state=0):
        self.n_estimators = n_estimators
        self.contamination = contamination
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the forest on the profiles ``X``."""
        values = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64")
        self.pipeline_ = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            RobustScaler(),
            IsolationForest(
                n_estimators=self.n_estimators, contamination=self.contamination, random_state=self.random_state
            ),
        ).fit(values)
        self.offset_ = self.pipeline_[-1].offset_  # decision_function = score_samples - offset_
        return self

    def _values(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float64")

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's convention: lower for more unusual profiles."""
        values = self._values(X)
        return self.pipeline_.score_samples(values)

    def anomaly_score(self, X) -> np.ndarray:
        """How unusual each profile is (higher = more unusual; about 0.5 is ordinary)."""
        return -self.score_samples(X)

    def decision_function(self, X) -> np.ndarray:
        """scikit-learn's convention: negative for outliers."""
        values = self._values(X)
        return self.pipeline_.decision_function(values)

    def predict(self, X) -> np.ndarray:
        """-1 for outliers, 1 for inliers (scikit-learn's convention)."""
        values = self._values(X)
        return self.pipeline_.predict(values)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
