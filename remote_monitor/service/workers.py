"""The worker processes that process points: started warm, leaving with the monitor."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from remote_monitor.service.processing import process_point
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey


def _exit_with_parent() -> None:
    """Worker initializer: leave when the monitor dies (kill -9 leaves no orphaned workers behind)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def warm_up() -> None:
    """Import zfit and compile the numba kernels once per worker, before the first real point."""
    import numpy as np

    from remote_monitor.analysis.histogram import fill_histogram
    from remote_monitor.analysis.spe_fit import fit_spe

    fit_spe(fill_histogram(np.zeros(10), 20, -1.0, 1.0))


def process_job(key: PointKey, sources: dict[str, Path], cfg: Config) -> dict[str, Any]:
    """What a worker runs for one point."""
    return process_point(key, sources, cfg)


def new_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of spawned workers, each warming up before its first point."""
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with_parent,
    )
    for _ in range(workers):
        pool.submit(warm_up)
    return pool
