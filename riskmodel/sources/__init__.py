"""Source adapters: many platforms' raw exports read, mapped onto the contract and validated.

:func:`ingest` reads a sources YAML (``configs/sources.yaml`` is the example); it is also
``riskmodel.io.ingest`` and ``riskmodel.ingest``.
"""

from .ingest import Ingested, ingest

__all__ = ["Ingested", "ingest"]
