"""The monitor's error boundary: whatever goes wrong in one event is recorded and the loop runs on."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remote_monitor.service.problems import Problems, quarantine
from remote_monitor.service.store import CorruptFile

log = logging.getLogger("remote_monitor")

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class ErrorBoundary:
    """Runs one event's handling; a failure goes to the log and the index page's problems list."""

    def __init__(self, problems: Problems, out_root: Path) -> None:
        self.problems = problems
        self.out_root = out_root

    def run(self, where: str, action: Callable[..., Any], *args: Any, failed: Any = None) -> Any:
        """action(*args), or `failed` when it raised.

        A corrupt file of <out> is quarantined (and rebuilt on the next attempt); a full disk is retried."""
        try:
            return action(*args)
        except CorruptFile as exc:
            self.on_corrupt(exc)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                self.problems.add(where, f"disk full ({exc.strerror}): writing paused, retried every tick")
            else:
                self.problems.add(where, "failed", exc=exc)
        except Exception as exc:  # the boundary: one bad event must not stop the monitor
            log.debug("problem in %s", where, exc_info=True)
            self.problems.add(where, "failed", exc=exc)
        return failed

    def on_corrupt(self, exc: CorruptFile) -> None:
        """A corrupt state or result file: moved to <out>/quarantine/, then rebuilt like a missing one."""
        target = None
        if exc.path.absolute().is_relative_to(self.out_root):
            target = quarantine(exc.path, self.out_root)
        self.problems.add(str(exc.path), f"corrupt file moved to {target} and rebuilt" if target
                          else "corrupt file", exc=exc)
