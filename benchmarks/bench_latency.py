"""Live latency: from a point's last file write to its result and report update, at 10k events per point.

Starts `remote-monitor run` on an empty directory, lets the simulated stand write points slowly
(10k events, 1024 samples, 3 channels, ASCII), and prints per-point latency measured in this run.
The quiet time (how long files must stay unchanged) is part of the latency; it is printed separately.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from remote_monitor.simulation.stand import SimulationConfig, simulate_scan

QUIET_S, POINTS = 0.5, ["theta0_phi0", "theta10_phi0", "theta10_phi90", "theta10_phi180", "theta10_phi270",
                        "theta20_phi0"]


def _final(path: Path) -> bool:
    """A point's final result (not the provisional one shown while it is acquired)."""
    try:
        return json.loads(path.read_text()).get("status") != "acquiring"
    except (OSError, ValueError):
        return False


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, out, config = Path(tmp) / "data", Path(tmp) / "out", Path(tmp) / "monitor.toml"
        data.mkdir()
        config.write_text(f"[monitor]\nquiet_seconds = {QUIET_S}\ntick_seconds = 0.05\n")
        proc = subprocess.Popen([sys.executable, "-m", "remote_monitor.cli", "run", "--data", str(data), "--out",
                                 str(out), "--config", str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        while not (out / "reports" / "index.html").exists():
            time.sleep(0.1)
        time.sleep(8)  # let the worker import zfit and compile before the first point
        cfg = SimulationConfig(n_events=10_000, record_length=1024, write_delay_s=3.0)
        writer = threading.Thread(target=simulate_scan, args=(data, "LAT01"),
                                  kwargs={"scan_id": "261125_120000", "cfg": cfg, "points": POINTS})
        writer.start()
        points_dir = out / "results" / "LAT01" / "261125_120000" / "points"
        report = out / "reports" / "LAT01.html"
        seen: dict[str, float] = {}
        report_mtime: dict[str, float] = {}
        while len(seen) < len(POINTS):
            for path in points_dir.glob("*.json") if points_dir.is_dir() else []:
                if path.stem not in seen and _final(path):
                    seen[path.stem] = time.time()
                    report_mtime[path.stem] = report.stat().st_mtime if report.exists() else float("nan")
            time.sleep(0.02)
        writer.join()
        proc.terminate()
        proc.wait()
        latencies, processing = [], []
        for point in POINTS:
            result = json.loads((points_dir / f"{point}.json").read_text())
            last_write = max(f["mtime"] for f in result["source_files"].values())
            latencies.append(seen[point] - last_write)
            processing.append(result["processing_seconds"])
        print(f"{len(POINTS)} points, 10k events x 1024 samples x 3 channels (ASCII), quiet time {QUIET_S} s")
        print(f"latency last write -> result + report: median {statistics.median(latencies):.2f} s, "
              f"max {max(latencies):.2f} s")
        print(f"of which processing (read + charges + histogram + fit): median {statistics.median(processing):.2f} s")


if __name__ == "__main__":
    main()
