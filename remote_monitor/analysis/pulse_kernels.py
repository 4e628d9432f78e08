"""One numba pass per event: baseline, first threshold crossing and window charge from the raw ADC samples.

The arithmetic is the stand's Pyrate math of `charges.corrected_mv` / `pulse_start` / `window_charge_pc`
done sample by sample in the same floating-point types (float32 waveform, float64 running sum), so the
results are bit for bit those of the numpy version, without any full-record float array."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _baseline(samples, e, n_base):  # pragma: no cover - compiled
    total = 0
    for j in range(n_base):
        total += samples[e, j]
    return np.float32(total) / np.float32(n_base)


@njit(cache=True, nogil=True)
def trigger_starts(samples, baseline_samples, mv_per_adc, threshold_mv, out):  # pragma: no cover - compiled
    """First sample of each event over threshold_mv (positive pulses), -1 if none."""
    n, length = samples.shape
    n_base = min(baseline_samples, length)
    scale = np.float32(mv_per_adc)
    threshold = np.float32(threshold_mv)
    for e in range(n):
        base = _baseline(samples, e, n_base)
        out[e] = -1
        for j in range(length):
            if (np.float32(samples[e, j]) - base) * scale > threshold:
                out[e] = j
                break


@njit(cache=True, nogil=True)
def pmt_features(samples, baseline_samples, mv_per_adc, threshold_mv, window_lo, window_length,
                 leading_edge, pre_samples, pc_per_mv_sample, start_out, charge_out):  # pragma: no cover
    """Negative pulses: first sample over threshold (-1: none) and the charge in pC of the window.

    The window starts at window_lo[e] (fixed window) or pre_samples before the pulse start (leading edge),
    is window_length samples long and is clipped to the record."""
    n, length = samples.shape
    n_base = min(baseline_samples, length)
    scale = np.float32(-mv_per_adc)
    threshold = np.float32(threshold_mv)
    cumulative = np.zeros(length + 1, dtype=np.float64)
    for e in range(n):
        base = _baseline(samples, e, n_base)
        start = -1
        running = 0.0
        for j in range(length):
            mv = (np.float32(samples[e, j]) - base) * scale
            if start < 0 and mv > threshold:
                start = j
            running += np.float64(mv)
            cumulative[j + 1] = running
        lo = start - pre_samples if leading_edge else window_lo[e]
        hi = min(max(lo + window_length, 0), length)
        lo = min(max(lo, 0), length)
        start_out[e] = start
        charge_out[e] = (cumulative[hi] - cumulative[lo]) * pc_per_mv_sample
