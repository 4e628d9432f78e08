"""Hostile things in the data tree and in <out>: FIFOs, devices, symlinks, delete races, names with newlines,
corrupt result files, and script in data or command text (the reports must not run it)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from remote_monitor.report import pages as report
from remote_monitor.service.http_server import make_server, page_csp
from remote_monitor.service.problems import Problems, quarantine
from remote_monitor.service.processing import fingerprint, point_sources
from remote_monitor.service.store import CorruptFile, ResultsStore, atomic_write_json
from remote_monitor.stand.layout import (
    LayoutError,
    PointKey,
    is_regular_data_file,
    parse_source_file,
    validate_point,
    validate_scan_id,
    validate_serial,
)

from .report_fixtures import SCAN_ID, SERIAL, scan_with_faults

SCAN = "261125_101500"
KEY = PointKey("EA0001", SCAN, "theta0_phi0")


def _point_dir(data: Path) -> Path:
    folder = data / f"wavedump_output_{SCAN}" / "EA0001" / "wavesave_theta0_phi0"
    folder.mkdir(parents=True)
    return folder


@pytest.mark.parametrize("name", ["EA0009\n", "EA0009\r", "EA\n0009", "../EA0009", "EA0009 ", ""])
def test_names_with_newlines_or_tricks_are_rejected(name: str) -> None:
    with pytest.raises(LayoutError):
        validate_serial(name)
    with pytest.raises(LayoutError):
        validate_scan_id(SCAN + "\n")
    with pytest.raises(LayoutError):
        validate_point("theta0_phi0\n")


def test_paths_with_a_trailing_newline_are_not_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for bad in (f"wavedump_output_{SCAN}/EA0009\n/wavesave_theta0_phi0/wave2save_theta0_phi0.txt",
                f"wavedump_output_{SCAN}\n/EA0009/wavesave_theta0_phi0/wave2save_theta0_phi0.txt",
                f"wavedump_output_{SCAN}/EA0009/wavesave_theta0_phi0/wave2save_theta0_phi0.txt\n"):
        assert parse_source_file(data / bad, data) is None


def test_only_regular_files_inside_the_data_tree_are_sources(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = _point_dir(data)
    (folder / "wave2save_theta0_phi0.txt").write_text("Record Length: 4\n")
    os.mkfifo(folder / "wave0save_theta0_phi0.txt")  # would block a reader for ever (like a hung NFS read)
    outside = tmp_path / "outside.txt"
    outside.write_text("not data")
    (folder / "wave1save_theta0_phi0.txt").symlink_to(outside)  # leaves the data tree
    (folder / "wave3save_theta0_phi0.txt").symlink_to(folder / "missing")  # dangling
    (folder / "wave4save_theta0_phi0.txt").symlink_to(folder / "wave4save_theta0_phi0.txt")  # loops
    (folder / "wave5save_theta0_phi0.txt").symlink_to("/dev/zero")  # a device
    (folder / "wave6save_theta0_phi0.txt").mkdir()  # a folder named like a file
    inside = folder / "wave7save_theta0_phi0.txt"
    inside.symlink_to(folder / "wave2save_theta0_phi0.txt")  # a symlink inside the tree is fine
    assert sorted(point_sources(data, KEY)) == ["2", "7"]
    assert not is_regular_data_file(folder / "wave0save_theta0_phi0.txt", data)
    assert is_regular_data_file(inside, data)


def test_files_deleted_between_listing_and_stat(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = _point_dir(data)
    stop = threading.Event()

    def churn() -> None:
        path = folder / "wave2save_theta0_phi0.txt"
        while not stop.is_set():
            path.write_text("x")
            path.unlink(missing_ok=True)
    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(2000):  # must never raise, whatever the timing
            fingerprint(point_sources(data, KEY))
    finally:
        stop.set()
        thread.join()


CORRUPT = {"not JSON": b"{half", "binary": b"\x00\xff\xfe", "a list": b"[1, 2]", "nested": b"[" * 100000,
           "empty": b""}


@pytest.mark.parametrize("content", CORRUPT)
def test_corrupt_result_files_are_quarantined_and_read_as_missing(tmp_path: Path, content: str) -> None:
    out = tmp_path / "out"
    problems = Problems(out)

    def on_corrupt(exc: CorruptFile) -> None:
        problems.add(str(exc.path), f"moved to {quarantine(exc.path, out)}")
    store = ResultsStore(out, on_corrupt=on_corrupt)
    good = PointKey("EA0001", SCAN, "theta10_phi0")
    store.write_point(good, {"status": "healthy", "kind": "scan"})
    store.point_path(KEY).write_bytes(CORRUPT[content])
    (store.scan_dir("EA0001", SCAN) / "scan.json").write_bytes(CORRUPT[content])
    assert store.read_point(KEY) is None
    assert list(store.points("EA0001", SCAN)) == ["theta10_phi0"]
    assert store.read_scan("EA0001", SCAN) is None
    assert store.update_scan("EA0001", SCAN, state="live")["state"] == "live"  # rebuilt
    quarantined = sorted(p.name for p in (out / "quarantine").iterdir())
    assert len(quarantined) == 2 and any("theta0_phi0" in q for q in quarantined), quarantined
    assert len(Problems(out).items) == 2  # written to <out>/state/problems.json for the index page


XSS = ['<img src=x onerror="window.__xss=1;alert(1)">', "</script><script>window.__xss=1;alert(1)</script>",
       "\"'><svg onload=window.__xss=1>", "javascript:window.__xss=1", "<!--", "\u2028\u2029</p>"]


def _hostile_scan() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    scan, points = scan_with_faults()
    points["theta20_phi90"]["reason"] = "first bytes: " + " ".join(XSS)  # the error point has no spectrum
    points["theta20_phi90"]["warnings"] = XSS
    scan["state_info"] = {"by": XSS[0], "at": XSS[2], "reason": XSS[1], "command_id": "x", "action": "flag",
                          "points": None}
    return scan, points


class _TagLister(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, [name for name, _ in attrs]))


def _tags(html: str) -> list[tuple[str, list[str]]]:
    """(tag, attribute names) of every element as a browser's parser sees them."""
    lister = _TagLister()
    lister.feed(html)
    return lister.tags


