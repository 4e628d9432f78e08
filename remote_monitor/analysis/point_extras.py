"""Per point, besides the gain: PMT timing, dark pulses, pedestal and SiPM light-monitor sums, filled block by
block from raw samples (any reader: WaveDump or the Korean ROOT files), then turned into results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from remote_monitor.analysis.charges import rising_trigger
from remote_monitor.analysis.dark_rate import (
    MAX_MERGING_BIAS,
    corrected_dark_rate,
    dark_rate,
    fitted_under,
    joined_notes,
    measured_threshold_efficiency,
    merging_bias,
    quarter_pe_share,
    threshold_efficiency,
    unseen_share,
)
from remote_monitor.analysis.detection_efficiency import empty_share_error
from remote_monitor.analysis.pulse_times import (
    AFTER_UNLIT,
    TimingAccumulator,
    TimingSettings,
    pulse_times,
)
from remote_monitor.analysis.timing_jitter import JitterSample
from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE


@dataclass(frozen=True)
class Digitizer:
    """Sample scale of a stand (CAEN defaults; the Korean stand's are configurable)."""

    mv_per_adc: float = MV_PER_ADC
    ns_per_sample: float = NS_PER_SAMPLE
    baseline_samples: int = 40
    trigger_threshold_mv: float = 100.0

    @property
    def pc_per_mv_sample(self) -> float:
        return PC_PER_MV_SAMPLE * self.ns_per_sample / NS_PER_SAMPLE


@dataclass
class ExtrasAccumulator:
    """Sums of one point; `add` takes the raw samples (n_events, record) of trigger, PMT and optional SiPM."""

    timing: TimingSettings
    digitizer: Digitizer = field(default_factory=Digitizer)
    sipm_window_ns: tuple[float, float] = (280.0, 400.0)
    sipm_threshold_pc: float = 1.0
    times: TimingAccumulator = field(default_factory=TimingAccumulator)
    baseline_mv: list[float] = field(default_factory=list)
    baseline_rms_mv: list[float] = field(default_factory=list)
    sipm_charges: list[np.ndarray] = field(default_factory=list)
    jitter_sample: JitterSample = field(default_factory=JitterSample)

    def add(self, trigger: np.ndarray, pmt: np.ndarray, sipm: np.ndarray | None = None) -> None:
        d = self.digitizer
        trigger = rising_trigger(trigger, d.baseline_samples)
        timed = self._pulse_times(pmt, trigger)
        self.times.add(*timed)
        self.jitter_sample.add(pmt, trigger, timed[0], timed[4])
        base = pmt[:, : d.baseline_samples].astype(np.float64) * d.mv_per_adc
        self.baseline_mv.append(float(base.mean()))
        self.baseline_rms_mv.append(float(base.std(axis=1).mean()))
        if sipm is not None:
            self.sipm_charges.append(self._sipm_charge(trigger, sipm))

    def _pulse_times(self, pmt: np.ndarray, trigger: np.ndarray) -> tuple[np.ndarray, ...]:
        d = self.digitizer
        return pulse_times(pmt, trigger, self.timing, baseline_samples=d.baseline_samples,
                           trigger_threshold_mv=d.trigger_threshold_mv, mv_per_adc=d.mv_per_adc,
                           ns_per_sample=d.ns_per_sample)

    def noise_jitter(self, core_ns: tuple[float, float] | None) -> dict[str, Any] | None:
        """The noise jitter of the CFD time of the laser pulses timed in core_ns (`timing_jitter`), or None (as
        without a core)."""
        if core_ns is None:
            return None
        return self.jitter_sample.jitter(lambda pmt, trigger: self._pulse_times(pmt, trigger)[0],
                                         self.digitizer.baseline_samples, core_ns)

    def _sipm_charge(self, trigger: np.ndarray, sipm: np.ndarray) -> np.ndarray:
        d = self.digitizer
        nb = d.baseline_samples
        trig = (trigger - trigger[:, :nb].mean(axis=1, keepdims=True)) * d.mv_per_adc
        over = trig > d.trigger_threshold_mv
        start = np.where(over.any(axis=1), over.argmax(axis=1), -1)
        mv = (sipm - sipm[:, :nb].mean(axis=1, keepdims=True)) * d.mv_per_adc
        cum = np.zeros((len(mv), mv.shape[1] + 1))
        np.cumsum(mv, axis=1, out=cum[:, 1:])
        lo = np.clip(start + round(self.sipm_window_ns[0] / d.ns_per_sample), 0, mv.shape[1])
        hi = np.clip(start + round(self.sipm_window_ns[1] / d.ns_per_sample), 0, mv.shape[1])
        rows = np.arange(len(mv))
        charge = (cum[rows, hi] - cum[rows, lo]) * d.pc_per_mv_sample
        charge = charge[start >= 0]
        return -charge if len(charge) and charge.mean() < 0 else charge  # negative SiPM pulses: made positive

    def sipm_summary(self) -> dict[str, Any] | None:
        """Mean SiPM charge and occupancy (-ln of the fraction of events without SiPM light), with errors."""
        if not self.sipm_charges:
            return None
        q = np.concatenate(self.sipm_charges)
        if len(q) < 2:
            return None
        p0 = float(np.mean(q < self.sipm_threshold_pc))
        occ = -np.log(p0) if p0 > 0 else None
        return {"charge_mean_pc": float(q.mean()), "charge_mean_pc_err": float(q.std() / np.sqrt(len(q))),
                "occupancy": occ, "occupancy_err": empty_share_error(p0, len(q)) if p0 > 0 else None,
                "n_events": len(q)}

    def pedestal(self) -> dict[str, float | None]:
        if not self.baseline_mv:
            return {"baseline_mv": None, "baseline_rms_mv": None}
        return {"baseline_mv": float(np.mean(self.baseline_mv)),
                "baseline_rms_mv": float(np.mean(self.baseline_rms_mv))}

    def dark(self, fit: dict[str, Any] | None = None, no_light: str | None = None,
             fit_window_ns: float = 0.0) -> dict[str, Any]:
        """Dark rate; with the SPE fit and the correction enabled, divided by the threshold efficiency: the one
        measured on the laser pulses when the point has light and its photoelectrons seldom merge there
        (`merging_bias`; the fit's mu holds the dark pulses of its charge window, fit_window_ns long), else the one
        from the fitted 1-PE response. Counted after the laser window too (AFTER_UNLIT), less the afterpulses of
        the photoelectrons under the threshold (`unseen_share`). A fit that failed, or of a PMT without light
        (no_light: why), has no 1-PE response to correct with: the rate is the counted one, and says why."""
        lo, hi = self.timing.laser_window_ns
        counts, noise, live_ns, region = self.times.dark_sample(hi - lo)
        raw = {**dark_rate(counts, live_ns, noise), "dark_region": region}
        if not self.timing.dark_efficiency_correction or not fit:
            return raw
        why = no_light or (None if fit.get("status") == "ok" else f"SPE fit {fit.get('status')}")
        if why:
            return {**corrected_dark_rate(raw, None), "threshold_efficiency_from": None,
                    "dark_rate_note": joined_notes(raw.get("dark_rate_note"),
                                                   f"not corrected for the threshold efficiency: {why}")}
        crossings = counts / (live_ns * 1e-9) if live_ns > 0 else None  # noise too: it crosses in the window as well
        dark_in_mu = (raw["dark_rate_hz"] or 0.0) * fit_window_ns * 1e-9  # counted dark pulses per fitted window
        eff, source = self._threshold_efficiency(fit, crossings, dark_in_mu)
        if region == AFTER_UNLIT and eff is not None and fit.get("mu"):
            mu_laser = max(float(fit["mu"]) - dark_in_mu / eff, 0.0)
            afterpulses = self.times.unseen_afterpulses(unseen_share(mu_laser, eff))
            raw = {**dark_rate(counts, live_ns, noise, afterpulses), "dark_region": region}
        return {**corrected_dark_rate(raw, eff, quarter_pe_share(fit)), "threshold_efficiency_from": source}

    def _threshold_efficiency(self, fit: dict[str, Any], crossings: float | None, dark_in_mu: float = 0.0
                              ) -> tuple[float | None, str]:
        """(the dark counting's threshold efficiency, where it comes from): measured on the laser pulses when the
        point has light and its photoelectrons seldom merge there (`merging_bias`), else from the fitted 1-PE
        response (None without one)."""
        lo, hi = self.timing.laser_window_ns
        measured = measured_threshold_efficiency(self.times.laser_over, self.times.laser_searched, fit.get("mu"),
                                                 crossings, hi - lo, dark_in_mu)
        if measured is not None and 0.3 < measured <= 1.2 and \
                merging_bias(fit.get("mu") or 0.0, min(measured, 1.0)) <= MAX_MERGING_BIAS:
            return min(measured, 1.0), "laser pulses"
        ratios = np.concatenate(self.times.amplitude_per_pc) if self.times.amplitude_per_pc else np.zeros(0)
        return threshold_efficiency(ratios, fit.get("q1_pc"), fit.get("sigma1_pc"), self.timing.dark_threshold_mv,
                                    fitted_under(fit)), "SPE fit"
