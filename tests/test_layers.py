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


def test_no_function_is_longer_than_80_lines_of_code():
    """Lines of code: without the docstring, blank lines and comment lines."""
    import ast

    long = []
    for path in sorted((ROOT / "riskmodel").rglob("*.py")):
        source = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(source))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
                start = first.end_lineno + 1 if docstring and len(node.body) > 1 else node.lineno
                code = [
                    line
                    for line in source[start - 1 : node.end_lineno]
                    if line.strip() and not line.strip().startswith("#")
                ]
                if len(code) >= 80:
                    long.append(f"{path.relative_to(ROOT)}::{node.name} ({len(code)} lines)")
    assert not long, long
