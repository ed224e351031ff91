"""The layers of CONTRIBUTING.md: import-linter's contract in pyproject.toml holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_imports_point_down_the_layers():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (it is in the dev extra)")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Layers point down KEPT" in result.stdout


def test_the_pure_layers_import_without_mlflow():
    code = (
        "import sys, riskmodel.evaluation, riskmodel.training, riskmodel.serving; "
        "assert 'mlflow' not in sys.modules, sorted(m for m in sys.modules if m.startswith('mlflow'))[:3]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
