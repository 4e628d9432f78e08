"""How far the baseline noise moves a pulse's 50 % CFD time (by noise injection), and the TTS less it.

The fitted core width of the PMT-minus-trigger times holds the PMT's transit-time spread and the jitter that the
noise puts on the crossing. Noise injection measures that jitter on the point itself: laser pulses get the samples
of events whose laser window holds no pulse over the dark threshold added (their baseline taken off) and are timed
again by the same code; to first order each pulse's shift is one draw of the jitter, with the point's own pulse
shapes and amplitudes, sampling phase, noise spectrum, pickup and wander. A per-pulse estimate from the baseline rms
over the slope read 0.79 ns on an independent stand whose times needed about 0.55 (neighbouring samples' noise is
correlated); injection read 0.57 there.

The jitter is the half-width of the shifts' central 68 % (their tails, pulses near the timing threshold, would
inflate an rms), and the PMT's TTS the fitted sigma less it in quadrature. On the project's stand (TTS 1.3 ns, 60k
events at 0.2 PE) the fitted sigma read 1.315 / 1.387 / 1.555 ns at 0.3 / 0.6 / 1 mV of noise, less the jitter
1.289 / 1.305 / 1.368 ns; the seventh independent stand (1.4 ns, 0.5 mV low-passed) 1.539, less it 1.429 ns. At
1 mV the jitter is not Gaussian (the fitted core of the times of pulses without any TTS is 0.85 ns wide where their
central 68 % is 0.76 ns wide), so part of it stays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_PAIRS = 4000  # laser pulses (and as many empty windows) kept from a point's first events
MIN_PAIRS = 200  # fewer pulses timed twice: no jitter measured
CENTRAL = (15.865, 84.135)  # percentiles whose half-distance is one sigma of a Gaussian

Retimer = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (PMT rows, trigger rows) -> PMT-minus-trigger ns


@dataclass
class JitterSample:
    """The first MAX_PAIRS timed laser pulses of a point (PMT and trigger rows, their times) and as many events
    whose laser window holds no pulse over the dark threshold (their PMT rows: the noise to inject)."""

    pulses: list[np.ndarray] = field(default_factory=list)
    triggers: list[np.ndarray] = field(default_factory=list)
    times_ns: list[np.ndarray] = field(default_factory=list)
    empties: list[np.ndarray] = field(default_factory=list)

    def add(self, pmt: np.ndarray, trigger: np.ndarray, dt_ns: np.ndarray, over: np.ndarray) -> None:
        """One chunk: dt_ns the pulses' times (NaN: none), over whether the window holds a pulse over the dark
        threshold (0: no, -1: no trigger), as `pulse_times` gives them."""
        timed = np.flatnonzero(np.isfinite(dt_ns))[: MAX_PAIRS - _rows(self.pulses)]
        empty = np.flatnonzero(over == 0)[: MAX_PAIRS - _rows(self.empties)]
        if len(timed):
            self.pulses.append(pmt[timed].copy())
            self.triggers.append(trigger[timed].copy())
            self.times_ns.append(dt_ns[timed].copy())
        if len(empty):
            self.empties.append(pmt[empty].copy())

    def jitter(self, retime: Retimer, baseline_samples: int) -> dict[str, Any] | None:
        """The noise jitter of the CFD time in ns with its error and the pulses it comes from, or None with fewer
        than MIN_PAIRS pulses timed twice (no light, no empty windows)."""
        n = min(_rows(self.pulses), _rows(self.empties))
        if n < MIN_PAIRS:
            return None
        noise = np.concatenate(self.empties)[:n].astype(np.float64)
        noise -= noise[:, :baseline_samples].mean(axis=1, keepdims=True)
        pulses = np.concatenate(self.pulses)[:n].astype(np.float64)
        shifts = retime(pulses + noise, np.concatenate(self.triggers)[:n]) - np.concatenate(self.times_ns)[:n]
        shifts = shifts[np.isfinite(shifts)]
        if len(shifts) < MIN_PAIRS:
            return None
        lo, hi = np.percentile(shifts, CENTRAL)
        sigma = 0.5 * float(hi - lo)
        return {"noise_jitter_ns": sigma, "noise_jitter_err_ns": sigma / math.sqrt(len(shifts)),
                "noise_jitter_pulses": len(shifts)}


def _rows(blocks: list[np.ndarray]) -> int:
    return sum(len(b) for b in blocks)


def tts_less_jitter(timing: dict[str, Any], jitter: dict[str, Any] | None) -> dict[str, Any]:
    """The timing fit's result with the noise jitter and the PMT's TTS sigma (the fitted one less the jitter in
    quadrature, errors propagated); unchanged without a fitted sigma or a jitter. A jitter as wide as the fitted
    core leaves no TTS of the PMT, and says so."""
    sigma, err = timing.get("tts_sigma_ns"), timing.get("tts_sigma_err_ns")
    if timing.get("status") != "ok" or sigma is None or jitter is None:
        return timing
    j, j_err = jitter["noise_jitter_ns"], jitter["noise_jitter_err_ns"]
    out = {**timing, **jitter, "tts_sigma_pmt_ns": None, "tts_sigma_pmt_err_ns": None}
    if j >= sigma:
        out["tts_sigma_pmt_note"] = (f"the noise's jitter of the CFD time ({j:.2f} ns) is as wide as the fitted "
                                     f"core ({sigma:.2f} ns): the PMT's own spread is not measured")
        return out
    pmt = math.sqrt(sigma**2 - j**2)
    out["tts_sigma_pmt_ns"] = pmt
    out["tts_sigma_pmt_err_ns"] = math.hypot(sigma * (err or 0.0), j * j_err) / pmt
    return out
