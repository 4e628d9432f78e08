"""The HTTP endpoint: read-only files with ETag/Last-Modified, no traversal, POST /commands into the inbox."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from remote_monitor.service.http_server import make_server
from remote_monitor.service.store import atomic_write_json

NONCE = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    out = tmp_path / "out"
    (out / "reports").mkdir(parents=True)
    (out / "reports" / "index.html").write_text("<!DOCTYPE html><html>index</html>")
    (out / "reports" / "EA0001.html").write_text("<html>pmt</html>")
    atomic_write_json(out / "reports" / "version.json", {"EA0001.html": "abc"})
    atomic_write_json(out / "results" / "EA0001" / "261125_101500" / "points" / "theta0_phi0.json", {"status": "ok"})
    (out / "monitor.key").write_text("secret")
    (out / "private").mkdir()
    (out / "private" / "monitor.key").write_text("secret")
    (out / "reports" / "key.html").symlink_to(out / "private" / "monitor.key")
    (tmp_path / "outside.html").write_text("<html>secret</html>")
    (out / "reports" / "link.html").symlink_to(tmp_path / "outside.html")
    srv = make_server(out, "127.0.0.1", 0, max_body=2048)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", out
    srv.shutdown()
    srv.server_close()


def test_get_files_with_etag_and_last_modified(server: tuple[str, Path]) -> None:
    url, _ = server
    with httpx.Client(base_url=url) as client:
        first = client.get("/")
        assert first.status_code == 200 and "index" in first.text
        assert first.headers["content-type"].startswith("text/html")
        assert first.headers["cache-control"] == "no-cache"
        again = client.get("/index.html", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        since = client.get("/reports/index.html", headers={"If-Modified-Since": first.headers["last-modified"]})
        assert since.status_code == 304
        assert client.get("/EA0001.html").text == "<html>pmt</html>"
        assert client.get("/version.json").json() == {"EA0001.html": "abc"}
        assert client.get("/results/EA0001/261125_101500/points/theta0_phi0.json").json() == {"status": "ok"}
        assert client.head("/reports/EA0001.html").headers["content-length"] == "16"


@pytest.mark.parametrize("path", ["/../monitor.key", "/reports/../monitor.key", "/reports/%2e%2e/monitor.key",
                                  "/%2e%2e/%2e%2e/etc/passwd", "/monitor.key", "/reports/", "/results/",
                                  "/reports/link.html", "/reports/key.html", "/private/monitor.key", "/commands/inbox",
                                  "//etc/passwd", "/reports/.hidden.html"])
def test_nothing_outside_the_reports_and_results(server: tuple[str, Path], path: str) -> None:
    url, _ = server
    response = httpx.get(url + path)
    assert response.status_code == 404 and "secret" not in response.text


def test_manifest_lists_every_served_file(server: tuple[str, Path]) -> None:
    url, _ = server
    files = {f["path"]: f for f in httpx.get(url + "/manifest.json").json()["files"]}
    assert set(files) == {"reports/index.html", "reports/EA0001.html", "reports/version.json",
                          "results/EA0001/261125_101500/points/theta0_phi0.json"}
    assert all(f["etag"] and f["size"] > 0 for f in files.values())


def test_post_commands_into_the_inbox(server: tuple[str, Path]) -> None:
    url, out = server
    cmd = {"nonce": NONCE, "action": "flag"}
    with httpx.Client(base_url=url) as client:
        assert client.get(f"/commands/receipts/{NONCE}").status_code == 404
        accepted = client.post("/commands", json=cmd)
        assert accepted.status_code == 202 and accepted.json()["receipt"] == f"/commands/receipts/{NONCE}"
        assert json.loads((out / "commands" / "inbox" / f"{NONCE}.json").read_text()) == cmd
        assert client.post("/commands", json=cmd).status_code == 409
        assert client.post("/commands", content=b"{not json",
                           headers={"Content-Type": "application/json"}).status_code == 400
        assert client.post("/commands", json={"nonce": "../../x"}).status_code == 400
        assert client.post("/commands", json={"nonce": "a" * 32, "pad": "x" * 4000}).status_code == 413
        assert client.post("/elsewhere", json=cmd).status_code == 404
        atomic_write_json(out / "commands" / "done" / f"{NONCE}.json", {"status": "accepted"})
        assert client.get(f"/commands/receipts/{NONCE}").json() == {"status": "accepted"}
