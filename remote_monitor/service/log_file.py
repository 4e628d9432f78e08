"""The monitor's log file, <out>/monitor.log, which a full disk must not turn into a flood of tracebacks."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


class LogFile(logging.FileHandler):
    """A FileHandler that says once on stderr that it cannot write (e.g. disk full) and once that it can again.

    The records in between are on stderr only (the stream handler beside it): logging's default is a
    traceback per record, which filled the monitor's stderr pipe in a test while the disk was full."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.failing = False
        self._failed_now = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)
        if self.failing and not self._failed_now:
            self.failing = False
            self._say(f"{self.baseFilename}: written again")

    def flush(self) -> None:
        """Also at close and shutdown, where a full disk would raise."""
        try:
            super().flush()
        except OSError as exc:
            self._failed(exc)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: ARG002 (logging calls it so)
        self._failed(sys.exc_info()[1])

    def _failed(self, exc: BaseException | None) -> None:
        self._failed_now = True
        if not self.failing:
            self.failing = True
            self._say(f"{self.baseFilename}: cannot write ({exc}); log records go to stderr only until it can")

    @staticmethod
    def _say(text: str) -> None:
        try:
            sys.stderr.write(f"{text}\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr gone: nothing left to tell
            pass
