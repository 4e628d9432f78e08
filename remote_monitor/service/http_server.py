"""Read-only HTTP endpoint for the reports and results, plus POST /commands into the monitor's inbox.

Binds 127.0.0.1 by default (reach it through an ssh tunnel). No directory listing, nothing outside
<out>/reports and <out>/results. The server does not verify signatures: the monitor verifies every inbox
file like any other command.

Every request is untrusted: a bounded pool of handler threads and a cap on open connections, a timeout on
every socket operation and a total deadline per connection (slow or lying clients are cut off), POST only
as `application/json` from a local Host without a foreign Origin (no cross-site or DNS-rebinding POSTs),
body limits before parsing, a rate limit and an inbox quota; HTML pages carry a Content-Security-Policy
that lets only the report's own scripts run.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import json
import logging
import mimetypes
import os
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from remote_monitor.service.command_signing import NONCE_RE
from remote_monitor.service.store import atomic_write_bytes

log = logging.getLogger("remote_monitor.http")
REPORT_SUFFIXES = {".html", ".json", ".csv", ".png"}
_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SOCKET_TIMEOUT = 10.0  # seconds for every read or write on a connection
CONNECTION_DEADLINE = 30.0  # seconds a connection may live in all (a drip-feeding client is cut off)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@lru_cache(maxsize=1)
def page_csp() -> str:
    """Content-Security-Policy of the report pages: only the templates' own inline scripts (by hash) run,
    no inline event handlers, no script from elsewhere, nothing to be framed or posted."""
    templates = resources.files("report_templates")
    hashes = set()
    for template in templates.iterdir():
        if not template.name.endswith(".j2"):
            continue
        for text in _SCRIPT.findall(template.read_text("utf-8")):
            body = text
            if text.strip() == "{{ plotly_js|safe }}":
                body = templates.joinpath("vendor/plotly-basic-4.1.1.min.js").read_text("utf-8")
            elif "{{" in text or "{%" in text:
                continue  # a script with data in it is never allowed to run
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return ("default-src 'none'; script-src " + " ".join(sorted(hashes)) + "; style-src 'unsafe-inline'; "
            "img-src 'self' data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def _etag(path: Path) -> str:
    st = path.stat()
    return '"' + hashlib.sha1(f"{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest()[:20] + '"'


class _Handler(BaseHTTPRequestHandler):
    server: MonitorHTTPServer
    server_version = "pmt-live-monitor"
    timeout = SOCKET_TIMEOUT  # applied to the socket in setup()

    def setup(self) -> None:
        super().setup()
        self.server.watch(self.request)

    def finish(self) -> None:
        self.server.unwatch(self.request)
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

    def _resolve(self, url_path: str) -> Path | None:
        """The file a GET may serve, or None (404) for anything else."""
        out = self.server.out_root
        parts = unquote(url_path).split("/")[1:]
        if parts in ([""], ["index.html"]):
            parts = ["reports", "index.html"]
        if len(parts) == 1 and Path(parts[0]).suffix in REPORT_SUFFIXES:
            parts = ["reports", parts[0]]  # pages link each other relatively, also when served from "/"
        if not parts or not all(_SAFE_PART.match(p) for p in parts):  # no '..', no empty, no hidden files
            return None
        if parts[0] == "reports" and len(parts) == 2 and Path(parts[1]).suffix in REPORT_SUFFIXES:
            path = out / "reports" / parts[1]
        elif parts[0] == "results" and len(parts) >= 4 and parts[-1].endswith(".json"):
            path = out.joinpath(*parts)
        else:
            return None
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        served = out.resolve() / parts[0]  # the key and state never: only reports/ and results/
        return real if real.is_file() and real.is_relative_to(served) else None

    # ---- GET/HEAD ---------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        path = urlsplit(self.path).path
        if path == "/manifest.json":
            return self._json(200, {"files": self.server.manifest()}, head=head)
        receipt = re.fullmatch(r"/commands/receipts/([0-9a-f]{32})", path)
        if receipt:
            return self._receipt(receipt.group(1), head)
        file = self._resolve(path)
        if file is None:
            return self._json(404, {"error": "not found"}, head=head)
        etag = _etag(file)
        mtime = file.stat().st_mtime
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified}
        if self._not_modified(etag, mtime):
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

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return etag in [t.strip() for t in if_none_match.split(",")] or if_none_match.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _receipt(self, nonce: str, head: bool) -> None:
        for folder in ("done", "rejected"):
            path = self.server.out_root / "commands" / folder / f"{nonce}.json"
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
        if self.server.host_name(host) not in self.server.allowed_hosts:
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
        if int(length_text) > self.server.max_body:
            return 413, f"command larger than {self.server.max_body} bytes"
        if not self.server.rate_ok():
            return 429, "too many commands; try again in a minute"
        if self.server.inbox_full():
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
        nonce = _command_nonce(body)
        if nonce is None:
            return self._json(400, {"error": "body must be a flat JSON command object with a 32-hex nonce"})
        commands = self.server.out_root / "commands"
        with self.server.post_lock:
            if any((commands / d / f"{nonce}.json").exists() for d in ("inbox", "done", "rejected")):
                return self._json(409, {"error": f"nonce {nonce} was sent before"})
            atomic_write_bytes(commands / "inbox" / f"{nonce}.json", body)
        self._json(202, {"nonce": nonce, "receipt": f"/commands/receipts/{nonce}"})
        return None


def _command_nonce(body: bytes) -> str | None:
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


class MonitorHTTPServer(ThreadingHTTPServer):
    """Handles requests in a bounded thread pool, with at most max_connections accepted at a time."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog

    def __init__(self, out_root: Path, address: tuple[str, int], max_body: int, *, inbox_max_files: int = 200,
                 posts_per_minute: int = 120, workers: int = 16, max_connections: int = 64) -> None:
        self.out_root = Path(out_root).absolute()
        self.max_body = max_body
        self.inbox_max_files = inbox_max_files
        self.posts_per_minute = posts_per_minute
        self.post_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http")
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open: dict[socket.socket, float] = {}
        self._open_lock = threading.Lock()
        self._posts: list[float] = []
        super().__init__(address, _Handler)
        bound = self.server_address[0]
        self.allowed_hosts = LOCAL_HOSTS | {str(bound), socket.gethostname(), socket.getfqdn()}
        self._closed = threading.Event()
        threading.Thread(target=self._reap, name="http-deadline", daemon=True).start()

    # ---- connections: bounded, each with a total deadline ------------------------------------------
    def get_request(self) -> tuple[Any, Any]:
        """Accept only while fewer than max_connections are open: the others wait in the listen backlog
        (not as file descriptors of the monitor)."""
        if not self._slots.acquire(timeout=0.5):
            raise OSError("all connection slots busy")  # serve_forever tries again (and sees shutdown())
        try:
            return super().get_request()
        except BaseException:
            self._slots.release()
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            log.debug("request from %s failed", client_address, exc_info=True)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def watch(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open[sock] = time.monotonic() + CONNECTION_DEADLINE

    def unwatch(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.pop(sock, None)

    def _reap(self) -> None:
        """Cut off connections past their deadline (a client sending one byte per few seconds)."""
        while not self._closed.wait(1.0):  # ends with the server
            now = time.monotonic()
            with self._open_lock:
                late = [sock for sock, deadline in self._open.items() if deadline < now]
                for sock in late:
                    self._open.pop(sock, None)
            for sock in late:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self._closed.set()
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- POST quotas ------------------------------------------------------------------------------
    @staticmethod
    def host_name(host: str) -> str:
        """The name part of a Host header ('127.0.0.1:8765' -> '127.0.0.1', '[::1]:80' -> '[::1]')."""
        return host.rsplit(":", 1)[0] if host.count(":") == 1 or (host.startswith("[") and "]:" in host) else host

    def rate_ok(self) -> bool:
        now = time.monotonic()
        with self.post_lock:
            self._posts = [t for t in self._posts if now - t < 60.0]
            if len(self._posts) >= self.posts_per_minute:
                return False
            self._posts.append(now)
            return True

    def inbox_full(self) -> bool:
        try:
            with os.scandir(self.out_root / "commands" / "inbox") as it:
                return sum(1 for _ in it) >= self.inbox_max_files
        except OSError:
            return False

    def manifest(self) -> list[dict[str, Any]]:
        """Every file a mirror may fetch: reports and results JSON."""
        files = [p for p in sorted((self.out_root / "reports").glob("*")) if p.suffix in REPORT_SUFFIXES]
        files += sorted((self.out_root / "results").glob("*/*/scan.json"))
        files += sorted((self.out_root / "results").glob("*/*/points/*.json"))
        entries = []
        for path in files:
            if path.name.startswith(".") or path.is_symlink():
                continue
            try:
                st = path.stat()
                entries.append({"path": str(path.relative_to(self.out_root)), "size": st.st_size,
                                "mtime": st.st_mtime, "etag": _etag(path)})
            except OSError:
                continue  # replaced between listing and stat
        return entries


def make_server(out_root: Path, host: str = "127.0.0.1", port: int = 8765, max_body: int = 65536,
                **limits: int) -> MonitorHTTPServer:
    """The server (not yet serving); limits: inbox_max_files, posts_per_minute, workers, max_connections."""
    return MonitorHTTPServer(out_root, (host, port), max_body, **limits)


def serve(out_root: Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    server = make_server(out_root, host, port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("serving %s on http://%s:%d/", out_root, host, server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
