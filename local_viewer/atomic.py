"""File helpers of the laptop side: the monitor's atomic writes (stdlib only) and a forgiving JSON read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from remote_monitor.service.store import atomic_write_bytes, atomic_write_json

__all__ = ["atomic_write_bytes", "atomic_write_json", "read_json"]


def read_json(path: Path) -> Any:
    """The parsed file, or None if it is missing or not JSON (callers treat both as 'nothing there')."""
    try:
        return json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
