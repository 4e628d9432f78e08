"""The request handler of the HTTP endpoint: read-only GET/HEAD of what http_files allows, receipts, and
POST /commands checked (Host, Origin, type, length, rate, inbox quota) before its body is read."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import mimetypes
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from remote_monitor.service.command_signing import NONCE_RE
from remote_monitor.service.http_files import etag, manifest, page_csp, resolve
from remote_monitor.service.store import atomic_write_bytes

log = logging.getLogger("remote_monitor.http")
SOCKET_TIMEOUT = 10.0  # seconds for every read or write on a connection


class Endpoint(Protocol):
    """What the handler needs of its server (http_server.MonitorHTTPServer)."""

    out_root: Path
    max_body: int
    post_lock: threading.Lock
    allowed_hosts: set[str]

    def watch(self, sock: socket.socket) -> None: ...
    def unwatch(self, sock: socket.socket) -> None: ...
    def host_name(self, host: str) -> str: ...
    def rate_ok(self) -> bool: ...
    def inbox_full(self) -> bool: ...


class RequestHandler(BaseHTTPRequestHandler):
    """GET/HEAD of reports, results, the manifest and receipts; POST /commands into the inbox."""

    server_version = "pmt-live-monitor"
    timeout = SOCKET_TIMEOUT  # applied to the socket in setup()

    @property
    def endpoint(self) -> Endpoint:
        return cast("Endpoint", self.server)

    def setup(self) -> None:
        super().setup()
        self.endpoint.watch(self.request)

    def finish(self) -> None:
        self.endpoint.unwatch(self.request)
        with contextlib.suppress(OSError):  # the client left, or was cut off
            super().finish()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), fmt % args)

    # ---- helpers ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", page_csp())
            self.send_header("X-Frame-Options", "DENY")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, head: bool = False) -> None:
        self._send(status, json.dumps(obj, sort_keys=True).encode(), head=head)

    # ---- GET/HEAD ---------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        path = urlsplit(self.path).path
        if path == "/manifest.json":
            return self._json(200, {"files": manifest(self.endpoint.out_root)}, head=head)
        receipt = re.fullmatch(r"/commands/receipts/([0-9a-f]{32})", path)
        if receipt:
            return self._receipt(receipt.group(1), head)
        file = resolve(self.endpoint.out_root, path)
        if file is None:
            return self._json(404, {"error": "not found"}, head=head)
        tag = etag(file)
        mtime = file.stat().st_mtime
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        headers = {"ETag": tag, "Last-Modified": last_modified}
        if self._not_modified(tag, mtime):
            self.send_response(304)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return None
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type == "application/json":
            content_type += "; charset=utf-8"
        try:
            body = file.read_bytes()
        except OSError:
            return self._json(404, {"error": "not found"}, head=head)
        self._send(200, body, content_type, headers, head)
        return None

    def _not_modified(self, tag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return tag in [t.strip() for t in if_none_match.split(",")] or if_none_match.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _receipt(self, nonce: str, head: bool) -> None:
        for folder in ("done", "rejected"):
            path = self.endpoint.out_root / "commands" / folder / f"{nonce}.json"
            try:
                return self._send(200, path.read_bytes(), head=head)
            except OSError:
                continue
        self._json(404, {"status": "pending", "nonce": nonce}, head=head)
        return None

    # ---- POST /commands ---------------------------------------------------------------------------
    def _post_refusal(self) -> tuple[int, str] | None:
        """Why a POST is refused before its body is read (None: go on)."""
        if urlsplit(self.path).path != "/commands":
            return 404, "not found"
        host = (self.headers.get("Host") or "").strip()
        if self.endpoint.host_name(host) not in self.endpoint.allowed_hosts:
            return 403, f"Host {host[:80]!r} is not this monitor (open it through 127.0.0.1 or localhost)"
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip() not in (f"http://{host}", f"https://{host}"):
            return 403, "cross-origin POST refused"
        if self.headers.get_content_type() != "application/json":
            return 415, "Content-Type must be application/json"
        if self.headers.get("Transfer-Encoding"):
            return 411, "Content-Length required (no chunked bodies)"
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            return 411, "Content-Length required"
        if int(length_text) > self.endpoint.max_body:
            return 413, f"command larger than {self.endpoint.max_body} bytes"
        if not self.endpoint.rate_ok():
            return 429, "too many commands; try again in a minute"
        if self.endpoint.inbox_full():
            return 429, "command inbox full; try again when the monitor has worked through it"
        return None

    def do_POST(self) -> None:
        refusal = self._post_refusal()
        if refusal is not None:
            self.close_connection = True  # the body (if any) is not read
            return self._json(refusal[0], {"error": refusal[1]})
        length = int(self.headers["Content-Length"])
        try:
            body = self.rfile.read(length)
        except (TimeoutError, OSError):
            self.close_connection = True
            return self._json(408, {"error": "body not received in time"})
        if len(body) != length:
            return self._json(400, {"error": f"body shorter than its Content-Length ({len(body)} of {length})"})
        nonce = command_nonce(body)
        if nonce is None:
            return self._json(400, {"error": "body must be a flat JSON command object with a 32-hex nonce"})
        commands = self.endpoint.out_root / "commands"
        with self.endpoint.post_lock:
            if any((commands / d / f"{nonce}.json").exists() for d in ("inbox", "done", "rejected")):
                return self._json(409, {"error": f"nonce {nonce} was sent before"})
            atomic_write_bytes(commands / "inbox" / f"{nonce}.json", body)
        self._json(202, {"nonce": nonce, "receipt": f"/commands/receipts/{nonce}"})
        return None


def command_nonce(body: bytes) -> str | None:
    """The nonce of a body that looks like a command (flat object of text, lists of text, null), else None."""
    try:
        cmd = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(cmd, dict):
        return None
    for value in cmd.values():
        items = value if isinstance(value, list) else [value]
        if not all(item is None or isinstance(item, str) for item in items):
            return None
    nonce = cmd.get("nonce")
    return nonce if isinstance(nonce, str) and NONCE_RE.fullmatch(nonce) else None
