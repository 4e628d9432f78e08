"""Progress bars (rich) for simulate, demo, run --once and reprocess, driven by the log lines those already
write: the simulation's "simulated <point>", the monitor's "processing <point>" and "point SN=...", the
reprocessing's "reprocessed <point>". No hooks in the workers; a changed message shows in test_cli.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

SIMULATED = "simulated %s"
QUEUED = "processing %s"
DONE = "point SN=%s scan=%s point=%s"
REPROCESSED = "reprocessed %s"


class ProgressHandler(logging.Handler):
    """Advances the bars from log records; warnings and errors are printed above the bars."""

    def __init__(self, progress: Progress, simulate_total: int | None, process_total: int | None) -> None:
        super().__init__(logging.INFO)
        self.progress = progress
        self.fixed_total = process_total is not None
        self.simulate: TaskID | None = (progress.add_task("simulating", total=simulate_total)
                                        if simulate_total else None)
        self.process = progress.add_task("processing", total=process_total or 0, start=self.simulate is None)
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        msg, args = str(record.msg), record.args if isinstance(record.args, tuple) else ()
        if msg.startswith(SIMULATED) and self.simulate is not None:
            point = str(args[0]).rsplit("/", 1)[-1] if args else ""
            self.progress.update(self.simulate, advance=1, description=f"simulated {point}")
        elif msg.startswith(QUEUED) and not self.fixed_total:
            self.progress.start_task(self.process)
            task = self.progress.tasks[self.process]
            self.progress.update(self.process, total=(task.total or 0) + 1)
        elif msg.startswith((DONE, REPROCESSED)):
            self.progress.start_task(self.process)
            self.progress.update(self.process, advance=1, description=self._status(msg, args))
        elif record.levelno >= logging.WARNING:
            self.progress.console.print(self.format(record), markup=False, highlight=False)

    @staticmethod
    def _status(msg: str, args: tuple[Any, ...]) -> str:
        """'theta20_phi90: error' from the finished point's log record."""
        if msg.startswith(DONE) and len(args) >= 6:
            return f"{args[2]}: {args[5]}"
        if args:
            label = str(args[0]).rsplit("/", 1)[-1]
            return f"{label}: {args[1]}" if len(args) > 1 else label
        return "processing"


@contextmanager
def progress_bars(active: bool, simulate_total: int | None = None, process_total: int | None = None,
                  console: Console | None = None) -> Iterator[ProgressHandler | None]:
    """Show the bars while the block runs (active: an interactive terminal and not -v); plain logs otherwise.

    While active, the plain INFO lines on stderr are replaced by the bars (the log file keeps everything).
    """
    if not active:
        yield None
        return
    root = logging.getLogger()
    plain = [h for h in root.handlers if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.stdout)]
    progress = Progress(TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console or Console(stderr=True))
    handler = ProgressHandler(progress, simulate_total, process_total)
    for h in plain:
        root.removeHandler(h)
    root.addHandler(handler)
    try:
        with progress:
            yield handler
    finally:
        root.removeHandler(handler)
        for h in plain:
            root.addHandler(h)
