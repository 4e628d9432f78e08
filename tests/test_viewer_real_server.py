"""The viewer against the real HTTP endpoint and the real command processor (no monitor loop; fast)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_viewer.cli import main
from local_viewer.mirror import Mirror, MirrorError
from remote_monitor.service.command_signing import generate_key_file, load_key
from remote_monitor.service.commands import CommandProcessor
from remote_monitor.service.http_server import make_server
from remote_monitor.service.store import ResultsStore, atomic_write_json

SN, SCAN = "EA0001", "261125_101500"
POINT = f"results/{SN}/{SCAN}/points/theta0_phi0.json"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The real endpoint on a free loopback port, serving tmp/out; a thread plays the monitor's inbox loop."""
    out, data = tmp_path / "out", tmp_path / "data"
    (out / "reports").mkdir(parents=True)
    (out / "reports" / "index.html").write_text("<!DOCTYPE html><html><body>index</body></html>\n")
    atomic_write_json(out / "reports" / "version.json", {"index.html": "v1"})
    atomic_write_json(out / POINT, {"point": "theta0_phi0", "kind": "scan", "status": "healthy",
                                    "fit": {"gain": 1.01e7}, "processed_at": "2026-11-25T10:15:00+00:00"})
    store = ResultsStore(out)
    store.update_scan(SN, SCAN, state="live")
    folder = data / f"wavedump_output_{SCAN}" / SN / "wavesave_theta0_phi0"
    folder.mkdir(parents=True)
    (folder / "wave2save_theta0_phi0.txt").write_text("x")
    key_file = generate_key_file(tmp_path / "monitor.key")
    processor = CommandProcessor(data, out, tmp_path / "FLAG", tmp_path / "ARCHIVE", load_key(key_file), store)
    stop = threading.Event()

    def monitor_loop() -> None:
        while not stop.wait(0.05):
            processor.process_inbox()

    server = make_server(out, port=0)
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
               threading.Thread(target=monitor_loop, daemon=True)]
    for thread in threads:
        thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "out": out, "key": key_file, "tmp": tmp_path}
    stop.set()
    server.shutdown()
    server.server_close()
    for thread in threads:
        thread.join(5)


def _served(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.parts[len(out.parts)] in ("reports", "results")}


def test_mirror_of_the_real_endpoint_with_304s(site: dict[str, Any], tmp_path: Path) -> None:
    codes: list[tuple[str, int]] = []
    client = httpx.Client(timeout=5, event_hooks={"response": [lambda r: codes.append((r.url.path, r.status_code))]})
    local = tmp_path / "laptop"
    mirror = Mirror(site["url"], local, client=client)
    assert len(mirror.poll_once()) == 4
    served = _served(site["out"])
    assert served.keys() == {"reports/index.html", "reports/version.json", POINT, f"results/{SN}/{SCAN}/scan.json"}
    assert {p: (local / p).read_bytes() for p in served} == served
    codes.clear()
    assert mirror.poll_once() == []
    assert sorted(c for p, c in codes if p != "/manifest.json") == [304] * 4
    page = site["out"] / "reports" / "index.html"
    page.write_text("<html><body>index v2</body></html>")
    os.utime(page, (page.stat().st_atime, page.stat().st_mtime + 5))
    assert mirror.poll_once() == ["reports/index.html"]
    assert (local / "reports" / "index.html").read_text() == "<html><body>index v2</body></html>"


def test_a_half_written_page_on_the_server_never_replaces_the_good_copy(site: dict[str, Any], tmp_path: Path) -> None:
    local = tmp_path / "laptop"
    mirror = Mirror(site["url"], local)
    mirror.poll_once()
    page = site["out"] / "reports" / "index.html"
    page.write_text("<html><body>half a pa")
    os.utime(page, (page.stat().st_atime, page.stat().st_mtime + 5))
    with pytest.raises(MirrorError, match="index.html: incomplete HTML"):
        mirror.poll_once()
    assert "index</body>" in (local / "reports" / "index.html").read_text()
    assert not mirror.unreachable and mirror.failures == 1


def test_flag_accepted_then_forged_command_rejected(site: dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    args = ["flag", SN, "--scan", SCAN, "--reason", "no SPE peak", "--points", "theta0_phi0", "--url", site["url"],
            "--issuer", "alice", "--wait", "10"]
    assert main([*args, "--key", str(site["key"])]) == 0
    assert capsys.readouterr().out.startswith("accepted: flag EA0001")
    assert (site["tmp"] / "FLAG" / f"wavedump_output_{SCAN}" / SN / "wavesave_theta0_phi0").is_dir()
    wrong = generate_key_file(site["tmp"] / "other.key")
    assert main([*args, "--key", str(wrong)]) == 1
    assert capsys.readouterr().out == "rejected: bad signature (wrong key, or the command was modified after signing)\n"
