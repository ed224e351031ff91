"""riskmodel: early warnings of community disputes."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, evaluation, features, io, models
from .dataset import Dataset
from .privacy import pseudonymize
from .problems import DataReport, ValidationError
from .validation import validate

try:
    __version__ = version("riskmodel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "DataReport",
    "Dataset",
    "ValidationError",
    "datasets",
    "evaluation",
    "features",
    "io",
    "models",
    "pseudonymize",
    "validate",
    "__version__",
]
