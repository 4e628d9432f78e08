"""How far the baseline noise moves a pulse's 50 % CFD time (by noise injection), and the TTS less it.

The fitted core width of the PMT-minus-trigger times holds the PMT's transit-time spread and the jitter that the
noise puts on the crossing. Noise injection measures that jitter on the point itself: laser pulses get the samples
of events whose laser window holds no pulse over the dark threshold added (their baseline taken off) and are timed
again by the same code; to first order each pulse's shift is one draw of the jitter, with the point's own pulse
shapes and amplitudes, sampling phase, noise spectrum, pickup and wander. A per-pulse estimate from the baseline rms
over the slope read 0.79 ns on an independent stand whose times needed about 0.55 (neighbouring samples' noise is
correlated); injection read 0.57 there.

The jitter is the half-width of the shifts' central 68 % (their tails, pulses near the timing threshold, would
inflate an rms) over the pulses timed in the fitted peak's core, those the injected noise left untimed counted as
far shifts (`central_half_width`), and the PMT's TTS the fitted sigma less it in quadrature, with a tenth of the
jitter as its systematic error. On the project's stand (TTS 1.3 ns, 60k events at 0.2 PE, seeds 4 and 5) the fitted
sigma read 1.30-1.34 / 1.38-1.39 / 1.56 ns at 0.3 / 0.6 / 1 mV of noise, less the jitter 1.27-1.31 / 1.29-1.30 /
1.35-1.37 ns; the eighth independent stand (1.3 ns, 0.4 mV low-passed at 130 MHz, 25 points) 1.28-1.33 ns (pulls
+0.17 / 0.65), and at 1 mV (six points of 150k events at 0.12 PE) 1.70-1.73, less it 1.36-1.41 ns (1.39-1.43 with
the untimed pulses left out); the seventh (1.4 ns, 0.5 mV) 1.40-1.45 ns; the sixth (1.3 ns, 1 mV at 125 MHz)
1.35-1.48 ns. At 1 mV part of the jitter stays: on the eighth stand's pulses without any TTS the times' central 68 %
is 1.07 ns wide where injection reads 0.98-1.06 ns (the jitter grows slower than the noise there: 0.47 / 1.08 /
1.33 ns at 0.4 / 1 / 1.41 mV, and injection adds noise on top of the data's own).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from remote_monitor.analysis.timing_fit import signal_fwhm

JITTER_SYST = 0.1  # relative: injection against the jitter itself read -7 ... +8 % (tests/test_timing_jitter.py)
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

    def jitter(self, retime: Retimer, baseline_samples: int, core_ns: tuple[float, float]) -> dict[str, Any] | None:
        """The noise jitter of the CFD time in ns with its error and the pulses it comes from: those timed inside
        core_ns, the fitted peak's core (noise over the timing threshold, timed anywhere in the window, was 55 % of
        the timed events of an independent stand at 1 mV and 0.03 PE, and doubled the jitter), or None with fewer
        than MIN_PAIRS pulses timed twice (no light, no empty windows)."""
        times = np.concatenate(self.times_ns) if self.times_ns else np.zeros(0)
        in_core = np.flatnonzero((times >= core_ns[0]) & (times <= core_ns[1]))
        n = min(len(in_core), _rows(self.empties))
        if n < MIN_PAIRS:
            return None
        in_core = in_core[:n]
        noise = np.concatenate(self.empties)[:n].astype(np.float64)
        noise -= noise[:, :baseline_samples].mean(axis=1, keepdims=True)
        pulses = np.concatenate(self.pulses)[in_core].astype(np.float64)
        shifts = retime(pulses + noise, np.concatenate(self.triggers)[in_core]) - times[in_core]
        timed = shifts[np.isfinite(shifts)]
        if len(timed) < MIN_PAIRS:
            return None
        sigma = central_half_width(timed, lost=len(shifts) - len(timed))
        return {"noise_jitter_ns": sigma, "noise_jitter_err_ns": sigma / math.sqrt(len(timed)),
                "noise_jitter_pulses": len(timed), "noise_jitter_lost": len(shifts) - len(timed)}


FAR_NS = 1e6  # where a lost pulse's shift is counted: beyond any timed one


def central_half_width(shifts: np.ndarray, lost: int = 0) -> float:
    """Half the distance between the CENTRAL percentiles of the shifts, with `lost` pulses (no longer timed once the
    noise was added: pushed under the timing threshold) counted as far shifts, half on each side. The noise moved
    their times out of reach; left out, they would narrow the width to the pulses it moved least. On the eighth
    independent stand at 1 mV (2-2.5 % of the pulses lost) counting them widened the jitter by 3-5 %."""
    far = np.full(lost // 2, -FAR_NS), np.full(lost - lost // 2, FAR_NS)
    lo, hi = np.percentile(np.concatenate([shifts, *far]), CENTRAL)
    return 0.5 * float(hi - lo)


def _rows(blocks: list[np.ndarray]) -> int:
    return sum(len(b) for b in blocks)


CORE_SIGMAS = 3.0  # the pulses whose jitter is measured: timed within this many fitted sigmas of the transit time


def timing_core(timing: dict[str, Any]) -> tuple[float, float] | None:
    """The fitted peak's core (transit time +- CORE_SIGMAS sigma) in ns, or None without a fitted peak."""
    if timing.get("status") != "ok" or timing.get("tts_sigma_ns") is None or timing.get("transit_time_ns") is None:
        return None
    half = CORE_SIGMAS * timing["tts_sigma_ns"]
    return timing["transit_time_ns"] - half, timing["transit_time_ns"] + half


