"""Time one scan point end to end (read + charges + histogram + fit), zfit already imported.

Target from the issue: a 10k-event, 3-channel, 1024-sample point in under 2 s on one core.
Prints measured times; this is a benchmark script, not a test.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from remote_monitor.analysis.charges import extract_point_charges
from remote_monitor.analysis.histogram import fill_histogram
from remote_monitor.analysis.spe_fit import fit_spe
from remote_monitor.service.processing import point_sources, process_point
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey

TARGET_S = 2.0


def time_point(root: Path, fmt: str, cfg: Config, repeats: int = 3) -> None:
    key = PointKey("BENCH01", "261125_000000" if fmt == "ascii" else "261125_000001", "theta0_phi0")
    sim = SimulationConfig(n_events=10_000, record_length=1024, fmt=fmt, include_sipm=True, seed=1)
    simulate_scan(root, key.serial, scan_id=key.scan_id, cfg=sim, points=[key.point])
    sources = point_sources(root, key)
    size_mb = sum(p.stat().st_size for p in sources.values()) / 1e6
    process_point(key, sources, cfg)  # warm-up: numba compilation, zfit graph building
    totals, parts = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        charges = extract_point_charges({int(c): p for c, p in sources.items()}, cfg.channels, cfg.analysis)
        t1 = time.perf_counter()
        hist = fill_histogram(charges.pmt_charge_pc, cfg.histogram.n_bins, *cfg.histogram.range_pc)
        t2 = time.perf_counter()
        fit = fit_spe(hist, model=cfg.fit.model, n_pe_max=cfg.fit.n_pe_max)
        t3 = time.perf_counter()
        result = process_point(key, sources, cfg)
        totals.append(time.perf_counter() - t3)
        parts.append((t1 - t0, t2 - t1, t3 - t2))
    best = min(range(repeats), key=lambda i: totals[i])
    read_s, hist_s, fit_s = parts[best]
    print(f"[{fmt:6s}] {len(sources)} channels, {size_mb:7.1f} MB, {charges.n_events} events")
    print(f"[{fmt:6s}] read+charges {read_s:6.3f} s   histogram {hist_s * 1e3:6.2f} ms   fit {fit_s:6.3f} s")
    print(f"[{fmt:6s}] process_point total {totals[best]:6.3f} s  (target < {TARGET_S} s: "
          f"{'met' if totals[best] < TARGET_S else 'NOT met'})  gain {result['fit']['gain']:.4g} "
          f"status {result['status']}  fit status {fit.status}")


def main() -> None:
    cfg = Config()
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("binary", "ascii"):
            time_point(Path(tmp), fmt, cfg)


if __name__ == "__main__":
    main()
