"""The noise's jitter of the CFD time by noise injection, against the jitter itself (pulses of one shape at one
time: their times spread by the noise alone), with white and with band-limited noise; the PMT's TTS less it on
the simulated stand at a noise where the fitted core is 12 % too wide."""

from __future__ import annotations

import math

import numpy as np
import pytest

from remote_monitor.analysis.point_extras import ExtrasAccumulator
from remote_monitor.analysis.pulse_times import TimingSettings, pulse_times
from remote_monitor.analysis.timing_fit import fit_timing, signal_fwhm
from remote_monitor.analysis.timing_jitter import (
    JITTER_SYST,
    MIN_PAIRS,
    central_half_width,
    timing_core,
    tts_less_jitter,
)
from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms

from .waveform_helpers import trigger_row

LENGTH, TRIGGER_AT, PULSE_AT = 400, 60, 60 + 163.3  # samples; the pulse's start 326.6 ns after the trigger


def _rows(noise_mv: np.ndarray, pulse_mv: float) -> tuple[np.ndarray, np.ndarray]:
    """Trigger and PMT ADC rows: a linear-edge trigger, and (pulse_mv > 0) a negative pulse rising over ~7 ns and
    falling over ~15 ns, always at the same sub-sample time, on top of the given noise."""
    s = np.arange(LENGTH, dtype=float)
    trig = trigger_row(LENGTH, TRIGGER_AT)
    x = np.clip(s - PULSE_AT, 0, None) * NS_PER_SAMPLE / 4.0
    shape = x**2 * np.exp(-x) / (4 * math.exp(-2))  # peak 1 at 8 ns after the start
    pmt = 14000 - (pulse_mv * shape + noise_mv) / MV_PER_ADC
    n = len(noise_mv)
    return np.tile(np.rint(trig).astype(np.uint16), (n, 1)), np.rint(pmt).astype(np.uint16)


def _noise(rng: np.random.Generator, n: int, rms_mv: float, smooth: int) -> np.ndarray:
    """White noise, or (smooth > 1) white noise averaged over `smooth` neighbouring samples (correlated between
    neighbours, as a band-limited front end makes it), scaled to rms_mv."""
    white = rng.normal(0.0, 1.0, (n, LENGTH + smooth))
    kernel = np.ones(smooth) / smooth
    noise = np.array([np.convolve(row, kernel, mode="valid")[:LENGTH] for row in white])
    return noise * rms_mv / noise.std()


@pytest.mark.parametrize("smooth", [1, 4])
def test_noise_injection_measures_the_jitter_the_noise_puts_on_the_cfd_time(smooth: int) -> None:
    """Without any TTS the pulses' times spread by the jitter alone; injection, from the noise of the empty
    events, finds the same width (white noise and noise averaged over 4 samples)."""
    rng = np.random.default_rng(7 + smooth)
    n = 4000
    trig_lit, pmt_lit = _rows(_noise(rng, n, 1.0, smooth), 8.0)
    trig_empty, pmt_empty = _rows(_noise(rng, n, 1.0, smooth), 0.0)
    acc = ExtrasAccumulator(TimingSettings())
    acc.add(np.vstack([trig_lit, trig_empty]), np.vstack([pmt_lit, pmt_empty]))
    times = pulse_times(pmt_lit, trig_lit, TimingSettings())[0]  # (not the empty events' noise over 3 mV)
    spread = central_half_width(times[np.isfinite(times)])
    jitter = acc.noise_jitter((float(np.nanmedian(times)) - 5.0, float(np.nanmedian(times)) + 5.0))
    assert jitter is not None and jitter["noise_jitter_pulses"] > 0.95 * n
    assert spread > 0.2  # ns: a jitter to measure
    assert jitter["noise_jitter_ns"] == pytest.approx(spread, rel=0.1), (jitter, spread)


def test_pulses_the_noise_pushed_under_the_timing_threshold_count_as_far_shifts() -> None:
    """The pulses whose shift would be largest are the ones the injected noise loses (no longer timed): counted as
    far shifts, half on each side, the central width is the whole sample's; left out, it reads narrow."""
    shifts = np.random.default_rng(3).normal(0.0, 1.0, 20000)
    kept = shifts[np.abs(shifts) < 1.5]
    lost = len(shifts) - len(kept)
    assert central_half_width(kept, lost) == pytest.approx(central_half_width(shifts), abs=0.01)
    assert central_half_width(shifts) == pytest.approx(1.0, abs=0.03)
    assert central_half_width(kept) < 0.85  # (what leaving them out gave)


def test_without_light_or_without_empty_windows_there_is_no_jitter() -> None:
    rng = np.random.default_rng(3)
    dark = ExtrasAccumulator(TimingSettings())
    dark.add(*_rows(_noise(rng, 1000, 0.5, 1), 0.0))
    assert dark.noise_jitter((300.0, 350.0)) is None
    full = ExtrasAccumulator(TimingSettings())
    full.add(*_rows(_noise(rng, 1000, 0.5, 1), 8.0))
    assert full.noise_jitter((300.0, 350.0)) is None  # no window without a pulse: no noise to inject
    assert MIN_PAIRS <= 1000
    assert full.noise_jitter(None) is None  # no fitted peak


