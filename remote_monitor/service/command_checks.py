"""The checks of a command file before anything is done with it (every field is untrusted input)."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from remote_monitor.service import command_signing
from remote_monitor.stand.layout import LayoutError, validate_point, validate_scan_id, validate_serial

MAX_COMMAND_BYTES = 64 * 1024
MAX_RAW_IN_RECEIPT = 2000
CLOCK_SKEW = timedelta(seconds=120)
DEFAULT_MAX_LIFETIME = timedelta(days=1)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "action": (str,), "serial": (str,), "scan_id": (str,), "points": (list, type(None)), "reason": (str,),
    "issuer": (str,), "issued_at": (str,), "expires_at": (str,), "nonce": (str,), "signature": (str,),
}
MAX_TEXT = {"reason": 2000, "issuer": 200}
MAX_POINTS = 64


class Rejected(Exception):
    """A command fails a check; the message is the reason written into its receipt."""


def parse_time(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected(f"{name} is not an ISO 8601 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise Rejected(f"{name} has no time zone: {text[:40]!r}")
    return moment


def read_regular(path: Path, limit: int) -> bytes | None:
    """Up to limit bytes of a regular file, never following a symlink nor blocking on a FIFO; None if gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink (ELOOP) or unreadable: reported as an unusable command
        return f"<unreadable command file: {exc.strerror}>".encode()
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"<not a regular file>"
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit)
    finally:
        os.close(fd)



def parse_command(raw: bytes) -> dict[str, Any]:
    """The command in raw bytes, with every field of the right type and size; Rejected otherwise."""
    if len(raw) > MAX_COMMAND_BYTES:
        raise Rejected(f"command file larger than {MAX_COMMAND_BYTES} bytes")
    try:
        cmd = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"not a JSON command: {exc}") from None
    except RecursionError:
        raise Rejected("not a JSON command: nested too deeply") from None
    if not isinstance(cmd, dict):
        raise Rejected("command must be a JSON object")
    unknown, missing = set(cmd) - set(FIELD_TYPES), set(FIELD_TYPES) - set(cmd)
    if unknown or missing:
        raise Rejected(f"wrong fields: unknown {sorted(unknown)[:10]}, missing {sorted(missing)}")
    for name, types in FIELD_TYPES.items():
        if not isinstance(cmd[name], types):
            raise Rejected(f"field {name} has the wrong type")
    points = cmd["points"] or []
    if len(points) > MAX_POINTS or not all(isinstance(p, str) for p in points):
        raise Rejected(f"points must be a list of at most {MAX_POINTS} point names")
    for name in (*(n for n, t in FIELD_TYPES.items() if t == (str,)), "points"):
        for text in (cmd[name] if name == "points" else [cmd[name]]) or []:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise Rejected(f"field {name} is not valid Unicode text (lone surrogate)") from None
            if len(text) > MAX_TEXT.get(name, 100):
                raise Rejected(f"field {name} longer than {MAX_TEXT.get(name, 100)} characters")
    return cmd


def check_command(cmd: dict[str, Any], now: datetime, key: bytes, max_lifetime: timedelta) -> None:
    """Signature, action, times (expiry, issue, lifetime), nonce and names; Rejected with the reason."""
    if not command_signing.verify_signature(cmd, key):
        raise Rejected("bad signature (wrong key, or the command was modified after signing)")
    if cmd["action"] not in command_signing.ACTIONS:
        raise Rejected(f"unknown action {cmd['action']!r}")
    expires, issued = parse_time(cmd["expires_at"], "expires_at"), parse_time(cmd["issued_at"], "issued_at")
    if now > expires:
        raise Rejected(f"expired at {cmd['expires_at']}")
    if issued > now + CLOCK_SKEW:
        raise Rejected(f"issued_at {cmd['issued_at']} lies in the future")
    if expires - issued > max_lifetime:
        raise Rejected(f"lifetime {expires - issued} longer than the allowed {max_lifetime}")
    if not command_signing.NONCE_RE.fullmatch(cmd["nonce"]):
        raise Rejected("nonce must be 32 lowercase hex characters")
    try:
        validate_serial(cmd["serial"])
        validate_scan_id(cmd["scan_id"])
        for point in cmd["points"] or []:
            validate_point(point)
    except LayoutError as exc:
        raise Rejected(str(exc)) from None



def nonce_of(raw: bytes) -> str | None:
    """The nonce of a command that failed its checks, if it has a well-formed one (to name its receipt)."""
    try:
        cmd = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    nonce = cmd.get("nonce") if isinstance(cmd, dict) else None
    return nonce if isinstance(nonce, str) and command_signing.NONCE_RE.fullmatch(nonce) else None
