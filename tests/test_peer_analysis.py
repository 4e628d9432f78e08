"""Timing kernel, EMG fit, dark rate, detection efficiency and Hamamatsu angle on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from remote_monitor.analysis.angles import hamamatsu_angle
from remote_monitor.analysis.dark_rate import (
    corrected_dark_rate,
    dark_rate,
    measured_threshold_efficiency,
    merging_bias,
    pooled_dark_rate,
    quarter_pe_share,
    threshold_efficiency,
    unseen_share,
)
from remote_monitor.analysis.detection_efficiency import (
    EfficiencySettings,
    de_verdict,
    empty_share_error,
    quarter_pe_occupancy,
    raw_efficiency,
    relative,
    uniformity,
    zero_pe_occupancy,
)
from remote_monitor.analysis.pulse_times import (
    AFTER_UNLIT,
    BEFORE_WINDOW_NS,
    TimingAccumulator,
    TimingSettings,
    pulse_times,
)
from remote_monitor.analysis.spe_response import QUARTER_PE, share_over
from remote_monitor.analysis.timing_fit import (
    MAX_LATE_FRACTION,
    MIN_TAIL_TAU_NS,
    emg_cdf,
    emg_fwhm,
    fit_timing,
    signal_fwhm,
)
from remote_monitor.analysis.units import MV_PER_ADC

from .waveform_helpers import trigger_row

WINDOW_NS = TimingSettings().laser_window_ns[1] - TimingSettings().laser_window_ns[0]


def _events(trigger_at: float, pmt_at: float | None, n_samples: int = 400, extra: list[float] = (),
            pmt_mv_at: float = 10.0):
    """Raw ADC rows: a linear-edge trigger (0 -> 800 mV over 2 samples) and triangular PMT pulses (negative):
    pmt_mv_at mV at pmt_at, 10 mV at each of `extra`."""
    s = np.arange(n_samples, dtype=float)
    trig = trigger_row(n_samples, trigger_at)
    pmt_mv = np.zeros(n_samples)
    pulses = ([(pmt_at, pmt_mv_at)] if pmt_at is not None else []) + [(at, 10.0) for at in extra]
    for at, peak_mv in pulses:
        pmt_mv += peak_mv * np.clip(1 - np.abs(s - at) / 2.0, 0, None)  # peak at `at`, 50 % at at - 1
    return np.rint(trig).astype(np.uint16), np.rint(14000 - pmt_mv / MV_PER_ADC).astype(np.uint16)


def test_cfd_time_is_pmt_half_height_minus_trigger_half_height():
    trig, pmt = _events(60, 60 + 163)  # 2 ns samples: 50 % crossings at 60 and 222 samples -> 324 ns
    dt, dark, live, ratio, over, _ = pulse_times(pmt[None], trig[None], TimingSettings())
    assert over[0] == 1  # the 10 mV laser pulse is over the 4 mV dark threshold
    assert dt[0] == pytest.approx((222 - 60) * 2.0, abs=0.05)
    assert dark[0].sum() == 0 and live[0, 0] > 0
    assert ratio[0] == pytest.approx(10.0 / (20.0 * 0.04), rel=0.01)  # 10 mV peak, 20 mV x samples = 0.8 pC


def test_no_laser_pulse_gives_nan_and_dark_pulses_are_counted_outside_the_window():
    trig, pmt = _events(60, None, extra=[60 + 30.0, 60 + 300.0, 60 + 130.0])  # 130 samples = 260 ns: excluded
    dt, dark, live, ratio, over, _ = pulse_times(pmt[None], trig[None], TimingSettings())
    assert math.isnan(dt[0]) and math.isnan(ratio[0]) and over[0] == 0
    assert dark[0].tolist() == [1, 1, 0]  # one before the window, one after it (no laser pulse: none after one)
    window = TimingSettings().dark_exclude_ns
    assert live[0].sum() == pytest.approx((400 - 40) * 2.0 - (window[1] - window[0]), abs=4.0)


def test_afterpulses_of_a_laser_pulse_inside_the_record_are_not_dark_counts():
    trig, pmt = _events(60, 60 + 163, extra=[60 + 300.0])  # laser pulse, then its afterpulse after the window
    _, dark, live, _, over, _ = pulse_times(pmt[None], trig[None], TimingSettings())
    assert over[0] == 1 and dark[0, :2].sum() == 0 and live[0, 1] == 0
    assert dark[0, 2] == 1 and live[0, 2] > 0  # counted apart: after a laser pulse (its afterpulses too)
    window = TimingSettings().dark_exclude_ns
    assert live[0, 0] == pytest.approx((60 - 40) * 2.0 + window[0], abs=4.0)  # before the window


def _afterpulsing_chunk(rng: np.random.Generator, n: int, dark_hz: float, laser_at: float,
                        settings: TimingSettings, under_threshold: float = 0.2, lit: float = 0.3) -> TimingAccumulator:
    """A fraction `lit` (0.3) of the events with a laser photoelectron (a fraction under_threshold of them under
    the 4 mV dark threshold), each followed inside the 400-sample record by an afterpulse with probability 0.5;
    dark pulses at dark_hz."""
    rows = []
    for _ in range(n):
        extra = list(rng.uniform(41, 398, rng.poisson(dark_hz * 1e-9 * 357 * 2.0)))
        has_light = rng.random() < lit
        laser_mv = 3.0 if has_light and rng.random() < under_threshold else 10.0
        if has_light and rng.random() < 0.5:
            extra.append(laser_at + rng.uniform(110, 170))
        rows.append(_events(60, laser_at if has_light else None, extra=extra, pmt_mv_at=laser_mv))
    trig, pmt = (np.array(column) for column in zip(*rows, strict=True))
    acc = TimingAccumulator()
    acc.add(*pulse_times(pmt, trig, settings))
    return acc


def test_dark_rate_is_counted_before_the_laser_window_where_afterpulses_cannot_be():
    """Counted anywhere outside the window (the code before 2026-12-05) these afterpulses read 799 kHz for 500;
    after the window in events without a laser pulse over the threshold they still add those of the
    photoelectrons under it (570 kHz with both sides); before the window there are none (502 kHz)."""
    acc = _afterpulsing_chunk(np.random.default_rng(11), 4000, 500e3, 60 + 163, TimingSettings())
    counts, _, live_ns, region = acc.dark_sample(WINDOW_NS)
    assert region == "before the laser window"
    rate = counts / (live_ns * 1e-9)
    assert rate == pytest.approx(500e3, rel=3 / math.sqrt(counts) + 0.03), (rate, counts)
    after = acc.dark_counts_after / (acc.dark_ns_after * 1e-9)
    assert after > 500e3 * (1 + 3 / math.sqrt(acc.dark_counts_after)), after  # the sub-threshold ones' afterpulses


def test_without_light_in_the_laser_window_the_whole_record_counts_dark_pulses():
    """A laser-off point: its window holds no more pulses over the threshold than the dark rate puts there, so
    there are no afterpulses of light after it either, and the record's far side counts too (1.8 times the live
    time here; 8 times in a 1024-sample record). A point lit at 0.05 PE keeps to the part before the window."""
    acc = _afterpulsing_chunk(np.random.default_rng(13), 4000, 500e3, 60 + 163, TimingSettings(), lit=0.0)
    assert acc.laser_window_is_dark(WINDOW_NS)
    counts, _, live_ns, region = acc.dark_sample(WINDOW_NS)
    assert region == "outside the laser window (no light in it)" and live_ns > 1.7 * acc.dark_ns
    assert counts / (live_ns * 1e-9) == pytest.approx(500e3, rel=3 / math.sqrt(counts) + 0.03)
    lit = _afterpulsing_chunk(np.random.default_rng(14), 4000, 500e3, 60 + 163, TimingSettings(), lit=0.05)
    assert not lit.laser_window_is_dark(WINDOW_NS)
    assert lit.dark_sample(WINDOW_NS)[3] == "before the laser window"


def test_dark_rate_uses_the_window_s_far_side_when_nothing_is_before_it():
    """Laser 30 ns after the trigger (a moved window): no time before it, so after it too, without the events
    whose window holds a laser pulse over the threshold (here every photoelectron is over it; counted in every
    event, as before 2026-12-05, 768 kHz for 500; now 487 kHz)."""
    settings = TimingSettings(laser_window_ns=(20.0, 100.0), dark_exclude_ns=(-20.0, 180.0))
    acc = _afterpulsing_chunk(np.random.default_rng(12), 4000, 500e3, 60 + 30, settings, under_threshold=0.0)
    counts, _, live_ns, region = acc.dark_sample(WINDOW_NS)
    assert region.startswith("outside the laser window") and acc.dark_ns < BEFORE_WINDOW_NS * acc.laser_searched
    rate = counts / (live_ns * 1e-9)
    assert rate == pytest.approx(500e3, rel=3 / math.sqrt(counts) + 0.03), (rate, counts)


def test_the_afterpulses_of_photoelectrons_under_the_threshold_come_off_the_far_side():
    """As above, but a fifth of the photoelectrons under the dark threshold: their events count after the window,
    and so do their afterpulses (an independent stand with its laser 150 ns after the trigger read 7.2 kHz for 4.5).
    The lit events' afterpulses after the window, scaled by the unseen photoelectrons per unlit event over the seen
    per lit one (here 0.06 / 0.76 over 1), come off: 500 kHz again."""
    settings = TimingSettings(laser_window_ns=(20.0, 100.0), dark_exclude_ns=(-20.0, 180.0))
    acc = _afterpulsing_chunk(np.random.default_rng(15), 4000, 500e3, 60 + 30, settings, under_threshold=0.2)
    counts, noise, live_ns, region = acc.dark_sample(WINDOW_NS)
    assert region == AFTER_UNLIT
    counted = dark_rate(counts, live_ns, noise)
    assert counted["dark_rate_hz"] > 500e3 + 3 * counted["dark_rate_err_hz"], counted  # the unseen ones' afterpulses
    share = (0.3 * 0.2 / (1 - 0.3 * 0.8)) / 1.0
    corrected = dark_rate(counts, live_ns, noise, acc.unseen_afterpulses(share))
    assert corrected["dark_rate_hz"] == pytest.approx(500e3, abs=3 * corrected["dark_rate_err_hz"]), corrected
    assert corrected["dark_rate_err_hz"] > counted["dark_rate_err_hz"] and corrected["unseen_afterpulses"] > 0


@pytest.mark.parametrize(("mu", "eff"), [(0.1, 0.7), (0.5, 0.8), (2.0, 0.5)])
def test_unseen_share_is_the_unseen_photoelectrons_per_unlit_event_over_all_per_lit_one(mu: float, eff: float):
    rng = np.random.default_rng(16)
    n = rng.poisson(mu, 2_000_000)
    seen = rng.binomial(n, eff)
    lit = seen > 0
    expected = (n[~lit] - seen[~lit]).mean() / n[lit].mean()
    assert unseen_share(mu, eff) == pytest.approx(expected, rel=0.02)


def test_timing_fit_recovers_core_sigma_under_a_late_tail():
    """Direct photoelectrons (Gaussian, 1.2 ns) with 5 % late ones (+ exponential 6 ns) and a flat background:
    the TTS is the core's sigma, not a compromise with the tail (a single EMG read about 10 % low here)."""
    rng = np.random.default_rng(3)
    n = 20000
    t = 325 + rng.normal(0, 1.2, n)
    late = rng.random(n) < 0.05
    t[late] += rng.exponential(6.0, int(late.sum()))
    t = np.concatenate([t, rng.uniform(305, 345, 500)])
    r = fit_timing(t)
    assert r.status == "ok"
    assert r.transit_time_ns == pytest.approx(325.0, abs=4 * r.transit_time_err_ns)
    assert r.tts_sigma_ns == pytest.approx(1.2, abs=4 * r.tts_sigma_err_ns)
    assert r.late_fraction == pytest.approx(0.05, abs=0.015) and r.tau_ns == pytest.approx(6.0, rel=0.25)
    assert r.n_background == pytest.approx(500, rel=0.25)
    assert r.tts_fwhm_ns == pytest.approx(signal_fwhm(325, 1.2, 6.0, 0.05), abs=4 * r.tts_fwhm_err_ns)


