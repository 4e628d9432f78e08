"""One monitor per <out>: an exclusive flock on <out>/state/monitor.lock, holding the holder's pid and host.

The kernel drops the lock when the holder dies (also on kill -9), so a stale lock file never blocks a start.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO, Any, Self

from remote_monitor.service.store import now_iso


class OutLocked(RuntimeError):
    """Another monitor holds the lock on this output directory."""


class OutLock:
    """Context manager: `with OutLock(out): ...` raises OutLocked naming the holder's pid and host."""

    def __init__(self, out_root: Path) -> None:
        self.path = Path(out_root) / "state" / "monitor.lock"
        self._fh: IO[str] | None = None

    def holder(self) -> dict[str, Any]:
        """What the current holder wrote into the lock file (empty if unreadable)."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the monitor's life
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            info = self.holder()
            raise OutLocked(
                f"{self.path.parent.parent} is in use by another monitor (pid {info.get('pid', '?')} on host "
                f"{info.get('host', '?')}, since {info.get('since', '?')}); stop it first or use another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}) + "\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
