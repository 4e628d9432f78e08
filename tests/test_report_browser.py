"""The report in headless Chromium (Debian's package, driven by Playwright): no errors, no network,
the statuses of the input, charts drawn, and clicking a cell shows that point's spectrum."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remote_monitor.report import pages as report
from remote_monitor.service.http_server import make_server
from remote_monitor.service.store import atomic_write_json

from .browser_helpers import ARTIFACTS, chromium, open_page
from .report_fixtures import SCAN_ID, expected_statuses, scan_with_faults

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_scan_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    scan, points = scan_with_faults()
    path = tmp_path / "EA0042.html"
    path.write_text(report.render_scan_page(scan, points, healthy_band=(0.999e7, 1.049e7), target_gain=1e7,
                                            other_scans=[SCAN_ID], generated_at="2026-11-25T10:40:00+00:00"))
    page, errors, requests = open_page(browser, path)
    shown = dict(page.eval_on_selector_all("#grid [data-point]",
                                           "els => els.map(e => [e.dataset.point, e.dataset.status])"))
    assert shown == expected_statuses(points)
    assert page.locator("#polar-map .main-svg").count() >= 1
    assert page.locator("#hv-plot .main-svg").count() >= 1 and page.locator("#spectrum .main-svg").count() >= 1
    page.click('[data-point="theta30_phi180"]')
    assert page.inner_text("#spectrum-title") == "Charge spectrum theta30_phi180"
    assert "0.8700e7" in page.inner_text("#fit-params") and "POOR" in page.inner_text("#spectrum-status").upper()
    assert page.locator("#spectrum .gtitle").text_content() == "Charge spectrum theta30_phi180"
    page.click('[data-point="theta50_phi90"]')  # a missing point says so instead of drawing nothing silently
    assert "no data" in page.inner_text("#spectrum-status").lower()
    ARTIFACTS.mkdir(exist_ok=True)
    page.click('[data-point="theta30_phi180"]')
    page.screenshot(path=str(ARTIFACTS / "report_fixture.png"), full_page=True)
    assert not errors, errors
    assert requests == [path.as_uri()], requests


def test_index_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    scan, points = scan_with_faults()
    summary = report.summarize_scan(scan, points)
    path = tmp_path / "index.html"
    path.write_text(report.render_index_page([summary], generated_at="2026-11-25T10:40:00+00:00", live=True))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_timeout(300)  # a file:// page must not start polling version.json
    row = page.locator("tr[data-serial]").first
    assert row.get_attribute("data-state") == "live" and "1 poor" in row.inner_text().lower()
    assert not errors


def test_served_page_reloads_only_when_its_version_changes(browser: Any, tmp_path: Path) -> None:
    """Over HTTP the live page polls version.json and reloads when its own entry changes."""
    scan, points = scan_with_faults()
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "EA0042.html").write_text(report.render_scan_page(
        scan, points, healthy_band=(0.999e7, 1.049e7), target_gain=1e7, other_scans=[SCAN_ID],
        generated_at="x", live=True))
    atomic_write_json(reports / "version.json", {"EA0042.html": "v1", "index.html": "i1"})
    server = make_server(tmp_path, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        loads: list[str] = []
        page.on("load", lambda p: loads.append(p.url))
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/EA0042.html")
        page.wait_for_selector("#polar-map .main-svg")
        atomic_write_json(reports / "version.json", {"EA0042.html": "v1", "index.html": "i2"})  # other page
        page.wait_for_timeout(6000)
        assert len(loads) == 1
        atomic_write_json(reports / "version.json", {"EA0042.html": "v2", "index.html": "i2"})
        for _ in range(40):  # next poll within 5 s, then the reload of a ~2 MB page on a busy machine
            if len(loads) == 2:
                break
            page.wait_for_timeout(500)
        assert len(loads) == 2
    finally:
        server.shutdown()
        server.server_close()


def _write_pages(tmp_path: Path) -> tuple[Path, Path, int]:
    scan, points = scan_with_faults()
    scan_page = tmp_path / "EA0042.html"
    html = report.render_scan_page(scan, points, healthy_band=(0.999e7, 1.049e7), target_gain=1e7,
                                   other_scans=[SCAN_ID], reference_spectrum=points["theta0_phi0"]["histogram"],
                                   generated_at="2026-11-25T10:40:00+00:00")
    scan_page.write_text(html)
    index = tmp_path / "index.html"
    index.write_text(report.render_index_page([report.summarize_scan(scan, points)], generated_at="x"))
    return scan_page, index, len(html.encode())


def test_scan_page_without_scripts_shows_pictures(browser: Any, tmp_path: Path) -> None:
    """Scripts blocked (mail clients, filters): every panel shows its server-drawn SVG; cells still navigate."""
    scan_page, _, size = _write_pages(tmp_path)
    print(f"scan page size: {size / 1e6:.2f} MB")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(scan_page.as_uri())
    for panel in ("#polar-map", "#hv-plot", "#spec-theta0_phi0"):
        box = page.locator(f"{panel} svg.static-svg").bounding_box()
        assert box and box["width"] > 250 and box["height"] > 150, panel
    markers = page.locator("#polar-map circle[stroke-width='4']")
    assert markers.count() == 21  # one marker per scan point; the missing one grey, its title says why
    grey = page.locator("#polar-map circle[fill='#f4f4f4'] title").all_text_contents()
    assert sorted(t.split(" (")[0] for t in grey) == ["theta20_phi90: error", "theta50_phi90: no_data"], grey
    assert page.locator("#verdict .vbadge").inner_text().lower() == "fail"
    assert "gain outside the healthy band at theta30_phi180" in page.inner_text("#verdict")
    error_cell = page.locator('#grid [data-point="theta20_phi90"]')
    assert "no SPE signal" in error_cell.inner_text() and error_cell.locator("b").count() == 0  # reason, no gain
    assert not page.locator("#spec-theta30_phi180").is_visible()
    error_cell.click()
    page.locator('#grid [data-point="theta30_phi180"]').click()
    assert page.locator("#spec-theta30_phi180 svg.static-svg").is_visible()
    assert not page.locator("#spec-theta0_phi0").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report_noscript_1400.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts", "no-scripts"])
def test_pages_fit_a_phone(browser: Any, tmp_path: Path, scripts: bool) -> None:
    """At 390 px nothing is wider than the screen: no horizontal scrolling, on the scan page or the index."""
    scan_page, index, _ = _write_pages(tmp_path)
    context = browser.new_context(java_script_enabled=scripts, viewport={"width": 390, "height": 844},
                                  device_scale_factor=1)
    page = context.new_page()
    for path in (scan_page, index):
        page.goto(path.as_uri())
        if scripts and path == scan_page:
            page.wait_for_selector("#spectrum .main-svg")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path.name}: {width} px wide"
        ARTIFACTS.mkdir(exist_ok=True)
        name = f"{path.stem}_390_{'js' if scripts else 'nojs'}.png"
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    context.close()


def test_spectrum_log_linear_toggle(browser: Any, tmp_path: Path) -> None:
    scan_page, _, _ = _write_pages(tmp_path)
    page, errors, _ = open_page(browser, scan_page)
    page.wait_for_selector("#spectrum .main-svg")
    axis = "document.getElementById('spectrum')._fullLayout.yaxis.type"
    assert page.evaluate(axis) == "log"  # default: the pedestal dwarfs the 1-PE peak at low occupancy
    page.click(".toggle button[data-scale='linear']")
    assert page.evaluate(axis) == "linear"
    page.click('[data-point="theta10_phi0"]')  # the choice holds for the next point
    assert page.evaluate(axis) == "linear"
    assert not errors, errors
