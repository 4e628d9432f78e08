"""Per-event pulse timing and dark-pulse counting in one numba pass over a chunk of raw samples.

Timing: the PMT pulse time is the 50 % constant-fraction crossing on the rising edge of the largest pulse in
the laser window, minus the trigger pulse's 50 % crossing (both linearly interpolated between samples).
Dark pulses: threshold up-crossings (re-armed below half the threshold) outside the laser window, counted before it
and after it apart (after it, apart again in events with a laser pulse over the dark threshold), and beside them
the same crossings of the opposite polarity (noise: PMT pulses have one sign). An event whose baseline samples hold
a pulse (its mean then sits too high) adds neither counts nor live time. The photoelectrons' afterpulses (up to
tens of us later) fall after the window, inside a long record: the rate comes from before the window alone where
each event has BEFORE_WINDOW_NS there, else also from after it in events whose window holds no pulse over the dark
threshold; the photoelectrons under the threshold still add theirs there, which the lit events' count after the
window measures (`TimingAccumulator.unseen_afterpulses`).
Counted anywhere outside the window, the project's stand with 1024-sample records read 6.8-7.7 kHz for 3 kHz (now
2.7-3.4 ± 0.4 kHz), and a fifth independent stand (laser 40 ns after the trigger, nothing before the window;
afterpulses 100-350 ns later) 7.5 kHz for 6 kHz. Per event also whether the laser window holds a pulse over the dark
threshold: with the fitted occupancy this measures the fraction of photoelectrons the dark counting sees (its
threshold efficiency) on the data themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE


@dataclass(frozen=True)
class TimingSettings:
    """Where to look for the laser pulse and for dark pulses, relative to the trigger's 50 % crossing."""

    laser_window_ns: tuple[float, float] = (290.0, 370.0)  # PMT pulse search window after the trigger
    dark_exclude_ns: tuple[float, float] = (250.0, 450.0)  # no dark counting here (laser pulse + ringing)
    dark_threshold_mv: float = 4.0
    timing_threshold_mv: float = 3.0  # a laser pulse must exceed this to get a time
    cfd_fraction: float = 0.5
    dark_efficiency_correction: bool = True  # divide by the fraction of SPE pulses over the dark threshold


BEFORE_WINDOW_NS = 100.0  # dark counting before the laser window alone when each event has this much there
AFTER_UNLIT = "outside the laser window (after it only in events without a laser pulse)"  # a dark sample's region


