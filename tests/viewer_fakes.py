"""A small fake of the monitor's HTTP endpoint with switchable faults, for the viewer's tests."""

from __future__ import annotations

import email.utils
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeMonitor:
    """Serves `files` (path -> bytes) with a manifest, ETags and 304s; `fault` breaks responses on purpose."""

    def __init__(self, port: int = 0) -> None:
        self.files: dict[str, bytes] = {}
        self.fault: str | None = None  # "500" | "slow" | "truncated" | "invalid_json"
        self.log: list[tuple[str, int]] = []
        self.posted: list[dict[str, Any]] = []
        self.receipts: dict[str, dict[str, Any]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                       declared: int | None = None) -> None:
                fake.log.append((self.path, status))
                self.send_response(status)
                self.send_header("Content-Length", str(declared if declared is not None else len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                if declared is not None:
                    self.close_connection = True

            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                if fake.fault == "500":
                    return self._reply(500, b"boom")
                if fake.fault == "slow":
                    time.sleep(1.5)
                if path.startswith("commands/receipts/"):
                    nonce = path.rsplit("/", 1)[1]
                    if nonce in fake.receipts:
                        return self._reply(200, json.dumps(fake.receipts[nonce]).encode())
                    return self._reply(404, b"{}")
                if path == "manifest.json":
                    files = [{"path": p, "size": len(b), "mtime": 0, "etag": fake.etag(p)}
                             for p, b in fake.files.items()]
                    return self._reply(200, json.dumps({"files": files}).encode())
                if path not in fake.files:
                    return self._reply(404, b"{}")
                etag = fake.etag(path)
                if self.headers.get("If-None-Match") == etag:
                    return self._reply(304, b"", {"ETag": etag})
                body = fake.files[path]
                headers = {"ETag": etag, "Last-Modified": email.utils.formatdate(usegmt=True)}
                if fake.fault == "truncated":
                    return self._reply(200, body[: len(body) // 2], headers, declared=len(body))
                if fake.fault == "invalid_json" and path.endswith(".json"):
                    return self._reply(200, b"{half", headers)
                self._reply(200, body, headers)
                return None

            def do_POST(self) -> None:
                cmd = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.posted.append(cmd)
                fake.receipts[cmd["nonce"]] = fake.decide(cmd)
                self._reply(202, json.dumps({"nonce": cmd["nonce"],
                                             "receipt": f"/commands/receipts/{cmd['nonce']}"}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def etag(self, path: str) -> str:
        return '"' + hashlib.sha1(self.files[path]).hexdigest()[:16] + '"'

    def decide(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Accept only commands whose signature the test registered as good."""
        ok = cmd.get("issuer") != "mallory"
        return {"nonce": cmd["nonce"], "status": "accepted" if ok else "rejected",
                "reason": "flag done" if ok else "bad signature (wrong key, or the command was modified after signing)"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
