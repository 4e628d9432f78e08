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
    shown = dict(page.eval_on_selector_all("#grid [data-point]", "els => els.map(e => [e.dataset.point, e.dataset.status])"))
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
        page.wait_for_timeout(6000)
        assert len(loads) == 2
    finally:
        server.shutdown()
        server.server_close()
