"""Live following at real scale: the monitor follows a 600k-event, 260-sample, 3-channel ASCII point while
a writer appends it at a steady rate; prints the time from the last event written to the final result.

The final result needs the files to be quiet for `quiet_seconds` (WaveDump gives no other end-of-point
signal), so the latency is printed both from the last write and from the end of the quiet time; the
result's own processing time (final read of the tail + SPE fit) is printed too. Also printed: when the
first provisional gain appeared and how many events it had. Data in a temp dir, removed afterwards.

    python benchmarks/bench_follow.py [--events 600000] [--rate 20000] [--quiet 0.5] [--binary] [--occupancy 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from realscale_data import PointWriter

from remote_monitor.stand.layout import PointKey, channel_file

KEY = PointKey("BENCH01", "261129_120000", "theta0_phi0")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--rate", type=float, default=20_000.0, help="events per second written")
    parser.add_argument("--quiet", type=float, default=0.5)
    parser.add_argument("--binary", action="store_true")
    parser.add_argument("--occupancy", type=float, default=1.0, help="photoelectrons per event (the stand: 0.05-0.15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_follow_") as tmp:
        data, out, config = Path(tmp) / "data", Path(tmp) / "out", Path(tmp) / "monitor.toml"
        data.mkdir()
        config.write_text(f"[monitor]\nquiet_seconds = {args.quiet}\ntick_seconds = 0.05\nprovisional_seconds = 5.0\n"
                          "[channels]\nsipm = 1\n")
        proc = subprocess.Popen([sys.executable, "-m", "remote_monitor.cli", "run", "--data", str(data), "--out",
                                 str(out), "--config", str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        while not (out / "reports" / "index.html").exists():
            time.sleep(0.1)
        time.sleep(8)  # the worker imports zfit and compiles before the first point
        paths = {ch: channel_file(data, KEY, ch, binary=args.binary) for ch in (0, 1, 2)}
        writer = PointWriter(data, 260, "dat" if args.binary else "txt", paths=paths, occupancy=args.occupancy)
        result_path = out / "results" / KEY.serial / KEY.scan_id / "points" / f"{KEY.point}.json"
        block = max(1, int(args.rate / 10))
        t_start = time.time()
        first_provisional: tuple[float, int] | None = None
        last_provisional: dict | None = None
        while writer.written < args.events:
            writer.append(min(block, args.events - writer.written))
            due = t_start + writer.written / args.rate
            while time.time() < due:
                time.sleep(0.005)
            if (r := _read(result_path)) and r.get("status") == "acquiring":
                first_provisional = first_provisional or (time.time() - t_start, r["acquiring"]["events"])
                last_provisional = r["acquiring"]
        last_write = max(p.stat().st_mtime for p in paths.values())
        while not ((r := _read(result_path)) and r.get("status") != "acquiring"):
            time.sleep(0.005)
        seen = time.time()
        proc.terminate()
        proc.wait()
        mb = sum(p.stat().st_size for p in paths.values()) / 1e6
        print(f"{args.events} events x 260 samples x 3 channels ({'binary' if args.binary else 'ASCII'}, {mb:.0f} MB, "
              f"{args.occupancy} PE per event) "
              f"written at {args.rate:.0f} events/s in {last_write - t_start:.1f} s; quiet time {args.quiet} s")
        if first_provisional:
            print(f"first provisional gain after {first_provisional[0]:.1f} s at {first_provisional[1]} events")
        if last_provisional and last_provisional.get("gain") and (r.get("fit") or {}).get("gain"):
            print(f"last provisional gain {last_provisional['gain']:.6g} at {last_provisional['events']} events: "
                  f"final - provisional = {r['fit']['gain'] / last_provisional['gain'] - 1:+.2%}")
        fit = r.get("fit") or {}
        print(f"final result: events {r['events']}, status {r['status']}, followed {r.get('followed', False)}, "
              f"gain {fit.get('gain')}; PMT fit {fit.get('fit_seconds')} s: {fit.get('reason')}")
        print(f"latency last write -> final result {seen - last_write:.2f} s; after the quiet time "
              f"{seen - last_write - args.quiet:.2f} s; of which the result's processing (fit) "
              f"{r['processing_seconds']:.2f} s")


if __name__ == "__main__":
    main()
