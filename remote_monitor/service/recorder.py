"""Recording finished points: result and scan summary, the journal line, the pages and the notifications.

What a full disk stopped is kept and written again on the next tick; so are pages that failed to render."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from remote_monitor.service.error_boundary import ErrorBoundary
from remote_monitor.service.live import LiveFollowing
from remote_monitor.service.notify import Notifier
from remote_monitor.service.problems import printable
from remote_monitor.service.processing import base_result
from remote_monitor.service.publish import Publisher
from remote_monitor.service.scan_results import record_point
from remote_monitor.service.store import ResultsStore, now_iso
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey

log = logging.getLogger("remote_monitor")


def crashed_result(key: PointKey, prints: dict[str, Any], reason: str) -> dict[str, Any]:
    """The error result of a point whose processing failed."""
    return {**base_result(key, prints), "status": "error", "processed_at": now_iso(), "reason": reason}


class Recorder:
    """Writes results into the store and keeps the pages current."""

    def __init__(self, cfg: Config, store: ResultsStore, publisher: Publisher, notifier: Notifier,
                 live: LiveFollowing, boundary: ErrorBoundary, journal: Path) -> None:
        self.cfg = cfg
        self.store = store
        self.publisher = publisher
        self.notifier = notifier
        self.live = live
        self.boundary = boundary
        self.journal = journal
        self.unwritten: dict[PointKey, dict[str, Any]] = {}  # disk full: retried
        self.publish_due: set[str | None] = set()
        self.processed_count = 0

    def publish(self, serial: str | None = None) -> None:
        """Re-render pages; on failure (e.g. disk full) the pages are rendered again on the next tick."""
        self.publish_due.add(serial)
        if None in self.publish_due:
            self.publish_due = {None}  # everything is rendered anyway
        for due in list(self.publish_due):
            if self.boundary.run("publishing the reports", self._publish_one, due, failed=False):
                self.publish_due.discard(due)

    def _publish_one(self, serial: str | None) -> bool:
        self.publisher.publish(serial)
        return True

    def retry(self) -> None:
        """Write again what a full disk stopped; render the pages still due."""
        for key, result in list(self.unwritten.items()):
            self.finish(key, result)
        if self.publish_due:
            self.publish()

    def finish(self, key: PointKey, result: dict[str, Any]) -> None:
        """Record a final result (kept for a retry if the write fails) and log it once written."""
        if not self.boundary.run(f"writing {key.label}", self.record, key, result):
            self.unwritten[key] = result  # retried every tick (disk full); `record` took it off the list
            return
        self.processed_count += 1
        fit = result.get("fit") or {}
        gain = fit.get("gain")
        log.info(
            "point SN=%s scan=%s point=%s events=%d gain=%s status=%s seconds=%.2f reason=%s",
            key.serial, key.scan_id, key.point, result.get("events", 0),
            f"{gain:.4g}" if gain is not None else "-", result["status"],
            result.get("processing_seconds", 0.0), printable(result.get("reason", "")),
        )

    def record(self, key: PointKey, result: dict[str, Any]) -> bool:
        self.unwritten.pop(key, None)
        previous = self.store.read_point(key)
        scan = record_point(self.store, key, result, self.cfg)
        self.live.done(key)
        self._journal(key, result)
        self.publish(key.serial)
        self.boundary.run("notifications", self.notifier.point_recorded, self.store, key, result, previous, scan,
                          self.publisher.mirror)
        return True

    def provisional(self, key: PointKey, provisional: dict[str, Any]) -> None:
        """The live spectrum and provisional gain of a point being acquired (replaced by the final result)."""
        record_point(self.store, key, provisional, self.cfg)
        self.publish(key.serial)

    def _journal(self, key: PointKey, result: dict[str, Any]) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        line = {"serial": key.serial, "scan_id": key.scan_id, "point": key.point,
                "status": result["status"], "at": result.get("processed_at")}
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