def test_only_the_pulses_timed_in_the_fitted_core_give_the_jitter() -> None:
    """Events timed away from the peak (noise over the timing threshold, late pulses) are left out: here half the
    pulses come 26 ns early, outside the core."""
    rng = np.random.default_rng(4)
    trig, pmt = _rows(_noise(rng, 1000, 0.5, 1), 8.0)
    early_trig, early = _rows(_noise(rng, 1000, 0.5, 1), 0.0)
    s = np.arange(LENGTH, dtype=float)
    x = np.clip(s - (PULSE_AT - 13.0), 0, None) * NS_PER_SAMPLE / 4.0
    early = (early - np.rint(8.0 * x**2 * np.exp(-x) / (4 * math.exp(-2)) / MV_PER_ADC)).astype(np.uint16)
    empty_trig, empty = _rows(_noise(rng, 2000, 0.5, 1), 0.0)
    acc = ExtrasAccumulator(TimingSettings())
    acc.add(np.vstack([trig, early_trig, empty_trig]), np.vstack([pmt, early, empty]))
    timing = {"status": "ok", "transit_time_ns": float(np.nanmedian(pulse_times(pmt, trig, TimingSettings())[0])),
              "tts_sigma_ns": 0.5}
    jitter = acc.noise_jitter(timing_core(timing))
    assert jitter is not None and 950 <= jitter["noise_jitter_pulses"] <= 1000


def test_the_pmt_tts_is_the_fitted_core_less_the_jitter_in_quadrature() -> None:
    timing = {"status": "ok", "tts_sigma_ns": 1.5, "tts_sigma_err_ns": 0.03}
    jitter = {"noise_jitter_ns": 0.9, "noise_jitter_err_ns": 0.02, "noise_jitter_pulses": 2500}
    out = tts_less_jitter(timing, jitter)
    assert out["tts_sigma_pmt_ns"] == pytest.approx(1.2)
    jitter_err = math.hypot(0.02, JITTER_SYST * 0.9)  # statistical and the injection's own accuracy
    assert out["tts_sigma_pmt_err_ns"] == pytest.approx(math.hypot(1.5 * 0.03, 0.9 * jitter_err) / 1.2)
    assert out["noise_jitter_ns"] == 0.9 and out["tts_sigma_ns"] == 1.5
    assert out["tts_fwhm_pmt_ns"] is None  # no fitted FWHM to scale
    shaped = {**timing, "transit_time_ns": 50.0, "tts_fwhm_ns": 3.6, "tts_fwhm_err_ns": 0.072}
    gauss = tts_less_jitter({**shaped, "tau_ns": None, "late_fraction": 0.0}, jitter)
    assert gauss["tts_fwhm_pmt_ns"] == pytest.approx(2.35482 * 1.2, rel=1e-5)
    assert gauss["tts_fwhm_pmt_err_ns"] == pytest.approx(
        gauss["tts_fwhm_pmt_ns"] * math.hypot(0.02, 0.9 * jitter_err / 1.2**2))
    tailed = tts_less_jitter({**shaped, "tau_ns": 5.0, "late_fraction": 0.2}, jitter)
    assert tailed["tts_fwhm_pmt_ns"] == pytest.approx(signal_fwhm(50.0, 1.2, 5.0, 0.2))
    assert tailed["tts_fwhm_pmt_ns"] > gauss["tts_fwhm_pmt_ns"]  # the late tail widens it
    wide = tts_less_jitter(timing, {**jitter, "noise_jitter_ns": 1.6})
    assert wide["tts_sigma_pmt_ns"] is None and "as wide as the fitted core" in wide["tts_sigma_pmt_note"]
    assert tts_less_jitter(timing, None) == timing
    assert tts_less_jitter({**timing, "status": "no_peak"}, jitter)["status"] == "no_peak"


def test_on_the_stand_at_0_8_mv_the_pmt_tts_is_the_truth_where_the_fitted_core_is_too_wide() -> None:
    """The simulated stand (TTS 1.3 ns, 0.2 PE, 40k events) at 0.8 mV of band-limited noise: the fitted core
    read 1.46-1.47 ns (seeds 4, 5), the PMT's TTS 1.32-1.33 ns (1.33-1.35 with the untimed pulses left out)."""
    sim = SimulationConfig(record_length=260, noise_mv=0.8, seed=4)
    waves = simulate_point_waveforms(np.random.default_rng(4), 40000, 260, 1.0e7, 0.2, sim)
    acc = ExtrasAccumulator(TimingSettings())
    for start in range(0, 40000, 10000):
        acc.add(waves[0][start:start + 10000], waves[2][start:start + 10000])
    truth = sim.physics.tts_sigma_ns
    fitted = fit_timing(acc.times.pmt_minus_trigger_ns()).to_dict()
    timing = tts_less_jitter(fitted, acc.noise_jitter(timing_core(fitted)))
    assert timing["tts_sigma_ns"] > 1.08 * truth, timing
    assert abs(timing["tts_sigma_pmt_ns"] - truth) < 0.05 * truth + 2 * timing["tts_sigma_pmt_err_ns"], timing