def _inline_scripts(html: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"<script( type=\"application/json\"[^>]*)?>(.*?)</script>", html,
                                            re.DOTALL) if not m.group(1)]


def test_rendered_pages_hold_no_executable_payload() -> None:
    scan, points = _hostile_scan()
    page = report.render_scan_page(scan, points, healthy_band=(0.999e7, 1.049e7), target_gain=1e7,
                                   other_scans=[SCAN_ID], generated_at="x", live=True)
    for payload in ("<img src=x", "<svg onload", "<script>window.__xss"):
        assert payload not in page
    tags = _tags(page)
    # the report draws its own static SVG pictures; data must never add elements that load or run anything
    assert not [t for t in tags if t[0] in ("img", "iframe", "object", "embed", "foreignobject", "use", "a:href")]
    assert not [t for t in tags if t[0] == "svg" and "onload" in t[1]]
    assert not [t for t in tags if any(name.startswith("on") for name in t[1])], "inline event handler"
    for template in (Path(report.__file__).parents[2] / "report_templates").glob("*.j2"):
        assert "innerHTML" not in template.read_text(), template  # data text goes in with textContent
    allowed = page_csp()
    for body in _inline_scripts(page):  # every script that would run is one the CSP allows by hash
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed
    index = report.render_index_page([report.summarize_scan(scan, points, healthy_band=(0.999e7, 1.049e7),
                                                            target_gain=1e7)], generated_at="x",
                                     problems=[{"at": "now", "where": XSS[0], "what": XSS[1], "count": 1}])
    assert "<img src=x" not in index and "<script>window" not in index and "Problems the monitor met" in index


@pytest.mark.browser
def test_browser_runs_no_injected_script(tmp_path: Path) -> None:
    """Headless Chromium on the served page: the report works (its own scripts run), no payload runs."""
    from .browser_helpers import chromium

    scan, points = _hostile_scan()
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / f"{SERIAL}.html").write_text(report.render_scan_page(
        scan, points, healthy_band=(0.999e7, 1.049e7), target_gain=1e7, other_scans=[SCAN_ID],
        generated_at="x", live=True))
    atomic_write_json(reports / "version.json", {f"{SERIAL}.html": "v1"})
    server = make_server(tmp_path, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium() as browser:
            page = browser.new_page()
            dialogs: list[str] = []
            errors: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/{SERIAL}.html")
            page.wait_for_selector("#polar-map .main-svg")  # the report's own scripts ran under the CSP
            page.locator('.cell[data-point="theta20_phi90"]').first.click()
            page.wait_for_timeout(500)
            assert "first bytes:" in page.inner_text("#spectrum-status")  # the payload is shown as text
            assert page.evaluate("window.__xss") is None and not dialogs
            assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    finally:
        server.shutdown()
        server.server_close()
