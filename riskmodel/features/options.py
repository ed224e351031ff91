"""Deprecated: ``riskmodel.features.options`` is now ``riskmodel.features.base``.

This path goes in the next release.
"""

import warnings

from riskmodel.features.base import *  # noqa: F403
from riskmodel.features.base import __all__  # noqa: F401

warnings.warn(
    "riskmodel.features.options is deprecated: import from riskmodel.features.base instead",
    DeprecationWarning,
    stacklevel=2,
)
