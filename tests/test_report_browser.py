"""The report in a real browser (the system's headless Chromium, driven by playwright):
it fits a 1280-pixel window, reads in words, draws its Plotly charts and fetches nothing.

Skips, saying why, without /usr/bin/chromium (``.ci/run`` installs it) or playwright.
With RISKMODEL_UPDATE_SCREENSHOTS=1 the simulated run's screenshot is written to
docs/images/report.png (the documentation's picture of the report).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskmodel.cli import app

ROOT = Path(__file__).parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIMULATED = """
data: {kind: simulator, preset: small, seed: 0}
horizons: [28]
cutoffs: {last_days: 84, frequency: 4W-MON}
training: {frequency: 4W-MON}
models:
  hist: {family: HistoricalRateBaseline}
  count: {family: GBMCount, params: {n_estimators: 40, min_child_samples: 5, n_jobs: 1}}
experiment: simulated-report
"""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason="no chromium at /usr/bin/chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _report(tmp_path, monkeypatch, config: str, name: str) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / f"{name}.yaml").write_text(config)
    written = CliRunner().invoke(app, ["report", f"{name}.yaml", "--out", "report.html"])
    assert written.exit_code == 0, written.output
    return tmp_path / "report.html"


def _look(browser, path: Path, screenshot: Path) -> str:
    """Open the report at 1280 px, with every request but the file itself refused and
    recorded; check the width and the charts, take a screenshot, return the page's text."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    fetched: list[str] = []

    def refuse(route):
        url = route.request.url
        if url == path.as_uri() or url.startswith("data:"):
            return route.continue_()
        fetched.append(url)
        return route.abort()

    page.route("**/*", refuse)
    page.on(
        "request", lambda request: None if request.url.startswith(("file:", "data:")) else fetched.append(request.url)
    )
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_selector(".plotly-graph-div .main-svg")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no horizontal overflow
    assert page.locator(".plotly-graph-div .main-svg").count() >= 2  # the inline plotly.js drew both charts
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), clip={"x": 0, "y": 0, "width": 1280, "height": 900})
    text = page.inner_text("body")
    page.close()
    assert fetched == []  # nothing from the network
    return text


def test_simulated_report_in_chromium(browser, tmp_path, monkeypatch):
    path = _report(tmp_path, monkeypatch, SIMULATED, "simulated_district")
    update = os.environ.get("RISKMODEL_UPDATE_SCREENSHOTS") == "1"
    screenshot = ROOT / "docs" / "images" / "report.png" if update else tmp_path / "report.png"
    text = _look(browser, path, screenshot)
    assert "None" not in text and "<DateOffset" not in text
    assert "simulated_district: risk by grid unit, 28 days ahead" in text and "Hit rate at 5%" in text
    assert "hit_rate" not in text  # metric names in words, the champion's reason too
    assert "risk by grid unit, 28 days ahead" in text and "of the next 28 days' cases in 5% of the grid units" in text
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "lancashire_asb.tsv.gz").is_file(), reason=f"no real data in {REAL}")
def test_lancashire_report_in_chromium(browser, tmp_path, monkeypatch):
    config = (ROOT / "configs" / "lancashire.yaml").read_text()
    config = config.replace("../shared/data/real/", f"{REAL}/").replace("start: 2022-07-01", "start: 2022-10-01")
    config = config.replace(
        "models: null",
        "models:\n  rate: {family: TimeWeightedRateBaseline}\n"
        "  count: {family: GBMCount, params: {n_estimators: 40, n_jobs: 1}}",
    )
    text = _look(browser, _report(tmp_path, monkeypatch, config, "lancashire"), tmp_path / "lancashire.png")
    assert "None" not in text and "<DateOffset" not in text
    assert "1 month ahead" in text and "next month's cases" in text
    assert "that probability says little" in text  # nearly every LSOA has a case each month
