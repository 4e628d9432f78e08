"""Pickup and drift removal (`analysis.pickup`) on waveforms made here: a sine of a few MHz with a random phase per
event, a slope per event, white noise and single photoelectrons in the window."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis import pickup
from remote_monitor.analysis.charges import (
    AnalysisSettings,
    ChannelMap,
    corrected_mv,
    extract_point_charges,
    window_charge_pc,
)
from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE
from remote_monitor.analysis.wavedump_writer import write_binary

LENGTH, WINDOW_LO, WINDOW_LEN, BASELINE = 260, 50, 60, 40
RECORD = pickup.Record(WINDOW_LEN, BASELINE, -MV_PER_ADC * PC_PER_MV_SAMPLE, MV_PER_ADC, NS_PER_SAMPLE, 3.0)


def _waveforms(n: int, pickup_mv: float, slope_mv: float, seed: int = 5, mu: float = 0.1,
               pulse_at: int = WINDOW_LO + 10) -> tuple[np.ndarray, np.ndarray]:
    """(ADC samples, has a photoelectron) of n events: white noise 0.35 mV, a 3 MHz line of pickup_mv with a random
    phase, a slope of N(0, slope_mv) across the record, and one 10-sample negative pulse of 4 mV (from sample
    pulse_at: in the window by default) for a Poisson share mu of the events."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) * NS_PER_SAMPLE
    mv = rng.normal(0.0, 0.35, (n, LENGTH))
    mv += pickup_mv * np.sin(2 * np.pi * 3e-3 * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    mv += rng.normal(0.0, slope_mv, (n, 1)) * (np.arange(LENGTH) / LENGTH - 0.5)
    lit = rng.random(n) < 1 - np.exp(-mu)
    mv[lit, pulse_at: pulse_at + 10] -= 4.0
    return np.rint(14000 + mv / MV_PER_ADC).astype(np.uint16), lit


def _charges(samples: np.ndarray) -> np.ndarray:
    """The window charges with the flat baseline of the first BASELINE samples (the kernel's arithmetic)."""
    return window_charge_pc(corrected_mv(samples, -1, BASELINE), np.full(len(samples), WINDOW_LO), WINDOW_LEN)


def _decide(samples: np.ndarray) -> pickup.PickupLine | None:
    return pickup.decide(_charges(samples), samples, np.full(len(samples), WINDOW_LO), RECORD)


def _pedestal_std(samples: np.ndarray, lit: np.ndarray, line: pickup.PickupLine | None) -> float:
    charges = _charges(samples)
    if line is not None:
        charges = pickup.corrected_charges(charges, samples, np.full(len(samples), WINDOW_LO), RECORD, line.shape)
    return float(np.std(charges[~lit]))


def test_a_pickup_line_is_found_and_removed_to_near_the_white_noise_pedestal() -> None:
    samples, lit = _waveforms(4000, pickup_mv=0.2, slope_mv=0.0)
    line = _decide(samples)
    assert line is not None and line.frequency_mhz == pytest.approx(3.0, abs=0.1)
    assert line.amplitude_mv == pytest.approx(0.2, rel=0.1)
    assert line.describe().startswith("pickup at 3.00 MHz") and line.width_after_pc < 0.5 * line.width_before_pc
    quiet, quiet_lit = _waveforms(4000, pickup_mv=0.0, slope_mv=0.0)
    white, with_line, removed = (_pedestal_std(quiet, quiet_lit, None), _pedestal_std(samples, lit, None),
                                 _pedestal_std(samples, lit, line))
    assert with_line > 2.5 * white  # the line dominates the pedestal ...
    assert removed < 1.05 * white  # ... and after its removal it is as narrow as without pickup (the fit's prior)


def test_the_prior_fits_the_baseline_less_noisily_than_least_squares() -> None:
    # least squares extrapolates under the window a slope and a sine phase that the samples hardly tell (the
    # pedestal 1.27x as wide as white noise alone); with the point's own spread of them as a prior 1.07x
    samples, lit = _waveforms(4000, pickup_mv=0.2, slope_mv=0.1)
    line = _decide(samples)
    assert line is not None and line.shape.prior is not None
    least_squares = replace(line, shape=pickup.BaselineShape(line.frequency_mhz))
    assert _pedestal_std(samples, lit, line) < 0.9 * _pedestal_std(samples, lit, least_squares)
    slope_spread_adc = 0.1 / MV_PER_ADC
    noise_adc2 = (0.35 / MV_PER_ADC) ** 2
    assert line.shape.prior.penalty[0] == 0.0  # each event's offset is free
    assert line.shape.prior.penalty[1] == pytest.approx(noise_adc2 / slope_spread_adc**2, rel=0.3)


def test_the_photoelectrons_keep_their_charge() -> None:
    samples, lit = _waveforms(4000, pickup_mv=0.2, slope_mv=0.0)
    line = _decide(samples)
    assert line is not None
    charges = pickup.corrected_charges(_charges(samples), samples, np.full(len(samples), WINDOW_LO), RECORD,
                                       line.shape)
    pulse_pc = 4.0 * 10 * PC_PER_MV_SAMPLE
    assert np.mean(charges[lit]) - np.mean(charges[~lit]) == pytest.approx(pulse_pc, rel=0.02)


def test_a_weak_line_drift_or_white_noise_alone_are_left_as_they_are() -> None:
    # the line is removed only where it shapes the pedestal (`SIGNIFICANT`): its fit is as noisy as the window
    for pickup_mv, slope_mv in ((0.0, 0.0), (0.0, 1.0), (0.015, 0.0)):
        samples, _ = _waveforms(4000, pickup_mv=pickup_mv, slope_mv=slope_mv)
        assert _decide(samples) is None, (pickup_mv, slope_mv)


def test_a_line_that_shapes_the_pedestal_is_removed_with_the_drift() -> None:
    samples, lit = _waveforms(4000, pickup_mv=0.1, slope_mv=0.3)
    line = _decide(samples)
    assert line is not None and line.frequency_mhz == pytest.approx(3.0, abs=0.2)
    assert line.spread_pc >= pickup.SIGNIFICANT * line.width_before_pc
    assert _pedestal_std(samples, lit, line) < _pedestal_std(samples, lit, None)


def _pink_noise(n: int, rms_mv: float, seed: int = 9) -> np.ndarray:
    """n records of Gaussian 1/f noise (power falling as 1 / frequency, no constant), rms_mv each."""
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(LENGTH)
    shape = np.zeros_like(f)
    shape[1:] = 1 / np.sqrt(f[1:])
    noise = np.fft.irfft((rng.normal(size=(n, len(f))) + 1j * rng.normal(size=(n, len(f)))) * shape, n=LENGTH)
    return noise / noise.std() * rms_mv


def test_slow_noise_that_shapes_the_pedestal_is_removed_but_not_called_a_pickup_line() -> None:
    # an independent stand with 0.1 mV of 1/f noise and no line read "pickup at 1.95 MHz"; the events' sines
    # there scatter like noise (power scatter over 1), where a line's keep its amplitude (under STEADY_LINE)
    samples, lit = _waveforms(4000, pickup_mv=0.0, slope_mv=0.0)
    mv = (samples.astype(float) - 14000) * MV_PER_ADC + _pink_noise(len(samples), 0.1)
    slow = np.rint(14000 + mv / MV_PER_ADC).astype(np.uint16)
    noise = _decide(slow)
    assert noise is not None and not noise.steady and noise.power_scatter > 1.0
    assert noise.describe().startswith("slow baseline noise, not a pickup line")
    assert _pedestal_std(slow, lit, noise) < 0.9 * _pedestal_std(slow, lit, None)  # (still taken out)
    for pickup_mv, slope_mv in ((0.2, 0.0), (0.1, 0.3)):
        line = _decide(_waveforms(4000, pickup_mv=pickup_mv, slope_mv=slope_mv)[0])
        assert line is not None and line.steady and line.power_scatter < 0.6, (pickup_mv, line)


def test_a_window_with_too_few_samples_outside_is_left_as_it_is() -> None:
    samples, _ = _waveforms(500, pickup_mv=0.2, slope_mv=0.0)
    short = samples[:, :WINDOW_LO + WINDOW_LEN]  # the window ends the record: 45 samples before its guard ...
    late = np.full(len(short), WINDOW_LO - 10)  # ... and 35 for a window 10 samples earlier
    charges = window_charge_pc(corrected_mv(short, -1, BASELINE), late, WINDOW_LEN)
    assert len(pickup.fit_samples(short.shape[1], WINDOW_LO - 10, WINDOW_LEN)) < pickup.MIN_FIT_SAMPLES
    assert pickup.decide(charges, short, late, RECORD) is None
    kept = pickup.corrected_charges(charges, short, late, RECORD, pickup.BaselineShape(3.0))
    assert np.array_equal(kept, charges)  # no fit: every charge as measured


def test_pulses_outside_the_window_are_not_taken_for_a_line() -> None:
    # laser pulses after a misplaced window (20 % of the events), without pickup: nothing is removed; with it, the
    # events with a pulse outside the window keep their charge and the others lose the line
    quiet_pulses, _ = _waveforms(4000, pickup_mv=0.0, slope_mv=0.0, mu=0.22, pulse_at=WINDOW_LO + WINDOW_LEN + 40)
    assert _decide(quiet_pulses) is None
    samples, outside = _waveforms(4000, pickup_mv=0.2, slope_mv=0.0, mu=0.22, pulse_at=WINDOW_LO + WINDOW_LEN + 40)
    line = _decide(samples)
    assert line is not None and line.frequency_mhz == pytest.approx(3.0, abs=0.1)
    before = _charges(samples)
    after = pickup.corrected_charges(before, samples, np.full(len(samples), WINDOW_LO), RECORD, line.shape)
    assert np.array_equal(after[outside], before[outside]) and np.std(after[~outside]) < 0.5 * np.std(before[~outside])


def test_the_reference_pmt_loses_its_own_pickup_line(tmp_path: Path) -> None:
    # the PMT under test and the reference PMT each carry a 3 MHz line (their own phases): both are removed, each
    # found on its own channel, and the point's warnings name the reference's
    samples, lit = _waveforms(8000, pickup_mv=0.2, slope_mv=0.1, seed=11)
    reference, ref_lit = _waveforms(8000, pickup_mv=0.2, slope_mv=0.1, seed=12)
    trigger = np.full(samples.shape, 800, dtype=np.uint16)
    trigger[:, 10:30] += 6000  # the window starts 80 ns after it: at WINDOW_LO
    files = {}
    for channel, waves in ((0, trigger), (2, samples), (4, reference)):
        files[channel] = tmp_path / f"wave{channel}.dat"
        write_binary(files[channel], waves, channel)
    settings = AnalysisSettings(fixed_window_start_ns=(WINDOW_LO - 10) * NS_PER_SAMPLE)
    charges = extract_point_charges(files, ChannelMap(sipm=None, reference=4), settings)
    found = [w for w in charges.warnings if "pickup at 3.0" in w or "pickup at 2.9" in w]
    assert len(found) == 2 and found[1].startswith("reference PMT: pickup at"), charges.warnings
    white, white_lit = _waveforms(8000, pickup_mv=0.0, slope_mv=0.0, seed=13)
    white_std = float(np.std(_charges(white)[~white_lit]))  # no pickup: the flat baseline's pedestal
    assert charges.reference_charge_pc is not None and len(charges.reference_charge_pc) == len(reference)
    assert float(np.std(charges.reference_charge_pc[~ref_lit])) < 1.2 * white_std  # 3.2x left in
    assert float(np.std(charges.pmt_charge_pc[~lit])) < 1.2 * white_std
