"""Real servers for the sharing tests: SMTP (aiosmtpd, optionally STARTTLS with a self-signed certificate),
a chat webhook receiver, and a server that accepts connections and never answers."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from remote_monitor.service.publish import Publisher
from remote_monitor.service.store import ResultsStore, atomic_write_json
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey

from .report_fixtures import scan_with_faults


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler keeping every delivered message; `refuse` answers DATA with that SMTP reply."""

    def __init__(self, refuse: str | None = None) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refuse = refuse
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            self.refused += 1
            return self.refuse
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


@contextlib.contextmanager
def smtp_server(inbox: Inbox, port: int | None = None, tls: ssl.SSLContext | None = None,
                logins: dict[str, str] | None = None) -> Iterator[Controller]:
    """A real SMTP server on 127.0.0.1 (STARTTLS required when tls is given; AUTH checked against logins)."""
    kwargs: dict[str, Any] = {}
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    if logins is not None:
        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and logins.get(data.login.decode()) == data.password.decode()
            return AuthResult(success=ok, handled=False)
        kwargs.update(authenticator=authenticate, auth_required=True)
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1 made with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class SilentServer:
    """Accepts TCP connections and never says a word (a hung mail server)."""

    def __init__(self, port: int | None = None) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.sock.accept()[0])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone would not
        self.sock.close()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()


class WebhookReceiver:
    """A Mattermost/Slack-like incoming webhook on loopback: keeps the JSON of every POST."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    receiver.posts.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stored_scan_with_report(out: Path, cfg: Config) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The faulty fixture scan stored in <out>/results/ and its report pages written by the Publisher."""
    scan, points = scan_with_faults()
    store = ResultsStore(out)
    for name, result in points.items():
        store.write_point(PointKey(scan["serial"], scan["scan_id"], name), result)
    atomic_write_json(store.scan_dir(scan["serial"], scan["scan_id"]) / "scan.json", scan)
    Publisher(store, cfg).publish()
    return scan, points
