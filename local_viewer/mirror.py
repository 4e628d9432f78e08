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
    r"(reports/[A-Za-z0-9][A-Za-z0-9_.-]*|results(/[A-Za-z0-9][A-Za-z0-9_.-]*){2,3}/[A-Za-z0-9_.-]+\.json)")
STATE_FILE = ".mirror_state.json"
MAX_NAME = 128  # characters per path component (file systems allow 255 bytes; names of the monitor are short)
MAX_ENTRIES = 100_000
MAX_BODY = 100 * 1024 * 1024  # bytes of one file (a report with its inlined plotly.js is a few MB)


def _safe(path: Any) -> bool:
    return (isinstance(path, str) and bool(SAFE_PATH.fullmatch(path)) and ".." not in path
            and all(len(part) <= MAX_NAME for part in path.split("/")))


def usable_entries(entries: Any) -> tuple[list[str], list[str]]:
    """(paths to mirror, messages about the entries skipped) of a manifest's "files" list.

    Skipped: entries that are not {"path": <str>}, paths outside reports/ and results/, names too long or
    with control characters (also a trailing newline), duplicates (also differing only in case, which
    collide on macOS and Windows) and a path that another entry needs as a folder."""
    if not isinstance(entries, list):
        raise MirrorError("manifest.json: not {\"files\": [{\"path\": ...}, ...]}")
    paths, skipped, seen = [], [], set()
    for entry in entries[:MAX_ENTRIES]:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not _safe(path):
            skipped.append(f"{str(path)[:80]!r}: refused (not a report or result path)")
        elif path.casefold() in seen:
            skipped.append(f"{path!r}: refused (listed twice)")
        else:
            seen.add(path.casefold())
            paths.append(path)
    folders = {"/".join(p.split("/")[:i]).casefold() for p in paths for i in range(1, p.count("/") + 1)}
    clashes = [p for p in paths if p.casefold() in folders]
    skipped += [f"{p!r}: refused (both a file and a folder in the manifest)" for p in clashes]
    if len(entries) > MAX_ENTRIES:
        skipped.append(f"{len(entries) - MAX_ENTRIES} entries beyond the first {MAX_ENTRIES} ignored")
    return [p for p in paths if p not in clashes], skipped


class MirrorError(RuntimeError):
    """The server could not be reached or sent something unusable (the local copy is kept)."""


def validate_body(path: str, response: httpx.Response) -> bytes:
    """The body, if it is complete and well-formed for its type; MirrorError naming the file otherwise."""
    body = response.content
    declared = response.headers.get("Content-Length")
    encoded = "Content-Encoding" in response.headers or "X-Was-Content-Encoding" in response.headers
    if declared is not None and not encoded:  # decoded bodies differ in size
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
                 max_backoff: float = 60.0, workers: int = 4, max_body: int = MAX_BODY) -> None:
        self.base = url.rstrip("/") + "/"
        self.out = Path(out)
        self.timeout = timeout  # also the total time one request may take (a dripping server is cut off)
        self.max_body = max_body
        self.skipped: list[str] = []  # manifest entries skipped in the last poll (new messages only)
        self._skipped_before: set[str] = set()
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
        deadline = time.monotonic() + self.timeout
        try:
            with self.client.stream("GET", self.base + path, headers=headers) as response:
                declared = response.headers.get("Content-Length", "")
                if declared.strip().isdigit() and int(declared) > self.max_body:
                    raise MirrorError(f"{path}: {declared} bytes announced, more than the {self.max_body} allowed")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_body:
                        raise MirrorError(f"{path}: body larger than {self.max_body} bytes; not taken")
                    if time.monotonic() > deadline:
                        raise MirrorError(f"{path}: not complete after {self.timeout:g} s; cut off")
                # the body is decoded already: the new response must not decode it again
                encoded = "Content-Encoding" in response.headers
                drop = {"content-encoding", "content-length"} if encoded else {"content-encoding"}
                kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]
                if encoded:
                    kept.append(("X-Was-Content-Encoding", response.headers["Content-Encoding"]))
                return httpx.Response(response.status_code, headers=kept, content=bytes(body),
                                      request=response.request)
        except httpx.HTTPError as exc:
            raise MirrorError(f"{path}: {type(exc).__name__}: {str(exc) or 'no answer'}") from None

    def poll_once(self) -> list[str]:
        """Fetch what changed; returns the paths updated. Raises MirrorError after keeping what worked."""
        try:
            files = self._manifest()
        except MirrorError as exc:
            self._failed(str(exc), unreachable=self.unreachable)
            raise
        safe, skipped = usable_entries(files)
        self.skipped = [m for m in skipped if m not in self._skipped_before]  # each message shown once
        self._skipped_before |= set(skipped)
        errors: list[str] = []
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

    def _manifest(self) -> Any:
        self.unreachable = True
        response = self._get("manifest.json", conditional=False)
        self.unreachable = False
        if response.status_code != 200:
            raise MirrorError(f"manifest.json: HTTP {response.status_code}")
        try:
            entries = json.loads(validate_body("manifest.json", response))["files"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise MirrorError("manifest.json: not {\"files\": [{\"path\": ...}, ...]}") from None
        return entries

    def _try_fetch(self, path: str) -> bool | str:
        """True if the file changed, False if not, the error message if it failed."""
        try:
            return self._fetch(path)
        except MirrorError as exc:
            return str(exc)
        except OSError as exc:  # e.g. a local folder where the file should go
            return f"{path}: cannot write the local copy: {exc.strerror or exc}"

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
