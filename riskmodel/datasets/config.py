"""Deprecated: ``riskmodel.datasets.config`` is now ``riskmodel.datasets.presets``.

This path goes in the next release.
"""

import warnings

from riskmodel.datasets.presets import *  # noqa: F403
from riskmodel.datasets.presets import __all__  # noqa: F401

warnings.warn(
    "riskmodel.datasets.config is deprecated: import from riskmodel.datasets.presets instead",
    DeprecationWarning,
    stacklevel=2,
)
