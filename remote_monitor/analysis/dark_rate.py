"""Dark-count rate from pulses counted outside the laser window (Poisson error)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import gammaincc, ndtr


def dark_rate(counts: int, live_ns: float) -> dict[str, Any]:
    """Rate in Hz with its Poisson error (an upper error of 1 count when none was seen)."""
    if live_ns <= 0:
        return {"dark_rate_hz": None, "dark_rate_err_hz": None, "dark_counts": counts, "dark_live_s": 0.0}
    live_s = live_ns * 1e-9
    return {"dark_rate_hz": counts / live_s, "dark_rate_err_hz": math.sqrt(max(counts, 1)) / live_s,
            "dark_counts": counts, "dark_live_s": live_s}


def threshold_efficiency(amp_per_pc: np.ndarray, q1_pc: float | None, sigma1_pc: float | None,
                         threshold_mv: float, under: tuple[float, float, float] | None = None) -> float | None:
    """Fraction of single-PE pulses whose amplitude exceeds the threshold, averaged over the amplitude-per-
    charge of the laser pulses (sampling phase and shape, from the data).

    The 1-PE charge is the SPE fit's: the main peak as a Gamma of mean q1 and width sigma1, plus, with
    under = (fraction w, mean, Gamma shape), the under-amplified photoelectrons, most of which stay below
    the threshold (without them the dark rate comes out low by about w). Without `under`: the main peak as
    a Gaussian (the seed model's fits)."""
    ratios = np.asarray(amp_per_pc, dtype=float)
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(ratios) < 50 or not q1_pc or not sigma1_pc:
        return None
    q_thr = threshold_mv / ratios
    if under is None:
        return float(np.mean(ndtr((q1_pc - q_thr) / sigma1_pc)))
    w, mean_u, shape_u = under
    k1 = (q1_pc / sigma1_pc) ** 2
    main = gammaincc(k1, q_thr * k1 / q1_pc)
    low = gammaincc(shape_u, q_thr * shape_u / mean_u) if mean_u > 0 else 0.0
    return float(np.mean((1 - w) * main + w * low))


def measured_threshold_efficiency(over: int, searched: int, mu: float | None, dark_rate_hz: float | None,
                                  window_ns: float) -> float | None:
    """Fraction of photoelectrons over the dark threshold, measured on the laser pulses: with occupancy mu
    (the SPE fit's, every photoelectron counted) the laser window of an event holds no pulse over threshold
    with probability exp(-mu eff) exp(-dark rate x window), so eff = (-ln(1 - over/searched) - dark) / mu.
    Pulse shape, sampling phase, noise, baseline wander and the whole 1-PE charge spectrum are those of the
    data. None when it cannot be measured (no light, no fit)."""
    if not mu or mu <= 0 or searched <= 0 or not 0 < over < searched:
        return None
    dark = (dark_rate_hz or 0.0) * window_ns * 1e-9
    return (-math.log(1.0 - over / searched) - dark) / mu


def corrected_dark_rate(raw: dict[str, Any], efficiency: float | None) -> dict[str, Any]:
    """The raw counting rate divided by the threshold efficiency (kept as dark_rate_raw_hz)."""
    out = {**raw, "dark_rate_raw_hz": raw["dark_rate_hz"], "threshold_efficiency": efficiency}
    if efficiency and raw["dark_rate_hz"] is not None and efficiency > 0.3:
        out["dark_rate_hz"] = raw["dark_rate_hz"] / efficiency
        out["dark_rate_err_hz"] = raw["dark_rate_err_hz"] / efficiency
    return out
