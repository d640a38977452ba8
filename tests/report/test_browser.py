"""The report opened in headless Chromium: no script errors, the map draws every point, hover shows the text,
search highlights matches, every section is drawn. A screenshot is saved beside the report.

Needs Chromium (Debian: ``apt-get install chromium``) and the ``playwright`` package (``pip install
"embedlab[dev]"``). Without them the tests are skipped with that advice, unless ``EMBEDLAB_REQUIRE_BROWSER``
is set (``.ci/run`` sets it), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from embedlab.report import build_report, write_html
from tests.report.conftest import N_PER_CLUSTER, known_set

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "install Chromium (Debian/Ubuntu: apt-get install chromium) and Playwright (pip install playwright)"


def _chromium() -> str | None:
    for name in (os.environ.get("EMBEDLAB_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("EMBEDLAB_REQUIRE_BROWSER"):
        pytest.fail(f"browser tests are required here but {reason}; {INSTALL}.")
    pytest.skip(f"browser tests skipped: {reason}; to run them, {INSTALL}.")


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        _skip_or_fail("no Chromium was found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    emb = known_set(n_per_cluster=N_PER_CLUSTER)
    report = build_report(emb, name="known", labels="label", k_values=[2, 3, 4], compression_queries=50)
    return write_html(report, tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture
def page(browser, report_file):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    uri = report_file.as_uri()
    page.on("request", lambda request: errors.append(f"fetched {request.url}") if request.url != uri else None)
    page.goto(uri)
    page.wait_for_function("window.embedlabReport && window.embedlabReport.ready", timeout=20_000)
    yield page, errors
    page.close()


def test_page_loads_without_errors_and_draws_every_section(page, report_file):
    page, errors = page
    assert errors == [] and page.evaluate("window.embedlabReport.errors") == []
    assert page.evaluate("window.pwned === undefined")  # a text holding </script> stayed text
    assert page.locator("#summary .card").count() >= 7
    assert page.locator("#summary ul.advice li").count() >= 5
    assert page.locator("#geometry table").count() >= 4
    assert page.locator("#geometry figure[data-chart=spectrum] svg path").count() >= 1
    assert page.locator("#geometry figure[data-chart=lid] rect.bar").count() > 5
    # stability and silhouette at the 3 candidates, and the chosen k; the gap (k = 1 too) and BIC charts beside
    assert page.locator("#clusters figure[data-chart=k-selection] circle").count() == 3 + 3 + 1
    assert page.locator("#clusters figure[data-chart=k-gap] circle").count() == 4 + 1
    assert page.locator("#clusters figure[data-chart=k-bic] circle").count() == 3 + 1
    assert page.locator("#k-verdict.good").inner_text().startswith("k = 3: k-means clusterings of resamples agree")
    assert page.locator("#clusters table").last.locator("tbody tr").count() == 3
    assert page.locator("#clusters th", has_text="stability").count() == 1
    assert page.locator("#clusters .pill.good").count() == 3  # all 3 known clusters are stable
    assert page.locator("#curation figure[data-chart=semdedup] path").count() >= 1
    assert page.locator("#curation table").count() == 2  # the duplicate groups and the balanced sample
    assert page.locator("#curation table").first.locator("tbody tr").count() == 4  # the 4 planted pairs
    assert page.locator("#compression figure[data-chart=frontier] path").count() >= 3  # anchors are diamonds
    assert page.locator("#compression table tbody tr").count() > 20
    for section in ("summary", "geometry", "clusters", "curation", "map", "compression"):
        assert page.locator(f"#{section} .note").filter(has_text="could not be drawn").count() == 0
    shot = report_file.with_suffix(".png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_the_map_draws_every_point_and_hover_shows_its_text(page):
    page, errors = page
    assert page.locator("#map-canvas").get_attribute("data-drawn") == "605"
    assert page.locator("#map-canvas").get_attribute("data-labels") == "3"  # each stable cluster named at its centre
    assert page.evaluate("window.embedlabReport.map.drawn") == 605
    page.locator("#map").scroll_into_view_if_needed()
    row = 2 * N_PER_CLUSTER + 5  # a charlie
    x, y = page.evaluate(f"window.embedlabReport.map.clientPoint({row})")
    page.mouse.move(x, y)
    tooltip = page.locator("#map-tooltip")
    assert tooltip.is_visible()
    hovered = page.evaluate("window.embedlabReport.map.hovered")
    expected = known_set().column("text")[hovered]  # every row is on the map, in order
    shown = tooltip.inner_text()
    assert shown.startswith(f"row-{hovered} - cluster ") and " - charlie" in shown and shown.endswith(expected)
    assert expected.startswith("charlie item ")
    page.mouse.move(2, 2)
    assert not tooltip.is_visible()
    assert errors == []


def test_search_highlights_matches_and_zoom_draws_only_what_is_in_view(page):
    page, errors = page
    page.locator("#map").scroll_into_view_if_needed()
    page.fill("#map-search", "bravo")
    page.wait_for_function("document.getElementById('map-count').textContent.length > 0")
    assert page.locator("#map-count").inner_text() == "200 of 605 points match"
    assert page.evaluate("window.embedlabReport.map.matches") == 200
    assert page.evaluate("window.embedlabReport.map.drawn") == 605  # the home view shows every point
    x, y = page.evaluate("window.embedlabReport.map.clientPoint(0)")  # zoom in far on an alpha point
    page.mouse.move(x, y)
    for _ in range(3):  # about 15x: the alpha cluster fills the view, the others leave it
        page.mouse.wheel(0, -600)
        page.wait_for_timeout(100)
    zoomed = page.evaluate("window.embedlabReport.map.drawn")
    assert 0 < zoomed < 605
    page.click("#map-reset")
    assert page.evaluate("window.embedlabReport.map.drawn") == 605
    page.select_option("#map-colour", "label")
    assert page.locator("#map-legend > span").count() == 4
    assert errors == []
