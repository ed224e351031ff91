"""The notebooks run, each on a small size in under a minute, and each .ipynb matches its .py pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import REAL_DATA

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
SCRIPTS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def test_there_are_six_paired_notebooks():
    assert [p.stem[:2] for p in SCRIPTS] == ["01", "02", "03", "04", "05", "06"]
    for script in SCRIPTS:
        pair = script.with_suffix(".ipynb")
        assert pair.is_file(), f"{pair.name} is missing: run jupytext --sync {script.name}"
        cells = [(c.cell_type, c.source) for c in jupytext.read(script).cells]
        assert [(c.cell_type, c.source) for c in jupytext.read(pair).cells] == cells, f"{pair.name} is out of sync"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_notebook_runs(script, tmp_path, monkeypatch):
    if "real_data" in script.stem and not REAL_DATA.is_dir():
        pytest.skip(f"the real data folder {REAL_DATA} is absent")
    small = "anomaly" in script.stem or "prevention" in script.stem  # waves and a quarter of visits need more grids
    monkeypatch.setenv("RISKMODEL_PRESET", "small" if small else "tiny")
    monkeypatch.setenv("RISKMODEL_FOLDS", "4")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")  # two kernels share the cores: threads must not spin
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    notebook = jupytext.read(script)
    nbclient.NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # every notebook draws