def test_a_short_exponential_smear_is_read_as_the_core_not_as_a_late_tail():
    """tau < sigma is no late tail (late pulses come 10-60 ns late): an EMG of tau 0.8 ns on sigma 1.2 ns is
    fitted as a Gaussian core (its mean time, its width). The unbounded tail read it as f = 0.90, tau 0.80, but
    the same freedom let a slightly distorted Gaussian core become a "tail" (f 0.8-0.96, transit time low)."""
    rng = np.random.default_rng(3)
    n = 20000
    t = np.concatenate([325 + rng.normal(0, 1.2, n) + rng.exponential(0.8, n), rng.uniform(305, 345, 500)])
    r = fit_timing(t)
    assert r.status == "ok" and r.late_fraction <= MAX_LATE_FRACTION
    assert r.tau_ns is None or r.tau_ns >= MIN_TAIL_TAU_NS
    assert r.transit_time_ns == pytest.approx(325.8, abs=0.05)  # the mean time
    assert r.tts_sigma_ns == pytest.approx(math.hypot(1.2, 0.8), rel=0.03)
    assert r.tts_fwhm_ns == pytest.approx(emg_fwhm(325, 1.2, 0.8), rel=0.06)  # a Gaussian's FWHM: 4.8 % wide
    assert r.tts_fwhm_err_ns < 0.03