@dataclass
class TimingAccumulator:
    """Times and dark counts of a point, filled chunk by chunk."""

    times: list[np.ndarray] = field(default_factory=list)
    amplitude_per_pc: list[np.ndarray] = field(default_factory=list)
    dark_counts: int = 0  # before the laser window
    dark_ns: float = 0.0
    dark_counts_after: int = 0  # after it, in events without a laser pulse over the dark threshold
    dark_ns_after: float = 0.0
    dark_counts_lit_after: int = 0  # after it, in events with one (its afterpulses too)
    dark_ns_lit_after: float = 0.0
    n_events: int = 0
    laser_searched: int = 0  # events whose laser window was searched (trigger found)
    laser_over: int = 0  # ... with a pulse over the dark threshold in it
    noise_counts: int = 0  # crossings of the opposite polarity before the laser window
    noise_counts_after: int = 0  # ... after it, in the events whose dark pulses after it count
    noise_counts_lit_after: int = 0  # ... after it, in the events with a laser pulse over the threshold

    def add(self, dt_ns: np.ndarray, dark: np.ndarray, live_ns: np.ndarray, amp_per_pc: np.ndarray,
            laser_over: np.ndarray, noise: np.ndarray) -> None:
        """One chunk's output of `pulse_times`."""
        self.laser_searched += int(np.count_nonzero(laser_over >= 0))
        self.laser_over += int(np.count_nonzero(laser_over == 1))
        self.times.append(dt_ns[np.isfinite(dt_ns)])
        self.amplitude_per_pc.append(amp_per_pc[np.isfinite(amp_per_pc)])
        self.dark_counts += int(dark[:, 0].sum())
        self.dark_ns += float(live_ns[:, 0].sum())
        self.dark_counts_after += int(dark[:, 1].sum())
        self.dark_ns_after += float(live_ns[:, 1].sum())
        self.noise_counts += int(noise[:, 0].sum())
        self.noise_counts_after += int(noise[:, 1].sum())
        self.dark_counts_lit_after += int(dark[:, 2].sum())
        self.dark_ns_lit_after += float(live_ns[:, 2].sum())
        self.noise_counts_lit_after += int(noise[:, 2].sum())
        self.n_events += len(dt_ns)

    def dark_sample(self, window_ns: float) -> tuple[int, int, float, str]:
        """Dark counts, the noise crossings among the same spans, their live time in ns and where they were
        counted: before the laser window, where none of the event's light has arrived, when each event has
        BEFORE_WINDOW_NS there and the window (window_ns long) holds light; else also after it, in events without
        a laser pulse over the threshold (photoelectrons under it still add their afterpulses; without light
        there are none, and the whole record counts)."""
        dark_window = self.laser_window_is_dark(window_ns)
        if self.dark_ns >= BEFORE_WINDOW_NS * max(self.laser_searched, 1) and not dark_window:
            return self.dark_counts, self.noise_counts, self.dark_ns, "before the laser window"
        region = "outside the laser window (no light in it)" if dark_window else AFTER_UNLIT
        return (self.dark_counts + self.dark_counts_after, self.noise_counts + self.noise_counts_after,
                self.dark_ns + self.dark_ns_after, region)

    def unseen_afterpulses(self, share: float) -> tuple[float, float, float, float]:
        """What the photoelectrons under the dark threshold add after the laser window of the events without a laser
        pulse over it, their afterpulses, for a `dark_sample` counted there (AFTER_UNLIT): (counts, noise crossings,
        live ns, count variance) to take off it. The events with a laser pulse over the threshold count the
        afterpulses of theirs after the window; per photoelectron and ns the unseen ones make as many, and share is
        the unseen photoelectrons per event without a seen one over the photoelectrons per event with one
        (`dark_rate.unseen_share`). With the dark rate R per ns, the unlit events' excess is share x (lit counts /
        lit live - R) x unlit live: solved for R, share x unlit / lit live of the lit counts and share of the unlit
        live time come off."""
        if self.dark_ns_lit_after <= 0 or share <= 0:
            return 0.0, 0.0, 0.0, 0.0
        k = share * self.dark_ns_after / self.dark_ns_lit_after
        return (k * self.dark_counts_lit_after, k * self.noise_counts_lit_after, share * self.dark_ns_after,
                k * k * (self.dark_counts_lit_after + self.noise_counts_lit_after))

    def laser_window_is_dark(self, window_ns: float) -> bool:
        """Whether the laser window (window_ns long) held no more pulses over the dark threshold than the rate
        counted before it puts there, within three standard deviations: a laser off, so no afterpulses of its light
        after the window either (at 0.01 PE a 100k-event point holds hundreds over the 24 that 3 kHz puts there)."""
        if not self.laser_searched or self.dark_ns <= 0:
            return False
        expected = self.laser_searched * -math.expm1(-self.dark_counts / self.dark_ns * window_ns)
        return self.laser_over <= expected + 3.0 * math.sqrt(expected) + 1.0

    def pmt_minus_trigger_ns(self) -> np.ndarray:
        return np.concatenate(self.times) if self.times else np.zeros(0)


@njit(cache=True)
def _crossing(v, peak, frac):  # pragma: no cover - compiled
    """Interpolated sample position where v rises through frac * v[peak], walking back from peak."""
    level = frac * v[peak]
    i = peak
    while i > 0 and v[i - 1] >= level:
        i -= 1
    if i == 0:
        return np.nan
    return i - 1 + (level - v[i - 1]) / (v[i] - v[i - 1])


@njit(cache=True)
def _up_crossing(x, threshold, armed):  # pragma: no cover - compiled
    """(1 if the sample x crosses the threshold while armed else 0, armed after it): a crossing disarms, a sample
    under half the threshold re-arms."""
    if armed and x >= threshold:
        return 1, False
    if x < 0.5 * threshold:
        return 0, True
    return 0, armed


@njit(cache=True)
def _quiet(v, n_base, threshold):  # pragma: no cover - compiled
    """Whether the baseline samples stay within the threshold of their mean in both polarities. A pulse among
    them lifts the mean by up to the threshold's size, so that the rest of the event crosses the opposite
    polarity's threshold tens of times as often as noise does: counted as noise and subtracted, its crossings
    took 283 counts from 2600 dark pulses at 1 mV noise on an independent stand (1667 such events of 400k)."""
    for s in range(n_base):  # noqa: SIM110 (numba compiles the loop, not all() of a generator)
        if abs(v[s]) >= threshold:
            return False
    return True


