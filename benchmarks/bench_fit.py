"""SPE fit: time per scan point (after warm-up) and the full vs seed model's gain bias on the same data.

Charges are sampled from the PMT response model (pedestal sigma0 0.2 pC, sigma1/Q1 0.3) for occupancies
0.1..2 PE and gains 0.5e7..2e7; prints measured numbers from this one run. Not a test.
"""

from __future__ import annotations

import time

import numpy as np

from remote_monitor.analysis.histogram import fill_histogram
from remote_monitor.analysis.spe_fit import fit_spe
from remote_monitor.analysis.units import gain_to_pc

MUS, GAINS = (0.1, 0.5, 1.0, 2.0), (0.5e7, 1e7, 2e7)


def sample(rng: np.random.Generator, n: int, mu: float, gain: float) -> np.ndarray:
    q1 = gain_to_pc(gain)
    k = rng.poisson(mu, n)
    return rng.normal(0, 0.2, n) + rng.normal(k * q1, 0.3 * q1 * np.sqrt(k))


def main() -> None:
    rng = np.random.default_rng(2026)
    warm = fill_histogram(sample(rng, 10_000, 1.0, 1e7), 560, -3, 25)
    t0 = time.perf_counter()
    fit_spe(warm)
    print(f"first fit (imports zfit, sets up Minuit): {time.perf_counter() - t0:.2f} s")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        fit_spe(fill_histogram(sample(rng, 10_000, 1.0, 1e7), 560, -3, 25))
        times.append(time.perf_counter() - t0)
    print(f"fit time per scan point (10k events, 560 bins, full model): median {np.median(times):.3f} s, "
          f"max {max(times):.3f} s")
    print(f"\n{'mu':>5} {'gain':>7} | {'full bias %':>11} {'pull':>6} | {'seed bias %':>11}")
    for mu in MUS:
        for gain in GAINS:
            hist = fill_histogram(sample(rng, 80_000, mu, gain), 200, -2, 8 * gain_to_pc(gain) + 2)
            full, seed = fit_spe(hist), fit_spe(hist, model="seed")
            full_bias = 100 * (full.gain / gain - 1) if full.gain else float("nan")
            seed_bias = 100 * (seed.gain / gain - 1) if seed.gain else float("nan")
            pull = (full.gain - gain) / full.gain_err if full.gain else float("nan")
            print(f"{mu:5.1f} {gain / 1e7:6.1f}e7 | {full_bias:+11.2f} {pull:+6.2f} | {seed_bias:+11.2f}")


if __name__ == "__main__":
    main()
