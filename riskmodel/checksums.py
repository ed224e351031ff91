"""SHA-256 of files and of JSON manifests, for dataset folders and saved models alike."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["content_digest", "file_digest"]

_BLOCK = 1 << 20  # bytes hashed at a time


def file_digest(path: Path) -> str:
    """The SHA-256 of a file, read in blocks into one buffer (no memory allocated per block)."""
    digest, block = hashlib.sha256(), bytearray(_BLOCK)
    view = memoryview(block)
    with open(path, "rb", buffering=0) as file:
        while size := file.readinto(block):
            digest.update(view[:size])
    return digest.hexdigest()


def content_digest(manifest: dict) -> str:
    """The SHA-256 of a manifest's content, whatever its layout: a value changed by accident
    is caught (a deliberate change that recomputes it is caught only by a signature)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
