"""The long-running monitor: watch data and command inbox, process ready points in worker processes,
persist each result atomically, re-render the PMT's report, execute signed commands."""

from __future__ import annotations

import errno
import json
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from remote_monitor.service import command_signing
from remote_monitor.service.commands import CommandProcessor
from remote_monitor.service.live import LiveFollowing
from remote_monitor.service.notify import Notifier
from remote_monitor.service.out_lock import OutLock
from remote_monitor.service.problems import Problems, printable, quarantine
from remote_monitor.service.processing import base_result, fingerprint, missing_sources, point_sources
from remote_monitor.service.publish import Publisher
from remote_monitor.service.scan_results import record_point
from remote_monitor.service.store import (
    CorruptFile,
    ResultsStore,
    atomic_write_json,
    now_iso,
    remove_stale_temp_files,
)
from remote_monitor.service.watcher import start_watching
from remote_monitor.service.workers import WorkerPool, process_job
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey, iter_scans, parse_source_file, scan_dir

log = logging.getLogger("remote_monitor")


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def ensure_key(cfg: Config, out_root: Path) -> bytes:
    """The monitor's HMAC key. A configured key_file must exist (KeyFileError otherwise); the default one,
    <out>/private/monitor.key (never served), is created (mode 0600) on first start."""
    path = cfg.key_path(out_root)
    if cfg.areas.key_file:
        if not path.exists():
            raise command_signing.KeyFileError(
                f"{path}: the configured key_file does not exist; create it with `remote-monitor keygen --key "
                f"{path}` or copy the operators' key there")
        return command_signing.load_key(path)
    old = out_root / "monitor.key"
    if not path.exists() and old.is_file() and not old.is_symlink():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        old.rename(path)  # keys of earlier versions lived in the served <out>
        log.info("moved the command key %s to %s (outside the served tree)", old, path)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        command_signing.generate_key_file(path)
        log.info("created command key %s (copy it to the operators' laptops)", path)
    return command_signing.load_key(path)


