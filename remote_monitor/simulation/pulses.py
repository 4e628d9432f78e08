"""Analog front end of the simulated stand: PMT pulse shape, electronic noise, digitiser.

Pulse: Gaussian rising edge (sigma 4.1 ns: 10-90 % rise 6.9 ns) and exponential fall (9.5 ns): FWHM 11.4 ns.
A pulse's time is its 50 % constant-fraction time on the rising edge. Noise: white noise filtered to a few
hundred MHz (band-limited), a slow baseline wander and a small pickup line, per event with random phases.
The noise level is the rms of the white noise before the low-pass (per sample 0.61 of it after the low-pass);
its charge over the 120 ns window after baseline subtraction is about 0.49 pC per mV.
Digitiser: 14 bit, a DC offset per channel and point, clipping at 0 and 16383.
"""

from __future__ import annotations

import math

import numpy as np

from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE

ADC_MAX = 16383
RISE_SIGMA_NS = 4.1
FALL_NS = 9.5
CF50_TO_PEAK_NS = RISE_SIGMA_NS * math.sqrt(2 * math.log(2))
PULSE_SAMPLES = 48  # 96 ns: 10 ns before the CF time to 86 ns after (tail below 1e-4)
NOISE_TAPS = np.array([0.25, 0.5, 0.25])  # low-pass of unit DC gain: per-sample rms 0.61 x the white rms
WANDER_MV, WANDER_PERIOD_NS = 0.1, 20000.0
PICKUP_MV, PICKUP_PERIOD_NS = 0.12, 33.0


def pulse_shape(t_ns: np.ndarray) -> np.ndarray:
    """Unnormalised pulse height at time t relative to the 50 % constant-fraction time."""
    dt = t_ns - CF50_TO_PEAK_NS
    rise = np.exp(-0.5 * (np.minimum(dt, 0.0) / RISE_SIGMA_NS) ** 2)
    return np.where(dt < 0, rise, np.exp(-np.maximum(dt, 0.0) / FALL_NS))


def add_pulses(wave_mv: np.ndarray, rows: np.ndarray, t_ns: np.ndarray, charge_pc: np.ndarray) -> None:
    """Add pulses (event row, CF time in ns from the record start, charge) to wave_mv in place.

    Each pulse is sampled at its own sub-sample phase and scaled so that its sum (mV * 0.04 pC) is the charge;
    parts beyond the record are lost, as on the digitiser."""
    if len(rows) == 0:
        return
    n, length = wave_mv.shape
    first = np.floor((t_ns - 10.0) / NS_PER_SAMPLE).astype(np.int64)
    idx = first[:, None] + np.arange(PULSE_SAMPLES)
    shape = pulse_shape(idx * NS_PER_SAMPLE - t_ns[:, None])
    shape *= (charge_pc / PC_PER_MV_SAMPLE / shape.sum(axis=1))[:, None]
    inside = (idx >= 0) & (idx < length)
    flat = (rows[:, None] * length + idx)[inside]
    wave_mv += np.bincount(flat, weights=shape[inside], minlength=n * length).reshape(n, length)


def noise(rng: np.random.Generator, n: int, length: int, rms_mv: float) -> np.ndarray:
    """Band-limited white noise (white of rms `rms_mv`, low-passed), plus baseline wander and pickup."""
    white = rng.normal(0.0, rms_mv, (n, length + 2))
    out = NOISE_TAPS[0] * white[:, :-2] + NOISE_TAPS[1] * white[:, 1:-1] + NOISE_TAPS[2] * white[:, 2:]
    t = np.arange(length) * NS_PER_SAMPLE
    for amp, period in ((WANDER_MV, WANDER_PERIOD_NS), (PICKUP_MV, PICKUP_PERIOD_NS)):
        phase = rng.uniform(0, 2 * math.pi, (n, 1))
        out += amp * np.sin(2 * math.pi * t / period + phase)
    return out.astype(np.float64)


def digitise(mv: np.ndarray, baseline_adc: float, polarity: int) -> np.ndarray:
    """14-bit ADC codes of a signal in mV on a DC offset, clipped to the ADC range."""
    return np.clip(np.rint(baseline_adc + polarity * mv / MV_PER_ADC), 0, ADC_MAX).astype(np.uint16)
