"""The viewer's mirror: faithful copy, conditional GETs, and never a bad file over a good one."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_viewer.mirror import Mirror, MirrorError

from .viewer_fakes import FakeMonitor

FILES = {
    "reports/index.html": b"<!DOCTYPE html><html><body>index</body></html>\n",
    "reports/EA0001.html": b"<html><body>EA0001 report</body></html>",
    "reports/version.json": b'{"EA0001.html": "v1"}',
    "results/EA0001/261125_101500/points/theta0_phi0.json": b'{"status": "healthy"}',
}


@pytest.fixture
def fake() -> Iterator[FakeMonitor]:
    server = FakeMonitor()
    server.files = dict(FILES)
    yield server
    server.stop()


def _local(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
            and not p.name.startswith(".")}


def test_mirror_matches_and_uses_conditional_gets(fake: FakeMonitor, tmp_path: Path) -> None:
    mirror = Mirror(fake.url, tmp_path)
    assert sorted(mirror.poll_once()) == sorted(FILES)
    assert _local(tmp_path) == FILES
    fake.log.clear()
    assert mirror.poll_once() == []
    assert [s for p, s in fake.log if p != "/manifest.json"] == [304] * len(FILES)
    fake.files["reports/EA0001.html"] = b"<html><body>EA0001 report v2</body></html>"
    assert mirror.poll_once() == ["reports/EA0001.html"]
    assert Mirror(fake.url, tmp_path).poll_once() == []  # ETags remembered across restarts of the viewer


@pytest.mark.parametrize("fault", ["500", "truncated", "invalid_json", "slow"])
def test_bad_responses_never_replace_a_good_copy(fake: FakeMonitor, tmp_path: Path, fault: str) -> None:
    mirror = Mirror(fake.url, tmp_path, timeout=0.5)
    mirror.poll_once()
    good = _local(tmp_path)
    fake.files = {p: b.replace(b"report", b"REPORT").replace(b"healthy", b"poor") for p, b in FILES.items()}
    fake.fault = fault
    with pytest.raises(MirrorError):
        mirror.poll_once()
    kept = {p: b for p, b in _local(tmp_path).items() if fault != "invalid_json" or p.endswith(".json")}
    assert kept == {p: b for p, b in good.items() if p in kept}  # (valid HTML updates may pass meanwhile)
    assert mirror.failures == 1 and mirror.last_error
    fake.fault = None
    mirror.poll_once()  # recovers
    assert _local(tmp_path) == fake.files and mirror.failures == 0


def test_server_down_at_start_then_restarting(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mirror = Mirror(f"http://127.0.0.1:{port}/", tmp_path, timeout=0.5, max_backoff=20)
    delays = []
    for _ in range(6):
        with pytest.raises(MirrorError):
            mirror.poll_once()
        delays.append(mirror.next_delay(1.0))
    assert delays == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]  # exponential, capped
    server = FakeMonitor(port)
    server.files = dict(FILES)
    try:
        mirror.poll_once()
        assert _local(tmp_path) == FILES and mirror.next_delay(1.0) == 1.0
    finally:
        server.stop()
    with pytest.raises(MirrorError):  # the server goes away mid-watch: the copy stays
        mirror.poll_once()
    assert _local(tmp_path) == FILES
    server = FakeMonitor(port)
    server.files = {**FILES, "reports/version.json": b'{"EA0001.html": "v2"}'}
    try:
        assert mirror.poll_once() == ["reports/version.json"]
        assert json.loads((tmp_path / "reports" / "version.json").read_text()) == {"EA0001.html": "v2"}
    finally:
        server.stop()


def test_manifest_paths_outside_reports_and_results_are_refused(fake: FakeMonitor, tmp_path: Path) -> None:
    fake.files["../../evil.html"] = b"<html></html>"
    with pytest.raises(MirrorError, match="refused"):
        Mirror(fake.url, tmp_path / "m").poll_once()
    assert not (tmp_path / "evil.html").exists()