@njit(cache=True)
def _pulse_times_kernel(pmt, trig, n_base, pmt_scale, trig_scale, trig_thr, win_lo, win_hi, exc_lo, exc_hi,
                        time_thr, dark_thr, frac, pc_per_mv_sample, dt_out, dark_out, live_out,
                        ratio_out, over_out, noise_out):  # pragma: no cover - compiled
    n, length = pmt.shape
    v = np.empty(length)
    t = np.empty(length)
    for e in range(n):
        dt_out[e] = np.nan
        ratio_out[e] = np.nan
        dark_out[e, :] = 0
        live_out[e, :] = 0
        noise_out[e, :] = 0
        over_out[e] = -1
        b = 0.0
        for s in range(n_base):
            b += trig[e, s]
        b /= n_base
        tmax = 0
        for s in range(length):
            t[s] = (trig[e, s] - b) * trig_scale
            if t[s] > t[tmax]:
                tmax = s
        if t[tmax] < trig_thr:
            continue
        t0 = _crossing(t, tmax, 0.5)
        if np.isnan(t0):
            continue
        b = 0.0
        for s in range(n_base):
            b += pmt[e, s]
        b /= n_base
        for s in range(length):
            v[s] = (pmt[e, s] - b) * pmt_scale
        lo = max(int(np.ceil(t0 + win_lo)), 1)
        hi = min(int(np.floor(t0 + win_hi)), length - 1)
        if hi > lo:
            peak = lo
            for s in range(lo, hi):
                if v[s] > v[peak]:
                    peak = s
            over_out[e] = 1 if v[peak] >= dark_thr else 0
            if v[peak] >= time_thr:
                dt_out[e] = _crossing(v, peak, frac) - t0
                q = 0.0
                for s in range(max(peak - 4, 0), min(peak + 16, length)):
                    q += v[s]
                q *= pc_per_mv_sample
                if q > 0:
                    ratio_out[e] = v[peak] / q
        if not _quiet(v, n_base, dark_thr):
            continue
        xlo = int(np.floor(t0 + exc_lo))
        xhi = int(np.ceil(t0 + exc_hi))
        armed = v[n_base] < dark_thr
        inverted_armed = -v[n_base] < dark_thr  # the same counting of the opposite polarity: noise alone
        after = 2 if over_out[e] == 1 else 1  # after a laser pulse: its afterpulses too, counted apart
        for s in range(n_base, length):
            if xlo <= s < xhi:
                armed = False
                inverted_armed = False
                continue
            region = after if s >= xhi else 0
            live_out[e, region] += 1
            crossed, armed = _up_crossing(v[s], dark_thr, armed)
            dark_out[e, region] += crossed
            crossed, inverted_armed = _up_crossing(-v[s], dark_thr, inverted_armed)
            noise_out[e, region] += crossed


def pulse_times(pmt: np.ndarray, trigger: np.ndarray, settings: TimingSettings, *, baseline_samples: int = 40,
                trigger_threshold_mv: float = 100.0, pmt_polarity: int = -1, trigger_polarity: int = 1,
                mv_per_adc: float = MV_PER_ADC, ns_per_sample: float = NS_PER_SAMPLE,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per event of a chunk: PMT-minus-trigger time ns (NaN: no pulse), dark pulses and the time searched for
    them in ns (columns: before the laser window, after it in an event without a laser pulse over the dark
    threshold, after it in one with: its afterpulses too), the laser pulse's amplitude per charge in mV/pC
    (NaN: no pulse; for the threshold efficiency of the dark counting), 1/0 whether the laser window has a
    pulse over the dark threshold (-1: not searched, no trigger), and the noise crossings: the dark counting
    of the opposite polarity in the same spans (PMT pulses have one sign, noise both)."""
    n = len(pmt)
    ratio = np.empty(n)
    dt = np.empty(n)
    dark = np.empty((n, 3), dtype=np.int64)
    live = np.empty((n, 3), dtype=np.int64)
    over = np.empty(n, dtype=np.int8)
    noise = np.empty((n, 3), dtype=np.int64)
    s = settings
    _pulse_times_kernel(np.ascontiguousarray(pmt), np.ascontiguousarray(trigger), baseline_samples,
                        mv_per_adc * pmt_polarity, mv_per_adc * trigger_polarity, trigger_threshold_mv,
                        s.laser_window_ns[0] / ns_per_sample, s.laser_window_ns[1] / ns_per_sample,
                        s.dark_exclude_ns[0] / ns_per_sample, s.dark_exclude_ns[1] / ns_per_sample,
                        s.timing_threshold_mv, s.dark_threshold_mv, s.cfd_fraction,
                        PC_PER_MV_SAMPLE * ns_per_sample / NS_PER_SAMPLE, dt, dark, live, ratio, over, noise)
    return dt * ns_per_sample, dark, live * ns_per_sample, ratio, over, noise
