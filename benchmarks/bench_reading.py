"""Reading + charge extraction speed: the vectorised/numba path against a plain per-event Python yardstick.

Writes a 10k-event, 3-channel (trigger, SiPM, PMT), 1024-sample point in ASCII and binary to a temp dir,
then prints events/s of each path and their ratio, all measured in this one run. Not a test.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from remote_monitor.analysis.charges import AnalysisSettings, ChannelMap, extract_point_charges
from remote_monitor.analysis.units import MV_PER_ADC, PC_PER_MV_SAMPLE
from remote_monitor.analysis.wavedump_writer import write_ascii, write_binary
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms

N_EVENTS, LENGTH, SUBSET = 10_000, 1024, 300


def python_reference(trigger_path: Path, pmt_path: Path, n_events: int, s: AnalysisSettings) -> list[float]:
    """The same fixed-window math, one event and one sample at a time (int(line) per sample)."""
    charges = []
    with open(trigger_path) as trig_file, open(pmt_path) as pmt_file:
        for _ in range(n_events):
            waves = []
            for fh in (trig_file, pmt_file):
                header = [fh.readline() for _ in range(7)]
                length = int(header[0].split(":")[1])
                waves.append([int(fh.readline()) for _ in range(length)])
            trig, pmt = waves
            base_t = sum(trig[:40]) / 40
            start = next((i for i, v in enumerate(trig) if (v - base_t) * MV_PER_ADC > s.trigger_threshold_mv), -1)
            if start < 0:
                continue
            base_p = sum(pmt[:40]) / 40
            lo = start + int(s.fixed_window_start_ns / 2)
            hi = lo + int(s.fixed_window_length_ns / 2)
            charges.append(sum(-(v - base_p) * MV_PER_ADC for v in pmt[lo:hi]) * PC_PER_MV_SAMPLE)
    return charges


def main() -> None:
    settings, channels = AnalysisSettings(), ChannelMap()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        waves = simulate_point_waveforms(np.random.default_rng(1), N_EVENTS, LENGTH, 1.0e7, 1.0, SimulationConfig())
        for fmt, writer in (("txt", write_ascii), ("dat", write_binary)):
            for ch, samples in waves.items():
                writer(root / f"wave{ch}.{fmt}", samples, ch)
        files = {fmt: {ch: root / f"wave{ch}.{fmt}" for ch in waves} for fmt in ("txt", "dat")}
        size = {fmt: sum(p.stat().st_size for p in files[fmt].values()) / 1e6 for fmt in files}
        extract_point_charges(files["dat"], channels, settings)  # numba compile outside the timing
        rates = {}
        for fmt in ("txt", "dat"):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                result = extract_point_charges(files[fmt], channels, settings)
                best = min(best, time.perf_counter() - t0)
            rates[fmt] = result.n_events / best
            print(f"{'ASCII ' if fmt == 'txt' else 'binary'} read + charges: {result.n_events} events, "
                  f"{size[fmt]:.0f} MB, {best:.3f} s -> {rates[fmt]:,.0f} events/s")
        t0 = time.perf_counter()
        reference = python_reference(files["txt"][0], files["txt"][2], SUBSET, settings)
        python_rate = SUBSET / (time.perf_counter() - t0)
        fast = extract_point_charges(files["txt"], channels, settings).pmt_charge_pc[:SUBSET]
        agree = np.allclose(fast, reference, atol=1e-3)
        print(f"per-event Python (ASCII, {SUBSET} events): {python_rate:,.0f} events/s; charges agree: {agree}")
        print(f"speed-up ASCII: {rates['txt'] / python_rate:.0f}x   binary vs per-event Python ASCII: "
              f"{rates['dat'] / python_rate:.0f}x")


if __name__ == "__main__":
    main()
