"""A simulated Korean-stand ROOT file (3 PMTs + monitor PMT, 200k events x 8 x 1024 samples) processed to the
same gains as the same events written as WaveDump, with the memory growth while reading it.

    PYTHONPATH=$PWD python benchmarks/bench_korean.py [--events 200000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

PMTS = [("EM2740A", 1670, 0, 0, 1.0e7, 0.5), ("EL1635B", 1840, 45, -20, 1.2e7, 0.8),
        ("EK0042C", 1700, 90, 30, 0.8e7, 1.0)]


def _generate(folder: Path, n_events: int) -> None:
    from remote_monitor.simulation.korean_writer import simulate_korean_file

    simulate_korean_file(folder, PMTS, n_events, record_length=1024, seed=3, wavedump_dir=folder / "wavedump")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200000)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_korean_"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(target=_generate, args=(folder, args.events))
    child.start()
    child.join()
    root = next(folder.glob("prd_*.root"))
    print(f"simulated {args.events} events in {time.perf_counter() - started:.0f} s: {root.name} "
          f"({root.stat().st_size / 1e9:.2f} GB)")
    try:
        return _compare(root, folder)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def _compare(root: Path, folder: Path) -> int:
    from remote_monitor.analysis.charges import ChannelMap, extract_point_charges
    from remote_monitor.service.korean import process_korean_file
    from remote_monitor.service.processing import _fit_charges
    from remote_monitor.stand.config import Config

    cfg = Config()
    _fit_charges(__import__("numpy").random.default_rng(0).normal(1.6, 0.5, 5000), cfg)  # zfit warm-up
    rss0 = _maxrss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    results = process_korean_file(root, cfg)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = _maxrss_mb()
    print(f"Korean file processed in {seconds:.0f} s; peak RSS growth {rss1 - rss0:.0f} MB (max RSS {rss1:.0f} MB), "
          f"tracemalloc peak {peak / 1e6:.0f} MB, file {root.stat().st_size / 1e6:.0f} MB, "
          f"read in steps of {cfg.korean.step_entries} events")
    worst = 0.0
    for r, spec in zip(results, PMTS, strict=True):
        files = {0: folder / "wavedump" / spec[0] / "wave0.dat", 2: folder / "wavedump" / spec[0] / "wave2.dat"}
        wd = extract_point_charges(files, ChannelMap(sipm=None), cfg.analysis)
        wd_fit, _ = _fit_charges(wd.pmt_charge_pc, cfg)
        diff = r["fit"]["gain"] / wd_fit["gain"] - 1
        worst = max(worst, abs(diff))
        print(f"{r['serial']} {r['point']:15} hv {r['hv']}: Korean gain {r['fit']['gain']:.5g} "
              f"± {r['fit']['gain_err']:.2g}"
              f", WaveDump gain {wd_fit['gain']:.5g} (relative difference {diff:.1e}), truth {spec[4]:.4g}; "
              f"events {r['selected_events']} vs {wd.n_selected}; TT {r['peer']['timing']['transit_time_ns']:.2f} ns, "
              f"TTS {r['peer']['timing']['tts_sigma_ns']:.3f} ns, dark {r['peer']['dark']['dark_rate_hz']:.0f} Hz")
    print(f"worst |Korean/WaveDump - 1| of the gains: {worst:.1e}")
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
