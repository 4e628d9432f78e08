"""Dark-count rate from pulses counted outside the laser window (Poisson error)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import ndtr


def dark_rate(counts: int, live_ns: float) -> dict[str, Any]:
    """Rate in Hz with its Poisson error (an upper error of 1 count when none was seen)."""
    if live_ns <= 0:
        return {"dark_rate_hz": None, "dark_rate_err_hz": None, "dark_counts": counts, "dark_live_s": 0.0}
    live_s = live_ns * 1e-9
    return {"dark_rate_hz": counts / live_s, "dark_rate_err_hz": math.sqrt(max(counts, 1)) / live_s,
            "dark_counts": counts, "dark_live_s": live_s}


def threshold_efficiency(amp_per_pc: np.ndarray, q1_pc: float | None, sigma1_pc: float | None,
                         threshold_mv: float) -> float | None:
    """Fraction of single-PE pulses whose amplitude exceeds the threshold: the SPE charge (Gaussian q1,
    sigma1 from the SPE fit) times the amplitude-per-charge of the laser pulses (sampling phase and shape,
    from the data), averaged over the measured amplitude-per-charge values."""
    ratios = np.asarray(amp_per_pc, dtype=float)
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(ratios) < 50 or not q1_pc or not sigma1_pc:
        return None
    return float(np.mean(ndtr((q1_pc - threshold_mv / ratios) / sigma1_pc)))


def corrected_dark_rate(raw: dict[str, Any], efficiency: float | None) -> dict[str, Any]:
    """The raw counting rate divided by the threshold efficiency (kept as dark_rate_raw_hz)."""
    out = {**raw, "dark_rate_raw_hz": raw["dark_rate_hz"], "threshold_efficiency": efficiency}
    if efficiency and raw["dark_rate_hz"] is not None and efficiency > 0.3:
        out["dark_rate_hz"] = raw["dark_rate_hz"] / efficiency
        out["dark_rate_err_hz"] = raw["dark_rate_err_hz"] / efficiency
    return out
