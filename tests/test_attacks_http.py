"""Attacks on the HTTP endpoint: cross-site POSTs, slow and lying clients, floods, oversized and nested bodies."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from remote_monitor.service import http_handler, http_server
from remote_monitor.service.http_server import make_server
from remote_monitor.service.store import atomic_write_json

NONCE = "0123456789abcdef0123456789abcdef"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server(tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, http_server.MonitorHTTPServer]]:
    monkeypatch.setattr(http_handler.RequestHandler, "timeout", 1.0)  # short, so that the test is quick
    monkeypatch.setattr(http_server, "CONNECTION_DEADLINE", 3.0)
    out = tmp_path / "out"
    (out / "reports").mkdir(parents=True)
    (out / "reports" / "index.html").write_text("<!DOCTYPE html><html>index</html>")
    atomic_write_json(out / "reports" / "version.json", {"index.html": "1"})
    srv = make_server(out, "127.0.0.1", 0, inbox_max_files=20, posts_per_minute=1000)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", out, srv
    srv.shutdown()
    srv.server_close()


def _inbox(out: Path) -> list[Path]:
    folder = out / "commands" / "inbox"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _alive(url: str) -> bool:
    return httpx.get(url + "/index.html", timeout=5).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain"},  # a "simple" cross-site request a browser sends without asking
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "application/json", "Origin": "http://evil.example"},
    {"Content-Type": "application/json", "Origin": "null"},
    {"Content-Type": "application/json", "Host": "evil.example:8765"},  # DNS rebinding
    {"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
])
def test_cross_origin_and_wrong_type_posts_are_refused(server: tuple, headers: dict[str, str]) -> None:
    url, out, _ = server
    body = json.dumps({"nonce": NONCE, "reason": "\ud800"}).encode()
    response = httpx.post(url + "/commands", content=body, headers=headers)
    assert response.status_code in (403, 415), response.text
    assert not _inbox(out)
    ok = httpx.post(url + "/commands", content=body, headers={**JSON, "Origin": url})  # same origin is fine
    assert ok.status_code == 202 and len(_inbox(out)) == 1


def test_bodies_are_checked_before_parsing_and_written_as_sent(server: tuple) -> None:
    url, out, _ = server
    nested = b'{"nonce": "' + NONCE.encode() + b'", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}"
    assert httpx.post(url + "/commands", content=nested, headers=JSON).status_code == 400
    too_big = httpx.post(url + "/commands", content=b"x" * 70000, headers=JSON)
    assert too_big.status_code == 413
    chunked = httpx.post(url + "/commands", content=iter([b'{"nonce": "' + NONCE.encode() + b'"}']), headers=JSON)
    assert chunked.status_code == 411
    assert not _inbox(out)
    body = b'{"nonce": "%s", "reason": "ok"}' % NONCE.encode()
    assert httpx.post(url + "/commands", content=body, headers=JSON).status_code == 202
    assert _inbox(out)[0].read_bytes() == body  # not re-serialized (a 64 kB body never becomes 30 MB)


def test_lying_client_is_cut_off_and_others_are_served(server: tuple) -> None:
    url, out, _ = server
    port = int(url.rsplit(":", 1)[1])
    liar = socket.create_connection(("127.0.0.1", port))
    liar.sendall(b"POST /commands HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 60000\r\n\r\n0123456789")  # announces 60 kB, sends 10 bytes
    assert _alive(url)  # served while the liar waits
    liar.settimeout(10)
    started = time.monotonic()
    answer = liar.recv(1000)
    assert time.monotonic() - started < 5 and (answer == b"" or b"408" in answer), answer
    liar.close()
    assert not _inbox(out)


def test_drip_feeding_client_is_cut_off_at_the_deadline(server: tuple) -> None:
    url, _, _ = server
    port = int(url.rsplit(":", 1)[1])
    drip = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    request = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    cut = False
    for byte in request:
        try:
            drip.sendall(bytes([byte]))
        except OSError:
            cut = True
            break
        time.sleep(0.3)  # below the per-read timeout, so only the total deadline can stop it
        if time.monotonic() - started > 8:
            break
    if not cut:
        drip.settimeout(2)
        try:
            cut = drip.recv(100) == b""
        except OSError:
            cut = True
    assert cut and time.monotonic() - started < 7, "the dripping client was not cut off at the deadline"
    drip.close()
    assert _alive(url)


def test_200_concurrent_gets_all_answered(server: tuple) -> None:
    url, _, _ = server
    with httpx.Client(timeout=20) as client, ThreadPoolExecutor(max_workers=200) as pool:
        codes = list(pool.map(lambda _: client.get(url + "/index.html").status_code, range(200)))
    assert codes.count(200) == 200


def test_idle_connection_flood_bounded_and_recovered(server: tuple) -> None:
    url, _, srv = server
    port = int(url.rsplit(":", 1)[1])
    fds_before = len(os.listdir("/proc/self/fd"))
    idle = []
    for _ in range(300):
        with_socket = socket.socket()
        with_socket.connect(("127.0.0.1", port))
        idle.append(with_socket)
    time.sleep(0.5)
    server_fds = len(os.listdir("/proc/self/fd")) - fds_before - len(idle)  # the server runs in this process
    assert server_fds <= 64 + 8, server_fds  # capped, not one per idle connection
    for s in idle:
        s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if _alive(url):
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    assert _alive(url)
    assert srv._slots._value > 0  # type: ignore[attr-defined]


def test_junk_post_flood_keeps_the_inbox_bounded(server: tuple) -> None:
    url, out, _ = server
    codes = []
    with httpx.Client() as client:
        for i in range(100):
            body = json.dumps({"nonce": f"{i:032x}", "junk": "x" * 1000}).encode()
            codes.append(client.post(url + "/commands", content=body, headers=JSON).status_code)
    assert codes.count(202) == 20 and codes.count(429) == 80
    assert len(_inbox(out)) == 20


def test_rate_limit(tmp_path: Path) -> None:
    srv = make_server(tmp_path, "127.0.0.1", 0, posts_per_minute=5)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        codes = [httpx.post(url + "/commands", content=json.dumps({"nonce": f"{i:032x}"}), headers=JSON).status_code
                 for i in range(8)]
    finally:
        srv.shutdown()
        srv.server_close()
    assert codes == [202] * 5 + [429] * 3


def test_pages_carry_a_content_security_policy(server: tuple) -> None:
    url, _, _ = server
    response = httpx.get(url + "/index.html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
