"""riskmodel: early warnings of community disputes."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, evaluation, features, io, models
from .config import load_config
from .contract import Dataset
from .persistence import ModelFileError
from .privacy import pseudonymize
from .problems import DataReport, ValidationError
from .serving import load_model, predict
from .training import TrainedModel, train
from .validation import validate

try:
    __version__ = version("riskmodel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "DataReport",
    "ModelFileError",
    "TrainedModel",
    "Dataset",
    "ValidationError",
    "datasets",
    "evaluation",
    "features",
    "io",
    "load_config",
    "load_model",
    "models",
    "predict",
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
    raise AttributeError(f"module 'riskmodel' has no attribute {name!r}")
