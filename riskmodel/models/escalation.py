"""Which new case is likely to escalate: a calibrated classifier over the case features."""

from __future__ import annotations

from .classifiers import GBMRisk

__all__ = ["EscalationClassifier"]


class EscalationClassifier(GBMRisk):
    """LightGBM over :func:`riskmodel.features.build_case_features`, calibrated on the
    latest cases in report order (the ``reported_at`` level of the features' index).

    ``predict_proba(X)[:, 1]`` is each case's probability of escalating within the
    features' ``escalation_days``. Parameters as :class:`GBMRisk`; the defaults
    suit the smaller case tables.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The training labels' two classes, the escalating one second.
    estimator_ : lightgbm.LGBMClassifier
        The model, fitted on the cases before the calibration slice (all cases without one).
    calibrator_ : Calibrator or None
        Maps the model's probability to the calibrated one; None without calibration.
    n_iter_ : None
        Always None: the rounds LightGBM ran are ``estimator_.n_iter_``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during ``fit``, when ``X`` has string column names.

    Examples
    --------
    >>> from riskmodel.datasets import simulate_district
    >>> from riskmodel.features import build_case_features
    >>> from riskmodel.models import EscalationClassifier
    >>> cases = build_case_features(simulate_district("small", seed=0))
    >>> known = cases.label_known
    >>> model = EscalationClassifier().fit(cases.X[known], cases.y[known])
    >>> p = model.predict_proba(cases.X)[:, 1]
    >>> bool(abs(p[known].mean() - cases.y[known].mean()) < 0.03)
    True
    """

    def __init__(
        self,
        *,
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=30,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=0,
        n_jobs=None,
        calibration="isotonic",
        calibration_fraction=0.2,
        early_stopping_rounds=50,
    ):
        super().__init__(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            subsample=subsample,
            colsample_bytree=colsample_bytree,
            reg_lambda=reg_lambda,
            random_state=random_state,
            n_jobs=n_jobs,
            calibration=calibration,
            calibration_fraction=calibration_fraction,
            early_stopping_rounds=early_stopping_rounds,
        )
