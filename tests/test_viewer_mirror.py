"""The viewer's mirror: faithful copy, conditional GETs, and never a bad file over a good one."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
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
    mirror = Mirror(fake.url, tmp_path / "m")
    assert sorted(mirror.poll_once()) == sorted(FILES)  # the rest is mirrored, the bad entry skipped
    assert any("evil.html" in m and "refused" in m for m in mirror.skipped), mirror.skipped
    assert not (tmp_path / "evil.html").exists()


def _mock_client(routes: dict[str, httpx.Response]) -> httpx.Client:
    """A client answering from `routes` (path -> response; missing paths: 404) without any network."""
    manifest = {"files": [{"path": p} for p in routes]}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lstrip("/")
        if path == "manifest.json":
            return httpx.Response(200, json=manifest)
        return routes.get(path, httpx.Response(404))
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_file_gone_since_the_manifest_keeps_the_copy_and_is_no_error(tmp_path: Path) -> None:
    page = "reports/EA0001.html"
    Mirror("http://m/", tmp_path,
           client=_mock_client({page: httpx.Response(200, content=b"<html>v1</html>")})).poll_once()
    routes = {page: httpx.Response(404), "reports/index.html": httpx.Response(200, content=b"<html>i</html>")}
    mirror = Mirror("http://m/", tmp_path, client=_mock_client(routes))
    assert mirror.poll_once() == ["reports/index.html"] and mirror.failures == 0
    assert (tmp_path / page).read_bytes() == b"<html>v1</html>"


def test_html_without_end_tag_and_bad_manifest_are_refused(tmp_path: Path) -> None:
    page = "reports/index.html"
    (tmp_path / "reports").mkdir()
    (tmp_path / page).write_bytes(b"<html>good</html>")
    mirror = Mirror("http://m/", tmp_path, client=_mock_client({page: httpx.Response(200, content=b"<html><bo")}))
    with pytest.raises(MirrorError, match="index.html: incomplete HTML"):
        mirror.poll_once()
    assert (tmp_path / page).read_bytes() == b"<html>good</html>"
    broken = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"files": 3})))
    with pytest.raises(MirrorError, match="manifest.json: not"):
        Mirror("http://m/", tmp_path, client=broken).poll_once()


def test_gzip_encoded_body_is_not_mistaken_for_a_truncated_one(tmp_path: Path) -> None:
    body = b'{"status": "healthy", "pad": "' + b"x" * 500 + b'"}'
    packed = gzip.compress(body)
    response = httpx.Response(200, content=packed,
                              headers={"Content-Encoding": "gzip", "Content-Length": str(len(packed))})
    path = "results/EA0001/261125_101500/scan.json"
    assert Mirror("http://m/", tmp_path, client=_mock_client({path: response})).poll_once() == [path]
    assert (tmp_path / path).read_bytes() == body


def test_corrupt_state_file_means_a_fresh_start(fake: FakeMonitor, tmp_path: Path) -> None:
    (tmp_path / ".mirror_state.json").write_text('["not", "a", "state"]')
    mirror = Mirror(fake.url, tmp_path)
    assert sorted(mirror.poll_once()) == sorted(FILES) and mirror.last_success
    state = json.loads((tmp_path / ".mirror_state.json").read_text())
    assert state["files"]["reports/index.html"]["etag"] == fake.etag("reports/index.html")
    assert Mirror(fake.url, tmp_path).last_success == state["last_success"]  # "last good copy from" survives


def test_content_length_mismatch_is_refused_even_if_the_transport_lets_it_through(tmp_path: Path) -> None:
    path = "results/EA0001/261125_101500/scan.json"
    short = httpx.Response(200, content=b'{"state": "live"}', headers={"Content-Length": "999"})
    with pytest.raises(MirrorError, match=r"scan.json: truncated body \(17 of 999 bytes\)"):
        Mirror("http://m/", tmp_path, client=_mock_client({path: short})).poll_once()
    assert not (tmp_path / path).exists()