class Monitor:
    """Keeps every PMT's results and report current while the stand scans."""

    def __init__(self, cfg: Config, data_root: Path, out_root: Path, *, once: bool = False,
                 serve: tuple[str, int] | None = None) -> None:
        self.cfg = cfg
        self.layout = cfg.layout
        self.data_root = data_root.absolute()
        self.out_root = out_root.absolute()
        self._check_data_root()
        self.once = once
        self.serve = serve
        self.problems = Problems(self.out_root)
        self.store = ResultsStore(self.out_root, on_corrupt=self._on_corrupt)
        self.publisher = Publisher(self.store, cfg, live=serve is not None)
        self.notifier = Notifier(cfg, self.out_root)  # [notify]: e-mail/webhook from a background thread
        self.key = ensure_key(cfg, self.out_root)
        self.commands = CommandProcessor(
            self.data_root, self.out_root, cfg.flag_root(self.data_root),
            cfg.archive_root(self.data_root), self.key, self.store, layout=cfg.layout,
            max_lifetime=timedelta(seconds=cfg.monitor.max_command_lifetime_seconds),
            receipts_keep=cfg.monitor.receipts_keep, on_corrupt=self._on_corrupt,
        )
        self._unwritten: dict[PointKey, dict[str, Any]] = {}  # disk full: retried
        self._publish_due: set[str | None] = set()
        self.inbox = self.out_root / "commands" / "inbox"
        self.journal = self.out_root / "state" / "processed.jsonl"
        self.quiet = 0.0 if once else cfg.monitor.quiet_seconds
        self._events: queue.Queue[str] = queue.Queue()
        self._seen: dict[PointKey, tuple[dict[str, Any], float]] = {}
        self._pending: set[PointKey] = set()
        self._inflight: dict[PointKey, dict[str, Any]] = {}  # point -> fingerprint of the files it read
        self._archive_due: set[tuple[str, str]] = set()
        self._archive_sent: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._abandon = threading.Event()  # a second stop signal: do not wait for the points in flight
        self._stop_requested_at = 0.0
        self._pool: WorkerPool | None = None
        self.processed_count = 0
        self.live = LiveFollowing(cfg, self.store)
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

    def _new_pool(self) -> WorkerPool:
        return WorkerPool(self.cfg.monitor.workers, self.cfg.monitor.point_timeout_seconds)

    def _check_data_root(self) -> None:
        """A missing data directory is an error (never created: a typo would watch nothing for ever)."""
        if not self.data_root.is_dir():
            raise FileNotFoundError(f"--data {self.data_root}: no such directory (the monitor never creates it)")
        if not iter_scans(self.data_root, self.layout):
            lay = self.layout
            log.warning(
                "no scans in %s yet; expecting %s<YYMMDD_HHMMSS>/<SN>/%stheta<T>_phi<P>/%s<CH>%stheta<T>_phi<P>.txt "
                "(or .dat; HV points in %s/), see [layout] in the configuration",
                self.data_root, lay.scan_dir_prefix, lay.point_dir_prefix, lay.file_prefix, lay.file_infix, lay.hv_dir)

    def run(self) -> int:
        """Watch until stopped (or, with once=True, until everything present is processed)."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self._pool = self._new_pool()
        observer = self._start_observer() if not self.once else None
        server = self._start_server() if self.serve else None
        for area in ("results", "reports", "state"):
            for path in remove_stale_temp_files(self.out_root / area):
                log.info("removed %s, left by an interrupted write", path)
        self._guard("recovery of interrupted commands", self._recover_commands)
        self._process_commands()
        self._guard("scan of the data area", self.rescan)
        self._publish()
        self.notifier.start()
        last_rescan = time.monotonic()
        try:
            while not self._stop.is_set():
                self.tick()
                if self.once and not self._pending and not self._inflight and not self._archive_due:
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
            self._drain()
            self.notifier.stop()
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
            if server is not None:
                server.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("monitor stopped; %d point(s) processed in this run", self.processed_count)
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

    def _drain(self) -> None:
        """Record the points in flight that finish within the grace time, then stop the workers.

        A point still running at the deadline is not recorded: its files are unchanged, so the next
        start processes it again."""
        if self._pool is None:
            return
        self._pool.closing = True
        deadline = time.monotonic() + self.cfg.monitor.grace_seconds
        while self._inflight and time.monotonic() < deadline and not self._abandon.is_set():
            self._collect()
            time.sleep(0.05)
        self._collect()
        for key in self._pool.shutdown():
            if isinstance(key, PointKey) and self._inflight.pop(key, None) is not None:
                log.warning("%s: abandoned at shutdown, not recorded; processed again at the next start",
                            key.label)
        self._pool = None

    # ---- discovery --------------------------------------------------------------------------------
    def rescan(self) -> None:
        """Look at every file of the data area (at start, and now and then in case events were lost)."""
        newest: dict[str, str] = {}
        for serial, scan_id, folder in iter_scans(self.data_root, self.layout):
            newest[serial] = max(newest.get(serial, scan_id), scan_id)
            for path in folder.glob("*/*"):
                self._note_path(path)
        for serial, scan_id, _ in iter_scans(self.data_root, self.layout):
            if scan_id < newest[serial]:
                self._schedule_archive(serial, scan_id)

    def _note_path(self, path: Path) -> None:
        parsed = parse_source_file(path, self.data_root, self.layout)
        if parsed is not None:
            self._pending.add(parsed[0])

    def _note_event(self, raw: str) -> bool:
        """Handle one changed path; True when it concerns the command inbox."""
        path = Path(raw)
        if path.parent == self.inbox:
            return True
        parsed = parse_source_file(path, self.data_root, self.layout)
        if parsed is None:
            return False
        key = parsed[0]
        if key not in self._pending and (key.serial, key.scan_id) not in self._known_scans():
            self._on_new_scan(key.serial, key.scan_id)
        self._pending.add(key)
        return False

    def _known_scans(self) -> set[tuple[str, str]]:
        return {(k.serial, k.scan_id) for k in self._pending | set(self._inflight) | set(self._seen)}

    def _on_new_scan(self, serial: str, scan_id: str) -> None:
        log.info("new scan %s of %s", scan_id, serial)
        for sn, old_id, _ in iter_scans(self.data_root, self.layout):
            if sn == serial and old_id < scan_id:
                self._schedule_archive(sn, old_id)

    def _schedule_archive(self, serial: str, scan_id: str) -> None:
        state = (self.store.read_scan(serial, scan_id) or {}).get("state")
        if state not in ("archived", "flagged") and (serial, scan_id) not in self._archive_sent:
            self._archive_due.add((serial, scan_id))

    def _send_due_archives(self) -> None:
        """Archive an older scan of a PMT through a signed command once none of its points is busy."""
        busy = {(k.serial, k.scan_id) for k in self._pending | set(self._inflight)}
        for serial, scan_id in sorted(self._archive_due - busy):
            newer = max(s for sn, s, _ in iter_scans(self.data_root, self.layout) if sn == serial)
            cmd = command_signing.sign(
                command_signing.build_command(
                    "archive", serial, scan_id, issuer="remote-monitor (automatic)",
                    reason=f"new scan {newer} of {serial} started",
                ),
                self.key,
            )
            atomic_write_json(self.inbox / f"{cmd['nonce']}.json", cmd)
            self._archive_due.discard((serial, scan_id))
            self._archive_sent.add((serial, scan_id))
            log.info("archive of %s scan %s requested (new scan %s)", serial, scan_id, newer)
            self._process_commands()

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
            self._process_commands()
        self._retry_unwritten()
        now = time.monotonic()
        for key in sorted(self._pending):
            if key not in self._inflight:
                self._guard(f"point {key.label}", self._consider, key, now)
        self._guard("collecting results", self._collect)
        self.notifier.watch(k.label for k in self._inflight)
        if self._archive_due:
            self._guard("archive requests", self._send_due_archives)

    # ---- error boundaries -------------------------------------------------------------------------
    def _guard(self, where: str, action: Callable[..., Any], *args: Any, failed: Any = None) -> Any:
        """Run one event's handling; whatever goes wrong is recorded (log + index page) and the loop runs on.

        A corrupt file of <out> is quarantined (and rebuilt on the next attempt); a full disk is retried."""
        try:
            return action(*args)
        except CorruptFile as exc:
            self._on_corrupt(exc)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                self.problems.add(where, f"disk full ({exc.strerror}): writing paused, retried every tick")
            else:
                self.problems.add(where, "failed", exc=exc)
        except Exception as exc:  # the boundary: one bad event must not stop the monitor
            log.debug("problem in %s", where, exc_info=True)
            self.problems.add(where, "failed", exc=exc)
        return failed

    def _on_corrupt(self, exc: CorruptFile) -> None:
        """A corrupt state or result file: moved to <out>/quarantine/, then rebuilt like a missing one."""
        target = None
        if exc.path.absolute().is_relative_to(self.out_root):
            target = quarantine(exc.path, self.out_root)
        self.problems.add(str(exc.path), f"corrupt file moved to {target} and rebuilt" if target
                          else "corrupt file", exc=exc)

    def _recover_commands(self) -> None:
        """Finish what crashes interrupted (moves, accepted commands); what needs a person is reported."""
        for receipt in self.commands.recover():
            self._after_command(receipt)
        self._report_command_problems()

    def _report_command_problems(self) -> None:
        for what in self.commands.problems:
            self.problems.add("commands", what)
        self.commands.problems.clear()

    def _publish(self, serial: str | None = None) -> None:
        """Re-render pages; on failure (e.g. disk full) the pages are rendered again on the next tick."""
        self._publish_due.add(serial)
        if None in self._publish_due:
            self._publish_due = {None}  # everything is rendered anyway
        for due in list(self._publish_due):
            if self._guard("publishing the reports", self._publish_one, due, failed=False):
                self._publish_due.discard(due)

    def _publish_one(self, serial: str | None) -> bool:
        self.publisher.publish(serial)
        return True

    def _retry_unwritten(self) -> None:
        self.problems.flush()
        for key, result in list(self._unwritten.items()):
            if self._guard(f"writing {key.label}", self._record, key, result):
                del self._unwritten[key]
        if self._publish_due:
            self._publish()

    def _consider(self, key: PointKey, now: float) -> None:
        """Start a point once its files exist and have stopped changing; forget it if it is done or gone."""
        sources = point_sources(self.data_root, key, self.layout)
        if not sources:
            self._pending.discard(key)
            self._seen.pop(key, None)
            return
        prints = fingerprint(sources)
        seen = self._seen.get(key)
        if seen is None or seen[0] != prints:
            self._seen[key] = (prints, now)
            if self.quiet > 0:
                self._follow(key, sources)
                return
            seen = self._seen[key]
        quiet_for = now - seen[1]
        if quiet_for < self.quiet:
            return
        if missing_sources(sources, self.cfg, expected=True) and not (
            self.once or quiet_for >= self.cfg.monitor.incomplete_seconds
        ):
            return
        assert self._pool is not None
        if not self._pool.idle():
            return  # every worker busy (or still warming up): the point stays pending
        stored = self.store.read_point(key)
        if stored is not None and stored.get("source_files") == prints:
            self._pending.discard(key)
            return
        job = self.live.final_job(key, sources, prints) or (process_job, key, sources, self.cfg)
        if not self._pool.submit(key, job):
            return
        self._pending.discard(key)
        self._inflight[key] = prints
        log.info("processing %s", key.label)

    def _follow(self, key: PointKey, sources: dict[str, Path]) -> None:
        """Read on in a growing point; a provisional fit goes to a free worker when no final result waits."""
        job = self.live.follow(key, sources, can_fit=not self._inflight)
        if job is not None and (self._pool is None or not self._pool.submit(("provisional", key), job)):
            self.live.provisional_finished(key, None)

    def _collect(self) -> None:
        """Record what the workers finished; a point whose worker died is left for the next start."""
        assert self._pool is not None
        for outcome in self._pool.take():
            if isinstance(outcome.key, tuple):  # ("provisional", point): a live fit of a point being acquired
                self._provisional_done(outcome.key[1], outcome.result if outcome.kind == "done" else None)
                continue
            key = outcome.key
            prints = self._inflight.pop(key, None) if isinstance(key, PointKey) else None
            if prints is None or not isinstance(key, PointKey):
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
                result = self._crashed(key, prints, f"{prefix}: {outcome.reason}")
            self._finish(key, prints, result)

    def _provisional_done(self, key: PointKey, result: dict[str, Any] | None) -> None:
        provisional = self.live.provisional_finished(key, result)
        if provisional is not None:
            self._guard(f"provisional result of {key.label}", self._record_provisional, key, provisional)

    @staticmethod
    def _crashed(key: PointKey, prints: dict[str, Any], reason: str) -> dict[str, Any]:
        return {**base_result(key, prints), "status": "error", "processed_at": now_iso(), "reason": reason}

    def _finish(self, key: PointKey, prints: dict[str, Any], result: dict[str, Any]) -> None:
        sources = point_sources(self.data_root, key, self.layout)
        if not sources:
            log.info("%s: data moved away while processing; result not kept", key.label)
            return
        if fingerprint(sources) != prints:
            log.info("%s: files changed while processing; processing again", key.label)
            self._pending.add(key)
            return
        if not self._guard(f"writing {key.label}", self._record, key, result):
            self._unwritten[key] = result  # retried every tick (disk full)
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

    def _record(self, key: PointKey, result: dict[str, Any]) -> bool:
        self._unwritten.pop(key, None)
        previous = self.store.read_point(key)
        scan = record_point(self.store, key, result, self.cfg)
        self.live.done(key)
        self._journal(key, result)
        self._publish(key.serial)
        self._guard("notifications", self.notifier.point_recorded, self.store, key, result, previous, scan,
                    self.publisher.mirror)
        return True

    def _record_provisional(self, key: PointKey, provisional: dict[str, Any]) -> None:
        """The live spectrum and provisional gain of a point being acquired (replaced by the final result)."""
        record_point(self.store, key, provisional, self.cfg)
        self._publish(key.serial)

    def _journal(self, key: PointKey, result: dict[str, Any]) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        line = {"serial": key.serial, "scan_id": key.scan_id, "point": key.point,
                "status": result["status"], "at": result.get("processed_at")}
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")

    def _process_commands(self) -> None:
        receipts = self._guard("command inbox", self.commands.process_inbox) or []
        for receipt in receipts:
            self._guard(f"command {printable(receipt.get('nonce'))}", self._after_command, receipt)
        self._report_command_problems()

    def _after_command(self, receipt: dict[str, Any]) -> None:
        log.info("command %s %s/%s: %s %s", *(printable(receipt.get(k), 300) for k in
                                              ("action", "serial", "scan_id", "status", "reason")))
        if receipt.get("status") == "rejected":
            self.notifier.event("rejected", str(receipt.get("nonce")), f"command {receipt.get('action')} "
                                f"{receipt.get('serial')}/{receipt.get('scan_id')} rejected: {receipt.get('reason')}")
        if receipt.get("status") == "accepted":
            self._forget_scan(receipt["serial"], receipt["scan_id"])
            self._publish(receipt["serial"])

    def _forget_scan(self, serial: str, scan_id: str) -> None:
        """Points of a scan whose data just moved are re-examined (they are gone, or back after unflag)."""
        folder = scan_dir(self.data_root, serial, scan_id, self.layout)
        if folder.is_dir():
            for path in folder.glob("*/*"):
                self._note_path(path)


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

