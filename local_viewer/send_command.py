"""Build, sign and send a flag/archive/unflag command; wait for the monitor's receipt."""

from __future__ import annotations

import getpass
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from remote_monitor.service import command_signing

from .atomic import atomic_write_json, read_json

MAX_ANSWER = 1024 * 1024  # bytes of an answer (a receipt is a few kB)
REQUEST_TIMEOUT = 10.0


class CommandError(RuntimeError):
    """The command could not be delivered (the message says why)."""


def _request(client: httpx.Client, method: str, url: str, timeout: float = REQUEST_TIMEOUT,
             **kwargs: Any) -> httpx.Response:
    """One request that takes at most `timeout` seconds in all and at most MAX_ANSWER bytes of answer."""
    deadline = time.monotonic() + timeout
    with client.stream(method, url, **kwargs) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER:
                raise httpx.DecodingError(f"answer larger than {MAX_ANSWER} bytes", request=response.request)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"answer not complete after {timeout:g} s", request=response.request)
        return httpx.Response(response.status_code, content=bytes(body), request=response.request)


def signed_command(action: str, serial: str, scan_id: str, *, reason: str, key_file: Path,
                   points: list[str] | None = None, issuer: str | None = None, ttl_s: float = 600) -> dict[str, Any]:
    """A signed command; KeyFileError (a ValueError) if the key file is missing, malformed or too open."""
    issuer = issuer or f"{getpass.getuser()}@{socket.gethostname()}"
    key = command_signing.load_key(key_file)
    cmd = command_signing.build_command(action, serial, scan_id, reason=reason, issuer=issuer, points=points,
                                        ttl_s=ttl_s)
    return command_signing.sign(cmd, key)


def post_and_wait(cmd: dict[str, Any], url: str, wait_s: float, client: httpx.Client | None = None,
                  poll_s: float = 0.5) -> dict[str, Any] | None:
    """POST to <url>/commands and poll the receipt until wait_s; None if no receipt came in time.

    Raises CommandError if the monitor cannot be reached or refuses the POST. Connection errors while
    polling the receipt (monitor restarting) are retried until the deadline.
    """
    client = client or httpx.Client(timeout=REQUEST_TIMEOUT)
    base = url.rstrip("/")
    try:
        response = _request(client, "POST", base + "/commands", content=json.dumps(cmd).encode(),
                            headers={"Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        raise CommandError(f"cannot reach the monitor at {base}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 202:
        raise CommandError(f"monitor refused the command: HTTP {response.status_code} {response.text[:200]}")
    try:
        receipt_path = response.json()["receipt"]
        if not isinstance(receipt_path, str) or not re.fullmatch(r"/commands/receipts/[0-9a-f]{32}", receipt_path):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise CommandError(f"unexpected answer to POST /commands: {response.text[:200]}") from None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            got = _request(client, "GET", base + receipt_path,
                           timeout=min(REQUEST_TIMEOUT, max(1.0, deadline - time.monotonic())))
            if got.status_code == 200 and isinstance(receipt := got.json(), dict):
                return receipt
        except (httpx.HTTPError, ValueError):
            pass  # monitor restarting, or a half-served receipt: ask again
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def drop_and_wait(cmd: dict[str, Any], inbox: Path, wait_s: float, poll_s: float = 0.3) -> dict[str, Any] | None:
    """Write the command atomically into an inbox directory and wait for its receipt in ../done or ../rejected."""
    inbox = Path(inbox)
    target = inbox / f"{cmd['nonce']}.json"
    try:
        atomic_write_json(target, cmd)
    except OSError as exc:
        raise CommandError(f"cannot write the command into {inbox}: {exc.strerror or exc}") from None
    receipts = [inbox.parent / folder / target.name for folder in ("done", "rejected")]
    deadline = time.monotonic() + wait_s
    while True:
        for path in receipts:
            if isinstance(receipt := read_json(path), dict):
                return receipt
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
