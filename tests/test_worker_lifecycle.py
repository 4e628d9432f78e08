"""Worker life cycle: stop signals to the whole process group, grace time, stuck reads (a FIFO named like
a wave file) abandoned and the worker replaced, shutdown never waiting on a stuck worker."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from remote_monitor.simulation.stand import SimulationConfig, simulate_scan

from .monitor_helpers import journal, point_results, start_monitor, stop, wait_for

pytestmark = pytest.mark.slow

SERIAL, SCAN = "TERM01", "261129_120000"
SIM = SimulationConfig(n_events=600, record_length=300, seed=3)
POINTS = ["theta0_phi0", "theta10_phi0", "theta10_phi90", "theta20_phi180"]
REAL = {"healthy", "poor", "uncertain"}  # a real result with a gain (the realistic stand may be undecided)


def _config(tmp: Path, grace: float = 20.0, point_timeout: float = 300.0, workers: int = 1) -> Path:
    path = tmp / "monitor.toml"
    path.write_text(f"""
[monitor]
workers = {workers}
quiet_seconds = 0.2
tick_seconds = 0.05
grace_seconds = {grace}
point_timeout_seconds = {point_timeout}
[fit]
min_events = 200
""")
    return path


def _wait_processing(out: Path, proc: object, what: str = "processing TERM01") -> None:
    log = out / "monitor.log"
    wait_for(lambda: log.exists() and what in log.read_text(), 300, what, proc)  # type: ignore[arg-type]


@pytest.mark.parametrize("grace", [0.0, 20.0])
def test_term_to_process_group_then_restart_gives_real_results(tmp_path: Path, grace: float) -> None:
    """Like Ctrl-C in a terminal or scancel: every process of the group gets the signal, workers too."""
    data, out = tmp_path / "data", tmp_path / "out"
    simulate_scan(data, SERIAL, scan_id=SCAN, cfg=SIM, points=POINTS)
    config = _config(tmp_path, grace=grace)
    proc = start_monitor(data, out, config)
    _wait_processing(out, proc)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)  # start_monitor puts the monitor in its own session: pgid == pid
    code, output = stop(proc, timeout=grace + 60)
    took = time.monotonic() - started
    assert code == 0, output
    assert took < grace + 15, (took, output)
    before = point_results(out, SERIAL, SCAN)
    assert all(r["status"] in REAL for r in before.values()), before  # nothing recorded as "crashed"
    if grace == 0:
        assert "abandoned at shutdown" in output and len(before) < len(POINTS), output

    proc = start_monitor(data, out, config, "--once")
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    results = point_results(out, SERIAL, SCAN)
    assert sorted(results) == sorted(POINTS)
    assert {p: r["status"] for p, r in results.items() if r["status"] not in REAL} == {}
    assert all((r["fit"] or {}).get("gain") for r in results.values())
    counts = Counter(e["point"] for e in journal(out))
    assert set(counts.values()) == {1}, counts  # none done twice


def test_fifo_point_is_abandoned_and_the_worker_replaced(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    simulate_scan(data, SERIAL, scan_id=SCAN, cfg=SIM, points=POINTS[:2])
    good = next((data / f"wavedump_output_{SCAN}" / SERIAL / f"wavesave_{POINTS[1]}").glob("wave2*"))
    stuck_dir = data / f"wavedump_output_{SCAN}" / SERIAL / f"wavesave_{POINTS[0]}"
    fifo = next(stuck_dir.glob("wave2*"))
    fifo.unlink()
    os.mkfifo(fifo)  # opening it for reading blocks for ever, like a hung NFS read
    # (the timeout is generous: a fresh worker's first point compiles kernels, ~25 s on a busy 2-core machine)
    proc = start_monitor(data, out, _config(tmp_path, point_timeout=60.0, workers=2), "--once")
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    results = point_results(out, SERIAL, SCAN)
    assert results[POINTS[1]]["status"] in REAL, results[POINTS[1]]  # processed after (or beside) the stuck one
    stuck = results[POINTS[0]]
    assert stuck["status"] == "error"
    # the timeout path, or (once reads refuse non-regular files up front) the refusal
    assert "abandoned after 60 s" in stuck["reason"] or "regular file" in stuck["reason"].lower(), stuck["reason"]
    assert good.is_file()


def test_shutdown_does_not_wait_for_a_stuck_worker_longer_than_grace(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    simulate_scan(data, SERIAL, scan_id=SCAN, cfg=SIM, points=POINTS[:1])
    fifo = next((data / f"wavedump_output_{SCAN}" / SERIAL / f"wavesave_{POINTS[0]}").glob("wave2*"))
    fifo.unlink()
    os.mkfifo(fifo)
    proc = start_monitor(data, out, _config(tmp_path, grace=3.0, point_timeout=600.0))
    _wait_processing(out, proc)
    started = time.monotonic()
    code, output = stop(proc, timeout=60)
    took = time.monotonic() - started
    assert code == 0, output
    assert took < 3.0 + 8, (took, output)
    assert point_results(out, SERIAL, SCAN).get(POINTS[0], {}).get("status") != "healthy"