def test_timing_fit_leaves_zfit_in_graph_and_autograd_mode():
    """The numpy timing likelihood runs zfit eagerly only for itself: left switched off, every later SPE
    fit in the worker would run eagerly with numerical gradients (minutes instead of a second)."""
    import zfit

    before = (zfit.run.get_graph_mode(), zfit.run.get_autograd_mode())
    rng = np.random.default_rng(4)
    t = np.concatenate([325 + rng.normal(0, 1.2, 4000) + rng.exponential(0.8, 4000), rng.uniform(305, 345, 200)])
    assert fit_timing(t).status == "ok"
    assert (zfit.run.get_graph_mode(), zfit.run.get_autograd_mode()) == before


def test_emg_cdf_is_a_cdf_and_fwhm_of_a_gaussian():
    x = np.linspace(300, 360, 601)
    cdf = emg_cdf(x, 325, 1.3, 0.01)
    assert cdf[0] == pytest.approx(0) and cdf[-1] == pytest.approx(1) and np.all(np.diff(cdf) >= -1e-12)
    assert emg_fwhm(0, 1.0, 1e-3) == pytest.approx(2.3548, abs=0.01)


def test_too_few_times_is_reported():
    assert fit_timing(np.full(10, 325.0)).status == "too_few_events"


def test_noise_and_dark_pulses_alone_give_no_timing() -> None:
    # an independent stand's laser-off points: 18 "signal" events over 5900 read TTS 0.08 ns (1 mV), a broad
    # bump of noise crossings 10 ns (2 mV); both were "ok" with transit times of 306-310 ns
    rng = np.random.default_rng(12)
    flat = fit_timing(np.concatenate([rng.uniform(285, 325, 6000), 306.4 + rng.normal(0, 0.08, 15)]))
    assert flat.status == "no_peak" and "no laser peak" in flat.reason, flat
    assert flat.transit_time_ns is None and flat.tts_sigma_ns is None and flat.histogram is not None
    broad = fit_timing(np.concatenate([rng.uniform(285, 325, 80_000), rng.normal(305, 12, 4000)]))
    assert broad.status == "no_peak", broad
    faint = fit_timing(np.concatenate([rng.uniform(35, 75, 5900), 54.9 + rng.normal(0, 1.75, 1500)]))
    assert faint.status == "ok" and faint.transit_time_ns == pytest.approx(54.9, abs=0.3)  # 0.01 PE at 1 mV


