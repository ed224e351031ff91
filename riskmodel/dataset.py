"""Deprecated: ``riskmodel.dataset`` is now ``riskmodel.contract``.

This path goes in the next release.
"""

import warnings

from riskmodel.contract import *  # noqa: F403
from riskmodel.contract import __all__  # noqa: F401

warnings.warn(
    "riskmodel.dataset is deprecated: import from riskmodel.contract instead", DeprecationWarning, stacklevel=2
)
