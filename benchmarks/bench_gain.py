"""Gain bias and pulls of the SPE fit on the realistic stand, per class, with the seed model side by side;
and the warm fit time next to the same likelihood minimised with iminuit directly.

Charges come from the simulation's charge-level generator (`simulation.spe_charge.event_charges`): the same
photoelectron physics as the waveform path, with the pedestal drawn from noise-only records of the same noise
model integrated over the same window by the same extraction code. Classes: occupancy 0.03..2.5 PE x gain
0.5e7..2e7 x noise 0.3 and 1 mV, each with enough events for a statistical gain error of about 1 % (a class
whose first guess gives more is simulated again with more events, up to MAX_EVENTS, each event with its own
noise record). `--quick` runs a few classes. Prints measured numbers; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from remote_monitor.analysis.histogram import Histogram, fill_histogram
from remote_monitor.analysis.spe_fit import fit_spe
from remote_monitor.analysis.units import MV_PER_ADC, PC_PER_MV_SAMPLE, gain_to_pc
from remote_monitor.simulation.spe_charge import PmtPhysics, event_charges, pedestal_charges

MUS, GAINS, NOISES = (0.03, 0.1, 0.5, 1.0, 2.5), (0.5e7, 1e7, 2e7), (0.3, 1.0)


MAX_EVENTS = 4_000_000  # every event has its own simulated noise record (30 us each): 2 min per class at most
STAT_GOAL = 0.009  # relative statistical gain error aimed at (the issue asks for 1 % or better)


def n_events(mu: float) -> int:
    """First guess of the events for a statistical gain error of about 1 % (refined by `fit_class`)."""
    return int(min(max(10_000 / mu, 60_000), 400_000))


def fit_class(rng: np.random.Generator, mu: float, gain: float, noise_mv: float) -> tuple[int, Any, Any]:
    """(events, full fit, seed fit) of one class, with enough events for STAT_GOAL: when the first guess gives a
    larger statistical error, the class is simulated again with the events scaled by (error / goal)^2, up to
    MAX_EVENTS (the table's stat column shows where that is still not enough). Every event has its own noise
    record: pedestals reused for several events would put their fluctuations into the spectrum."""
    n = n_events(mu)
    while True:
        pedestals = pedestal_charges(rng, noise_mv, n)
        hist = histogram(event_charges(rng, n, mu, gain, PmtPhysics(), pedestals), gain, mu)
        full = fit_spe(hist)
        stat = (full.gain_err_stat or 0.0) / gain
        if full.gain is None or stat <= STAT_GOAL * 1.15 or n >= MAX_EVENTS:
            return n, full, fit_spe(hist, model="seed")
        n = int(min(MAX_EVENTS, n * (stat / STAT_GOAL) ** 2))


BIN_PC = 20 * MV_PER_ADC * PC_PER_MV_SAMPLE / 2  # 20 charge quanta of the extraction (baseline over 40 samples)


def histogram(charges: np.ndarray, gain: float, mu: float) -> Histogram:
    """Bins of a whole number of charge quanta (else the quantised pedestal modulates the counts per bin)."""
    n_bins = int(max(8.0, gain_to_pc(gain) * (mu + 5 * np.sqrt(mu) + 3)) / BIN_PC) + int(3 / BIN_PC)
    lo = -int(3 / BIN_PC) * BIN_PC
    return fill_histogram(charges, n_bins, lo, lo + n_bins * BIN_PC)


def timing(rng: np.random.Generator) -> None:
    """Warm fit time (zfit) and the same binned likelihood minimised with iminuit directly (numpy model)."""
    from iminuit import Minuit

    from remote_monitor.analysis.spe_fit import _fit_range, _start_values
    from remote_monitor.analysis.spe_model import (
        BOUNDS,
        PARAM_NAMES,
        ResponseShape,
        n_pe_terms,
        response_counts,
    )

    ped = pedestal_charges(rng, 0.3, 100_000)
    hist = histogram(event_charges(rng, 100_000, 0.1, 1e7, PmtPhysics(), ped), 1e7, 0.1)
    fit_spe(hist)  # warm-up: traces the graphs
    zt, zt_nosyst = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        fit_spe(hist)
        zt.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fit_spe(hist, systematic=False)
        zt_nosyst.append(time.perf_counter() - t0)
    start = _start_values(hist)
    lo, hi = _fit_range(hist, start)
    shape = ResponseShape(hist.edges[lo:hi + 1], n_pe_terms(start["mu"]))
    counts = hist.counts[lo:hi].astype(float)
    total = counts.sum()

    def nll(*v: float) -> float:
        expected = np.maximum(sum(response_counts(dict(zip(PARAM_NAMES, v, strict=True)), shape, total).values()),
                              1e-300)
        return float(np.sum(expected - counts * np.log(expected)))

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        m = Minuit(nll, *[start[p] for p in PARAM_NAMES], name=PARAM_NAMES)
        m.errordef = 0.5
        m.limits = [BOUNDS[p] for p in PARAM_NAMES]
        m.migrad()
        m.hesse()
        times.append(time.perf_counter() - t0)
    z, zn, im = statistics.median(zt), statistics.median(zt_nosyst), statistics.median(times)
    print(f"warm fit, 100k events at 0.1 PE: zfit {zn:.2f} s (+ systematic refit: {z:.2f} s); "
          f"the same likelihood with iminuit directly (numpy, numeric gradient): {im:.2f} s; "
          f"ratio zfit / iminuit = {zn / im:.1f}")


def classes(quick: bool) -> list[tuple[float, float, float]]:
    if quick:
        return [(0.1, 1e7, 0.3), (0.03, 0.5e7, 0.3), (1.0, 2e7, 1.0), (2.5, 1e7, 0.3)]
    return [(mu, g, n) for n in NOISES for g in GAINS for mu in MUS]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    if not args.no_timing:
        timing(rng)
    print("pedestal width from the noise model: " + ", ".join(
        f"{n} mV -> {np.std(pedestal_charges(rng, n, 20_000)):.3f} pC" for n in NOISES))
    print(f"{'mu':>5} {'gain':>6} {'noise':>5} {'events':>8} | {'bias %':>7} {'pull':>6} {'stat %':>6} "
          f"{'syst %':>6} {'chi2':>5} {'P/V':>5} {'s':>5} | {'seed bias %':>11}")
    pulls, biases, separated = [], [], []
    for mu, gain, noise_mv in classes(args.quick):
        n, full, seed = fit_class(rng, mu, gain, noise_mv)
        if full.gain is None or not full.gain_err:
            print(f"{mu:5.2f} {gain / 1e7:5.1f}e7 {noise_mv:5.1f} {n:8d} | fit {full.status}: {full.reason}")
            continue
        bias, pull = 100 * (full.gain / gain - 1), (full.gain - gain) / full.gain_err
        pulls.append(pull)
        biases.append(bias)
        separated.append(full.peak_to_valley is not None)  # None: Q1 < 2 pedestal widths, no 1-PE peak of its own
        seed_bias = 100 * (seed.gain / gain - 1) if seed.gain else float("nan")
        print(f"{mu:5.2f} {gain / 1e7:5.1f}e7 {noise_mv:5.1f} {n:8d} | {bias:+7.2f} {pull:+6.2f} "
              f"{100 * (full.gain_err_stat or 0) / gain:6.2f} {100 * (full.gain_err_syst or 0) / gain:6.2f} "
              f"{full.chi2_ndf or float('nan'):5.2f} {full.peak_to_valley or float('nan'):5.2f} "
              f"{full.fit_seconds or 0:5.1f} | {seed_bias:+11.2f}"
              f"{'  ' + ','.join(full.at_limit) if full.at_limit else ''}")
    summary("", pulls, biases)
    summary(" with a separated 1-PE peak (P/V given)", *([v for v, s in zip(values, separated, strict=True) if s]
                                                         for values in (pulls, biases)))


def summary(which: str, pulls: list[float], biases: list[float]) -> None:
    """Pull mean and rms, largest bias and classes within 1 % of the true gain."""
    if pulls:
        print(f"{len(pulls)} classes{which}: pull mean {statistics.fmean(pulls):+.2f}, rms "
              f"{float(np.sqrt(np.mean(np.square(pulls)))):.2f}; |bias| max {max(map(abs, biases)):.2f} %, "
              f"classes within 1 %: {sum(abs(b) < 1 for b in biases)} of {len(biases)}")


if __name__ == "__main__":
    main()