def test_dark_rate_and_poisson_error():
    d = dark_rate(100, 2e7)  # 100 pulses in 20 ms
    assert d["dark_rate_hz"] == pytest.approx(5000) and d["dark_rate_err_hz"] == pytest.approx(500)
    assert dark_rate(0, 0)["dark_rate_hz"] is None


def _dark(counts: int, live_s: float, eff: float | None, noise: int = 0) -> dict[str, float | int | None]:
    raw = dark_rate(counts, live_s * 1e9, noise)
    return corrected_dark_rate(raw, eff)


def test_the_pmt_dark_rate_pools_the_counts_of_the_corrected_points():
    """Pooled counts over pooled live time x efficiency; a point counted without the correction is left out
    with why. The inverse-variance mean of the same rates leans low: the point that counted few gets the
    smaller Poisson error."""
    points = {"theta0_phi0": _dark(80, 0.02, 0.8), "theta10_phi0": _dark(50, 0.02, 0.8),
              "theta10_phi90": _dark(130, 0.02, 0.8, noise=10),
              "theta30_phi270": corrected_dark_rate(dark_rate(90, 0.027e9), None)}
    points["theta30_phi270"]["dark_rate_note"] = "not corrected for the threshold efficiency: no light"
    pooled = pooled_dark_rate(points)
    assert pooled["n_points"] == 3
    assert pooled["dark_rate_hz"] == pytest.approx((80 + 50 + 120) / (3 * 0.02 * 0.8))
    rates = [(80, 80), (50, 50), (120, 140)]  # (net counts, variance)
    inverse_variance = sum(r / v for r, v in rates) / sum(1 / v for _, v in rates) / (0.02 * 0.8)
    assert inverse_variance < 0.95 * pooled["dark_rate_hz"]
    expected = 250 / 3
    chi2 = sum((r - expected) ** 2 / (expected + 2 * n) for r, n in ((80, 0), (50, 0), (120, 10)))
    assert pooled["chi2_ndf"] == pytest.approx(chi2 / 2)
    assert pooled["chi2_ndf"] > 1  # so the error is scaled by its root
    assert pooled["dark_rate_err_hz"] == pytest.approx(math.sqrt(270 * chi2 / 2) / 0.048)
    assert pooled["left_out"] == [{"point": "theta30_phi270",
                                   "reason": "not corrected for the threshold efficiency: no light"}]
    assert pooled_dark_rate({"theta0_phi0": points["theta30_phi270"]})["dark_rate_hz"] is None


def test_a_point_without_light_gets_the_other_points_threshold_efficiency_with_their_spread():
    """The laser-off point stays out of the pool (a PMT that is off counts nothing) but is shown over the mean
    efficiency of the corrected points, their spread in its error; a point the threshold sees too little of (a low
    gain: it has its own efficiency) is not given another's; one lender is not enough for a spread."""
    points = {"theta0_phi0": _dark(80, 0.02, 0.75), "theta10_phi0": _dark(85, 0.02, 0.80),
              "theta10_phi90": _dark(90, 0.02, 0.85), "theta20_phi0": _dark(20, 0.02, 0.2),
              "theta30_phi270": corrected_dark_rate(dark_rate(90, 0.027e9), None)}
    pooled = pooled_dark_rate(points)
    assert pooled["n_points"] == 3 and [o["point"] for o in pooled["left_out"]] == ["theta20_phi0", "theta30_phi270"]
    (borrowed,) = pooled["borrowed"]
    rate = 90 / 0.027 / 0.8
    assert borrowed["point"] == "theta30_phi270" and borrowed["n_lenders"] == 3
    assert borrowed["threshold_efficiency"] == pytest.approx(0.8)
    assert borrowed["threshold_efficiency_spread"] == pytest.approx(0.05)
    assert borrowed["dark_rate_hz"] == pytest.approx(rate)
    assert borrowed["dark_rate_err_hz"] == pytest.approx(math.hypot(math.sqrt(90) / 0.027 / 0.8, rate * 0.05 / 0.8))
    lone = {p: points[p] for p in ("theta0_phi0", "theta30_phi270")}
    assert pooled_dark_rate(lone)["borrowed"] == []


