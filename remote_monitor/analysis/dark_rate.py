"""Dark-count rate from pulses counted outside the laser window (Poisson error)."""

from __future__ import annotations

import math
from typing import Any


def dark_rate(counts: int, live_ns: float) -> dict[str, Any]:
    """Rate in Hz with its Poisson error (an upper error of 1 count when none was seen)."""
    if live_ns <= 0:
        return {"dark_rate_hz": None, "dark_rate_err_hz": None, "dark_counts": counts, "dark_live_s": 0.0}
    live_s = live_ns * 1e-9
    return {"dark_rate_hz": counts / live_s, "dark_rate_err_hz": math.sqrt(max(counts, 1)) / live_s,
            "dark_counts": counts, "dark_live_s": live_s}
