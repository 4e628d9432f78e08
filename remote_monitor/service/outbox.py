"""Messages waiting to be delivered, one JSON file each in <out>/state/outbox/: they survive a restart and
are retried with exponential backoff until delivered; nothing is dropped silently."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remote_monitor.service.store import atomic_write_json, read_json, remove_stale_temp_files

log = logging.getLogger("remote_monitor.notify")

#: delivers one message (subject, text) on a channel, raising on failure
Deliver = Callable[[str, str], None]


class Outbox:
    """A folder of pending messages: `put` persists one, `deliver_due` tries those whose retry time came."""

    def __init__(self, folder: Path, retry_seconds: float = 30.0, retry_max_seconds: float = 1800.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.folder)
        self.retry_seconds = retry_seconds
        self.retry_max_seconds = retry_max_seconds
        self._counter = itertools.count()

    def put(self, channel: str, subject: str, text: str) -> Path:
        now = time.time()
        path = self.folder / f"{time.time_ns():020d}-{next(self._counter)}-{channel}.json"  # sorts by age
        atomic_write_json(path, {"channel": channel, "subject": subject, "text": text, "created": now,
                                 "attempts": 0, "next_try": now, "last_error": None})
        return path

    def pending(self) -> list[tuple[Path, dict[str, Any]]]:
        entries = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                entry = read_json(path)
            except ValueError as exc:  # cannot happen with atomic writes; say so rather than loop on it
                log.error("outbox: %s; moved aside", exc)
                path.rename(path.with_suffix(".corrupt"))
                continue
            if entry is not None:
                entries.append((path, entry))
        return entries

    def next_due(self) -> float | None:
        """Wall-clock time of the earliest retry, None when the outbox is empty."""
        return min((entry["next_try"] for _, entry in self.pending()), default=None)

    def deliver_due(self, channels: dict[str, Deliver], now: float | None = None) -> int:
        """Try every message whose time came; returns how many were delivered."""
        now = time.time() if now is None else now
        delivered = 0
        for path, entry in self.pending():
            if entry["next_try"] > now:
                continue
            deliver = channels.get(entry["channel"])
            if deliver is None:
                self._failed(path, entry, f"channel {entry['channel']} is not configured (any more)")
                continue
            try:
                deliver(entry["subject"], entry["text"])
            except Exception as exc:  # noqa: BLE001 - any failure of a channel: keep the message, retry later
                self._failed(path, entry, str(exc) or type(exc).__name__)
                continue
            path.unlink(missing_ok=True)
            delivered += 1
            log.info("notification sent by %s after %d failed attempt(s): %s", entry["channel"],
                     entry["attempts"], entry["subject"])
        return delivered

    def _failed(self, path: Path, entry: dict[str, Any], error: str) -> None:
        entry["attempts"] += 1
        delay = min(self.retry_seconds * 2 ** (entry["attempts"] - 1), self.retry_max_seconds)
        entry.update(next_try=time.time() + delay, last_error=error)
        atomic_write_json(path, entry)
        log.warning("notification by %s failed (attempt %d), retry in %.0f s: %s [%s]", entry["channel"],
                    entry["attempts"], delay, error, path.name)