def test_the_share_over_a_quarter_pe_is_that_of_the_fitted_1pe_response():
    """The main peak a Gamma of mean q1 and width sigma1, the under-amplified part a Gamma of its mean and shape:
    the share over q1 / 4 against the same mixture drawn."""
    fit = {"q1_pc": 1.6, "sigma1_pc": 0.48, "under_amplified_fraction": 0.12, "under_amplified_mean_pc": 0.32,
           "under_amplified_shape": 1.5}
    rng = np.random.default_rng(5)
    n = 1_000_000
    main = rng.gamma((1.6 / 0.48) ** 2, 0.48**2 / 1.6, n)
    under = rng.gamma(1.5, 0.32 / 1.5, n)
    q = np.where(rng.random(n) < 0.12, under, main)
    assert quarter_pe_share(fit) == pytest.approx(np.mean(q > 0.4), abs=0.002)
    assert 0.85 < quarter_pe_share(fit) < 0.95  # the under-amplified part mostly under a quarter PE
    assert quarter_pe_share({"q1_pc": None, "sigma1_pc": 0.48}) is None
    raw = {"q1": 1.6, "r1": 0.3, "w": 0.12, "u": 0.2, "k_u": 1.5, "b": 0.0}  # the fit's parameters of the same
    assert quarter_pe_share(fit) == pytest.approx(share_over(raw, QUARTER_PE), rel=1e-12)
    assert quarter_pe_share({**fit, "mu": 0.08, "mu_quarter_pe": 0.072}) == pytest.approx(0.9)  # the fit's own


def test_the_rate_over_a_quarter_pe_is_the_corrected_rate_times_that_share_and_is_pooled_alike():
    """Per point the corrected rate times its share; pooled over live time x efficiency / share, so a point whose
    fit put more photoelectrons under a quarter PE counts for a longer exposure of pulses over it."""
    one = corrected_dark_rate(dark_rate(80, 0.02e9), 0.8, 0.9)
    assert one["dark_rate_quarter_pe_hz"] == pytest.approx(80 / 0.02 / 0.8 * 0.9)
    assert one["dark_rate_quarter_pe_err_hz"] == pytest.approx(math.sqrt(80) / 0.02 / 0.8 * 0.9)
    assert "dark_rate_quarter_pe_hz" not in corrected_dark_rate(dark_rate(80, 0.02e9), 0.8)
    assert "dark_rate_quarter_pe_hz" not in corrected_dark_rate(dark_rate(80, 0.02e9), 0.1, 0.9)  # not corrected
    points = {"theta0_phi0": one, "theta10_phi0": corrected_dark_rate(dark_rate(60, 0.02e9), 0.7, 0.8),
              "theta10_phi90": _dark(70, 0.02, 0.8)}  # (no share: in the rate, not in the rate over a quarter PE)
    pooled = pooled_dark_rate(points)
    assert pooled["n_points"] == 3 and pooled["n_points_quarter_pe"] == 2
    assert pooled["dark_rate_quarter_pe_hz"] == pytest.approx(140 / (0.02 * 0.8 / 0.9 + 0.02 * 0.7 / 0.8))
    assert pooled_dark_rate({"theta10_phi90": points["theta10_phi90"]})["dark_rate_quarter_pe_hz"] is None


def test_without_the_efficiency_correction_the_pmt_dark_rate_pools_the_counted_rates():
    points = {p: dark_rate(c, 0.02e9) for p, c in (("theta0_phi0", 100), ("theta10_phi0", 110))}
    pooled = pooled_dark_rate(points)
    assert pooled["dark_rate_hz"] == pytest.approx(210 / 0.04) and pooled["left_out"] == []
    assert pooled["chi2_ndf"] == pytest.approx(2 * 5**2 / 105)
    assert pooled["dark_rate_err_hz"] == pytest.approx(math.sqrt(210) / 0.04)  # chi2/ndf under 1: not scaled


def test_threshold_efficiency_of_dark_counting():
    ratios = np.full(1000, 5.0)  # 5 mV per pC: threshold 4 mV = 0.8 pC
    assert threshold_efficiency(ratios, 1.6, 0.4, 4.0) == pytest.approx(0.97725, abs=1e-4)  # 2 sigma
    assert threshold_efficiency(ratios[:10], 1.6, 0.4, 4.0) is None
    # with the under-amplified photoelectrons of the fit: the fraction of simulated 1-PE pulses over threshold
    rng = np.random.default_rng(3)
    w, mean_u, k_u, q1, r1 = 0.15, 0.5, 1.0, 1.6, 0.3
    n = 400_000
    q = np.where(rng.random(n) < w, rng.gamma(k_u, mean_u / k_u, n), rng.gamma(1 / r1**2, q1 * r1**2, n))
    ratio = rng.uniform(3.0, 5.0, n)
    measured = np.mean(q * ratio > 4.0)
    eff = threshold_efficiency(ratio[:20000], q1, r1 * q1, 4.0, (w, mean_u, k_u))
    assert eff == pytest.approx(measured, abs=0.004)
    assert threshold_efficiency(ratio[:20000], q1, r1 * q1, 4.0) > measured + 0.5 * w  # main peak only: too high
    corrected = corrected_dark_rate(dark_rate(100, 2e7), 0.8)
    assert corrected["dark_rate_hz"] == pytest.approx(6250) and corrected["dark_rate_raw_hz"] == pytest.approx(5000)


