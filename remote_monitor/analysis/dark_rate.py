"""Dark-count rate from pulses counted outside the laser window (Poisson error)."""

from __future__ import annotations

import math
import statistics
from typing import Any, TypeGuard

import numpy as np
from scipy.special import ndtr

from remote_monitor.analysis.spe_response import QUARTER_PE, share_over

NOISE_NOTE_SHARE = 0.1  # noise crossings over this share of the counts: the point says so


def dark_rate(counts: int, live_ns: float, noise: int = 0,
              afterpulses: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    """Rate in Hz with its Poisson error (an upper error of 1 count when none was seen), less the noise
    crossings: the same threshold crossed by the opposite polarity in the same spans (PMT pulses have one sign,
    noise both). An independent stand at 1 mV noise counted 22-33 kHz over 4 mV for 4 kHz of dark pulses, and
    its laser-off point 24.8 kHz; at 0.3 mV none cross. The rate is at least 0, its error from both counts. With
    `afterpulses` (`TimingAccumulator.unseen_afterpulses`: counts, noise crossings, live ns and variance) those of
    the photoelectrons under the threshold come off (`unseen_afterpulses`, the net counts taken off)."""
    out: dict[str, Any] = {"dark_counts": counts, "noise_counts": noise}
    ap_counts, ap_noise, ap_live_ns, ap_variance = afterpulses or (0.0, 0.0, 0.0, 0.0)
    if live_ns - ap_live_ns <= 0:
        return {**out, "dark_rate_hz": None, "dark_rate_err_hz": None, "dark_live_s": 0.0}
    live_s = (live_ns - ap_live_ns) * 1e-9
    variance = counts + noise + ap_variance
    out.update(dark_rate_hz=max(counts - noise - (ap_counts - ap_noise), 0) / live_s,
               dark_rate_err_hz=math.sqrt(max(variance, 1)) / live_s, dark_live_s=live_s)
    if afterpulses:
        out.update(unseen_afterpulses=ap_counts - ap_noise, dark_count_variance=variance)
    if noise > NOISE_NOTE_SHARE * max(counts, 1):
        out["dark_rate_note"] = (f"{noise} of the {counts} pulses over the threshold are noise (as many crossed it "
                                 "with the opposite polarity) and are subtracted; a higher [timing] "
                                 "dark_threshold_mv counts fewer")
    return out


def unseen_share(mu: float, efficiency: float) -> float:
    """Photoelectrons under the dark threshold per event without a laser pulse over it, over the photoelectrons per
    event with one (`TimingAccumulator.unseen_afterpulses`). Poisson thinning: the unseen ones are Poisson(mu (1 -
    eff)) in every event, and an event with a seen one holds mu eff / (1 - exp(-mu eff)) seen ones besides."""
    seen, unseen = mu * efficiency, mu * max(1.0 - efficiency, 0.0)
    if seen <= 0:
        return 0.0
    return unseen / (seen / -math.expm1(-seen) + unseen)


def threshold_efficiency(amp_per_pc: np.ndarray, q1_pc: float | None, sigma1_pc: float | None,
                         threshold_mv: float, under: tuple[float, float, float] | None = None) -> float | None:
    """Fraction of single-PE pulses whose amplitude exceeds the threshold, averaged over the amplitude-per-
    charge of the laser pulses (sampling phase and shape, from the data).

    The 1-PE charge is the SPE fit's: the main peak as a Gamma of mean q1 and width sigma1, plus, with
    under = (fraction w, mean, Gamma shape), the under-amplified photoelectrons, most of which stay below
    the threshold (without them the dark rate comes out low by about w). Without `under`: the main peak as
    a Gaussian (the seed model's fits)."""
    ratios = np.asarray(amp_per_pc, dtype=float)
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(ratios) < 50 or not q1_pc or not sigma1_pc:
        return None
    return float(np.mean(charge_fraction_over(threshold_mv / ratios, q1_pc, sigma1_pc, under)))


def charge_fraction_over(q_pc: np.ndarray | float, q1_pc: float, sigma1_pc: float,
                         under: tuple[float, float, float] | None = None) -> np.ndarray:
    """Fraction of photoelectrons whose charge exceeds q_pc in the fitted 1-PE response (`threshold_efficiency`
    describes `under`; with it the response's own formula, `spe_response.share_over`)."""
    q = np.asarray(q_pc, dtype=float)
    if under is None:
        return np.asarray(ndtr((q1_pc - q) / sigma1_pc))
    w, mean_u, shape_u = under
    response = {"r1": sigma1_pc / q1_pc, "w": w, "u": mean_u / q1_pc, "k_u": shape_u, "b": 0.0}
    return np.asarray(share_over(response, q / q1_pc))


def quarter_pe_share(fit: dict[str, Any]) -> float | None:
    """Share of the photoelectrons over QUARTER_PE of the main peak's mean in the SPE fit's 1-PE response (None
    without one). The share under it holds the under-amplified photoelectrons that hide in the pedestal, which
    the fit's occupancy, and with it the threshold efficiency, can only extrapolate; a rate over a quarter PE
    does not depend on them. The fit's own where it gives one (mu_quarter_pe / mu: its nominal minimum's
    `spe_response.share_over`, the DE's occupancy's), else from its fitted peak and under-amplified part (the seed
    model's Gaussian peak; a result stored before the fit gave one)."""
    mu, mu_q = fit.get("mu"), fit.get("mu_quarter_pe")
    if mu and mu > 0 and mu_q is not None:
        return float(mu_q) / float(mu)
    q1, sigma1 = fit.get("q1_pc"), fit.get("sigma1_pc")
    if not q1 or not sigma1 or q1 <= 0:
        return None
    return float(charge_fraction_over(QUARTER_PE * q1, q1, sigma1, fitted_under(fit)))


def fitted_under(fit: dict[str, Any]) -> tuple[float, float, float] | None:
    """The SPE fit's under-amplified part as `threshold_efficiency` takes it, None where the fit has none (the
    seed model)."""
    w, mean_u, k_u = (fit.get(k) for k in ("under_amplified_fraction", "under_amplified_mean_pc",
                                           "under_amplified_shape"))
    return (float(w), float(mean_u), float(k_u)) if w is not None and mean_u and k_u else None


def measured_threshold_efficiency(over: int, searched: int, mu: float | None, dark_rate_hz: float | None,
                                  window_ns: float, dark_in_mu: float = 0.0) -> float | None:
    """Fraction of photoelectrons over the dark threshold, measured on the laser pulses: with occupancy mu
    (the SPE fit's, every photoelectron counted) the laser window of an event holds no pulse over threshold
    with probability exp(-mu_laser eff) exp(-dark rate x window), so eff = (-ln(1 - over/searched) - dark) /
    mu_laser. The fit's mu also holds the dark pulses of its charge window: mu = mu_laser + (pulses over the
    threshold in it per event, dark_in_mu) / eff, so eff = (-ln(1 - over/searched) - dark + dark_in_mu) / mu.
    Pulse shape, sampling phase, noise, baseline wander and the whole 1-PE charge spectrum are those of the
    data. None when it cannot be measured (no light, no fit)."""
    if not mu or mu <= 0 or searched <= 0 or not 0 < over < searched:
        return None
    dark = (dark_rate_hz or 0.0) * window_ns * 1e-9
    return (-math.log(1.0 - over / searched) - dark + dark_in_mu) / mu


MAX_MERGING_BIAS = 0.03  # the laser pulses measure the threshold efficiency where merging inflates it by less


def merging_bias(mu: float, efficiency: float) -> float:
    """Upper bound of the relative overestimate of a threshold efficiency measured on the laser pulses
    (`measured_threshold_efficiency`) at occupancy mu: two photoelectrons of one event, each under the threshold,
    merge into one pulse that may cross it, so fewer events stay empty than exp(-mu eff) says. To first order
    the efficiency reads high by (mu / 2) (1 - eff)^2 m exp(-mu (1 - eff)), m the chance that such a pair
    crosses; the bound takes m = 1 (the project's simulation at 1e7 read 0.680 / 0.683 / 0.688 / 0.692 at 0.1 /
    0.2 / 0.3 / 0.5 PE with the true occupancy, about half the bound). At 0.5e7 the sixth independent stand read
    0.32 and 0.44 at 1 and 2.5 PE, where about 0.2 was due: bounds of 0.7 and more."""
    if not efficiency or efficiency <= 0:
        return math.inf
    return 0.5 * mu * (1.0 - efficiency) ** 2 / efficiency


MIN_THRESHOLD_EFFICIENCY = 0.3  # a rate counted by a threshold that sees fewer photoelectrons is not scaled up


def scales_up(efficiency: float | None) -> TypeGuard[float]:
    """Whether a counted rate is divided by this threshold efficiency (see `corrected_dark_rate`)."""
    return efficiency is not None and efficiency > MIN_THRESHOLD_EFFICIENCY


def applied_efficiency(sample: dict[str, Any]) -> float | None:
    """The threshold efficiency a point's dark sample (`corrected_dark_rate`) is counted with: its own, None where
    it has none (no 1-PE response), 1 where the correction is off (no key: every point counted alike). Its rate is
    corrected where `scales_up` of it."""
    return sample.get("threshold_efficiency", 1.0)


def corrected_dark_rate(raw: dict[str, Any], efficiency: float | None,
                        quarter_share: float | None = None) -> dict[str, Any]:
    """The raw counting rate divided by the threshold efficiency (kept as dark_rate_raw_hz), and with the 1-PE
    response's share over a quarter PE (`quarter_pe_share`) the rate of dark pulses over a quarter PE. Where the
    threshold sees under MIN_THRESHOLD_EFFICIENCY of the photoelectrons (a low gain: 0.5e7 put 20 % of them over
    4 mV on an independent stand, which counted 0.4-0.7 kHz for 4 kHz), the counted rate stays, and says so."""
    out = {**raw, "dark_rate_raw_hz": raw["dark_rate_hz"], "threshold_efficiency": efficiency}
    if scales_up(efficiency) and raw["dark_rate_hz"] is not None:
        out["dark_rate_hz"] = raw["dark_rate_hz"] / efficiency
        out["dark_rate_err_hz"] = raw["dark_rate_err_hz"] / efficiency
        if quarter_share:
            out.update(quarter_pe_share=quarter_share, dark_rate_quarter_pe_hz=out["dark_rate_hz"] * quarter_share,
                       dark_rate_quarter_pe_err_hz=out["dark_rate_err_hz"] * quarter_share)
    elif efficiency is not None and raw["dark_rate_hz"] is not None:
        out["dark_rate_note"] = joined_notes(raw.get("dark_rate_note"), (
            f"not corrected for the threshold efficiency: the threshold sees {100 * efficiency:.0f} % of the "
            "photoelectrons at this gain, so the rate counts only pulses over it; a lower [timing] "
            "dark_threshold_mv sees more"))
    return out


def pooled_dark_rate(samples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One dark rate for the PMT from its points' dark samples (`dark` of each point's extras): the counts less
    the noise crossings, summed, over the live time times the threshold efficiency, summed (a weighted mean of
    the points' rates would lean low: a point that counted few gets a small Poisson error). Points whose rate is
    not corrected for the threshold efficiency, where the others are, count only the pulses over the threshold
    and are left out with why; those without a 1-PE response of their own (no light, a failed fit) get the other
    points' efficiency in `borrowed` (`borrowed_efficiency`). The rate over a quarter PE is pooled the same way
    over the points that have one (`dark_rate_quarter_pe_hz`). chi2/ndf of the points around the pooled rate:
    about 1 when the rate held steady through the scan (a PMT still settling after the HV went on, or after
    light, counts more at first); above 1 the error is scaled by its square root."""
    used, quarter, left_out, unresolved, efficiencies = [], [], [], {}, []
    for point, s in samples.items():
        eff = applied_efficiency(s)
        if not s.get("dark_live_s") or s.get("dark_rate_hz") is None:
            continue
        if not scales_up(eff):
            left_out.append({"point": point, "reason": s.get("dark_rate_note") or "not corrected"})
            if eff is None:
                unresolved[point] = s
            continue
        net, variance = _net_counts(s)
        exposure = float(s["dark_live_s"]) * eff
        used.append((net, variance, exposure))
        if s.get("quarter_pe_share"):
            quarter.append((net, variance, exposure / float(s["quarter_pe_share"])))
        if "threshold_efficiency" in s:  # (a measured one: those a point without its own may borrow)
            efficiencies.append(float(eff))
    pooled, over_quarter = _pooled(used), _pooled(quarter)
    return {"dark_rate_hz": pooled[0], "dark_rate_err_hz": pooled[1], "chi2_ndf": pooled[2], "n_points": len(used),
            "dark_rate_quarter_pe_hz": over_quarter[0], "dark_rate_quarter_pe_err_hz": over_quarter[1],
            "n_points_quarter_pe": len(quarter), "left_out": left_out,
            "borrowed": [borrowed_efficiency(p, s, efficiencies) for p, s in unresolved.items()
                         if len(efficiencies) >= MIN_LENDERS]}


def _net_counts(sample: dict[str, Any]) -> tuple[float, float]:
    """(counts less the noise crossings and the unseen photoelectrons' afterpulses, their variance) of a point's dark
    sample (`dark_rate`)."""
    counts, noise = int(sample["dark_counts"]), int(sample.get("noise_counts") or 0)
    net = counts - noise - float(sample.get("unseen_afterpulses") or 0.0)
    return net, float(sample.get("dark_count_variance") or counts + noise)


def _pooled(samples: list[tuple[float, float, float]]) -> tuple[float | None, float | None, float | None]:
    """(rate, error, chi2/ndf) of (net counts, their variance, exposure) samples (`_net_counts`): the net counts
    summed over the exposure summed; the error scaled by the square root of a chi2/ndf over 1 (each sample's
    expected variance: the rate's counts and what the noise and afterpulse terms add)."""
    exposure = sum(e for _, _, e in samples)
    if not samples or exposure <= 0:
        return None, None, None
    net, variance = sum(c for c, _, _ in samples), sum(v for _, v, _ in samples)
    rate = max(net, 0) / exposure
    err = math.sqrt(max(variance, 1)) / exposure
    if len(samples) == 1:
        return rate, err, None
    chi2_ndf = sum((c - rate * e) ** 2 / max(rate * e + v - c, 1.0) for c, v, e in samples) / (len(samples) - 1)
    return rate, err * math.sqrt(max(chi2_ndf, 1.0)), chi2_ndf


MIN_LENDERS = 2  # corrected points whose threshold efficiencies a point without its own may take (mean and spread)


def borrowed_efficiency(point: str, sample: dict[str, Any], efficiencies: list[float]) -> dict[str, Any]:
    """The counted rate of a point with no 1-PE response of its own (no light on it, a failed fit) divided by the
    mean threshold efficiency of the scan's corrected points: the same PMT at the same HV, whose efficiency varies
    from point to point only with the gain. That point's gain is unknown, so the efficiencies' spread (not the
    error of their mean) goes into its error. A laser-off point is the stand's plain dark-rate measurement; a
    PMT without light that counts far fewer than the others is off, not dark."""
    eff = statistics.fmean(efficiencies)
    spread = statistics.stdev(efficiencies)
    rate = float(sample["dark_rate_hz"]) / eff
    err = math.hypot(float(sample["dark_rate_err_hz"]) / eff, rate * spread / eff)
    return {"point": point, "dark_rate_hz": rate, "dark_rate_err_hz": err, "threshold_efficiency": eff,
            "threshold_efficiency_spread": spread, "n_lenders": len(efficiencies)}


def joined_notes(*notes: str | None) -> str:
    """The notes given, in order, joined by '; ' (None and empty ones left out)."""
    return "; ".join(n for n in notes if n)
