"""Problems the monitor met and survived (bad input, corrupt files, disk full, moves needing a person).

Each goes to the log and into <out>/state/problems.json (newest last, bounded), which the index page shows.
Writing the list must never fail the monitor: when the disk is full the problems stay in memory until it
can be written again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from remote_monitor.service.store import atomic_write_json, now_iso

log = logging.getLogger("remote_monitor")
MAX_PROBLEMS = 200
MAX_TEXT = 500


def printable(text: object, limit: int = MAX_TEXT) -> str:
    """Text safe for a log line or terminal: control characters and lone surrogates escaped, length capped."""
    out = "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else ascii(ch)[1:-1]
                  for ch in str(text))
    return out if len(out) <= limit else out[:limit] + "…"


def load_problems(out_root: Path) -> list[dict[str, Any]]:
    """The problems recorded for this <out> (empty if none or unreadable)."""
    try:
        loaded = json.loads((Path(out_root) / "state" / "problems.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    return [p for p in loaded if isinstance(p, dict)][-MAX_PROBLEMS:] if isinstance(loaded, list) else []


class Problems:
    """The bounded list of problems of this <out>."""

    def __init__(self, out_root: Path) -> None:
        self.path = Path(out_root) / "state" / "problems.json"
        self.items: list[dict[str, Any]] = load_problems(out_root)  # corrupt: a new list (old ones are logged)
        self._dirty = False

    def add(self, where: str, what: str, *, exc: BaseException | None = None) -> dict[str, Any]:
        """Record one problem: log it and keep it for the index page."""
        text = printable(f"{what}: {type(exc).__name__}: {exc}" if exc is not None else what)
        entry = {"at": now_iso(), "where": printable(where, 200), "what": text, "count": 1}
        same = next((p for p in self.items if p.get("where") == entry["where"] and p.get("what") == text), None)
        if same is not None:  # the same problem again (e.g. every tick while the disk is full): counted
            same["count"] = int(same.get("count") or 1) + 1
            same["at"] = entry["at"]
            self.items = [p for p in self.items if p is not same] + [same]
            self._dirty = True
            if same["count"] & (same["count"] - 1) == 0:  # logged and written at 2, 4, 8, ... repeats
                log.warning("problem in %s (%d times): %s", entry["where"], same["count"], text)
                self.flush()
            return same
        log.warning("problem in %s: %s", entry["where"], text)
        self.items = [*self.items, entry][-MAX_PROBLEMS:]
        self._dirty = True
        self.flush()
        return entry

    def flush(self) -> bool:
        """Write the list if it changed; False (and kept for later) when it cannot be written now."""
        if not self._dirty:
            return True
        try:
            atomic_write_json(self.path, self.items)
        except OSError:
            return False
        self._dirty = False
        return True


def quarantine(path: Path, out_root: Path) -> Path | None:
    """Move a corrupt file the monitor cannot use into <out>/quarantine/ (timestamped); None if it vanished."""
    path = Path(path)
    folder = Path(out_root) / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        rel = path.absolute().relative_to(Path(out_root).absolute())
        name = "__".join(rel.parts)
    except ValueError:
        name = path.name
    target = folder / f"{now_iso().replace(':', '')}_{os.getpid()}_{name}"
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    except OSError:  # e.g. another file system: copy, then remove
        shutil.copy2(path, target)
        path.unlink(missing_ok=True)
    return target
