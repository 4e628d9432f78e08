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

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from remote_monitor.service.http_files import page_csp
from remote_monitor.service.http_handler import RequestHandler

__all__ = ["CONNECTION_DEADLINE", "LOCAL_HOSTS", "MonitorHTTPServer", "make_server", "page_csp", "serve"]

log = logging.getLogger("remote_monitor.http")
CONNECTION_DEADLINE = 30.0  # seconds a connection may live in all (a drip-feeding client is cut off)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


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
        super().__init__(address, RequestHandler)
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
