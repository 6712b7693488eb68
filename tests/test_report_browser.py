"""The report as a reader sees it: rendered in headless Chromium (Debian's chromium + chromium-driver, driven by
selenium), from the small hand-made run of tests/test_report.py.

Checks that every image loads, the console stays clean, every table has its expected rows, a caption holding
``<script>`` shows as text and runs nothing, that axe-core (injected into the page) finds no WCAG 2 A/AA violation,
and saves a screenshot of the whole page (to CLIPXAI_SCREENSHOT_DIR when set, else the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from test_report import METHODS, SCRIPT_CAPTION, build_run, render_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Flags that work headless as root in a container, with no network use of Chromium's own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The hand-made run's report, open in headless Chromium (driver quit at the end)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.fail("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    root = tmp_path_factory.mktemp("browser")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        render_report(root, build_run(root))
    finally:
        os.chdir(cwd)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(dir=root)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(1400, 1000)
        driver.get((root / "results" / "report" / "index.html").as_uri())
        yield driver, root
    finally:
        driver.quit()


def _rows(driver, table_id: str) -> int:
    return driver.execute_script(f"return document.getElementById({table_id!r}).rows.length")


def test_every_image_loads(page):
    driver, _ = page
    images = driver.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert len(images) == 2
    for src, complete, width in images:
        assert complete and width > 0, src


def test_console_has_no_errors(page):
    driver, _ = page
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazy work, if any, has run
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_every_table_has_its_expected_rows(page):
    driver, _ = page
    expected = {
        "glance-table": 1 + 2 + 6 + 6 + 2,   # header, 2 table rows, 6 published cells per grounding block, 2 VOC
        "paper-grounding-png-vit-b-32-openai": 3,             # header, T2I, I2T
        "paper-grounding-shapes-toy": 3,
        "protocols-grounding-png-vit-b-32-openai": 1 + 2 * len(METHODS),
        "exclusions-grounding-png-vit-b-32-openai": 1 + len(METHODS),
        "table-voc-data": 1 + 3,
        "rules": 1 + 2,
        "inputs": 1 + 1,
    }
    for table_id, rows in expected.items():
        assert _rows(driver, table_id) == rows, table_id
    tables = driver.execute_script("return [...document.querySelectorAll('table')].filter(t => t.id).length")
    assert tables >= len(expected)


def test_a_script_in_a_caption_shows_as_text_and_runs_nothing(page):
    driver, _ = page
    caption = driver.execute_script(
        "return document.querySelector('#figure-saliency_methods_png_vit-b-32-openai figcaption').textContent")
    assert SCRIPT_CAPTION in caption
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert driver.execute_script("return document.scripts.length") == 0


def test_screenshot_of_the_whole_page(page):
    driver, root = page
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, height)
    driver.execute_script("window.scrollTo(0, 0)")
    folder = Path(os.environ.get("CLIPXAI_SCREENSHOT_DIR") or root)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "report_screenshot.png"
    assert driver.save_screenshot(str(shot))
    from PIL import Image

    with Image.open(shot) as image:
        assert image.width >= 1000 and image.height >= min(height, 4000)


# axe-core, pinned in the Makefile and fetched from npm by `make axe` (CI's .ci/run does it before the tests).
AXE_JS = Path(os.environ.get("CLIPXAI_AXE_JS") or Path(__file__).resolve().parents[1] / ".axe" / "node_modules"
              / "axe-core" / "axe.min.js")
# WCAG 2.0, 2.1 and 2.2 at levels A and AA (2.2 AA brings the 24 px target size).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def test_axe_core_finds_no_wcag_a_or_aa_violation(page):
    driver, _ = page
    if not AXE_JS.is_file():
        reason = f"needs axe-core at {AXE_JS} (run `make axe`: npm install of the pinned axe-core)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)   # CI must run the check, never skip it
        pytest.skip(reason)
    driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    driver.set_script_timeout(60)
    # Wide, and narrow enough that the menu wraps and the wide tables scroll (what a laptop or phone reader gets).
    found = {width: _axe_violations(driver, width) for width in (1400, 640)}
    report = "\n".join(f"at {width} px, {v['id']} ({v['impact']}, {len(v['targets'])} elements): "
                       f"{', '.join(v['targets'][:8])}\n  {v['summary']}" for width, vs in found.items() for v in vs)
    assert all(vs == [] for vs in found.values()), f"axe-core {driver.execute_script('return axe.version')}:\n{report}"


def _axe_violations(driver, width: int) -> list[dict]:
    driver.set_window_size(width, 1000)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done({version: axe.version, violations: r.violations.map("
        "  v => ({id: v.id, impact: v.impact, targets: v.nodes.map(n => n.target.join(' ')),"
        "         summary: v.nodes.length ? v.nodes[0].failureSummary : ''}))}))"
        ".catch(e => done({error: String(e)}));", AXE_TAGS)
    assert "error" not in result, result.get("error")
    return result["violations"]
