"""The README's Python examples run, in order, as a reader would paste them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import REAL_DATA

ROOT = Path(__file__).parents[1]


def test_readme_examples_run(monkeypatch, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    assert len(blocks) >= 4
    monkeypatch.chdir(ROOT)  # the examples name ../shared/data/real relative to the repository
    namespace: dict = {}
    for block in blocks:
        if "../shared/data/real" in block and not REAL_DATA.is_dir():
            continue
        exec(compile(block.replace('"data/small"', repr(str(tmp_path / "small"))), "README.md", "exec"), namespace)
    assert "panel" in namespace and "tiers" in namespace
    assert set(namespace["tiers"].unique()) <= {"red", "orange", "yellow", "green"}
    if not REAL_DATA.is_dir():
        pytest.skip(f"the real-data example was not run: {REAL_DATA} is absent")
