"""The monitor running live while the simulated stand writes a full scan and HV check slowly."""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from remote_monitor.simulation.stand import SimulationConfig, parse_fault, simulate_scan

from .monitor_helpers import journal, point_results, start_monitor, stop, wait_for, write_config

pytestmark = pytest.mark.slow

SERIAL, SCAN = "LIVE01", "261125_100000"
FAULTS = ["truncated:theta50_phi270", "missing_channel:theta40_phi0", "garbage:theta20_phi0"]
# 12 of the 21 positions (every theta, the three faults) and two HV points, in the stand's order: the live
# behaviour needs no full scan (the full scan through the monitor: test_scan_vs_truth, test_monitor_restart)
POINTS = ["theta0_phi0", "theta10_phi0", "theta10_phi90", "theta10_phi180", "theta20_phi0", "theta20_phi90",
          "theta30_phi90", "theta30_phi270", "theta40_phi0", "theta40_phi180", "theta50_phi90", "theta50_phi270",
          "HV_1700", "HV_1800"]


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _idle_seconds(start: float, end: float, results: dict[str, dict], finished_at: dict[str, float]) -> float:
    """Seconds of [start, end] in which the worker processed no point (one worker: the runs do not overlap)."""
    busy = 0.0
    for point, result in results.items():
        run_end = finished_at[point]
        run_start = run_end - result.get("processing_seconds", 0.0)
        busy += max(0.0, min(end, run_end) - max(start, run_start))
    return end - start - busy


@pytest.mark.parametrize("poll", [0.0, 0.3], ids=["inotify", "polling-observer"])
def test_live_scan_is_processed_point_by_point(tmp_path: Path, poll: float) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    proc = start_monitor(data, out, write_config(tmp_path, quiet=0.5, poll=poll))
    report = out / "reports" / f"{SERIAL}.html"
    wait_for((out / "reports" / "index.html").exists, 120, "the monitor to start", proc)

    # a point every ~8.5 s: slower than the monitor needs per point (2.5-7.5 s at 2000 events, measured 2026-11-30:
    # read, SPE fit with its second starts, timing fit), as on the stand (minutes per point); faster writing
    # only measures the queue. Within a point the files grow in two chunks 0.2 s apart (less than the quiet
    # time: one final result per point)
    sim = SimulationConfig(n_events=2000, record_length=400, write_delay_s=0.4, point_gap_s=8.0, chunks_per_file=2,
                           mu=1.0,
                           faults=[parse_fault(f) for f in FAULTS], seed=3)
    writer = threading.Thread(target=simulate_scan, args=(data, SERIAL),
                              kwargs={"scan_id": SCAN, "cfg": sim, "points": POINTS})
    writer.start()

    seen_at: dict[str, float] = {}
    report_versions: list[str] = []
    deadline = time.monotonic() + 420
    while len(seen_at) < len(POINTS) and time.monotonic() < deadline:
        for point, result in point_results(out, SERIAL, SCAN).items():
            if result.get("status") != "acquiring":  # not a provisional result of a point still written
                seen_at.setdefault(point, time.time())
        digest = _digest(report)
        if digest and (not report_versions or report_versions[-1] != digest):
            report_versions.append(digest)
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.03)
    writer.join()
    code, output = stop(proc)
    assert code == 0, output
    results = point_results(out, SERIAL, SCAN)
    assert sorted(results) == sorted(POINTS), sorted(results)

    # each point processed exactly once
    counts = Counter(entry["point"] for entry in journal(out) if entry["serial"] == SERIAL)
    assert set(counts.values()) == {1}, counts
    # the report changed after each point (a point finishing within one poll may share a version)
    assert len(report_versions) >= len(POINTS) - 3, len(report_versions)

    # faults are errors with their reason; the other points were processed
    assert results["theta40_phi0"]["status"] == "error" and "missing channel" in results["theta40_phi0"]["reason"]
    assert results["theta20_phi0"]["status"] == "error" and "line" in results["theta20_phi0"]["reason"]
    # a truncated file is judged on its complete events, with a warning (issue 9), not an error
    truncated = results["theta50_phi270"]
    assert truncated["status"] != "error" and any("truncat" in w.lower() for w in truncated["warnings"]), truncated
    with_gain = [p for p, r in results.items() if r["status"] in ("healthy", "poor", "uncertain")]
    assert len(with_gain) == len(POINTS) - 2, {p: (r["status"], r.get("reason")) for p, r in results.items()}

    # latency from a point's last file write to its final result appearing; printed, not asserted (the machine's
    # speed is measured in benchmarks/bench_latency.py). Asserted: the points are processed in the order the
    # stand wrote them, and no point waits while the worker is idle
    last_write = {p: max(f["mtime"] for f in r["source_files"].values()) for p, r in results.items()}
    latency = {p: seen_at[p] - last_write[p] for p in results}
    print("slowest:", sorted(((round(t, 1), p, results[p]["status"], results[p].get("processing_seconds"))
                              for p, t in latency.items()), reverse=True)[:4])
    print(f"\n[{'polling' if poll else 'inotify'}] latency last write -> report: "
          f"median {statistics.median(latency.values()):.2f} s, max {max(latency.values()):.2f} s "
          f"(quiet time 0.5 s, 2000 events/point)")
    written = [p for p in sorted(results, key=last_write.__getitem__) if p != "theta40_phi0"]  # waits 3 s for
    finished = [e["point"] for e in journal(out) if e["point"] in written]  # its missing channel by design
    assert finished == written, (finished, written)
    warm = min(seen_at.values())  # points written before the first result may wait for the worker's warm-up
    idle = {p: _idle_seconds(last_write[p], seen_at[p], results, seen_at) for p in written if last_write[p] > warm}
    # the check covers several points: the warm-up and the first fits at 1 PE (a larger model than the warm-up's)
    # take 40-60 s while the first 5-7 points queue (with all 26 points 18-19 of the 25 written came after the
    # first result, 2026-12-03, CI and a loaded local run)
    assert len(idle) >= 4, idle
    print(f"{len(idle)} points written after the first result; longest idle waits:",
          sorted(((round(t, 1), p) for p, t in idle.items()), reverse=True)[:3])
    assert max(idle.values()) < 30, idle  # quiet time, ticks, reports, provisional fits; a lost event: 60 s
    assert "point SN=LIVE01" in output and "status=" in output
