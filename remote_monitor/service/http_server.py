"""Read-only HTTP endpoint for the reports and results, plus POST /commands into the monitor's inbox.

Binds 127.0.0.1 by default (reach it through an ssh tunnel). No directory listing, nothing outside <out>.
The server does not verify signatures: the monitor verifies every inbox file like any other command.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import mimetypes
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from remote_monitor.service.command_signing import NONCE_RE
from remote_monitor.service.store import atomic_write_json

log = logging.getLogger("remote_monitor.http")
REPORT_SUFFIXES = {".html", ".json", ".csv", ".png"}
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _etag(path: Path) -> str:
    st = path.stat()
    return '"' + hashlib.sha1(f"{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest()[:20] + '"'


class _Handler(BaseHTTPRequestHandler):
    server: MonitorHTTPServer
    server_version = "pmt-live-monitor"

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
        except OSError:
            return None
        return real if real.is_file() and real.is_relative_to(out.resolve()) else None

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
        self._send(200, file.read_bytes(), content_type, headers, head)
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
            if path.is_file():
                return self._send(200, path.read_bytes(), head=head)
        self._json(404, {"status": "pending", "nonce": nonce}, head=head)
        return None

    # ---- POST /commands ---------------------------------------------------------------------------
    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/commands":
            return self._json(404, {"error": "not found"})
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            return self._json(411, {"error": "Content-Length required"})
        length = int(length_text)
        if length > self.server.max_body:
            return self._json(413, {"error": f"command larger than {self.server.max_body} bytes"})
        try:
            cmd = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._json(400, {"error": "body must be a JSON command"})
        nonce = cmd.get("nonce") if isinstance(cmd, dict) else None
        if not isinstance(nonce, str) or not NONCE_RE.match(nonce):
            return self._json(400, {"error": "command must be a JSON object with a 32-hex nonce"})
        commands = self.server.out_root / "commands"
        with self.server.post_lock:
            if any((commands / d / f"{nonce}.json").exists() for d in ("inbox", "done", "rejected")):
                return self._json(409, {"error": f"nonce {nonce} was sent before"})
            atomic_write_json(commands / "inbox" / f"{nonce}.json", cmd)
        self._json(202, {"nonce": nonce, "receipt": f"/commands/receipts/{nonce}"})
        return None


class MonitorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, out_root: Path, address: tuple[str, int], max_body: int) -> None:
        self.out_root = Path(out_root).absolute()
        self.max_body = max_body
        self.post_lock = threading.Lock()
        super().__init__(address, _Handler)

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


def make_server(out_root: Path, host: str = "127.0.0.1", port: int = 8765, max_body: int = 65536) -> MonitorHTTPServer:
    return MonitorHTTPServer(out_root, (host, port), max_body)


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
