"""Mirror the monitor's reports and results over HTTP: conditional GETs, validation, atomic replacement."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from .atomic import atomic_write_bytes, atomic_write_json, read_json

# what a manifest may list: reports/<file> and results/<SN>/<scan>/[points/]<name>.json (nothing else, no '..')
SAFE_PATH = re.compile(
    r"^(reports/[A-Za-z0-9][A-Za-z0-9_.-]*|results(/[A-Za-z0-9][A-Za-z0-9_.-]*){2,3}/[A-Za-z0-9_.-]+\.json)$")
STATE_FILE = ".mirror_state.json"


def _safe(path: Any) -> bool:
    return isinstance(path, str) and bool(SAFE_PATH.match(path)) and ".." not in path


class MirrorError(RuntimeError):
    """The server could not be reached or sent something unusable (the local copy is kept)."""


def validate_body(path: str, response: httpx.Response) -> bytes:
    """The body, if it is complete and well-formed for its type; MirrorError naming the file otherwise."""
    body = response.content
    declared = response.headers.get("Content-Length")
    if declared is not None and "Content-Encoding" not in response.headers:  # decoded bodies differ in size
        if not declared.strip().isdigit():
            raise MirrorError(f"{path}: bad Content-Length header {declared!r}")
        if int(declared) != len(body):
            raise MirrorError(f"{path}: truncated body ({len(body)} of {declared} bytes)")
    if path.endswith(".json"):
        try:
            json.loads(body)
        except ValueError:
            raise MirrorError(f"{path}: invalid JSON") from None
    if path.endswith(".html") and not body.rstrip().lower().endswith(b"</html>"):
        raise MirrorError(f"{path}: incomplete HTML (no </html> at the end)")
    return body


class Mirror:
    """Keeps `out` a faithful copy of the files the monitor lists in /manifest.json.

    Per-file ETag / Last-Modified are remembered in `out/.mirror_state.json`, so a restarted viewer
    still sends conditional GETs. A file is replaced only by a complete, valid body (temp + rename).
    """

    def __init__(self, url: str, out: Path, timeout: float = 10.0, client: httpx.Client | None = None,
                 max_backoff: float = 60.0, workers: int = 4) -> None:
        self.base = url.rstrip("/") + "/"
        self.out = Path(out)
        self.client = client or httpx.Client(timeout=timeout)
        self.state_path = self.out / STATE_FILE
        state = read_json(self.state_path)
        state = state if isinstance(state, dict) and isinstance(state.get("files"), dict) else {}
        self.validators: dict[str, dict[str, str]] = {
            p: v for p, v in state.get("files", {}).items() if isinstance(v, dict)}
        last = state.get("last_success")
        self.last_success: float | None = last if isinstance(last, (int, float)) else None
        self.max_backoff = max_backoff
        self.workers = workers
        self.failures = 0
        self.failing_since: float | None = None
        self.unreachable = False  # the last failure was a connection problem (not a bad answer)
        self.last_error = ""

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, conditional: bool = True) -> httpx.Response:
        headers = {}
        known = self.validators.get(path, {}) if conditional and (self.out / path).is_file() else {}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
        try:
            return self.client.get(self.base + path, headers=headers)
        except httpx.TransportError as exc:
            raise MirrorError(f"{path}: {type(exc).__name__}: {exc or 'no answer'}") from None

    def poll_once(self) -> list[str]:
        """Fetch what changed; returns the paths updated. Raises MirrorError after keeping what worked."""
        try:
            files = self._manifest()
        except MirrorError as exc:
            self._failed(str(exc), unreachable=self.unreachable)
            raise
        errors = [f"{p!r}: refused (not a report or result path)" for p in files if not _safe(p)]
        safe = [p for p in files if _safe(p)]
        # a few requests in flight at once: over an ssh tunnel every request costs a round trip
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            outcomes = list(pool.map(self._try_fetch, safe))
        updated = [path for path, outcome in zip(safe, outcomes, strict=False) if outcome is True]
        errors += [outcome for outcome in outcomes if isinstance(outcome, str)]
        if errors:
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            self._failed("; ".join(errors[:3]) + more, unreachable=False)
        else:
            self.failures, self.failing_since, self.unreachable, self.last_error = 0, None, False, ""
            self.last_success = time.time()
        self._save_state()
        if errors:
            raise MirrorError(self.last_error)
        return updated

    def _manifest(self) -> list[str]:
        self.unreachable = True
        response = self._get("manifest.json", conditional=False)
        self.unreachable = False
        if response.status_code != 200:
            raise MirrorError(f"manifest.json: HTTP {response.status_code}")
        try:
            entries = json.loads(validate_body("manifest.json", response))["files"]
            paths = [entry["path"] for entry in entries]
        except (ValueError, KeyError, TypeError):
            raise MirrorError("manifest.json: not {\"files\": [{\"path\": ...}, ...]}") from None
        return paths

    def _try_fetch(self, path: str) -> bool | str:
        """True if the file changed, False if not, the error message if it failed."""
        try:
            return self._fetch(path)
        except MirrorError as exc:
            return str(exc)

    def _fetch(self, path: str) -> bool:
        response = self._get(path)
        if response.status_code in {304, 404}:
            return False  # unchanged, or removed since the manifest was made (e.g. archived): keep our copy
        if response.status_code != 200:
            raise MirrorError(f"{path}: HTTP {response.status_code}")
        body = validate_body(path, response)
        target = self.out / path
        changed = not (target.is_file() and target.read_bytes() == body)
        if changed:
            atomic_write_bytes(target, body)
        self.validators[path] = {"etag": response.headers.get("ETag", ""),
                                 "last_modified": response.headers.get("Last-Modified", "")}
        return changed

    def _save_state(self) -> None:
        state = {"files": self.validators, "last_success": self.last_success}
        if read_json(self.state_path) != state:
            atomic_write_json(self.state_path, state)

    def _failed(self, error: str, unreachable: bool) -> None:
        self.failures += 1
        self.failing_since = self.failing_since or time.time()
        self.unreachable = unreachable
        self.last_error = error

    def next_delay(self, interval: float) -> float:
        """The poll interval, doubling with every failed poll up to max_backoff; back to normal on success."""
        return min(self.max_backoff, interval * 2 ** min(self.failures, 30)) if self.failures else interval