def tts_less_jitter(timing: dict[str, Any], jitter: dict[str, Any] | None) -> dict[str, Any]:
    """The timing fit's result with the noise jitter and the PMT's TTS sigma (the fitted one less the jitter in
    quadrature; its error from both, the jitter's with JITTER_SYST of it) and FWHM; unchanged without a fitted
    sigma or a jitter. A jitter as wide as the fitted core leaves no TTS of the PMT, and says so."""
    sigma, err = timing.get("tts_sigma_ns"), timing.get("tts_sigma_err_ns")
    if timing.get("status") != "ok" or sigma is None or jitter is None:
        return timing
    j = jitter["noise_jitter_ns"]
    j_err = math.hypot(jitter["noise_jitter_err_ns"], JITTER_SYST * j)
    out = {**timing, **jitter, "tts_sigma_pmt_ns": None, "tts_sigma_pmt_err_ns": None, "tts_fwhm_pmt_ns": None,
           "tts_fwhm_pmt_err_ns": None}
    if j >= sigma:
        out["tts_sigma_pmt_note"] = (f"the noise's jitter of the CFD time ({j:.2f} ns) is as wide as the fitted "
                                     f"core ({sigma:.2f} ns): the PMT's own spread is not measured")
        return out
    pmt = math.sqrt(sigma**2 - j**2)
    out["tts_sigma_pmt_ns"] = pmt
    out["tts_sigma_pmt_err_ns"] = math.hypot(sigma * (err or 0.0), j * j_err) / pmt
    return {**out, **_pmt_fwhm(timing, pmt, j * j_err / pmt**2)}


GAUSS_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _pmt_fwhm(timing: dict[str, Any], sigma_pmt: float, jitter_rel_err: float) -> dict[str, Any]:
    """The FWHM of the fitted signal shape (core + late tail) with the PMT's sigma in place of the fitted one (the
    jitter widens both alike), its error the fit's FWHM error scaled, and the jitter's part of sigma's."""
    fwhm, fwhm_err = timing.get("tts_fwhm_ns"), timing.get("tts_fwhm_err_ns") or 0.0
    tau, late = timing.get("tau_ns"), timing.get("late_fraction") or 0.0
    if not fwhm:
        return {}
    pmt = GAUSS_FWHM * sigma_pmt if tau is None else signal_fwhm(timing["transit_time_ns"], sigma_pmt, tau, late)
    return {"tts_fwhm_pmt_ns": pmt, "tts_fwhm_pmt_err_ns": pmt * math.hypot(fwhm_err / fwhm, jitter_rel_err)}
