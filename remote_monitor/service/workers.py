"""The worker processes that process points: started warm, deaf to SIGTERM/SIGINT (only the monitor
decides when to stop), one point at a time each, abandoned and replaced when a point takes too long
(a FIFO named like a wave file, a hung NFS/GPFS read), leaving with the monitor."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from remote_monitor.service.processing import process_point
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey

log = logging.getLogger("remote_monitor")
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _exit_with_parent() -> None:
    """Leave when the monitor dies (kill -9 leaves no orphaned workers behind)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def warm_up(n_bins: int = 560, range_pc: tuple[float, float] = (-3.0, 25.0)) -> int:
    """Import zfit, build the SPE response model and run one full fit (with the systematic refit) on a
    simulated spectrum at the stand's gain and occupancy, so that the first real point is as fast as the
    rest. Returns the number of models now in the process's model cache."""
    import numpy as np

    from remote_monitor.analysis.histogram import fill_histogram
    from remote_monitor.analysis.spe_fit import fit_spe
    from remote_monitor.analysis.spe_model import model_cache
    from remote_monitor.simulation.spe_charge import PmtPhysics, event_charges

    rng = np.random.default_rng(1)
    charges = event_charges(rng, 20_000, 0.2, 1e7, PmtPhysics(), rng.normal(0.0, 0.2, 4096))
    fit_spe(fill_histogram(charges, n_bins, *range_pc))
    return len(model_cache())


def process_job(key: PointKey, sources: dict[str, Path], cfg: Config) -> dict[str, Any]:
    """What a worker runs for one point."""
    return process_point(key, sources, cfg)


def _worker_main(conn: Connection) -> None:
    """A worker: ignore stop signals (they were blocked since before the exec), warm up, then serve jobs."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # also discards a signal that arrived while blocked
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _exit_with_parent()
    try:
        warm_up()
    except Exception as exc:  # noqa: BLE001  (a broken fit stack shows up in the first point's result instead)
        log.warning("worker warm-up failed: %s", exc)
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        function, *args = job
        try:
            conn.send(("done", function(*args)))
        except Exception as exc:  # noqa: BLE001  (a bug in processing: a real error of this point)
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


@dataclass
class Outcome:
    """How a point left its worker: kind is "done" (result), "error" (processing raised: a real error),
    "timeout" (abandoned: the worker was stuck) or "lost" (the worker died: retried at the next start)."""

    key: Hashable  # a PointKey, or a tag such as ("provisional", PointKey)
    kind: str
    result: dict[str, Any] | None = None
    reason: str = ""


@dataclass
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    job: Hashable | None = None
    started: float = field(default=0.0)


class WorkerPool:
    """Spawned workers, each running one point at a time; see Outcome for what comes back."""

    def __init__(self, workers: int, point_timeout: float) -> None:
        self.size = workers
        self.point_timeout = point_timeout
        self._ctx = multiprocessing.get_context("spawn")
        self.closing = False  # set while stopping: dead workers are not replaced any more
        self._outcomes: list[Outcome] = []
        self._workers: list[_Worker] = [self._start() for _ in range(workers)]

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child,), name="pmt-worker", daemon=True)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # the child inherits the mask
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child.close()
        return _Worker(proc, parent)

    @property
    def busy(self) -> dict[Hashable, float]:
        """Points in flight and their start time (monotonic)."""
        return {w.job: w.started for w in self._workers if w.job is not None}

    def idle(self) -> bool:
        """True when a warmed-up worker is free (checks for ready messages first)."""
        self.poll()
        return any(w.ready and w.job is None for w in self._workers)

    def submit(self, key: Hashable, job: tuple[Any, ...]) -> bool:
        """Hand job = (function, *args) to a free worker, its outcome to come back under key; False if none
        is free. The function must be importable at module level (the workers are spawned)."""
        for worker in self._workers:
            if worker.ready and worker.job is None:
                try:
                    worker.conn.send(job)
                except OSError:
                    self._replace(worker)
                    continue
                worker.job, worker.started = key, time.monotonic()
                return True
        return False

    def poll(self) -> None:
        """Read the workers' messages, replace dead or stuck workers; outcomes wait for take()."""
        outcomes = self._outcomes
        now = time.monotonic()
        for worker in list(self._workers):
            try:
                message = worker.conn.recv() if worker.conn.poll() else None
            except (EOFError, OSError):
                message = ("died", None)
            if message is not None and message[0] == "ready":
                worker.ready = True
            elif message is not None and message[0] in ("done", "error") and worker.job is not None:
                outcomes.append(Outcome(worker.job, message[0], message[1] if message[0] == "done" else None,
                                        message[1] if message[0] == "error" else ""))
                worker.job = None
            elif (message is not None and message[0] == "died") or not worker.process.is_alive():
                if worker.job is not None:
                    code = worker.process.exitcode
                    outcomes.append(Outcome(worker.job, "lost", reason=f"worker died (exit code {code})"))
                self._replace(worker)
            elif worker.job is not None and now - worker.started > self.point_timeout:
                outcomes.append(Outcome(worker.job, "timeout", reason=(
                    f"abandoned after {self.point_timeout:g} s without a result: a file that cannot be read "
                    "(a FIFO or device named like a wave file, a hung network file system?)")))
                self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        if self.closing:
            worker.job = None
        else:
            self._workers[self._workers.index(worker)] = self._start()

    @staticmethod
    def _kill(worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()  # SIGKILL: a worker stuck in a read ignores everything else
        worker.process.join(timeout=5)
        worker.conn.close()

    def take(self) -> list[Outcome]:
        """The outcomes since the last call (finished, failed, stuck and lost points)."""
        self.poll()
        done, self._outcomes = self._outcomes, []
        return done

    def shutdown(self) -> list[Hashable]:
        """Kill every worker now; returns the points that were still in flight (not to be recorded)."""
        self.closing = True
        abandoned = [w.job for w in self._workers if w.job is not None]
        for worker in self._workers:
            self._kill(worker)
        self._workers = []
        return abandoned