def test_noise_crossings_are_counted_with_the_opposite_polarity_and_subtracted():
    # no laser pulse; two dark pulses before the window, and three noise spikes that cross the threshold both
    # ways (symmetric noise: as many positive-going as negative-going excursions over 4 mV)
    trig, pmt = _events(60, None, extra=[60 + 20.0, 60 + 40.0, 60 + 80.0, 60 + 100.0, 60 + 120.0])
    noise_up = np.zeros(400)
    for at in (60 + 60.0, 60 + 90.0, 60 + 110.0):  # positive-going spikes of 10 mV: PMT pulses are negative
        noise_up += 10.0 * np.clip(1 - np.abs(np.arange(400) - at) / 2.0, 0, None)
    pmt = np.rint(pmt.astype(float) + noise_up / MV_PER_ADC).astype(np.uint16)
    _, dark, _, _, _, noise = pulse_times(pmt[None], trig[None], TimingSettings())
    assert dark[0].tolist() == [5, 0, 0] and noise[0].tolist() == [3, 0, 0]
    acc = TimingAccumulator()
    acc.add(*pulse_times(pmt[None], trig[None], TimingSettings()))
    counts, crossed, live_ns, _ = acc.dark_sample(WINDOW_NS)
    rate = dark_rate(counts, live_ns, crossed)
    assert rate["dark_rate_hz"] == pytest.approx(2 / (live_ns * 1e-9)) and rate["noise_counts"] == 3
    assert rate["dark_rate_err_hz"] == pytest.approx(math.sqrt(8) / (live_ns * 1e-9))
    assert "3 of the 5 pulses over the threshold are noise" in rate["dark_rate_note"]
    assert "dark_rate_note" not in dark_rate(100, 2e7, 5)  # a few per cent: said nowhere
    assert dark_rate(3, 2e7, 9)["dark_rate_hz"] == 0.0  # never negative


def test_a_pulse_among_the_baseline_samples_leaves_its_event_out_of_the_dark_counting():
    """1 mV white noise, one 10 mV dark pulse per event before the window, and in a fifth of the events a broad
    pulse among the 40 baseline samples. That pulse lifts the baseline mean by 2 mV, so the rest of its event
    crosses -4 mV hundreds of times as often as noise: counted as noise and subtracted, they took the whole rate
    (an independent stand at 1 mV lost 283 of 2600 dark pulses so). Left out, counts and live time, the rest
    gives one dark pulse per event."""
    rng = np.random.default_rng(5)
    n, length = 5000, 400
    trig, _ = _events(60, None, n_samples=length)
    s = np.arange(length, dtype=float)
    pmt_mv = rng.normal(0.0, 1.0, (n, length))
    for event, at in enumerate(rng.uniform(100, 170, n)):
        pmt_mv[event] += 10.0 * np.clip(1 - np.abs(s - at) / 2.0, 0, None)
    busy = rng.random(n) < 0.2
    pmt_mv[busy] += 8.0 * np.clip(1 - np.abs(s - 20) / 10.0, 0, None)  # 80 mV x samples: 2 mV on the mean
    pmt_mv += 10.0 * np.clip(1 - np.abs(s - (60 + 163)) / 2.0, 0, None)  # a laser pulse in the window
    pmt = np.rint(14000 - pmt_mv / MV_PER_ADC).astype(np.uint16)
    acc = TimingAccumulator()
    acc.add(*pulse_times(pmt, np.tile(trig, (n, 1)), TimingSettings()))
    counts, noise, live_ns, _ = acc.dark_sample(WINDOW_NS)
    before_window = 60 + TimingSettings().dark_exclude_ns[0] / 2.0 - 40  # samples from the baseline's end
    assert live_ns == pytest.approx(np.count_nonzero(~busy) * before_window * 2.0, rel=0.01)
    assert (counts - noise) / np.count_nonzero(~busy) == pytest.approx(1.0, abs=0.02)
    assert noise < 0.05 * counts  # white noise crosses 4 sigma about once in 80 events


def test_a_threshold_that_sees_few_photoelectrons_leaves_the_counted_rate_and_says_so():
    # an independent stand at 0.5e7: 20 % of the photoelectrons over 4 mV, 0.4-0.7 kHz counted for 4 kHz
    low = corrected_dark_rate(dark_rate(61, 1e8), 0.20)
    assert low["dark_rate_hz"] == pytest.approx(610.0) and "sees 20 % of the photoelectrons" in low["dark_rate_note"]
    assert "dark_rate_note" not in corrected_dark_rate(dark_rate(61, 1e8), 0.9)


def test_threshold_efficiency_measured_on_the_laser_pulses():
    """Poisson photoelectrons per event, each over the threshold with probability eff, plus dark pulses in the
    window: the fraction of events with a pulse over threshold gives eff back."""
    rng = np.random.default_rng(8)
    n, mu, eff, rate, window_ns = 400_000, 0.12, 0.83, 5e4, 80.0
    seen = rng.binomial(rng.poisson(mu, n), eff) + rng.poisson(rate * window_ns * 1e-9, n)
    measured = measured_threshold_efficiency(int(np.count_nonzero(seen)), n, mu, rate, window_ns)
    assert measured == pytest.approx(eff, abs=0.01)
    assert measured_threshold_efficiency(0, n, mu, rate, window_ns) is None  # no light: not measurable
    assert measured_threshold_efficiency(10, n, None, rate, window_ns) is None


