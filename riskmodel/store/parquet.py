"""The forecast store in a folder: Parquet files partitioned by the month of ``as_of``."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from .rows import SCHEMA_VERSION, refuse_version, typed

__all__ = ["ParquetBackend"]

#: The file in the store's folder that holds its schema version.
_MARKER = "_forecast_store.json"


class ParquetBackend:
    """Rows in ``month=YYYY-MM/part-<hash>.parquet`` under ``root``; a file lock per month makes a
    record (read the ids there, write the others to a new file) one writer's at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _check(self, create: bool) -> None:
        marker = self.root / _MARKER
        if not marker.is_file():
            if any(self.root.glob("month=*")):
                refuse_version(self.root, f"none ({_MARKER} is missing)")
            if not create:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            _replace(marker, json.dumps({"schema_version": SCHEMA_VERSION}).encode())
        found = json.loads(marker.read_text()).get("schema_version")
        if found != SCHEMA_VERSION:
            refuse_version(self.root, found)

    def record(self, rows: pd.DataFrame) -> int:
        from filelock import FileLock

        self._check(create=True)
        written = 0
        for month, part in rows.groupby(rows["as_of"].dt.strftime("%Y-%m"), sort=True):
            folder = self.root / f"month={month}"
            folder.mkdir(exist_ok=True)
            with FileLock(folder / ".lock", timeout=300):
                there = [pd.read_parquet(f, columns=["forecast_id"]) for f in sorted(folder.glob("part-*.parquet"))]
                if there:
                    part = part[~part["forecast_id"].isin(pd.concat(there)["forecast_id"])]
                if len(part):
                    key = hashlib.sha256("\n".join(sorted(part["forecast_id"])).encode()).hexdigest()[:16]
                    path = folder / f"part-{key}.parquet"
                    temporary = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
                    part.to_parquet(temporary, index=False)
                    os.replace(temporary, path)
                    written += len(part)
        return written

    def read(self, name, version, since, until) -> pd.DataFrame:
        self._check(create=False)
        first = None if since is None else since.strftime("%Y-%m")
        last = None if until is None else until.strftime("%Y-%m")
        files = [
            f
            for folder in sorted(self.root.glob("month=*"))
            if (first is None or folder.name[6:] >= first) and (last is None or folder.name[6:] <= last)
            for f in sorted(folder.glob("part-*.parquet"))
        ]
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else typed(pd.DataFrame())
        keep = np.ones(len(frame), dtype=bool)
        for column, value in (("model_name", name), ("model_version", version)):
            if value is not None:
                keep &= (frame[column] == value).to_numpy()
        if since is not None:
            keep &= (frame["as_of"] >= since).to_numpy()
        if until is not None:
            keep &= (frame["as_of"] <= until).to_numpy()
        return frame[keep]


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)
