"""The viewer's commands, status lines, alerts and ssh tunnel."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from local_viewer import cli
from local_viewer.cli import main
from local_viewer.status import StatusBoard
from local_viewer.tunnel import close_tunnel, open_tunnel, tunnel_command
from remote_monitor.command_signing import generate_key_file, load_key, verify_signature
from remote_monitor.store import atomic_write_json

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
                                  {"status": "rejected", "reason": "scan 261125_101500 of EA0001 is not in the data area"})
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
    assert alerts == ["ALERT EA0001 theta10_phi0: POOR – gain below band"] and "1 poor" in lines[0]
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
    assert code == 0 and "ALERT EA0001 theta0_phi0: ERROR – missing channel" in out
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
    assert json.loads(log.read_text()) == ["-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30",
                                           "-L", "18765:127.0.0.1:8765", "--", "op@login.cluster"]
    for hostile in ("-oProxyCommand=touch /tmp/x", "a b@c", "x;rm -rf ~"):
        with pytest.raises(ValueError, match="USER@HOST"):
            tunnel_command(hostile, 8765, 8765)


def test_watch_opens_the_index_once_and_keeps_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(cli.webbrowser, "open", opened.append)
    monkeypatch.setattr(cli.time, "sleep", fake_sleep)
    fake = FakeMonitor()
    fake.files = {"reports/index.html": b"<html></html>"}
    try:
        assert main(["watch", fake.url, "--out", str(tmp_path), "--interval", "2", "--no-bell"]) == 0
    finally:
        fake.stop()
    assert opened == [(tmp_path / "reports" / "index.html").absolute().as_uri()]
    assert sleeps == [2.0, 2.0, 2.0]