def test_threshold_efficiency_holds_where_the_fitted_mu_holds_the_dark_pulses_of_its_window():
    """The SPE fit counts every photoelectron of its charge window, the dark ones too: at 100 kHz and 0.05 PE of
    laser light a 100 ns window adds 0.01 PE / eff, and eff measured against that mu read ~17 % low (the dark
    rate as much high) until the counted dark pulses of that window are given back."""
    rng = np.random.default_rng(9)
    n, mu, eff, crossing_hz, laser_ns, charge_ns = 400_000, 0.05, 0.85, 85e3, 60.0, 100.0
    seen = rng.binomial(rng.poisson(mu, n), eff) + rng.poisson(crossing_hz * laser_ns * 1e-9, n)
    fitted_mu = mu + crossing_hz / eff * charge_ns * 1e-9
    over = int(np.count_nonzero(seen))
    naive = measured_threshold_efficiency(over, n, fitted_mu, crossing_hz, laser_ns)
    given_back = measured_threshold_efficiency(over, n, fitted_mu, crossing_hz, laser_ns,
                                               crossing_hz * charge_ns * 1e-9)
    assert naive == pytest.approx(eff * mu / fitted_mu, abs=0.015) and naive < eff - 0.1
    assert given_back == pytest.approx(eff, abs=0.015)


def test_the_quarter_pe_occupancy_takes_the_fits_error_never_below_counting():
    """The fit's error (its fitted share moving against mu) where it is the larger, the counting error of the
    events with a photoelectron over a quarter PE where the fit gives none or a smaller one."""
    counting = empty_share_error(math.exp(-0.07), 80_000)
    assert counting == pytest.approx(math.sqrt((1 - math.exp(-0.07)) / (80_000 * math.exp(-0.07))))
    assert quarter_pe_occupancy(0.07, 1.5 * counting, 80_000) == (0.07, 1.5 * counting)
    assert quarter_pe_occupancy(0.07, 0.5 * counting, 80_000) == (0.07, counting)
    assert quarter_pe_occupancy(0.07, None, 80_000) == (0.07, counting)
    assert quarter_pe_occupancy(0.07, math.nan, 80_000) == (0.07, counting)


def test_zero_pe_occupancy_matches_poisson_mu():
    rng = np.random.default_rng(5)
    n, mu = 200000, 0.8
    k = rng.poisson(mu, n)
    q = rng.normal(0, 0.1, n) + np.where(k > 0, rng.normal(k * 1.6, 0.5 * np.sqrt(np.maximum(k, 1))), 0)
    occ, err = zero_pe_occupancy(q, 0.0, 0.1, 3.0)
    assert occ == pytest.approx(mu, abs=4 * err + 0.01 * mu)


def test_relative_de_and_uniformity():
    de, err = raw_efficiency(0.9, 0.009, 20.0, 0.0)
    assert de == pytest.approx(0.045) and err == pytest.approx(0.00045)
    rel, rel_err = relative(0.9, 0.009, 1.0, 0.01)
    assert rel == pytest.approx(0.9) and rel_err == pytest.approx(0.9 * math.hypot(0.01, 0.01))
    values = {"theta0_phi0": 1.0, "theta50_phi0": 0.8, "theta50_phi90": 0.9, "theta10_phi0": 1.1}
    u = uniformity(values)
    assert u["spread"] == pytest.approx(0.3 / 0.95) and u["centre_side"] == pytest.approx(0.85)
    assert de_verdict(u, EfficiencySettings())[0] == "check"
    assert de_verdict(uniformity({"theta0_phi0": 1.0, "theta50_phi0": 0.95}), EfficiencySettings())[0] == "pass"
    assert de_verdict(uniformity({"theta10_phi0": 1.0}), EfficiencySettings())[0] == "in progress"


@pytest.mark.parametrize(("theta", "expected"), [(0, -0.0402), (10, 16.9848), (50, 75.2848), (None, None)])
def test_hamamatsu_angle(theta, expected):
    got = hamamatsu_angle(theta)
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-9))


