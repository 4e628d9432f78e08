"""The viewer's commands, status lines, alerts and ssh tunnel."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from local_viewer import cli
from local_viewer.atomic import atomic_write_json
from local_viewer.cli import main
from local_viewer.send_command import CommandError, post_and_wait
from local_viewer.status import StatusBoard
from local_viewer.tunnel import close_tunnel, open_tunnel, tunnel_command
from remote_monitor.service.command_signing import generate_key_file, load_key, verify_signature

from .viewer_fakes import FakeMonitor


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return generate_key_file(tmp_path / "monitor.key")


def test_flag_accepted_and_rejected_with_the_monitors_reason(key: Path, capsys: pytest.CaptureFixture) -> None:
    fake = FakeMonitor()
    try:
        code = main(["flag", "EA0001", "--scan", "261125_101500", "--reason", "no SPE peak", "--points",
                     "theta10_phi90", "--key", str(key), "--url", fake.url, "--issuer", "alice", "--wait", "5"])
        assert code == 0 and "accepted" in capsys.readouterr().out
        sent = fake.posted[-1]
        assert sent["points"] == ["theta10_phi90"] and verify_signature(sent, load_key(key))
        code = main(["archive", "EA0001", "--scan", "261125_101500", "--key", str(key), "--url", fake.url,
                     "--issuer", "mallory", "--wait", "5"])
        out = capsys.readouterr().out
        assert code == 1 and out.startswith("rejected: bad signature")
    finally:
        fake.stop()


def test_inbox_mode_and_no_receipt(key: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inbox = tmp_path / "out" / "commands" / "inbox"

    def monitor() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for path in inbox.glob("*.json"):
                atomic_write_json(inbox.parent / "rejected" / path.name,
                                  {"status": "rejected",
                                   "reason": "scan 261125_101500 of EA0001 is not in the data area"})
                path.unlink()
                return
            time.sleep(0.05)
    thread = threading.Thread(target=monitor)
    thread.start()
    code = main(["flag", "EA0001", "--scan", "261125_101500", "--reason", "x", "--key", str(key), "--inbox",
                 str(inbox), "--wait", "5"])
    thread.join()
    assert code == 1 and "not in the data area" in capsys.readouterr().out
    code = main(["flag", "EA0001", "--scan", "261125_101500", "--reason", "x", "--key", str(key), "--inbox",
                 str(inbox), "--wait", "0.3"])
    assert code == 2 and "no receipt" in capsys.readouterr().out


def test_status_lines_and_alert_once_per_point(tmp_path: Path) -> None:
    points = tmp_path / "results" / "EA0001" / "261125_101500" / "points"
    atomic_write_json(points / "theta0_phi0.json", {"point": "theta0_phi0", "kind": "scan", "status": "healthy",
                                                    "fit": {"gain": 1.02e7}, "processed_at": "1"})
    board = StatusBoard(tmp_path)
    lines, alerts = board.update()
    assert alerts == [] and "EA0001" in lines[0] and " 1/21 points" in lines[0] and "1.0200e7" in lines[0]
    atomic_write_json(points / "theta10_phi0.json", {"point": "theta10_phi0", "kind": "scan", "status": "poor",
                                                     "reason": "gain below band", "fit": {"gain": 0.9e7},
                                                     "processed_at": "2"})
    lines, alerts = board.update()
    assert alerts == ["ALERT EA0001 261125_101500 theta10_phi0: POOR - gain below band"]
    assert "1 poor (theta10_phi0), 0 error" in lines[0] and " 2/21 points" in lines[0]
    assert board.update()[1] == []  # once per point


def test_watch_once_mirrors_and_prints_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fake = FakeMonitor()
    fake.files = {"reports/index.html": b"<html></html>",
                  "results/EA0001/261125_101500/points/theta0_phi0.json":
                      b'{"point": "theta0_phi0", "kind": "scan", "status": "error", "reason": "missing channel"}'}
    try:
        code = main(["watch", fake.url, "--out", str(tmp_path), "--once", "--no-browser", "--no-bell"])
    finally:
        fake.stop()
    out = capsys.readouterr().out
    assert code == 0 and "ALERT EA0001 261125_101500 theta0_phi0: ERROR - missing channel" in out
    code = main(["watch", fake.url, "--out", str(tmp_path), "--once", "--no-browser", "--no-bell"])
    assert code == 1 and "server unreachable since" in capsys.readouterr().out
    assert (tmp_path / "reports" / "index.html").read_bytes() == b"<html></html>"


def test_ssh_tunnel_argument_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "argv.json"
    fake_ssh = tmp_path / "ssh"
    fake_ssh.write_text(f"#!/usr/bin/env python3\nimport json, sys, time\nopen({str(log)!r}, 'w').write("
                        "json.dumps(sys.argv[1:]))\ntime.sleep(30)\n")
    fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    proc = open_tunnel("op@login.cluster", 8765, 18765)
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    close_tunnel(proc)
    assert proc.poll() is not None
    assert json.loads(log.read_text()) == ["-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                                           "-o", "ServerAliveInterval=30", "-L", "18765:127.0.0.1:8765", "--",
                                           "op@login.cluster"]
    for hostile in ("-oProxyCommand=touch /tmp/x", "a b@c", "x;rm -rf ~"):
        with pytest.raises(ValueError, match="USER@HOST"):
            tunnel_command(hostile, 8765, 8765)


def test_watch_opens_the_index_once_and_keeps_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    opened: list[str] = []
    sleeps: list[float] = []
    point = "results/EA0001/261125_101500/points/theta0_phi0.json"

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            fake.files[point] = b'{"kind": "scan", "status": "healthy", "fit": {"gain": 1.01e7}, "processed_at": "2"}'
        if len(sleeps) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(cli.webbrowser, "open", opened.append)
    monkeypatch.setattr(cli.time, "sleep", fake_sleep)
    fake = FakeMonitor()
    fake.files = {"reports/index.html": b"<html></html>",
                  point: b'{"kind": "scan", "status": "healthy", "processed_at": "1"}'}
    try:
        assert main(["watch", fake.url, "--out", str(tmp_path), "--interval", "2", "--no-bell"]) == 0
    finally:
        fake.stop()
    assert opened == [(tmp_path / "reports" / "index.html").absolute().as_uri()]
    assert sleeps == [2.0, 2.0, 2.0]
    status = [line for line in capsys.readouterr().out.splitlines() if line.startswith("EA0001")]
    assert len(status) == 2 and "last gain -" in status[0] and "gain 1.0100e7" in status[1]  # printed on change


def _fake_exe(folder: Path, name: str, body: str) -> Path:
    exe = folder / name
    exe.write_text(f"#!{sys.executable}\n{body}")
    exe.chmod(0o755)
    return exe


def test_alert_rings_the_bell_and_calls_notify_send_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "notify.log"
    bin_dir.mkdir()
    _fake_exe(bin_dir, "notify-send",
              f"import json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fake = FakeMonitor()
    fake.files = {"results/EA0001/261125_101500/points/theta20_phi90.json":
                  b'{"point": "theta20_phi90", "kind": "scan", "status": "poor", "reason": "gain 0.93e7 below band"}'}
    try:
        for _ in range(2):
            assert main(["watch", fake.url, "--out", str(tmp_path / "m"), "--once", "--no-browser"]) == 0
    finally:
        fake.stop()
    out = capsys.readouterr().out
    assert out.count("\a") == 2 and out.count("ALERT") == 2  # a new viewer alerts anew; one viewer alerts once
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 2 and "theta20_phi90: POOR - gain 0.93e7 below band" in calls[0][-1]
    board = StatusBoard(tmp_path / "m")
    assert board.update()[1] and board.update()[1] == []


def test_clear_errors_for_unreachable_monitor_bad_key_and_bad_out_dir(key: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    assert main(["flag", "EA0001", "--scan", "261125_101500", "--reason", "x", "--key", str(key), "--url", dead]) == 2
    assert "cannot reach the monitor" in capsys.readouterr().err
    key.chmod(0o644)
    assert main(["archive", "EA0001", "--scan", "261125_101500", "--key", str(key), "--url", dead]) == 2
    assert "chmod 600" in capsys.readouterr().err
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("keep me")
    fake = FakeMonitor()
    fake.files = {"reports/index.html": b"<html></html>"}
    try:
        assert main(["watch", fake.url, "--out", str(not_a_dir), "--once", "--no-browser"]) == 2
    finally:
        fake.stop()
    assert "local-viewer watch: error" in capsys.readouterr().err and not_a_dir.read_text() == "keep me"
    with pytest.raises(SystemExit):
        main(["watch", fake.url, "--interval", "0"])


FORWARDER = """
import json, socket, sys, threading
open(LOG, "a").write(json.dumps(sys.argv[1:]) + "\\n")
local, _, remote = sys.argv[sys.argv.index("-L") + 1].split(":")
listener = socket.create_server(("127.0.0.1", int(local)))

