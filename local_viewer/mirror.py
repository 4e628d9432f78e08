"""Mirror the monitor's reports and results over HTTP: conditional GETs, validation, atomic replacement."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from remote_monitor.store import atomic_write_bytes

SAFE_PATH = re.compile(r"^(reports/[A-Za-z0-9][A-Za-z0-9_.-]*|results(/[A-Za-z0-9][A-Za-z0-9_.-]*){2,3}/[A-Za-z0-9_.-]+\.json)$")


class MirrorError(RuntimeError):
    """The server could not be reached or sent something unusable (the local copy is kept)."""


def validate_body(path: str, response: httpx.Response) -> bytes:
    """The body, if it is complete and well-formed for its type; MirrorError otherwise."""
    body = response.content
    declared = response.headers.get("Content-Length")
    if declared is not None and int(declared) != len(body):
        raise MirrorError(f"{path}: truncated body ({len(body)} of {declared} bytes)")
    if path.endswith(".json"):
        try:
            json.loads(body)
        except ValueError:
            raise MirrorError(f"{path}: invalid JSON") from None
    if path.endswith(".html") and not body.rstrip().endswith(b"</html>"):
        raise MirrorError(f"{path}: incomplete HTML (no </html> at the end)")
    return body


class Mirror:
    """Keeps DIR a faithful copy of the files the monitor lists in /manifest.json."""

    def __init__(self, url: str, out: Path, timeout: float = 10.0, client: httpx.Client | None = None,
                 max_backoff: float = 60.0) -> None:
        self.base = url.rstrip("/") + "/"
        self.out = Path(out)
        self.client = client or httpx.Client(timeout=timeout)
        self.state_path = self.out / ".mirror_state.json"
        self.state: dict[str, dict[str, str]] = self._load_state()
        self.failures = 0
        self.max_backoff = max_backoff
        self.last_success: float | None = None
        self.failing_since: float | None = None
        self.last_error = ""

    def _load_state(self) -> dict[str, dict[str, str]]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def _get(self, path: str, conditional: bool = True) -> httpx.Response:
        headers = {}
        known = self.state.get(path, {}) if conditional and (self.out / path).exists() else {}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
        try:
            response = self.client.get(self.base + path, headers=headers)
        except httpx.HTTPError as exc:
            raise MirrorError(f"{path}: {type(exc).__name__}: {exc}") from None
        if response.status_code not in (200, 304):
            raise MirrorError(f"{path}: HTTP {response.status_code}")
        return response

    def poll_once(self) -> list[str]:
        """Fetch what changed; returns the paths updated. Raises MirrorError (after keeping what worked)."""
        try:
            manifest = json.loads(validate_body("manifest.json", self._get("manifest.json", conditional=False)))
            files = [f["path"] for f in manifest["files"]]
        except (MirrorError, ValueError, KeyError, TypeError) as exc:
            self._failed(str(exc))
            raise MirrorError(str(exc)) from None
        updated, errors = [], []
        for path in files:
            if not SAFE_PATH.match(path) or ".." in path:
                errors.append(f"{path}: refused (not a report or result path)")
                continue
            try:
                if self._fetch(path):
                    updated.append(path)
            except MirrorError as exc:
                errors.append(str(exc))
        atomic_write_bytes(self.state_path, json.dumps(self.state, sort_keys=True).encode())
        if errors:
            self._failed("; ".join(errors[:3]))
            raise MirrorError("; ".join(errors[:3]))
        self.failures, self.failing_since, self.last_error = 0, None, ""
        self.last_success = time.time()
        return updated

    def _fetch(self, path: str) -> bool:
        response = self._get(path)
        if response.status_code == 304:
            return False
        body = validate_body(path, response)
        target = self.out / path
        if target.exists() and target.read_bytes() == body:
            changed = False
        else:
            atomic_write_bytes(target, body)
            changed = True
        self.state[path] = {"etag": response.headers.get("ETag", ""),
                            "last_modified": response.headers.get("Last-Modified", "")}
        return changed

    def _failed(self, error: str) -> None:
        self.failures += 1
        self.failing_since = self.failing_since or time.time()
        self.last_error = error

    def next_delay(self, interval: float) -> float:
        """The poll interval, growing exponentially (capped) while the server fails."""
        return min(self.max_backoff, interval * 2 ** self.failures) if self.failures else interval

    def describe(self) -> dict[str, Any]:
        return {"failures": self.failures, "failing_since": self.failing_since, "last_success": self.last_success,
                "last_error": self.last_error}
