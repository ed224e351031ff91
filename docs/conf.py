"""Sphinx configuration: `make docs` builds the site offline into docs/_build/html.

The user guide and the benchmarks are Markdown (myst-parser), the API reference is built from
the numpydoc docstrings (autosummary over the public names), and the gallery is the notebooks
of ../notebooks (through the symlink docs/notebooks), executed by myst-nb on every build.
Nothing is fetched from the network: no intersphinx, no CDN assets, no version switcher.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Document and run the checkout being built, not another installed copy (the notebooks' kernels too).
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import riskmodel  # noqa: E402
REAL_DATA = ROOT.parent / "shared" / "data" / "real"

project = "riskmodel"
author = "riskmodel contributors"
copyright = "riskmodel contributors, MIT licence"
release = version = riskmodel.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",  # registers myst-parser for the .md pages as well
]

templates_path = ["_templates"]  # the class page lists only the class's own methods, not scikit-learn's
exclude_patterns = ["_build", "notebooks/README.md", "notebooks/*.py", "**/.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# The API reference: one page per public name, generated from the docstrings at build time.
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the signature shows them; numpydoc's Parameters section says the rest
numpydoc_show_class_members = False  # the autosummary class template lists them
numpydoc_class_members_toctree = False
# Checked on every build (a failure is a warning, so an error under -W): the sections are known
# and in numpydoc's order, and every public name has a summary. The finer checks (every
# parameter documented, a period after each description) are not enforced yet.
numpydoc_validation_checks = {"GL06", "GL07", "SS01"}
numpydoc_validation_exclude = {
    r"\.[A-Z][A-Z_]+$",  # constants (CATEGORIES, PRESETS, TIERS, ...): no docstring of their own
}

# The gallery: each notebook runs once per build (on the small district by default; the test
# build sets RISKMODEL_PRESET and RISKMODEL_FOLDS smaller), and a cell that raises fails it.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 600
nb_execution_show_tb = True
nb_merge_streams = True
# Warnings a cell prints (tqdm's missing widgets, a library's deprecations) are for whoever runs the
# notebook, not for the site's reader.
nb_output_stderr = "remove"
nb_execution_excludepatterns = [] if REAL_DATA.is_dir() else ["*05_real_data_chicago*"]
os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # a kernel's LightGBM threads wait without spinning

html_theme = "pydata_sphinx_theme"
html_title = f"riskmodel {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_static_path: list[str] = []
html_last_updated_fmt = None


def _tracking_store(app) -> None:
    """The notebooks log to MLflow: into the build's folder, never the reader's own store.
    Their kernels run on this machine's loopback, whose lack of encryption ipykernel warns of
    at every start: its profile, in the build's folder too, keeps its log to errors."""
    build = Path(app.doctreedir).resolve()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{build / 'mlflow.db'}"
    profile = build / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text('c.IPKernelApp.log_level = "ERROR"\n')
    os.environ["IPYTHONDIR"] = str(build / "ipython")


def setup(app):
    app.connect("builder-inited", _tracking_store)