def pipe(src, dst):
    while data := src.recv(65536):
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)

while True:
    client, _ = listener.accept()
    upstream = socket.create_connection(("127.0.0.1", int(remote)))
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pipe, args=(a, b), daemon=True).start()
"""


def test_watch_through_an_ssh_tunnel_and_reopen_a_dead_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "ssh.log"
    bin_dir.mkdir()
    _fake_exe(bin_dir, "ssh", f"LOG = {str(log)!r}\n" + FORWARDER)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        local_port = sock.getsockname()[1]
    fake = FakeMonitor()
    fake.files = {"reports/index.html": b"<html>through the tunnel</html>"}
    try:
        assert main(["watch", "--ssh", "op@login", "--remote-port", str(fake.port), "--local-port", str(local_port),
                     "--out", str(tmp_path / "m"), "--once", "--no-browser"]) == 0
    finally:
        fake.stop()
    assert (tmp_path / "m" / "reports" / "index.html").read_bytes() == b"<html>through the tunnel</html>"
    with pytest.raises(OSError):  # the tunnel was closed on exit
        socket.create_connection(("127.0.0.1", local_port), timeout=1).close()
    # an ssh that dies at once (e.g. forward failed) is reported and reopened on the next poll
    _fake_exe(bin_dir, "ssh", f"import json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
              "sys.exit(255)\n")
    sleeps: list[float] = []
    real_sleep = time.sleep

    def fake_sleep(seconds: float) -> None:
        if seconds < 1:  # subprocess' own short waits
            return real_sleep(seconds)
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt
        return None
    capsys.readouterr()
    monkeypatch.setattr(cli.time, "sleep", fake_sleep)
    assert main(["watch", "--ssh", "op@login", "--local-port", str(local_port), "--out", str(tmp_path / "m"),
                 "--no-browser", "--no-bell", "--timeout", "1"]) == 0
    assert capsys.readouterr().out.count("ssh tunnel exited with code 255; reopening it") == 2
    assert len(log.read_text().splitlines()) == 4
    assert sleeps == [6.0, 12.0]  # backoff from the default 3 s interval


def test_receipt_polling_rides_out_a_monitor_restart() -> None:
    answers = iter(["down", "pending", "done"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            nonce = json.loads(request.content)["nonce"]
            return httpx.Response(202, json={"nonce": nonce, "receipt": f"/commands/receipts/{nonce}"})
        answer = next(answers)
        if answer == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if answer == "pending":
            return httpx.Response(404, json={"status": "pending"})
        return httpx.Response(200, json={"status": "rejected", "reason": "expired at 2026-11-25T10:00:00+00:00"})
    client = httpx.Client(transport=httpx.MockTransport(handler))
    receipt = post_and_wait({"nonce": "ab" * 16}, "http://monitor:8765/", wait_s=5, client=client, poll_s=0.01)
    assert receipt == {"status": "rejected", "reason": "expired at 2026-11-25T10:00:00+00:00"}
    with pytest.raises(CommandError, match="HTTP 409"):
        post_and_wait({"nonce": "cd" * 16}, "http://m/", wait_s=1, poll_s=0.01, client=httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(409, json={"error": "nonce was sent before"}))))
