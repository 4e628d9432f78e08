"""One numba pass per event: baseline, first threshold crossing and window charge from the raw ADC samples.

The arithmetic is the stand's Pyrate math of `charges.corrected_mv` / `pulse_start` / `window_charge_pc`
in the same floating-point types (float32 waveform, float64 sum over the window in sample order), so the
results are bit for bit those of the numpy version, without any full-record float array."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _baseline(samples, e, n_base):  # pragma: no cover - compiled
    total = 0
    for j in range(n_base):
        total += samples[e, j]
    return np.float32(total) / np.float32(n_base)


@njit(cache=True, nogil=True, inline="always")
def _over(sample, base, scale, threshold):  # pragma: no cover - compiled
    """The stand's test of one sample, in its float32 arithmetic."""
    return (np.float32(sample) - base) * scale > threshold


@njit(cache=True, nogil=True)
def _integer_cut(base, scale, threshold):  # pragma: no cover - compiled
    """The ADC value where `_over` switches: with scale > 0 the smallest sample that is over (65536: none),
    with scale < 0 the largest one (-1: none). `_over` is monotonic in the sample (float rounding keeps order),
    so the exact switch is found by stepping from the value the threshold gives in float64 (one or two tests)
    and the scans compare integers only."""
    guess = np.float64(base) + np.float64(threshold) / np.float64(scale)
    if not math.isfinite(guess):
        return _integer_cut_by_bisection(base, scale, threshold)
    if scale > 0:
        cut = math.ceil(min(max(guess, 0.0), 65536.0))
        while cut > 0 and _over(cut - 1, base, scale, threshold):
            cut -= 1
        while cut < 65536 and not _over(cut, base, scale, threshold):
            cut += 1
        return cut
    cut = math.floor(min(max(guess, -1.0), 65535.0))
    while cut < 65535 and _over(cut + 1, base, scale, threshold):
        cut += 1
    while cut >= 0 and not _over(cut, base, scale, threshold):
        cut -= 1
    return cut


@njit(cache=True, nogil=True)
def _integer_cut_by_bisection(base, scale, threshold):  # pragma: no cover - compiled
    """`_integer_cut` by bisection over the whole 16-bit range (for a threshold/scale that is not finite)."""
    rising = scale > 0
    lo, hi = -1, 65536  # rising: _over(lo) false, _over(hi) true; falling: the other way (by convention)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _over(mid, base, scale, threshold) == rising:
            hi = mid
        else:
            lo = mid
    return hi if rising else lo


@njit(cache=True, nogil=True)
def trigger_starts(samples, baseline_samples, mv_per_adc, threshold_mv, out):  # pragma: no cover - compiled
    """First sample of each event over threshold_mv (positive pulses), -1 if none."""
    n, length = samples.shape
    n_base = min(baseline_samples, length)
    scale = np.float32(mv_per_adc)
    threshold = np.float32(threshold_mv)
    for e in range(n):
        cut = _integer_cut(_baseline(samples, e, n_base), scale, threshold)
        out[e] = -1
        for j in range(length):
            if samples[e, j] >= cut:
                out[e] = j
                break


@njit(cache=True, nogil=True)
def _quiet_baseline(samples, e, n_base, base, scale, veto):  # pragma: no cover - compiled
    """Whether every baseline sample of event e stays within veto mV of the baseline mean, either way."""
    if not math.isfinite(veto):
        return True
    below = _integer_cut(base, scale, veto)  # samples at or under it are a pulse (scale < 0)
    above = _integer_cut(base, -scale, veto)  # samples at or over it stray the other way
    for j in range(n_base):  # noqa: SIM110 (numba compiles the loop, not all() of a generator)
        if samples[e, j] <= below or samples[e, j] >= above:
            return False
    return True


@njit(cache=True, nogil=True)
def pmt_features(samples, baseline_samples, mv_per_adc, threshold_mv, window_lo, window_length,
                 leading_edge, pre_samples, pc_per_mv_sample, start_out, charge_out, veto_mv,
                 quiet_out):  # pragma: no cover
    """Negative pulses: first sample over threshold (-1: none), the charge in pC of the window, and whether the
    baseline samples stay within veto_mv of their mean (inf: always).

    The window starts at window_lo[e] (fixed window) or pre_samples before the pulse start (leading edge),
    is window_length samples long and is clipped to the record. Only the baseline and the window are
    converted to mV; the pulse search compares raw integers with the exact integer threshold."""
    n, length = samples.shape
    n_base = min(baseline_samples, length)
    scale = np.float32(-mv_per_adc)
    threshold = np.float32(threshold_mv)
    veto = np.float32(veto_mv)
    for e in range(n):
        base = _baseline(samples, e, n_base)
        quiet_out[e] = _quiet_baseline(samples, e, n_base, base, scale, veto)
        cut = _integer_cut(base, scale, threshold)
        start = -1
        for j in range(length):
            if samples[e, j] <= cut:
                start = j
                break
        lo = start - pre_samples if leading_edge else window_lo[e]
        hi = min(max(lo + window_length, 0), length)
        lo = min(max(lo, 0), length)
        running = 0.0
        for j in range(lo, hi):
            running += np.float64((np.float32(samples[e, j]) - base) * scale)
        start_out[e] = start
        charge_out[e] = running * pc_per_mv_sample
