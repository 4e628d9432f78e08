"""HMAC-SHA256 signed command files (stdlib only: the laptop viewer imports this too)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACTIONS = ("flag", "archive", "unflag")
FIELDS = ("action", "serial", "scan_id", "points", "reason", "issuer", "issued_at", "expires_at", "nonce",
          "signature")
NONCE_RE = re.compile(r"[0-9a-f]{32}")  # use with fullmatch


class KeyFileError(ValueError):
    """The key file is missing, malformed or readable by others."""


def generate_key_file(path: Path) -> Path:
    """A new random 32-byte key as hex, file mode 0600; never overwrites an existing key."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: key file exists already; refusing to overwrite it") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path


def load_key(path: Path) -> bytes:
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: key file is accessible by group/others (mode {stat.filemode(mode)}); "
                           f"run: chmod 600 {path}")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise KeyFileError(f"{path}: not a key file (expected 64 hex characters)")
    return bytes.fromhex(text)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def build_command(action: str, serial: str, scan_id: str, *, reason: str, issuer: str,
                  points: list[str] | None = None, ttl_s: float = 600, now: datetime | None = None) -> dict[str, Any]:
    """An unsigned command with a fresh nonce and an expiry."""
    now = now or datetime.now(UTC)
    return {"action": action, "serial": serial, "scan_id": scan_id, "points": list(points) if points else None,
            "reason": reason, "issuer": issuer, "issued_at": _iso(now),
            "expires_at": _iso(now + timedelta(seconds=ttl_s)), "nonce": secrets.token_hex(16)}


def canonical_bytes(cmd: dict[str, Any]) -> bytes:
    body = {k: v for k, v in cmd.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(cmd: dict[str, Any], key: bytes) -> dict[str, Any]:
    return {**cmd, "signature": hmac.new(key, canonical_bytes(cmd), hashlib.sha256).hexdigest()}


def verify_signature(cmd: dict[str, Any], key: bytes) -> bool:
    signature = cmd.get("signature")
    if not isinstance(signature, str):
        return False
    try:
        expected = hmac.new(key, canonical_bytes(cmd), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)
    except (UnicodeEncodeError, TypeError, ValueError, RecursionError):  # lone surrogates, non-ASCII signature
        return False
