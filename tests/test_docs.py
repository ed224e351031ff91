from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def test_feature_table_matches_describe():
    spec = importlib.util.spec_from_file_location("features_doc", DOCS / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "features.md").read_text() == module.render(), "run: .venv/bin/python docs/features.py"
