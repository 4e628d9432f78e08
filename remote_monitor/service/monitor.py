"""The long-running monitor: watch data and command inbox, process ready points in worker processes,
persist each result atomically, re-render the PMT's report, execute signed commands."""

from __future__ import annotations

import logging
import math
import queue
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from remote_monitor.service.auto_archive import AutoArchive
from remote_monitor.service.command_runner import CommandRunner, ensure_key
from remote_monitor.service.error_boundary import ErrorBoundary
from remote_monitor.service.inflight import InFlight, Job
from remote_monitor.service.korean_points import KoreanFiles
from remote_monitor.service.live import LiveFollowing
from remote_monitor.service.notify import Notifier
from remote_monitor.service.out_lock import OutLock
from remote_monitor.service.problems import Problems
from remote_monitor.service.processing import fingerprint, missing_sources, point_sources
from remote_monitor.service.publish import Publisher
from remote_monitor.service.recorder import Recorder
from remote_monitor.service.store import ResultsStore, remove_stale_temp_files
from remote_monitor.service.watcher import check_data_root, start_watching
from remote_monitor.service.workers import process_job
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import KoreanFile, PointKey, iter_scans, parse_source_file, scan_dir

log = logging.getLogger("remote_monitor")


class Monitor:
    """Keeps every PMT's results and report current while the stand scans."""

    def __init__(self, cfg: Config, data_root: Path, out_root: Path, *, once: bool = False,
                 serve: tuple[str, int] | None = None) -> None:
        self.cfg = cfg
        self.layout = cfg.layout
        self.data_root = data_root.absolute()
        self.out_root = out_root.absolute()
        check_data_root(self.data_root, self.layout)
        self.once = once
        self.serve = serve
        self.problems = Problems(self.out_root)
        self.boundary = ErrorBoundary(self.problems, self.out_root)
        self._guard = self.boundary.run
        self.store = ResultsStore(self.out_root, on_corrupt=self.boundary.on_corrupt)
        self.publisher = Publisher(self.store, cfg, live=serve is not None)
        self.notifier = Notifier(cfg, self.out_root)  # [notify]: e-mail/webhook from a background thread
        self.key = ensure_key(cfg, self.out_root)
        self.commands = CommandRunner(cfg, self.data_root, self.out_root, self.key, self.store,
                                      boundary=self.boundary, notifier=self.notifier, on_moved=self._scan_moved)
        self.inbox = self.out_root / "commands" / "inbox"
        self.archive = AutoArchive(self.data_root, self.layout, self.store, self.key, self.inbox)
        self.live = LiveFollowing(cfg, self.store)
        self.korean = KoreanFiles(cfg, self.data_root, self.store)
        self.recorder = Recorder(cfg, self.store, self.publisher, self.notifier, self.live, self.boundary,
                                 self.out_root / "state" / "processed.jsonl")
        self.quiet = 0.0 if once else cfg.monitor.quiet_seconds
        self._events: queue.Queue[str] = queue.Queue()
        self._seen: dict[PointKey, tuple[dict[str, Any], float]] = {}
        self._pending: set[PointKey] = set()
        self.inflight = InFlight(cfg, self.notifier)
        self._inflight = self.inflight.points  # point -> fingerprint of the files it read
        self._stop = threading.Event()
        self._abandon = threading.Event()  # a second stop signal: do not wait for the points in flight
        self._stop_requested_at = 0.0
        self.stop_at: float | None = None  # monotonic time after which run() stops by itself (job time limit)
        self.time_up = False

    # ---- life cycle -------------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        """SIGTERM/SIGINT: take no new point, finish those in flight within the grace time, exit 0.

        A second signal (more than 2 s later) abandons the points in flight at once; they are processed again
        at the next start."""
        if self._stop.is_set() and time.monotonic() - self._stop_requested_at > 2.0:
            log.info("second stop signal: abandoning %d point(s) in flight", len(self._inflight))
            self._abandon.set()
        elif self._stop.is_set():
            return  # the same stop, delivered twice (a batch shell forwards what the scheduler sent everyone)
        else:
            self._stop_requested_at = time.monotonic()
            log.info("stop requested: finishing %d point(s) in flight (at most %g s)", len(self._inflight),
                     self.cfg.monitor.grace_seconds)
        self._stop.set()

    def run(self) -> int:
        """Watch until stopped (or, with once=True, until everything present is processed)."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.inflight.start()
        observer = self._start_observer() if not self.once else None
        server = self._start_server() if self.serve else None
        for area in ("results", "reports", "state"):
            for path in remove_stale_temp_files(self.out_root / area):
                log.info("removed %s, left by an interrupted write", path)
        self._guard("recovery of interrupted commands", self.commands.recover)
        self.commands.process()
        self._guard("scan of the data area", self.rescan)
        self.recorder.publish()
        self.notifier.start()
        last_rescan = time.monotonic()
        try:
            while not self._stop.is_set():
                self.tick()
                if self.once and not (self._pending or self._inflight or self.archive.due or self.korean.pending):
                    break
                if self.stop_at is not None and time.monotonic() >= self.stop_at:
                    log.info("run time limit reached: stopping so that the next job continues")
                    self.time_up = True
                    break
                if time.monotonic() - last_rescan > 60.0:
                    self.rescan()
                    last_rescan = time.monotonic()
                self._stop.wait(self.cfg.monitor.tick_seconds)
        finally:
            self.inflight.drain(self._collect, self._abandon)
            self.notifier.stop()
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
            if server is not None:
                server.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("monitor stopped; %d point(s) processed in this run", self.recorder.processed_count)
        return 0

    def _start_observer(self) -> Any:
        return start_watching({self.data_root: True, self.inbox: False}, self._events,
                              self.cfg.monitor.poll_seconds)

    def _start_server(self) -> Any:
        from remote_monitor.service.http_server import make_server

        host, port = self.serve  # type: ignore[misc]
        server = make_server(self.out_root, host, port, inbox_max_files=self.cfg.monitor.inbox_max_files)
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        log.info("serving reports on http://%s:%d/", *server.server_address[:2])
        return server

    # ---- discovery --------------------------------------------------------------------------------
    def rescan(self) -> None:
        """Look at every file of the data area (at start, and now and then in case events were lost)."""
        for _, _, folder in iter_scans(self.data_root, self.layout):
            for path in folder.glob("*/*"):
                self._note_path(path)
        for path in self.korean.files():
            self._guard(f"Korean file {path.name}", self.korean.note, path)
        self.archive.schedule_superseded()

    def _note_path(self, path: Path) -> None:
        parsed = parse_source_file(path, self.data_root, self.layout)
        if parsed is not None:
            self._pending.add(parsed[0])

    def _note_event(self, raw: str) -> bool:
        """Handle one changed path; True when it concerns the command inbox."""
        path = Path(raw)
        if path.parent == self.inbox:
            return True
        if self.korean.note(path):
            return False
        parsed = parse_source_file(path, self.data_root, self.layout)
        if parsed is None:
            return False
        key = parsed[0]
        if key not in self._pending and (key.serial, key.scan_id) not in self._known_scans():
            self.archive.new_scan(key.serial, key.scan_id)
        self._pending.add(key)
        return False

    def _known_scans(self) -> set[tuple[str, str]]:
        return _scans_of([*self._pending, *self._inflight, *self._seen])

    # ---- the loop ---------------------------------------------------------------------------------
    def tick(self) -> None:
        """One pass: take file events, run commands, start ready points, record finished ones."""
        commands_due = False
        while True:
            try:
                raw = self._events.get_nowait()
            except queue.Empty:
                break
            commands_due |= bool(self._guard(f"file event {raw}", self._note_event, raw))
        if commands_due:
            self.commands.process()
        self.problems.flush()
        self.recorder.retry()
        now = time.monotonic()
        self._start_ready_points(now)
        self._guard("Korean files", self.korean.submit_ready, now, self.quiet, self.inflight)
        self._guard("collecting results", self._collect)
        self.notifier.watch(k.label for k in self._inflight)
        if self.archive.due:
            busy = _scans_of([*self._pending, *self._inflight])
            self._guard("archive requests", self.archive.send_due, busy, self.commands.process)

    # ---- points -------------------------------------------------------------------------------------
    def _start_ready_points(self, now: float) -> None:
        """Give the ready points to free workers, earliest written first; once one finds no free worker, the
        points written after it wait for the next pass."""
        blocked = False
        for key, sources, prints in self._waiting_points():
            blocked |= bool(self._guard(f"point {key.label}", self._consider, key, sources, prints, now, blocked))

    def _waiting_points(self) -> list[tuple[PointKey, dict[str, Path], dict[str, Any]]]:
        """Pending points that no worker has, with their files and fingerprints (looked at once per pass), the
        points whose files were last written earliest first, so that a free worker takes the points in the order
        the stand finished them (by name, theta10_phi90 would wait behind theta10_phi270); points without files
        last."""
        waiting = []
        for key in self._pending - self._inflight.keys():
            look = self._guard(f"point {key.label}", self._look, key)
            if look is not None:
                waiting.append((key, *look))
        return sorted(waiting, key=lambda w: (max((f["mtime"] for f in w[2].values()), default=math.inf), w[0]))

    def _look(self, key: PointKey) -> tuple[dict[str, Path], dict[str, Any]]:
        """The point's files now and their fingerprint."""
        sources = point_sources(self.data_root, key, self.layout)
        return sources, fingerprint(sources)

    def _consider(self, key: PointKey, sources: dict[str, Path], prints: dict[str, Any], now: float,
                  blocked: bool) -> bool:
        """Start a point once its files exist and have stopped changing; forget it if it is done or gone.
        True: the point is ready but waits for a worker. `blocked`: a point written earlier waits so in this pass;
        then this one waits too, though a worker may have finished meanwhile (the pool is asked afresh for each
        point), so that the points start in the order the stand wrote them."""
        if not sources:
            self._pending.discard(key)
            self._seen.pop(key, None)
            return False
        seen = self._seen.get(key)
        if seen is None or seen[0] != prints:
            self._seen[key] = (prints, now)
            if self.quiet > 0:
                self._follow(key, sources, blocked)
                return False
            seen = self._seen[key]
        quiet_for = now - seen[1]
        if quiet_for < self.quiet:
            return False
        if missing_sources(sources, self.cfg, expected=True) and not (
            self.once or quiet_for >= self.cfg.monitor.incomplete_seconds
        ):
            return False
        pool = self.inflight.pool
        assert pool is not None
        if blocked or not pool.idle():
            return True  # every worker busy (or still warming up): the point stays pending
        if self._has_result(key, prints):
            self._pending.discard(key)
            return False
        job = self.live.final_job(key, sources, prints) or (process_job, key, sources, self.cfg)
        if not pool.submit(key, job):
            return True
        self._pending.discard(key)
        self._inflight[key] = prints
        log.info("processing %s", key.label)
        return False

    def _has_result(self, key: PointKey, prints: dict[str, Any]) -> bool:
        """The point's files as they are now have a result: recorded, or waiting for disk space to be written."""
        waiting = self.recorder.unwritten.get(key)
        if waiting is not None and waiting.get("source_files") == prints:
            return True
        stored = self.store.read_point(key)
        return stored is not None and stored.get("source_files") == prints

    def _follow(self, key: PointKey, sources: dict[str, Path], blocked: bool) -> None:
        """Read on in a growing point; a provisional fit goes to a free worker when no final result waits (none
        in flight, and no ready point waiting for a worker in this pass: `blocked`)."""
        job = self.live.follow(key, sources, can_fit=not (self._inflight or blocked))
        pool = self.inflight.pool
        if job is not None and (pool is None or not pool.submit(("provisional", key), job)):
            self.live.provisional_finished(key, None)

    def _collect(self) -> None:
        """Record what the workers finished."""
        for key, prints, result in self.inflight.take(self._provisional_done):
            self._finish(key, prints, result)

    def _provisional_done(self, key: PointKey, result: dict[str, Any] | None) -> None:
        provisional = self.live.provisional_finished(key, result)
        if provisional is not None:
            self._guard(f"provisional result of {key.label}", self.recorder.provisional, key, provisional)

    def _finish(self, key: Job, prints: dict[str, Any], result: dict[str, Any]) -> None:
        if isinstance(key, KoreanFile):
            for point, point_result in self.korean.results(key, prints, result):
                self.recorder.finish(point, point_result)
            return
        sources, now = self._look(key)
        if not sources:
            log.info("%s: data moved away while processing; result not kept", key.label)
            return
        if now != prints:
            log.info("%s: files changed while processing; processing again", key.label)
            self._pending.add(key)
            return
        self.recorder.finish(key, result)

    def _scan_moved(self, serial: str, scan_id: str) -> None:
        """An accepted command moved a scan's data: its points are re-examined (they are gone, or back after
        unflag) and its pages re-rendered."""
        folder = scan_dir(self.data_root, serial, scan_id, self.layout)
        if folder.is_dir():
            for path in folder.glob("*/*"):
                self._note_path(path)
        self.recorder.publish(serial)


EXIT_TIME_UP = 75  # EX_TEMPFAIL: stopped at --stop-after; the batch script resubmits the job


def run_monitor(cfg: Config, data_root: Path, out_root: Path, *, once: bool = False,
                serve: tuple[str, int] | None = None, stop_after: float | None = None) -> int:
    """Entry point of `remote-monitor run`: 0 when stopped (signal, --once), EXIT_TIME_UP at stop_after.

    Raises OutLocked if another monitor works on out_root."""
    with OutLock(out_root):
        monitor = Monitor(cfg, data_root, out_root, once=once, serve=serve)
        if stop_after is not None:
            monitor.stop_at = time.monotonic() + stop_after
        code = monitor.run()
        return EXIT_TIME_UP if monitor.time_up else code


def _scans_of(keys: Iterable[object]) -> set[tuple[str, str]]:
    """(serial, scan id) of the WaveDump points among keys (a Korean file's job belongs to no scan)."""
    return {(k.serial, k.scan_id) for k in keys if isinstance(k, PointKey)}
