"""The README's Python examples run, in order, as a reader would paste them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import REAL_DATA

ROOT = Path(__file__).parents[1]


def _service(folder: Path) -> Path:
    """What `make demo` leaves for the services examples: the `small` dataset folder and a
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
def test_readme_examples_run(monkeypatch, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    assert len(blocks) >= 6
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    service = _service(tmp_path)
    namespace: dict = {}
    for block in blocks:
        if "../shared/data/real" in block and not REAL_DATA.is_dir():
            continue
        # The examples name ../shared/data/real relative to the repository, the services' data relative to
        # where `make demo` ran.
        monkeypatch.chdir(service if "data/simulated/small" in block or "models:/" in block else ROOT)
        block = re.sub(r'"data/(small[\w-]*)"', lambda m: repr(str(tmp_path / m.group(1))), block)
        exec(compile(block, "README.md", "exec"), namespace)
    assert "panel" in namespace and "tiers" in namespace
    assert set(namespace["tiers"].unique()) <= {"red", "orange", "yellow", "green"}
    assert len(namespace["risk"]) == 256 and namespace["risk"]["rank"].iloc[0] == 1
    assert namespace["body"]["dataframe_split"]["columns"] == list(namespace["X"].columns)
    if not REAL_DATA.is_dir():
        pytest.skip(f"the real-data example was not run: {REAL_DATA} is absent")
