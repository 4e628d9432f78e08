"""Relative detection efficiency, transit time, TTS and dark rate of every point of a simulated scan against
the simulation's truth (process_point on WaveDump files, point by point so the disk use stays small).

    PYTHONPATH=$PWD python benchmarks/bench_peer.py [--events 60000] [--record-length 512] [--points N] [--noise-mv 0.3]

TTS: the fitted core and the PMT's (less the noise's jitter, `timing_jitter`), the limit on the latter. The PMT's
pooled dark rate, of every photoelectron and over a quarter PE, against the truth.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from remote_monitor.analysis.dark_rate import pooled_dark_rate
from remote_monitor.analysis.detection_efficiency import CENTRE
from remote_monitor.analysis.peer_columns import peer_table
from remote_monitor.service.processing import point_sources, process_point
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import SCAN_POINTS, PointKey

LIMITS = {"de": 0.02, "tt_ns": 0.2, "tts": 0.05, "dark": 0.10}


def run_scan(points: list[str], sim: SimulationConfig, cfg: Config, serial: str = "PEER01", verbose: bool = False
             ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(results, truth) per point; each point is simulated with its own random stream, processed, deleted."""
    results: dict[str, dict[str, Any]] = {}
    truth: dict[str, dict[str, Any]] = {}
    for i, point in enumerate(points):
        folder = Path(tempfile.mkdtemp(prefix="bench_peer_"))
        try:
            scan_id = f"260101_{i:06d}"
            t = simulate_scan(folder, serial, scan_id, sim, points=[point])
            key = PointKey(serial, scan_id, point)
            results[point] = process_point(key, point_sources(folder, key), cfg)
            truth[point] = t["points"][point]
            if verbose and CENTRE in results:
                _print_row(compare({CENTRE: results[CENTRE], point: results[point]},
                                   {CENTRE: truth[CENTRE], point: truth[point]})[-1])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results, truth


def compare(results: dict[str, dict[str, Any]], truth: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per point: measured, error, truth and whether each quantity is inside its limit (dark: or 3 sigma)."""
    table = peer_table(results)
    rows = []
    for point, c in table.items():
        t = truth[point]
        de_ok = abs(c["relative_de"] - t["detection_efficiency"]) <= LIMITS["de"] * t["detection_efficiency"]
        tt_ok = abs(c["transit_time_ns"] - t["transit_time_ns"]) <= LIMITS["tt_ns"]
        tts_ok = abs(_pmt_tts(c) / t["tts_sigma_ns"] - 1) <= LIMITS["tts"]
        dark_dev = abs(c["dark_rate_hz"] - t["dark_rate_hz"])
        dark_ok = dark_dev <= LIMITS["dark"] * t["dark_rate_hz"] or dark_dev <= 3 * c["dark_rate_err_hz"]
        rows.append({"point": point, **c, "truth": t, "ok": {"de": de_ok, "tt": tt_ok, "tts": tts_ok, "dark": dark_ok}})
    return rows


def _pmt_tts(c: dict[str, Any]) -> float:
    """The PMT's TTS sigma (the fitted core less the noise's jitter), or the fitted one where there is none."""
    return c["tts_sigma_pmt_ns"] if c.get("tts_sigma_pmt_ns") is not None else c["tts_sigma_ns"]


def _print_row(r: dict[str, Any]) -> None:
    t, ok = r["truth"], r["ok"]
    flag = "".join(k[0].upper() if not v else "." for k, v in ok.items())
    print(f"{r['point']:15} {r['relative_de']:.4f}±{r['relative_de_err']:.4f} {t['detection_efficiency']:6.3f} "
          f"{r['transit_time_ns']:8.3f}±{r['transit_time_err_ns']:.3f} {t['transit_time_ns']:8.3f} "
          f"{r['tts_sigma_ns']:.3f}±{r['tts_sigma_err_ns']:.3f} {_pmt_tts(r):.3f} {t['tts_sigma_ns']:5.2f} "
          f"{r['dark_rate_hz']:5.0f}±{r['dark_rate_err_hz']:4.0f} {t['dark_rate_hz']:6.0f} {flag}", flush=True)


def _print_pooled_dark(results: dict[str, dict[str, Any]], centre_truth: dict[str, Any]) -> None:
    """The PMT's dark rate pooled over the points, of every photoelectron and over a quarter PE, beside the truth."""
    pooled = pooled_dark_rate({p: (r.get("peer") or {}).get("dark") or {} for p, r in results.items()})
    for label, key in (("every photoelectron", "dark_rate"), ("over a quarter PE", "dark_rate_quarter_pe")):
        rate, err, true = pooled[f"{key}_hz"], pooled[f"{key}_err_hz"], centre_truth[f"{key}_hz"]
        if rate is not None:
            print(f"the PMT's dark rate, {label}: {rate:.0f} ± {err:.0f} Hz for {true:.0f} "
                  f"({100 * (rate / true - 1):+.1f} %, pull {(rate - true) / err:+.2f})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60000)
    parser.add_argument("--record-length", type=int, default=512)
    parser.add_argument("--points", type=int, default=len(SCAN_POINTS))
    parser.add_argument("--noise-mv", type=float, default=SimulationConfig().noise_mv)
    args = parser.parse_args()
    sim = SimulationConfig(n_events=args.events, record_length=args.record_length, fmt="binary", seed=7,
                           laser_drift=0.02, noise_mv=args.noise_mv)
    started = time.perf_counter()
    print("as they come (flags: letters = outside the limit):", flush=True)
    results, truth = run_scan(list(SCAN_POINTS[: args.points]), sim, Config(), verbose=True)
    rows = compare(results, truth)
    print(f"{len(rows)} points x {args.events} events x {args.record_length} samples, {args.noise_mv} mV noise, "
          f"{time.perf_counter() - started:.0f} s")
    print(f"{'point':15} {'rel DE':>16} {'truth':>6} {'TT ns':>16} {'truth':>8} {'TTS ns':>14} {'PMT':>5} {'truth':>5} "
          f"{'dark Hz':>12} {'truth':>6}")
    for r in rows:
        _print_row(r)
    worst = {
        "relative DE |m/t-1| (limit 2 %)":
            max(abs(r["relative_de"] / r["truth"]["detection_efficiency"] - 1) for r in rows),
        "transit time |m-t| ns (limit 0.2)":
            max(abs(r["transit_time_ns"] - r["truth"]["transit_time_ns"]) for r in rows),
        "TTS fitted |m/t-1|": max(abs(r["tts_sigma_ns"] / r["truth"]["tts_sigma_ns"] - 1) for r in rows),
        "the PMT's TTS, less the noise's jitter, |m/t-1| (limit 5 %)":
            max(abs(_pmt_tts(r) / r["truth"]["tts_sigma_ns"] - 1) for r in rows),
        "dark |m/t-1| (limit 10 % or 3 sigma)":
            max(abs(r["dark_rate_hz"] / r["truth"]["dark_rate_hz"] - 1) for r in rows),
        "dark max pull": max(abs(r["dark_rate_hz"] - r["truth"]["dark_rate_hz"]) / r["dark_rate_err_hz"] for r in rows),
    }
    for name, value in worst.items():
        print(f"worst {name}: {value:.4f}")
    _print_pooled_dark(results, truth[CENTRE])
    failed = sum(not all(r["ok"].values()) for r in rows)
    print(f"points with every quantity inside its limit: {len(rows) - failed} of {len(rows)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
