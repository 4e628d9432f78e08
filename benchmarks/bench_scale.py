"""Real-scale reading benchmark: a point of N events x 3 channels in ASCII and binary, against the speed
of `wc -l` (ASCII) and `numpy.fromfile` (binary) over the same files, measured in the same run.

Prints per format and size: seconds, MB/s, peak RSS of the process that processed the point (a fresh
subprocess per measurement), and the ratios; then the scaling (time and memory of the largest size
against the smallest). Data are generated in a temp dir and removed afterwards.

    python benchmarks/bench_scale.py                      # 60k, 300k, 600k events of 260 samples
    python benchmarks/bench_scale.py --length 1024 --events 20000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from realscale_data import BENCH_CHANNELS, PointWriter

from remote_monitor.analysis.charges import AnalysisSettings, ChannelMap, extract_point_charges


def measure(folder: Path, fmt: str) -> dict[str, float]:
    """Process the point in this (fresh) process: seconds, events, RSS before and peak."""
    files = {ch: folder / f"wave{ch}.{fmt}" for ch in (0, 1, 2)}
    channels = ChannelMap(**BENCH_CHANNELS)  # type: ignore[arg-type]
    warm = folder / "warm"
    warm.mkdir(exist_ok=True)
    PointWriter(warm, 64, fmt).write(50)
    extract_point_charges({ch: warm / f"wave{ch}.{fmt}" for ch in (0, 1, 2)}, channels, AnalysisSettings())
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    result = extract_point_charges(files, channels, AnalysisSettings())
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "events": result.n_events, "selected": result.n_selected,
            "rss_before_mb": rss_before, "rss_peak_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it does not inherit the high-water
    mark of the benchmark's parent process across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_subprocess(folder: Path, fmt: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--measure", fmt, str(folder)], check=True,
                         capture_output=True, text=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wc_seconds(paths: list[Path]) -> float:
    subprocess.run(["wc", "-l", *map(str, paths)], check=True, capture_output=True)  # page cache warm
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(["wc", "-l", *map(str, paths)], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def _fromfile_seconds(paths: list[Path]) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for p in paths:
            np.fromfile(p, dtype=np.uint8)
        best = min(best, time.perf_counter() - t0)
    return best


def run(root: Path, n_events: int, length: int, fmt: str, repeat: int = 1) -> dict[str, float]:
    folder = root / f"{fmt}_{length}_{n_events}"
    folder.mkdir()
    t0 = time.perf_counter()
    paths = list(PointWriter(folder, length, fmt).write(n_events).values())
    written = time.perf_counter() - t0
    mb = sum(p.stat().st_size for p in paths) / 1e6
    ref_s = _wc_seconds(paths) if fmt == "txt" else _fromfile_seconds(paths)
    runs = [_in_subprocess(folder, fmt) for _ in range(repeat)]  # best time: the machine may be shared
    m = {**min(runs, key=lambda r: r["seconds"]), "rss_peak_mb": max(r["rss_peak_mb"] for r in runs)}
    ref_name = "wc -l" if fmt == "txt" else "numpy.fromfile"
    ratio = ref_s / m["seconds"]
    print(f"{'ASCII ' if fmt == 'txt' else 'binary'} {n_events:>7} ev x {length} x 3 ch: {mb:7.0f} MB "
          f"(written in {written:.1f} s) | processed {m['seconds']:6.2f} s = {mb / m['seconds']:6.0f} MB/s | "
          f"{ref_name} {ref_s:5.2f} s = {mb / ref_s:6.0f} MB/s | ratio {ratio:.2f} | peak RSS "
          f"{m['rss_peak_mb']:.0f} MB (+{m['rss_peak_mb'] - m['rss_before_mb']:.0f} MB while reading)", flush=True)
    shutil.rmtree(folder)
    return {**m, "mb": mb, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[60_000, 300_000, 600_000])
    parser.add_argument("--length", type=int, default=260)
    parser.add_argument("--formats", nargs="+", default=["txt", "dat"])
    parser.add_argument("--repeat", type=int, default=1, help="measurements per size (best time, worst memory)")
    parser.add_argument("--tmp", type=Path, default=None, help="where to write the data (default: system temp)")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[1]), args.measure[0])))
        return
    print(f"disk: {shutil.disk_usage(args.tmp or tempfile.gettempdir()).free / 1e9:.0f} GB free; "
          f"cores: {os.cpu_count()}; load: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=args.tmp) as tmp:
        for fmt in args.formats:
            results = [run(Path(tmp), n, args.length, fmt, args.repeat) for n in sorted(args.events)]
            small, big = results[0], results[-1]
            factor = big["events"] / small["events"]
            print(f"  scaling {fmt}: {factor:.0f}x the events -> {big['seconds'] / small['seconds']:.2f}x the time, "
                  f"peak RSS {big['rss_peak_mb'] - small['rss_peak_mb']:+.0f} MB", flush=True)


if __name__ == "__main__":
    main()
