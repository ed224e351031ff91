"""riskmodel: early warnings of community disputes."""

import os

# OpenMP's threads sleep while they wait, instead of spinning on a core another process
# needs (read when LightGBM or scikit-learn first load OpenMP; see riskmodel.threads).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")


from . import datasets, evaluation, features, io, models, prevention, trackers
from .config import load_config
from .contract import Dataset, first_reports
from .io import ingest
from .linkage import LinkedReports, link_reports
from .monitor import MonitorReport, monitor
from .persistence import ModelFileError
from .prevention import plan_visits
from .privacy import pseudonymize
from .problems import DataReport, ValidationError
from .serving import load_model, predict
from .training import TrainedModel, train
from .validation import validate
from .version import __version__


class _MlflowTracker:
    """The default tracker (:mod:`riskmodel.trackers`): :mod:`riskmodel.tracking`, imported
    when first asked to log, so that everything else works without MLflow. A failure to
    log is a warning: the result is returned without a run."""

    def log_backtest(self, result, dataset, *, experiment):
        from .tracking import log_backtest, log_safely

        return log_safely(log_backtest, result, dataset, experiment=experiment, what="the backtest")

    def log_model(self, trained, *, example, experiment, register):
        from .tracking import log_model, log_safely

        return log_safely(
            log_model, trained, example=example, experiment=experiment, register=register, what="the training"
        )


trackers.plug(_MlflowTracker())

__all__ = [
    "DataReport",
    "LinkedReports",
    "ForecastNotRecorded",
    "ForecastStore",
    "ModelFileError",
    "MonitorReport",
    "TrainedModel",
    "Dataset",
    "ValidationError",
    "datasets",
    "evaluation",
    "features",
    "first_reports",
    "ingest",
    "io",
    "link_reports",
    "load_config",
    "load_model",
    "models",
    "monitor",
    "open_store",
    "plan_visits",
    "predict",
    "prevention",
    "pseudonymize",
    "tracking",
    "train",
    "validate",
    "__version__",
]


def __getattr__(name):
    # MLflow is imported only when tracking is used: the rest of riskmodel works without it.
    if name == "tracking":
        import importlib

        return importlib.import_module(".tracking", __name__)
    # riskmodel.store's names, with SQLAlchemy imported only to record
    if name in ("ForecastNotRecorded", "ForecastStore", "open_store"):
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module 'riskmodel' has no attribute {name!r}")
