"""The expected charge spectrum of the charge-level simulation (`spe_charge`): no fluctuations, counts not whole
numbers. A fit of it is biased only by its model, not by one draw's fluctuations (the benchmark's `--asimov`);
Poisson draws of it are spectra with nothing but counting fluctuations."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from remote_monitor.analysis.histogram import Histogram
from remote_monitor.analysis.units import NS_PER_SAMPLE, gain_to_pc
from remote_monitor.simulation.spe_charge import WINDOW_LEN, PmtPhysics, pe_charge_density, pedestal_charges

__all__ = ["expected_histogram", "pedestal_width"]


def pedestal_width(noise_mv: float, records: int) -> float:
    """The pedestal's width in pC (`expected_histogram`'s noise_sigma_pc) for this noise: the standard deviation of
    `records` noise-only records' charges (fixed seed, so that every caller gets the same width)."""
    return float(np.std(pedestal_charges(np.random.default_rng(7), noise_mv, records)))


def expected_histogram(edges: np.ndarray, mu: float, gain: float, noise_sigma_pc: float, n: float,
                       phys: PmtPhysics) -> Histogram:
    """The expected spectrum of n events in these bins: the Poisson sum of n-fold convolutions of
    `pe_charge_density` (FFT on a grid of 0.002 Q1; window dark counts included in the occupancy) smeared with a
    Gaussian pedestal of the given width."""
    step = 0.002 * gain_to_pc(gain)
    cells = np.arange(0.0, edges[-1] + 10 * gain_to_pc(gain), step)
    one = pe_charge_density(cells + step / 2, gain, phys) * step
    size = 1 << int(np.ceil(np.log2(2 * len(cells))))
    occupancy = mu + phys.dark_rate_hz * WINDOW_LEN * NS_PER_SAMPLE * 1e-9
    signal = np.fft.irfft(np.exp(-occupancy) * np.expm1(occupancy * np.fft.rfft(one / one.sum(), size)), size)
    signal = signal[:len(cells)]
    cdf = np.exp(-occupancy) * ndtr(edges / noise_sigma_pc) + \
        ndtr((edges[:, None] - cells[None, :] - step / 2) / noise_sigma_pc) @ signal
    return Histogram(edges, n * np.diff(cdf))
