"""Helpers for tests that run the real monitor as a subprocess on simulated data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAST_CONFIG = """
[monitor]
quiet_seconds = {quiet}
poll_seconds = {poll}
incomplete_seconds = 3.0
tick_seconds = 0.05
workers = {workers}
[fit]
min_events = 200
"""


def write_config(tmp: Path, quiet: float = 0.5, poll: float = 0.0, workers: int = 1) -> Path:
    """A config for fast tests; `workers`: 2 where the points' order does not matter (the machine's 2 cores)."""
    path = tmp / "monitor.toml"
    path.write_text(FAST_CONFIG.format(quiet=quiet, poll=poll, workers=workers))
    return path


class DrainedProcess(subprocess.Popen):
    """A process whose output a thread reads all along, so that a chatty monitor never blocks on a full pipe
    (a disk-full test once hung so: 64 KiB of logging tracebacks, read only at the end); `communicate` returns
    everything it printed."""

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        super().__init__(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
        self._chunks: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.stdout is not None
        for line in self.stdout:
            self._chunks.append(line)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[str, None]:
        self.wait(timeout)
        self._reader.join(timeout)
        return "".join(self._chunks), None


def start_monitor(data: Path, out: Path, config: Path, *extra: str) -> subprocess.Popen:
    """`remote-monitor run` in its own process (so it can be SIGTERMed or SIGKILLed)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return DrainedProcess(
        [sys.executable, "-m", "remote_monitor.cli", "run", "--data", str(data), "--out", str(out),
         "--config", str(config), *extra], env=env, start_new_session=True,
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 120) -> tuple[int, str]:
    """Send a signal and return (exit code, everything the monitor printed)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output


def wait_for(condition: Callable[[], Any], timeout: float, what: str, proc: subprocess.Popen | None = None,
             interval: float = 0.05) -> Any:
    """Poll until condition() is truthy; fail with what was awaited (and the monitor's output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"monitor exited ({proc.returncode}) while waiting for {what}:\n"
                                 f"{proc.communicate()[0]}")
        time.sleep(interval)
    output = ""
    if proc is not None and proc.poll() is None:
        proc.kill()
        output = proc.communicate()[0]
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{output}")


def point_results(out: Path, serial: str, scan_id: str) -> dict[str, dict[str, Any]]:
    folder = out / "results" / serial / scan_id / "points"
    results = {}
    for path in sorted(folder.glob("*.json")):
        # cannot happen with atomic writes; the test on atomicity would catch it below
        with contextlib.suppress(OSError, ValueError):
            results[path.stem] = json.loads(path.read_text())
    return results


def journal(out: Path) -> list[dict[str, Any]]:
    path = out / "state" / "processed.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
