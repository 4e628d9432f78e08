"""Point status from the fit, its uncertainty and the band: poor only beyond the error, uncertain otherwise,
dead points always error, error points carry no gain."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from remote_monitor.analysis.histogram import Histogram, fill_histogram
from remote_monitor.analysis.laser_window import delay_in_window
from remote_monitor.analysis.point_verdict import (
    MIN_SIGNAL_FRACTION,
    classify,
    no_light,
    signal_fraction,
    too_bright,
    without_gain,
)
from remote_monitor.analysis.spe_fit import fit_spe
from remote_monitor.service.processing import reference_entry
from remote_monitor.simulation.spe_charge import PmtPhysics, event_charges, pedestal_charges

from .fit_helpers import BIN_PC

BAND = (0.999e7, 1.049e7)


def _fit(gain: float, err: float, **extra: object) -> dict:
    return {"status": "ok", "gain": gain, "gain_err": err, "converged": True, "mu": 0.2, "q1_pc": 1.6,
            "sigma0_pc": 0.15, "at_limit": [], **extra}


def _hist(light: bool) -> dict:
    rng = np.random.default_rng(0)
    charges = rng.normal(0, 0.15, 20_000)
    if light:
        charges[:4000] += rng.gamma(10, 0.16, 4000)
    return fill_histogram(charges, 560, -3.0, 25.0).to_dict()


def test_statuses_follow_the_uncertainty() -> None:
    assert classify(_fit(1.024e7, 0.01e7), BAND)[0] == "healthy"
    assert classify(_fit(0.87e7, 0.02e7), BAND)[0] == "poor"
    status, reason = classify(_fit(0.99e7, 0.01e7), BAND)  # outside by less than 2 errors
    assert status == "uncertain" and reason.endswith("cannot decide")  # (no parts given: none shown)
    parts = {"gain_err_stat": 0.0045e7, "gain_err_under_prior": 0.0080e7, "gain_err_syst": 0.0050e7}
    status, reason = classify(_fit(1.04e7, 0.0104e7, **parts), BAND)  # inside, within one error of the edge
    assert status == "uncertain" and reason.endswith(
        "cannot decide; its error: statistics 0.43 %, the under-amplified fraction's prior 0.77 %, "
        "the 1-PE shape 0.48 %")
    assert classify(_fit(1.00e7, 0.02e7), BAND)[0] == "uncertain"  # inside, but within 1 error of the edge
    assert classify(_fit(1.024e7, 0.3e7), BAND)[0] == "uncertain"  # error larger than the half band
    # a large error does not hide a gain far outside the band (the demo's low-gain point: 0.848 ± 0.060e7)
    assert classify(_fit(0.848e7, 0.06e7), BAND)[0] == "poor"
    status, reason = classify(_fit(0.95e7, 0.06e7), BAND)  # outside by less than 2 of its large errors
    assert status == "uncertain" and "too large to decide" in reason
    assert classify(_fit(1.024e7, 0.01e7, converged=False), BAND)[0] == "uncertain"
    assert classify(_fit(0.5e7, 0.01e7), BAND, kind="hv")[0] == "healthy"


def test_a_fit_that_does_not_describe_the_spectrum_decides_nothing() -> None:
    # an independently simulated stand with 3 MHz pickup, before its removal: +15 %, chi2/ndf 315, "poor by 45 sigma"
    status, reason = classify(_fit(1.5013e7, 0.0101e7, chi2_ndf=315.0), BAND)
    assert status == "uncertain" and "does not describe the spectrum (chi2/ndf 315.0)" in reason
    assert classify(_fit(1.5013e7, 0.0101e7, chi2_ndf=3.9), BAND)[0] == "poor"  # a good fit's chi2/ndf at 600k events
    assert classify(_fit(1.024e7, 0.01e7, chi2_ndf=None), BAND)[0] == "healthy"  # (no chi2: judged by the gain)


def test_dead_point_is_error_never_poor() -> None:
    # the case: a fit that wandered off to a tiny gain and a large occupancy on a point without light
    status, reason = classify(_fit(8.3e5, 1e5, mu=8.4), BAND, hist=_hist(light=False))
    assert status == "error" and "no light" in reason and "too small against the noise" not in reason
    # the same dark histogram with a fit whose Q1 is 1.6 pedestal widths: the light may be hidden in the noise
    status, reason = classify(_fit(0.5e7, 0.05e7, mu=0.03, q1_pc=0.24), BAND, hist=_hist(light=False))
    assert status == "error" and "no light" in reason and "Q1 is 1.6 pedestal widths" in reason
    assert classify(_fit(1.024e7, 0.01e7), BAND, hist=_hist(light=True))[0] == "healthy"
    assert classify({"status": "failed", "reason": "x"}, BAND)[0] == "error"
    assert classify(_fit(1.024e7, 0.01e7, at_limit=["q1"]), BAND)[0] == "error"
    status, reason = classify(_fit(1.024e7, 0.01e7, q1_pc=0.8, sigma0_pc=0.49), BAND)  # 0.5e7 at 1 mV noise
    assert status == "error" and "not separated" in reason and "model's shape" in reason
    assert classify(_fit(1.024e7, 0.01e7, q1_pc=1.0, sigma0_pc=0.49), BAND)[0] == "healthy"  # 2.04 widths
    assert "PMT dead" in classify(_fit(1.024e7, 0.01e7, q1_pc=0.7, sigma0_pc=0.49), BAND)[1]


def test_dark_charges_with_a_laser_peak_in_the_pulse_times_say_light_is_seen_but_no_gain() -> None:
    # an independent stand at 1 mV noise: 0.5e7 at 0.5-2.5 PE (Q1 1.1 pedestal widths) read "no light"
    small = _fit(0.45e7, 0.05e7, mu=1.19, q1_pc=0.72, sigma0_pc=0.66)
    assert "no light" in classify(small, BAND, hist=_hist(light=False))[1]  # no laser peak: nothing tells
    status, reason = classify(small, BAND, hist=_hist(light=False), laser_delay_ns=58.4)
    assert status == "error" and "no light" not in reason, reason
    assert reason.startswith("light seen (a laser peak in the PMT pulse times 58 ns after the trigger)")
    assert "not separated from the pedestal (the fit's Q1 is 1.1 pedestal widths)" in reason
    faint = _fit(1.0e7, 0.5e7, mu=0.0007, q1_pc=2.7, sigma0_pc=0.69)  # separated, but too few photoelectrons
    status, reason = classify(faint, BAND, hist=_hist(light=False), laser_delay_ns=55.0)
    assert status == "error" and "too faint for a gain" in reason and "% of events" in reason, reason
    assert classify(_fit(1.024e7, 0.01e7), BAND, hist=_hist(light=True), laser_delay_ns=58.0)[0] == "healthy"
    # the eighth independent stand at 1 mV: Q1 2.4 pedestal widths, 0.11 PE, 0.15 % of the events over 5 widths;
    # its fit's occupancy 4.6 errors from zero. The laser peak in the times says the light is there: the gain
    # shows, undecided, as its siblings' (11 errors) did
    rng = np.random.default_rng(8)
    lit = rng.random(200_000) < 0.11
    charges = rng.normal(0.0, 0.69, 200_000) + np.where(lit, rng.gamma(11.7, 1.64 / 11.7, 200_000), 0.0)
    noisy = fill_histogram(charges, 560, -3.0, 25.0).to_dict()
    assert signal_fraction(noisy) < MIN_SIGNAL_FRACTION
    hidden = _fit(1.022e7, 0.052e7, mu=0.113, mu_err=0.0244, q1_pc=1.64, sigma1_pc=0.48, sigma0_pc=0.69,
                  under_amplified_fraction=0.127)
    status, reason = classify(hidden, BAND, hist=noisy, laser_delay_ns=116.0)
    assert status == "uncertain" and "too large to decide" in reason, reason
    assert classify(hidden, BAND, hist=noisy)[0] == "error"  # without the times' word, 4.6 errors are too few
    # the extras (DE, dark rate) give the same reason where they withhold a value for want of light
    assert no_light(small, _hist(light=False), 58.4) == classify(small, BAND, hist=_hist(light=False),
                                                                 laser_delay_ns=58.4)[1]
    assert no_light(small, _hist(light=False)).startswith("no light")  # type: ignore[union-attr]
    assert delay_in_window(["charge window misses the laser pulses: ..."], 58.4) is None
    assert delay_in_window(["charge window moved onto the laser pulses: ..."], 58.4) == 58.4


def _stand(seed: int, mu: float, noise_mv: float, dark_hz: float, n: int = 300_000) -> dict:
    """A point of the simulated stand at 1e7 (its 1-PE response, noise records and dark counts)."""
    rng = np.random.default_rng(seed)
    phys = dataclasses.replace(PmtPhysics(), dark_rate_hz=dark_hz)
    charges = event_charges(rng, n, mu, 1e7, phys, pedestal_charges(rng, noise_mv, n))
    return fill_histogram(charges, 400, -60 * BIN_PC, 340 * BIN_PC).to_dict()


def _fitted(hist: dict) -> dict:
    return fit_spe(Histogram(np.asarray(hist["edges"]), np.asarray(hist["counts"]))).to_dict()


def test_faint_light_under_the_noise_is_measured_not_called_no_light() -> None:
    # 0.03 PE at 1e7 and 1 mV noise: most photoelectrons stay within 5 pedestal widths, so few events are
    # "clearly above the pedestal" (a fresh draw of bench_gain's class read "no light"); its fit sees them
    hist = _stand(100, 0.03, 1.0, 3000.0)
    assert signal_fraction(hist) < MIN_SIGNAL_FRACTION  # what the histogram alone says
    fit = _fitted(hist)
    status, reason = classify(fit, BAND, hist=hist)
    assert status != "error", reason
    assert abs(fit["gain"] / 1e7 - 1) < 3 * fit["gain_err"] / 1e7, (fit["gain"], fit["gain_err"])


@pytest.mark.parametrize(("noise_mv", "dark_hz"), [(1.0, 9000.0), (0.3, 9000.0)])
def test_a_dark_point_stays_no_light_with_its_dark_counts_fitted(noise_mv: float, dark_hz: float) -> None:
    hist = _stand(101, 0.0, noise_mv, dark_hz)  # laser off: dark counts only (9 kHz: 1e-3 per 120 ns window)
    status, reason = classify(_fitted(hist), BAND, hist=hist)
    assert status == "error" and "no light" in reason, reason


def test_a_fit_that_claims_light_the_histogram_does_not_hold_is_not_believed() -> None:
    dark = _hist(light=False)
    # a separated 1-PE peak with a significant occupancy, which would put 3 % of the events above 5 pedestal
    # widths, where there are none
    claim = _fit(1.024e7, 0.01e7, mu=0.03, mu_err=0.001, q1_pc=1.6, sigma1_pc=0.5)
    assert classify(claim, BAND, hist=dark)[1].startswith("no light")
    assert classify(claim, BAND, hist=_hist(light=True))[0] == "healthy"
    wandered = _fit(8.3e5, 1e5, mu=8.4, mu_err=0.1, sigma1_pc=0.1)  # the dead point, with its errors
    assert classify(wandered, BAND, hist=dark)[1].startswith("no light")


def test_light_in_every_event_is_too_much_light_not_no_light() -> None:
    # an independent stand's reference PMT at 20 PE per event (gain 5e6) read "no light: only 0.00 % of events above
    # the pedestal": the highest bin, taken for the pedestal, was its light peak, and nothing lay 5 widths above it
    rng = np.random.default_rng(7)
    charges = event_charges(rng, 50_000, 20.0, 0.5e7, PmtPhysics(), pedestal_charges(rng, 0.3, 50_000))
    hist = fill_histogram(charges, 560, -3.0, 25.0).to_dict()
    fit = _fitted(hist)
    status, reason = classify(fit, BAND, hist=hist)
    assert status == "error" and reason.startswith("too much light for a single-photoelectron gain"), reason
    assert too_bright(hist) and no_light(fit, hist) == reason
    entry = reference_entry(fit, hist)
    assert entry["status"] == "too_bright" and entry["gain"] is None and entry["reason"] == reason
    dark = _hist(light=False)  # a dark spectrum stays "no light" (its pedestal is at zero)
    assert not too_bright(dark) and reference_entry(_fit(8.3e5, 1e5, mu=8.4), dark)["status"] == "no_light"


def test_error_point_keeps_details_but_shows_no_gain() -> None:
    fit = without_gain(_fit(8.3e5, 1e5))
    assert fit["gain"] is None and fit["gain_err"] is None
    assert fit["rejected_gain"] == 8.3e5 and fit["mu"] == 0.2
