"""Points start in the order the stand wrote them, also when a worker finishes in the middle of a pass."""

from __future__ import annotations

import os
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from remote_monitor.service.monitor import Monitor
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan
from remote_monitor.stand.config import load_config
from remote_monitor.stand.layout import PointKey

from .monitor_helpers import write_config

SERIAL, SCAN = "ORDER01", "261202_220000"
WRITTEN = ["theta20_phi90", "theta20_phi180", "theta20_phi270"]  # in this order, 10 s apart


class OneWorkerFinishingMidPass:
    """A pool of one worker that is busy when first asked and has finished by the next question (its job
    completed between two points of one pass); busy again once it is given a job."""

    def __init__(self) -> None:
        self.free, self.asked, self.started = False, 0, []

    def idle(self) -> bool:
        self.asked += 1
        free, self.free = self.free, self.free or self.asked == 1  # finishes right after the first question
        return free

    def submit(self, key: Hashable, job: tuple[Any, ...]) -> bool:
        if not self.free:
            return False
        self.free = False
        self.started.append(key.point)  # type: ignore[attr-defined]
        return True


def _scan_written_in_order(data: Path) -> None:
    simulate_scan(data, SERIAL, scan_id=SCAN, cfg=SimulationConfig(n_events=300, record_length=260, seed=2),
                  points=WRITTEN)
    start = time.time() - 100
    for i, point in enumerate(WRITTEN):
        for f in data.rglob(f"wave*save_{point}.*"):
            os.utime(f, (start + 10 * i, start + 10 * i))


def test_a_worker_freed_mid_pass_takes_the_earliest_written_point_next_pass(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    _scan_written_in_order(data)
    monitor = Monitor(load_config(write_config(tmp_path)), data, out, once=True)
    pool = OneWorkerFinishingMidPass()
    monitor.inflight.pool = pool  # type: ignore[assignment]
    monitor._pending.update(PointKey(SERIAL, SCAN, p) for p in reversed(WRITTEN))

    monitor._start_ready_points(time.monotonic())
    assert pool.started == [], "a point written later overtook one that waited for the worker in the same pass"
    monitor._start_ready_points(time.monotonic())
    assert pool.started == ["theta20_phi90"]
    pool.free = True  # that point is done
    monitor._start_ready_points(time.monotonic())
    assert pool.started == ["theta20_phi90", "theta20_phi180"]
