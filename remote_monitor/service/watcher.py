"""Watching the data tree and the command inbox: every changed path goes into a queue."""

from __future__ import annotations

import logging
import queue
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from remote_monitor.stand.layout import Layout, iter_scans

log = logging.getLogger("remote_monitor")

# inotify also reports reads; the monitor's own reading of a point must not make it look changed (a point whose
# result could not be written, on a full disk, was read and fitted again every second)
# (watchdog's EVENT_TYPE_OPENED and EVENT_TYPE_CLOSED_NO_WRITE, the latter only since watchdog 5: spelled out)
READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})


class _Queueing(FileSystemEventHandler):
    """Hands every file-system path that changed to the monitor's main loop."""

    def __init__(self, sink: queue.Queue[str]) -> None:
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in READ_ONLY_EVENTS:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.sink.put(path if isinstance(path, str) else bytes(path).decode())


def start_watching(folders: dict[Path, bool], sink: queue.Queue[str], poll_seconds: float) -> BaseObserver:
    """Watch each folder (value: recursive?) with inotify, or by polling every poll_seconds if > 0."""
    observer: BaseObserver = PollingObserver(timeout=poll_seconds) if poll_seconds > 0 else Observer()
    handler = _Queueing(sink)
    for folder, recursive in folders.items():
        observer.schedule(handler, str(folder), recursive=recursive)
    observer.start()
    how = f"polling every {poll_seconds} s" if poll_seconds > 0 else "native file-system events"
    log.info("watching %s with %s", ", ".join(str(f) for f in folders), how)
    return observer


def check_data_root(data_root: Path, layout: Layout) -> None:
    """A missing data directory is an error (never created: a typo would watch nothing for ever)."""
    if not data_root.is_dir():
        raise FileNotFoundError(f"--data {data_root}: no such directory (the monitor never creates it)")
    if not iter_scans(data_root, layout) and not any(data_root.glob(f"{layout.korean_dir_prefix}*")):
        log.warning(
            "no scans in %s yet; expecting %s<YYMMDD_HHMMSS>/<SN>/%stheta<T>_phi<P>/%s<CH>%stheta<T>_phi<P>.txt "
            "(or .dat; HV points in %s/) or Korean DAQ files in %s<YYMMDD_HHMMSS>/, see [layout] in the "
            "configuration", data_root, layout.scan_dir_prefix, layout.point_dir_prefix, layout.file_prefix,
            layout.file_infix, layout.hv_dir, layout.korean_dir_prefix)
