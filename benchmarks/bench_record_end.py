"""Gain lost where the charge window runs past the end of the record, measured on the same simulated events.

The stand's 260-sample record ends 400 ns after the trigger; the default window (300-420 ns after it) is then
cut to 300-400 ns, 75 ns after the laser pulses, and late pulses (20-60 ns late) lose part of their charge.
Each event is simulated at waveform level with 1024 samples and its charge taken in the default window twice:
on the whole record and on its first 260 samples. The two fits' gains differ only by the cut (same events,
same noise). Prints both gains against the truth, their difference and the ratio of the mean charges.
Not a test; prints measured numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from remote_monitor.analysis.charges import AnalysisSettings, corrected_mv, window_charge_pc
from remote_monitor.analysis.spe_fit import fit_spe
from remote_monitor.analysis.units import NS_PER_SAMPLE
from remote_monitor.simulation.stand import SimulationConfig, pmt_waveforms, trigger_waveforms

sys.path.insert(0, str(Path(__file__).parent))
from bench_gain import histogram  # the gain benchmark's bins (whole charge quanta)

LONG, SHORT, CHUNK = 1024, 260, 20_000


def paired_charges(n_events: int, gain: float, mu: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(charges on the whole record, charges on its first SHORT samples) of the same events."""
    settings, cfg = AnalysisSettings(), SimulationConfig()
    offset = round(settings.fixed_window_start_ns / NS_PER_SAMPLE)
    length = round(settings.fixed_window_length_ns / NS_PER_SAMPLE)
    rng = np.random.default_rng(seed)
    whole, cut = [], []
    for _ in range(max(1, n_events // CHUNK)):
        trig_ns, _ = trigger_waveforms(rng, CHUNK, LONG)
        raw = pmt_waveforms(rng, trig_ns, LONG, gain, mu, cfg)
        start = np.rint(trig_ns / NS_PER_SAMPLE).astype(np.int64) + offset
        whole.append(window_charge_pc(corrected_mv(raw, -1, settings.baseline_samples), start, length))
        cut.append(window_charge_pc(corrected_mv(raw[:, :SHORT], -1, settings.baseline_samples), start, length))
    return np.concatenate(whole), np.concatenate(cut)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--gain", type=float, default=1.024e7)
    parser.add_argument("--mu", type=float, default=0.3)
    args = parser.parse_args()
    whole, cut = paired_charges(args.events, args.gain, args.mu, seed=11)
    gains = []
    for label, charges in ((f"{LONG} samples (window whole)", whole), (f"{SHORT} samples (window cut)", cut)):
        fit = fit_spe(histogram(charges, args.gain, args.mu))
        gains.append(fit.gain)
        print(f"{label:30s} gain {fit.gain:.5e} ({100 * (fit.gain / args.gain - 1):+.2f} % of the truth, "
              f"stat {100 * fit.gain_err_stat / args.gain:.2f} %, under-amplified prior "
              f"{100 * fit.gain_err_under_prior / args.gain:.2f} %), mu {fit.mu:.4f}", flush=True)
    print(f"cut / whole: gain {100 * (gains[1] / gains[0] - 1):+.2f} %, "
          f"mean charge {100 * (cut.mean() / whole.mean() - 1):+.2f} %"
          f" ({len(whole)} events, {args.gain:.3e}, {args.mu} PE)")


if __name__ == "__main__":
    main()
