"""Each notebook is a jupytext pair whose .ipynb matches its .py, committed without outputs. The
docs build executes every notebook once (tests/test_docs.py), failing on a cell that raises."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
SCRIPTS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def test_there_are_eight_paired_notebooks():
    assert [p.stem[:2] for p in SCRIPTS] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    for script in SCRIPTS:
        pair = script.with_suffix(".ipynb")
        assert pair.is_file(), f"{pair.name} is missing: run jupytext --sync {script.name}"
        cells = [(c.cell_type, c.source) for c in jupytext.read(script).cells]
        assert [(c.cell_type, c.source) for c in jupytext.read(pair).cells] == cells, f"{pair.name} is out of sync"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_notebook_is_committed_without_outputs_and_explains_each_output(script):
    notebook = jupytext.read(script.with_suffix(".ipynb"))
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "clear the outputs"
    assert notebook.metadata["kernelspec"]["language"] == "python"  # the docs' highlighting reads it
    # Prose follows every output: a code cell that ends in an expression (a table, a figure) is
    # followed by a Markdown cell saying what to look for in it.
    for cell, after in zip(notebook.cells, [*notebook.cells[1:], None], strict=True):
        if cell.cell_type != "code":
            continue
        body = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith("%")))
        if body.body and isinstance(body.body[-1], ast.Expr):
            shown = cell.source.strip().splitlines()[-1]
            assert after is not None and after.cell_type == "markdown", f"say what to look for after: {shown}"
