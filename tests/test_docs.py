"""The documentation: the generated feature table, the API reference's coverage, the user guide's
examples (run in order, as a reader would paste them) and the Sphinx build, which executes the
notebooks (the gallery) and fails on any warning."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from .conftest import REAL_DATA

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
# The user guide's pages in the order of its table of contents: each page's examples use the
# names the earlier pages defined.
GUIDE = ["data", "linkage", "features", "models", "evaluation", "serving", "monitoring", "prevention", "scaleout"]
PACKAGES = [
    "riskmodel",
    "riskmodel.io",
    "riskmodel.datasets",
    "riskmodel.features",
    "riskmodel.models",
    "riskmodel.evaluation",
    "riskmodel.prevention",
    "riskmodel.tracking",
    "riskmodel.store",
    "riskmodel.scaleout",
]


def test_feature_table_matches_describe():
    spec = importlib.util.spec_from_file_location("features_doc", DOCS / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "features.md").read_text() == module.render(), "run: .venv/bin/python docs/features.py"


def test_api_reference_lists_every_public_name():
    page = (DOCS / "api.rst").read_text()
    listed = set()
    for chunk in page.split(".. currentmodule:: ")[1:]:
        module = chunk.split()[0]
        listed |= {(module, name) for name in re.findall(r"^   (\w+)$", chunk, flags=re.MULTILINE)}
    public = set()
    for name in PACKAGES:
        module = importlib.import_module(name)
        public |= {
            (name, n)
            for n in module.__all__
            if n != "__version__" and not isinstance(getattr(module, n), types.ModuleType)
        }
    assert public - listed == set(), "add them to docs/api.rst"
    assert listed - public == set(), "docs/api.rst lists names that are not public"


def test_guide_pages_are_in_its_table_of_contents():
    toc = (DOCS / "guide" / "index.md").read_text()
    assert [p for p in GUIDE if p in toc] == GUIDE
    assert {p.stem for p in (DOCS / "guide").glob("*.md")} - {"index"} == set(GUIDE) | {"cli"}


def _service(folder: Path) -> Path:
    """What `make demo` leaves for the serving examples: the `small` dataset folder and a
    champion registered in the default store of the folder."""
    from riskmodel import train
    from riskmodel.datasets import simulate_district
    from riskmodel.io import write_dataset
    from riskmodel.models import HistoricalRateBaseline

    small = simulate_district("small", seed=0)
    write_dataset(small, folder / "data" / "simulated" / "small")
    train(small, model=HistoricalRateBaseline(), horizon=28, register=True)
    return folder


@pytest.mark.slow
def test_guide_examples_run(monkeypatch, tmp_path):
    pages = [
        (page, block)
        for page in GUIDE
        for block in re.findall(r"```python\n(.*?)```", (DOCS / "guide" / f"{page}.md").read_text(), re.DOTALL)
    ]
    assert len(pages) >= 9
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    service = _service(tmp_path)
    namespace: dict = {}
    for page, block in pages:
        if "../shared/data/real" in block and not REAL_DATA.is_dir():
            continue
        # The examples name ../shared/data/real relative to the repository, the services' data relative to
        # where `make demo` ran.
        monkeypatch.chdir(service if "data/simulated/small" in block or "models:/" in block else ROOT)
        block = re.sub(r'"data/(small[\w-]*)"', lambda m: repr(str(tmp_path / m.group(1))), block)
        exec(compile(block, f"docs/guide/{page}.md", "exec"), namespace)
    assert "panel" in namespace and "tiers" in namespace
    assert set(namespace["tiers"].unique()) <= {"red", "orange", "yellow", "green"}
    assert len(namespace["risk"]) == 256 and namespace["risk"]["rank"].iloc[0] == 1
    assert namespace["body"]["dataframe_split"]["columns"] == list(namespace["X"].columns)
    if not REAL_DATA.is_dir():
        pytest.skip(f"the real-data example was not run: {REAL_DATA} is absent")


@pytest.mark.slow
def test_docs_build_without_warnings_and_every_notebook_draws(tmp_path):
    """What `make docs` builds, with warnings as errors: the notebooks run once each here (a cell that
    raises fails the build), on the small district with 4 folds for Chicago."""
    html = tmp_path / "html"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(html),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "RISKMODEL_FOLDS": "4"},
    )
    assert build.returncode == 0, build.stderr[-5000:]
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if "real_data" in notebook.stem and not REAL_DATA.is_dir():
            continue  # shown without outputs (conf.py leaves it unexecuted)
        page = (html / "notebooks" / notebook.with_suffix(".html").name).read_text()
        assert re.search(r'<img [^>]*src="\.\./_images/\w+\.png"', page), f"{notebook.name} drew nothing"
    assert 'src="../_images/report.png"' in (html / "guide" / "evaluation.html").read_text()
    assert 'href="generated/riskmodel.predict.html"' in (html / "api.html").read_text()
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', (html / "index.html").read_text())
    assert assets and not [a for a in assets if "//" in a], "the site must open offline"
