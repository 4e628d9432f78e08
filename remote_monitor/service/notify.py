"""Tell someone when the unattended monitor needs a person: configurable rules, by e-mail and/or a chat
webhook, de-duplicated, rate-limited (a digest when many events come at once), sent by a background thread
from a persistent outbox so a slow or failing server never blocks processing and nothing is lost."""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from remote_monitor.report.verdict import pmt_verdict
from remote_monitor.service import mailer
from remote_monitor.service.outbox import Deliver, Outbox
from remote_monitor.service.publish import page_name
from remote_monitor.service.publish_mirror import PublishMirror
from remote_monitor.service.store import ResultsStore, atomic_write_json, read_json
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey

log = logging.getLogger("remote_monitor.notify")

#: event kind -> the [notify] rule that switches it on
RULES = {"scan_complete": "scan_complete", "point_poor": "point_poor", "point_error": "point_error",
         "disk": "trouble", "stuck": "trouble", "crash": "trouble", "rejected": "trouble", "restart": "trouble"}
#: kinds told only when they repeat (repeat_count times within an hour): a loop, not a single incident
COUNTED = {"crash": "worker crashes", "rejected": "rejected commands"}
TITLES = {"scan_complete": "scan complete", "point_poor": "point poor", "point_error": "point error",
          "disk": "disk", "stuck": "stuck read", "crash": "crash loop", "rejected": "rejected commands",
          "restart": "restart loop"}


@dataclass(frozen=True)
class Event:
    kind: str
    key: str
    text: str
    url: str | None = None


def message_for(events: list[Event]) -> tuple[str, str]:
    """(subject, text): one event as itself, several as a digest grouped by kind."""
    if len(events) == 1:
        e = events[0]
        return f"[pmt-monitor] {TITLES[e.kind]}: {e.key}", e.text + (f"\n{e.url}" if e.url else "")
    counts = Counter(TITLES[e.kind] for e in events)
    subject = f"[pmt-monitor] {len(events)} events: " + ", ".join(f"{n} {k}" for k, n in counts.most_common())
    lines = [f"- {e.text}" + (f" {e.url}" if e.url else "") for e in events]
    return subject, "\n".join(lines)


def free_gb(path: Path) -> float:
    return shutil.disk_usage(path).free / 1e9


