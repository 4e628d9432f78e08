"""Build, sign and send a flag/archive/unflag command; wait for the monitor's receipt."""

from __future__ import annotations

import getpass
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from remote_monitor import command_signing
from remote_monitor.store import atomic_write_json


def signed_command(action: str, serial: str, scan_id: str, *, reason: str, key_file: Path,
                   points: list[str] | None = None, issuer: str | None = None, ttl_s: float = 600) -> dict[str, Any]:
    issuer = issuer or f"{getpass.getuser()}@{socket.gethostname()}"
    cmd = command_signing.build_command(action, serial, scan_id, reason=reason, issuer=issuer, points=points,
                                        ttl_s=ttl_s)
    return command_signing.sign(cmd, command_signing.load_key(key_file))


def post_and_wait(cmd: dict[str, Any], url: str, wait_s: float, client: httpx.Client | None = None,
                  poll_s: float = 0.5) -> dict[str, Any] | None:
    """POST to <url>/commands and poll the receipt; None if no receipt within wait_s."""
    client = client or httpx.Client(timeout=10.0)
    base = url.rstrip("/")
    response = client.post(base + "/commands", content=json.dumps(cmd).encode(),
                           headers={"Content-Type": "application/json"})
    if response.status_code != 202:
        raise RuntimeError(f"monitor refused the command: HTTP {response.status_code} {response.text[:200]}")
    receipt_url = base + response.json()["receipt"]
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        got = client.get(receipt_url)
        if got.status_code == 200:
            return got.json()
        time.sleep(poll_s)
    return None


def drop_and_wait(cmd: dict[str, Any], inbox: Path, wait_s: float, poll_s: float = 0.3) -> dict[str, Any] | None:
    """Write the command atomically into an inbox directory and wait for done/ or rejected/ next to it."""
    atomic_write_json(Path(inbox) / f"{cmd['nonce']}.json", cmd)
    receipts = [Path(inbox).parent / d / f"{cmd['nonce']}.json" for d in ("done", "rejected")]
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for path in receipts:
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        time.sleep(poll_s)
    return None
