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


def new_pool(workers: int, warm_args: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A pool of spawned workers, each warming up before its first point."""
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with_parent,
    )
    for _ in range(workers):
        pool.submit(warm_up, *warm_args)
    return pool