def test_timing_of_points_with_several_photoelectrons_per_event_says_it_is_not_single_photoelectron() -> None:
    from remote_monitor.analysis.timing_fit import multi_photoelectron_note
    from remote_monitor.analysis.timing_jitter import tts_less_jitter
    from remote_monitor.report.peer_figures import timing_figure

    assert multi_photoelectron_note(None) is None and multi_photoelectron_note(0.15) is None  # the stand's 0.05-0.15
    note = multi_photoelectron_note(1.0)
    assert note is not None and note.startswith("1.00 PE per event: 42 % of the lit events hold several")
    assert "0.2 PE" in note and "78 %" in multi_photoelectron_note(2.5)  # type: ignore[operator]
    timing = {"histogram": {"edges": [0.0, 1.0, 2.0], "counts": [3, 4]}, "transit_time_ns": 54.5,
              "transit_time_err_ns": 0.01, "tts_sigma_ns": 1.0, "tts_fwhm_ns": 2.4}
    plain = timing_figure({"point": "theta0_phi0", "peer": {"timing": timing}})
    noted = timing_figure({"point": "theta0_phi0", "peer": {"timing": {**timing, "note": note}}})
    assert plain is not None and noted is not None
    assert plain["lines"] == ["TT 54.50 ± 0.01 ns, TTS σ 1.00 ns, FWHM 2.40 ns"]
    assert noted["lines"] == [*plain["lines"], note] and "TTS reads narrower" in note
    assert noted["layout"]["title"]["text"] == "PMT − trigger time theta0_phi0"  # (the lines go under the plot)
    jittered = tts_less_jitter({**timing, "status": "ok", "tts_sigma_err_ns": 0.02},
                               {"noise_jitter_ns": 1.2, "noise_jitter_err_ns": 0.02, "noise_jitter_pulses": 900})
    too_wide = timing_figure({"point": "theta0_phi0", "peer": {"timing": jittered}})
    assert too_wide is not None and "PMT's own spread is not measured" in too_wide["lines"][-1]


def test_threshold_efficiency_from_the_laser_pulses_only_where_they_seldom_merge() -> None:
    from remote_monitor.analysis.point_extras import ExtrasAccumulator

    # half the searched events hold a pulse over the threshold: at 1 PE per event that reads an efficiency of
    # 0.69, inflated where photoelectrons under the threshold merge into pulses over it (the sixth stand: 0.32
    # and 0.44 for about 0.2 at 1 and 2.5 PE); the SPE fit's efficiency is used instead
    acc = ExtrasAccumulator(TimingSettings())
    acc.times = TimingAccumulator(dark_counts=400, dark_ns=1e8, laser_searched=100_000, laser_over=50_000,
                                  amplitude_per_pc=[np.full(1000, 5.0)])
    fit = {"status": "ok", "q1_pc": 1.6, "sigma1_pc": 0.4, "under_amplified_fraction": 0.1,
           "under_amplified_mean_pc": 0.4, "under_amplified_shape": 1.0}
    merged = acc.dark({**fit, "mu": 1.0})
    assert merged["threshold_efficiency_from"] == "SPE fit" and merged["threshold_efficiency"] < 0.95
    acc.times.laser_over = 10_000  # the same fraction of single photoelectrons: 0.105 / 0.15 = 0.70 at 0.15 PE
    single = acc.dark({**fit, "mu": 0.15})
    assert single["threshold_efficiency_from"] == "laser pulses"
    assert single["threshold_efficiency"] == pytest.approx(0.70, abs=0.01)
    # at 0.3 PE the laser pulses measure it where most photoelectrons cross alone (the project's stand at 1e7:
    # 0.69 with the true occupancy, the SPE fit's 0.74 for 0.694 counted), not where most stay under it
    acc.times.laser_over = round(100_000 * -math.expm1(-0.3 * 0.85))
    assert acc.dark({**fit, "mu": 0.3})["threshold_efficiency_from"] == "laser pulses"
    acc.times.laser_over = round(100_000 * -math.expm1(-0.3 * 0.45))
    assert acc.dark({**fit, "mu": 0.3})["threshold_efficiency_from"] == "SPE fit"


def test_merging_bias_bounds_the_inflation_of_the_laser_measured_efficiency() -> None:
    """Monte Carlo of the laser method: Poisson photoelectrons, each over the threshold with probability eff; two
    under it merge over it always (m = 1): -ln P(no pulse over) / mu overestimates eff by at most the bound."""
    for mu, eff in ((0.3, 0.7), (0.5, 0.7), (1.0, 0.2), (0.1, 0.5)):
        p0 = sum(math.exp(-mu) * mu**n / math.factorial(n) * (1 - eff) ** n * (1 if n < 2 else 0) for n in range(30))
        inflation = -math.log(p0) / mu / eff - 1
        assert 0.5 * merging_bias(mu, eff) < inflation <= merging_bias(mu, eff) * 1.05, (mu, eff)
    assert merging_bias(0.3, 0.0) == math.inf


def test_threshold_efficiency_on_the_laser_pulses_counts_the_noise_crossings_in_the_window() -> None:
    from remote_monitor.analysis.point_extras import ExtrasAccumulator

    # 1e5 crossings per second outside the window, 90 % of them noise: in an 80 ns window 0.008 per event,
    # noise as well as dark pulses; 0.1 PE per event seen with an efficiency of 0.8
    searched = 1_000_000
    over = round(searched * -math.expm1(-(0.1 * 0.8 + 1e5 * 80e-9)))
    acc = ExtrasAccumulator(TimingSettings())
    acc.times = TimingAccumulator(dark_counts=1000, noise_counts=900, dark_ns=1e7, laser_searched=searched,
                                  laser_over=over)
    dark = acc.dark({"status": "ok", "mu": 0.1, "q1_pc": 1.6, "sigma1_pc": 0.4})
    assert dark["threshold_efficiency_from"] == "laser pulses"
    assert dark["threshold_efficiency"] == pytest.approx(0.8, abs=0.005)  # (0.872 with the noise left out)
    assert dark["dark_rate_hz"] == pytest.approx(100 / 0.01 / 0.8, rel=0.01)

