"""The data-tree watcher on the real inotify observer: writes are reported, the monitor's own reads are not."""

from __future__ import annotations

import queue
import time
from pathlib import Path

from remote_monitor.service.watcher import start_watching


def _drain(sink: queue.Queue[str], settle: float = 0.5) -> set[str]:
    time.sleep(settle)
    paths = set()
    while not sink.empty():
        paths.add(sink.get_nowait())
    return paths


def test_reading_a_file_is_not_a_change_but_writing_it_is(tmp_path: Path) -> None:
    sink: queue.Queue[str] = queue.Queue()
    path = tmp_path / "wave2.txt"
    observer = start_watching({tmp_path: True}, sink, poll_seconds=0)
    try:
        path.write_text("Record Length: 4\n")
        assert str(path) in _drain(sink)
        for _ in range(3):  # what a reader of the point does: open, read, close
            assert path.read_text().startswith("Record Length")
        assert _drain(sink) == set()
        with open(path, "a") as fh:
            fh.write("8191\n")
        assert str(path) in _drain(sink)
    finally:
        observer.stop()
        observer.join()
