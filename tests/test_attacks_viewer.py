"""The viewer against a hostile server: bad manifest entries, dripping and endless bodies, escape sequences."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_viewer.cli import main
from local_viewer.mirror import Mirror, MirrorError
from local_viewer.send_command import CommandError, post_and_wait
from local_viewer.terminal import terminal_safe

from .viewer_fakes import FakeMonitor

GOOD = {
    "reports/index.html": b"<!DOCTYPE html><html><body>index</body></html>",
    "results/EA0001/261125_101500/points/theta0_phi0.json": b'{"status": "healthy"}',
}


def test_bad_manifest_entries_are_skipped_with_a_message(tmp_path: Path) -> None:
    fake = FakeMonitor()
    fake.files = {**GOOD,
                  "reports/" + "a" * 300 + ".html": b"<html></html>",  # longer than any file system allows
                  "reports/EA0009.html\n": b"<html></html>",  # a name ending in a newline
                  "results/EA0001/261125_101500/points.json": b"{}",  # a file ...
                  "results/EA0001/261125_101500/points.json/theta0_phi0.json": b"{}",  # ... and a folder
                  "reports/INDEX.HTML": b"<html></html>",  # the same file as index.html on macOS
                  "reports/\x1b[2Jevil.html": b"<html></html>"}
    try:
        mirror = Mirror(fake.url, tmp_path)
        updated = mirror.poll_once()
    finally:
        fake.stop()
    assert set(GOOD) <= set(updated) and mirror.failures == 0
    assert len(mirror.skipped) == 5, mirror.skipped
    assert not (tmp_path / "reports" / "EA0009.html\n").exists()
    assert not list((tmp_path / "reports").glob("a" * 100 + "*"))


class HostileServer:
    """A raw socket server whose answer is written by `reply(connection)`."""

    def __init__(self, reply: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.reply = reply
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self.reply(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


def drip(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100000):
        conn.sendall(b" ")
        time.sleep(0.5)  # always well inside the read timeout: only a total deadline stops it


def endless(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    while True:
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def announce_1gb(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n" + b"x" * 1000)
    time.sleep(5)


@pytest.fixture
def hostile() -> Iterator[Callable[[Callable[[socket.socket], None]], HostileServer]]:
    servers: list[HostileServer] = []

    def start(reply: Callable[[socket.socket], None]) -> HostileServer:
        servers.append(HostileServer(reply))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def test_dripping_server_is_cut_off_at_the_timeout(hostile: Callable, tmp_path: Path) -> None:
    server = hostile(drip)
    started = time.monotonic()
    with pytest.raises(MirrorError, match="cut off"):
        Mirror(server.url, tmp_path, timeout=2.0).poll_once()
    assert time.monotonic() - started < 4.0


@pytest.mark.parametrize("reply", [endless, announce_1gb])
def test_huge_bodies_are_refused_without_taking_them_into_memory(hostile: Callable, tmp_path: Path,
                                                                 reply: Callable) -> None:
    server = hostile(reply)
    with pytest.raises(MirrorError, match="larger than|announced"):
        Mirror(server.url, tmp_path, timeout=10.0, max_body=2_000_000).poll_once()


def test_command_sender_is_cut_off_by_a_dripping_server(hostile: Callable) -> None:
    server = hostile(drip)
    started = time.monotonic()
    with pytest.raises(CommandError):
        post_and_wait({"nonce": "0" * 32}, server.url, wait_s=1)
    assert time.monotonic() - started < 12.0  # REQUEST_TIMEOUT, not for ever


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x9b1m\r\x08\x00\u202eevil"


def test_escape_sequences_never_reach_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fake = FakeMonitor()
    point = {"status": "error", "reason": ESCAPES, "fit": None, "processed_at": "2026-11-25T10:00:00"}
    fake.files = {"results/EA0001/261125_101500/points/theta0_phi0.json": json.dumps(point).encode(),
                  "results/EA0001/261125_101500/scan.json": json.dumps({"state": ESCAPES}).encode()}
    try:
        assert main(["watch", fake.url, "--out", str(tmp_path), "--once", "--no-browser", "--no-bell"]) == 0
    finally:
        fake.stop()
    out = capsys.readouterr().out
    assert "ALERT EA0001" in out and "red" in out
    for bad in ("\x1b", "\x9b", "\x07", "\x08", "\x00", "\r", "\u202e"):
        assert bad not in out, repr(out)
    assert terminal_safe("line\nnext\ttab") == "line\nnext\ttab"