class Notifier:
    """`event(kind, key, text)` is all the monitor calls; delivery happens in a background thread."""

    def __init__(self, cfg: Config, out_root: Path) -> None:
        self.settings = cfg.notify
        self.mail = cfg.mail
        self.out_root = Path(out_root)
        self.channels: dict[str, Deliver] = {}
        if self.settings.mail_to:
            self.channels["mail"] = self._send_mail
        if self.settings.webhook_url:
            self.channels["webhook"] = self._post_webhook
        self.outbox = Outbox(self.out_root / "state" / "outbox", self.settings.retry_seconds,
                             self.settings.retry_max_seconds)
        self._state_path = self.outbox.folder / "events-waiting.state"
        self._queue: queue.Queue[Event] = queue.Queue()
        self._told: dict[tuple[str, str], float] = {}
        self._counted: dict[str, deque[float]] = {}
        self._busy_since: dict[str, float] = {}
        self._last_disk_check = 0.0
        self._waiting: list[Event] = [Event(**e) for e in read_json(self._state_path) or []]
        self._first_waiting = time.monotonic() if self._waiting else 0.0
        self._last_message = -float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    # ---- what the monitor calls (never blocks) ---------------------------------------------------
    def event(self, kind: str, key: str, text: str, url: str | None = None) -> None:
        """Something happened; told if its rule is on and it was not told within repeat_seconds."""
        if self.enabled and getattr(self.settings, RULES[kind]):
            self._queue.put(Event(kind, key, text, url))

    def watch(self, busy: Iterable[str]) -> None:
        """Called every tick with the labels of the points in flight: stuck reads, then (each minute) disk."""
        if not self.enabled:
            return
        now = time.monotonic()
        busy = set(busy)
        self._busy_since = {label: self._busy_since.get(label, now) for label in busy}
        for label, since in self._busy_since.items():
            if now - since > self.settings.stuck_seconds:
                self.event("stuck", label, f"{label} has been processing for {now - since:.0f} s (stuck read?)")
        if now - self._last_disk_check > 60.0:
            self._last_disk_check = now
            free = free_gb(self.out_root)
            if free < self.settings.min_free_gb:
                self.event("disk", str(self.out_root), f"only {free:.1f} GB free on the disk of {self.out_root}")

    # ---- life cycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.enabled:
            return
        self._note_start()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Compose what is waiting (kept in the outbox if it cannot be sent now) and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _note_start(self) -> None:
        """Starts are remembered across processes: many within an hour is a crash loop of the monitor."""
        path = self.out_root / "state" / "starts.json"
        now = time.time()
        starts = [t for t in read_json(path) or [] if now - t < 3600.0] + [now]
        atomic_write_json(path, starts)
        if len(starts) >= max(self.settings.repeat_count, 2):
            self.event("restart", "monitor", f"the monitor started {len(starts)} times within an hour "
                                             f"(crash loop?); see {self.out_root / 'monitor.log'}")

    def point_recorded(self, store: ResultsStore, key: PointKey, result: dict[str, Any],
                       previous: dict[str, Any] | None, scan: dict[str, Any], mirror: PublishMirror | None) -> None:
        """After the monitor stored a point: a point turning poor or error; the scan becoming complete."""
        if not self.enabled:
            return
        status = result.get("status")
        if status in ("poor", "error") and (previous or {}).get("status") != status:
            url = mirror.url(page_name(key.serial, key.scan_id)) if mirror else None
            self.event(f"point_{status}", key.label, f"{key.label}: {status}: {result.get('reason', '')}", url)
        if previous is None and scan.get("state") == "complete":
            verdict = pmt_verdict(scan, store.points(key.serial, key.scan_id))
            url = mirror.url(page_name(key.serial)) if mirror else None
            self.event("scan_complete", f"{key.serial}/{key.scan_id}",
                       f"PMT {key.serial} scan {key.scan_id} complete: {verdict.verdict.upper()}"
                       + "".join(f"; {reason}" for reason in verdict.reasons), url)

    # ---- the background thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                self._take(timeout=0.0 if stopping else self._sleep_time())
                self._release(force=stopping)
                self.outbox.deliver_due(self.channels)
            except Exception:  # the notifier must never take the monitor down (e.g. a full disk)
                log.exception("notifier failed; retrying")
                self._stop.wait(1.0)
            if stopping:
                return

    def _sleep_time(self) -> float:
        due = [time.time() + 3600]
        if self._waiting:
            due.append(time.time() + self._release_at() - time.monotonic())
        next_try = self.outbox.next_due()
        if next_try is not None:
            due.append(next_try)
        return min(max(min(due) - time.time(), 0.05), 1.0)

    def _take(self, timeout: float) -> None:
        """Move queued events to the waiting list, dropping repeats and counting the counted kinds."""
        try:
            events = [self._queue.get(timeout=timeout)] if timeout > 0 else []
        except queue.Empty:
            events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                break
        now = time.monotonic()
        fresh = [e for e in (self._counted_event(e, now) for e in events) if e is not None and self._new(e, now)]
        if fresh:
            if not self._waiting:
                self._first_waiting = now
            self._waiting += fresh
            atomic_write_json(self._state_path, [asdict(e) for e in self._waiting])

    def _counted_event(self, event: Event, now: float) -> Event | None:
        if event.kind not in COUNTED:
            return event
        times = self._counted.setdefault(event.kind, deque())
        times.append(now)
        while times and now - times[0] > 3600.0:
            times.popleft()
        if len(times) < self.settings.repeat_count:
            return None
        return Event(event.kind, "monitor", f"{len(times)} {COUNTED[event.kind]} within an hour; last: {event.text}")

    def _new(self, event: Event, now: float) -> bool:
        told = self._told.get((event.kind, event.key))
        if told is not None and now - told < self.settings.repeat_seconds:
            return False
        self._told[(event.kind, event.key)] = now
        return True

    def _release_at(self) -> float:
        return max(self._first_waiting + self.settings.gather_seconds,
                   self._last_message + self.settings.min_interval_seconds)

    def _release(self, force: bool = False) -> None:
        """Turn the waiting events into one message per channel (persisted in the outbox) when due."""
        if not self._waiting or (time.monotonic() < self._release_at() and not force):
            return
        subject, text = message_for(self._waiting)
        for channel in self.channels:
            self.outbox.put(channel, subject, text)
        self._waiting = []
        self._state_path.unlink(missing_ok=True)
        self._last_message = time.monotonic()

    # ---- channels ------------------------------------------------------------------------------------
    def _send_mail(self, subject: str, text: str) -> None:
        msg = mailer.build_message(self.mail, list(self.settings.mail_to), subject, text + "\n")
        mailer.send_message(self.mail, msg)

    def _post_webhook(self, subject: str, text: str) -> None:
        url = self.settings.webhook_url
        try:
            response = httpx.post(url, json={"text": f"**{subject}**\n{text}"}, timeout=self.mail.timeout_seconds)
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:  # the URL holds the hook's secret: name only its host
            raise RuntimeError(f"webhook {urlsplit(url).netloc}: HTTP {exc.response.status_code}") from None
        except httpx.HTTPError as exc:
            raise RuntimeError(f"webhook {urlsplit(url).netloc}: {type(exc).__name__}") from None
