"""Deprecated: ``riskmodel.scaleout.training`` is now ``riskmodel.scaleout.executor``.

This path goes in the next release.
"""

import warnings

from riskmodel.scaleout.executor import *  # noqa: F403
from riskmodel.scaleout.executor import __all__  # noqa: F401

warnings.warn(
    "riskmodel.scaleout.training is deprecated: import from riskmodel.scaleout.executor instead",
    DeprecationWarning,
    stacklevel=2,
)
