"""The README is a front page: the two commands first, then a Python quick start that runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.DOTALL).group(1)
    assert [line.split()[:2] for line in first_block.splitlines()] == [["make", "demo"], ["make", "test"]]
    assert README.index("```sh") < README.index("## Contents") < README.index("```python")


def test_readme_links_exist():
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README)
    assert "docs/images/report.png" in targets
    missing = [t for t in targets if not (ROOT / t).exists() and t != "docs/images/report.png"]
    assert not missing, f"the README links to missing files: {missing}"


@pytest.mark.slow
def test_readme_quick_start_ends_in_a_forecast(monkeypatch, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) <= 15
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    risk = namespace["risk"]
    assert len(risk) == 256 and risk["rank"].tolist()[:3] == [1, 2, 3]
    assert risk["probability"].is_monotonic_decreasing and risk["probability"].between(0, 1).all()
    assert not list(tmp_path.iterdir()), "the quick start writes nothing (track=False)"
