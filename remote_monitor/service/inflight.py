"""The points being processed: the worker pool, the fingerprint of the files each point read, and what
each worker's outcome means for the monitor (a result to record, a provisional fit, or nothing)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from remote_monitor.service.notify import Notifier
from remote_monitor.service.recorder import crashed_result
from remote_monitor.service.workers import WorkerPool
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import KoreanFile, PointKey

log = logging.getLogger("remote_monitor")

Job = PointKey | KoreanFile
Finished = tuple[Job, dict[str, Any], dict[str, Any]]  # point or file, fingerprint of its files, result


class InFlight:
    """The worker pool and the points (or Korean files) in it, each with the fingerprint of the files it read.

    A Korean file's result is the worker's {"points": [...]} or {"error": why}: KoreanFiles makes points of it."""

    def __init__(self, cfg: Config, notifier: Notifier) -> None:
        self.cfg = cfg
        self.notifier = notifier
        self.points: dict[Job, dict[str, Any]] = {}
        self.pool: WorkerPool | None = None

    def start(self) -> None:
        self.pool = WorkerPool(self.cfg.monitor.workers, self.cfg.monitor.point_timeout_seconds)

    def take(self, on_provisional: Callable[[PointKey, dict[str, Any] | None], None]) -> Iterator[Finished]:
        """The final results the workers finished; a point whose worker died is left for the next start."""
        assert self.pool is not None
        for outcome in self.pool.take():
            if isinstance(outcome.key, tuple):  # ("provisional", point): a live fit of a point being acquired
                on_provisional(outcome.key[1], outcome.result if outcome.kind == "done" else None)
                continue
            key = outcome.key
            prints = self.points.pop(key, None) if isinstance(key, PointKey | KoreanFile) else None
            if prints is None or not isinstance(key, PointKey | KoreanFile):
                continue
            if outcome.kind == "lost":
                log.warning("%s: %s; not recorded, processed again at the next start", key.label, outcome.reason)
                self.notifier.event("crash", key.label, f"worker process died processing {key.label}")
                continue
            if outcome.kind == "done" and outcome.result is not None:
                result = outcome.result
            else:
                log.error("%s: %s", key.label, outcome.reason)
                prefix = "processing crashed" if outcome.kind == "error" else "read timeout"
                reason = f"{prefix}: {outcome.reason}"
                result = crashed_result(key, prints, reason) if isinstance(key, PointKey) else {"error": reason}
            yield key, prints, result

    def drain(self, collect: Callable[[], None], abandon: threading.Event) -> None:
        """collect() the points that finish within the grace time, then stop the workers.

        A point still running at the deadline is not recorded: its files are unchanged, so the next
        start processes it again."""
        if self.pool is None:
            return
        self.pool.closing = True
        deadline = time.monotonic() + self.cfg.monitor.grace_seconds
        while self.points and time.monotonic() < deadline and not abandon.is_set():
            collect()
            time.sleep(0.05)
        collect()
        for key in self.pool.shutdown():
            if isinstance(key, PointKey | KoreanFile) and self.points.pop(key, None) is not None:
                log.warning("%s: abandoned at shutdown, not recorded; processed again at the next start",
                            key.label)
        self.pool = None
