"""Status of one scan point from its SPE fit, the gain uncertainty and the healthy band.

healthy    the gain is inside the band by more than HEALTHY_SIGMAS combined errors;
poor       the gain is outside the band by more than POOR_SIGMAS combined errors (however large they are);
uncertain  the data cannot decide (within HEALTHY_SIGMAS inside or POOR_SIGMAS outside of a band edge, the
           error larger than the half band width, Minuit did not converge, or the fit does not describe the
           spectrum: chi2/ndf above BAD_FIT_CHI2_NDF); the reason says which;
error      no usable gain: fit failed or gave no error, no light (dead point: always error, never poor),
           no 1-PE peak separated from the pedestal (Q1 < 2 pedestal widths), too much light (no pedestal at
           zero charge), or the gain or occupancy stuck at a fit limit.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import ndtr

from remote_monitor.analysis.spe_result import NO_SIGNAL_MU, SEPARATED_Q1

POOR_SIGMAS = 2.0
HEALTHY_SIGMAS = 1.0
MAX_ERR_OF_HALF_BAND = 1.0
MIN_SIGNAL_FRACTION = 0.003  # fewer events than this clearly above the pedestal: no light (unless the fit sees it)
LIGHT_WIDTHS = 5.0  # "clearly above the pedestal": this many pedestal widths
LIGHT_SIGMAS = 5.0  # faint light: the fitted occupancy this many errors above zero ...
TAIL_AGREEMENT = 0.5  # ... and at least this fraction of the events its 1-PE peak predicts above LIGHT_WIDTHS
DEAD_Q1 = 1.5  # Q1 below this many pedestal widths: no SPE signal at all (no light or a dead PMT)
NO_LIGHT = "no_light"  # the status of a reference PMT's fit that shows no light (`no_light`)
TOO_BRIGHT = "too_bright"  # ... and of one whose spectrum has no pedestal: light in nearly every event (`too_bright`)
NO_USABLE_LIGHT = (NO_LIGHT, TOO_BRIGHT)  # a reference PMT with either status is no light monitor
BRIGHT_WIDTHS = 1.5  # a spectrum's highest bin this many of its widths above zero charge is no pedestal (a noise
# pedestal sits at zero within a small part of its width: the charges are baseline-subtracted event by event); a
# peak of n photoelectrons per event stands about sqrt(n) / 1.1 of its widths above zero: from about 3 PE on
BAD_FIT_CHI2_NDF = 10.0  # a fit this far from the spectrum decides nothing: an independently simulated stand with
# pickup read +15 % with chi2/ndf 315 and was called poor "by 45 sigma"; good fits of 600k-event points: 1-2 (1-4
# before the charges were dithered within their lattice step, `charges.lattice_dither`)


class Pedestal(NamedTuple):
    """The pedestal as the histogram alone shows it."""

    position: float  # the highest bin's centre (pC)
    width: float  # the rms of the bins left of it (at least one bin)
    above: float  # the fraction of events more than LIGHT_WIDTHS widths above it


def _pedestal(hist: dict[str, Any] | None) -> Pedestal | None:
    """The histogram's pedestal; None without a histogram or events."""
    if not hist:
        return None
    edges, counts = np.asarray(hist["edges"], float), np.asarray(hist["counts"], float)
    total = counts.sum()
    if total <= 0:
        return None
    x = 0.5 * (edges[1:] + edges[:-1])
    i_peak = int(np.argmax(counts))
    left = x < x[i_peak]
    n_left = counts[left].sum()
    width = float(np.sqrt((counts[left] * (x[left] - x[i_peak]) ** 2).sum() / n_left)) if n_left else 0.0
    width = max(width, float(edges[1] - edges[0]))
    above = float(counts[x > x[i_peak] + LIGHT_WIDTHS * width].sum() / total)
    return Pedestal(float(x[i_peak]), width, above)


def signal_fraction(hist: dict[str, Any] | None) -> float | None:
    """Fraction of events more than LIGHT_WIDTHS pedestal widths above the pedestal, from the histogram alone
    (independent of the fit, so that a fit that wanders off on a dead point cannot hide it)."""
    ped = _pedestal(hist)
    return None if ped is None else ped.above


def _fit_sees_light(fit: dict[str, Any], ped: Pedestal, light_in_times: bool = False) -> bool:
    """Light on a point with few events above LIGHT_WIDTHS pedestal widths: faint light whose photoelectrons
    mostly stay under them (0.03 PE at 1e7 and 1 mV noise puts 0.2-0.4 % of the events there; a dark point,
    0.005-0.09 %). True when the fit finds a 1-PE peak separated from the pedestal, an occupancy of at least
    NO_SIGNAL_MU (ten times a dark point's: 3 kHz in a 120 ns window is 4e-4) and LIGHT_SIGMAS errors, and
    the histogram holds above LIGHT_WIDTHS widths at least TAIL_AGREEMENT of what that peak puts there (a fit
    that wandered off on a dead point predicts far more than is there). Where the PMT pulse times show a laser
    peak (light_in_times), the light is there whatever the occupancy's significance, which is not asked: the
    eighth independent stand at 1 mV (Q1 2.4 pedestal widths, 0.11 PE) fitted 1.02e7 ± 5 % at 4.6 errors of
    occupancy, where its siblings at 11 errors read `uncertain`, and the point had read 'too faint for a gain'."""
    keys = ("mu", "mu_err", "q1_pc", "sigma1_pc", "sigma0_pc")
    if fit.get("status") != "ok" or not all(isinstance(fit.get(k), (int, float)) and fit[k] > 0 for k in keys):
        return False
    mu, mu_err, q1, sigma1, sigma0 = (float(fit[k]) for k in keys)
    significant = light_in_times or mu >= LIGHT_SIGMAS * mu_err
    if mu < NO_SIGNAL_MU or not significant or q1 < SEPARATED_Q1 * sigma0:
        return False
    cut = ped.position + LIGHT_WIDTHS * ped.width
    main = 1.0 - float(fit.get("under_amplified_fraction") or 0.0)
    predicted = -np.expm1(-mu) * main * float(ndtr((ped.position + q1 - cut) / np.hypot(sigma1, sigma0)))
    return ped.above >= TAIL_AGREEMENT * predicted


def _q1_in_pedestal_widths(fit: dict[str, Any]) -> float | None:
    """The fitted 1-PE peak position in pedestal widths (None without both numbers)."""
    q1, sigma0 = fit.get("q1_pc"), fit.get("sigma0_pc")
    if not isinstance(q1, (int, float)) or not isinstance(sigma0, (int, float)) or sigma0 <= 0:
        return None
    return float(q1) / float(sigma0)


def _dark_point_cause(fit: dict[str, Any]) -> str:
    """What to check on a point without events above the pedestal. Where the fit's Q1 is under SEPARATED_Q1
    pedestal widths, the photoelectrons may be there but too small against the noise (0.5e7 at 1 mV noise and
    0.03-0.1 PE looks so): the operator is told that too, not sent to the laser alone."""
    cause = "laser, fibre or dead PMT?"
    widths = _q1_in_pedestal_widths(fit)
    if widths is not None and 0 < widths < SEPARATED_Q1:
        cause += (f" Or photoelectrons too small against the noise: the fit's Q1 is {widths:.1f} pedestal "
                  "widths (lower the noise or raise the HV)")
    return cause


def _dark_histogram(fit: dict[str, Any], hist: dict[str, Any] | None, laser_delay_ns: float | None) -> str | None:
    """Why the charges show no usable light when fewer than MIN_SIGNAL_FRACTION of the events are above the
    pedestal and the fit finds no faint light there (`_fit_sees_light`), else None: 'no light', light in nearly
    every event where the highest bin is no pedestal (`_bright`), or, where the PMT pulse times show a laser peak
    (laser_delay_ns), light too small or faint for a gain (`_light_in_the_times`)."""
    ped = _pedestal(hist)
    if ped is None or ped.above >= MIN_SIGNAL_FRACTION or _fit_sees_light(fit, ped, laser_delay_ns is not None):
        return None
    if _bright(ped):
        return (f"too much light for a single-photoelectron gain: no pedestal at zero charge (the spectrum peaks at "
                f"{ped.position:.1f} pC, {ped.width:.1f} pC wide), so nearly every event holds photoelectrons; dim "
                "the light to about 0.1 photoelectron per event")
    if laser_delay_ns is not None:
        return _light_in_the_times(fit, ped, laser_delay_ns)
    return f"no light: only {100 * ped.above:.2f} % of events above the pedestal ({_dark_point_cause(fit)})"


def _bright(ped: Pedestal) -> bool:
    """Whether the spectrum's highest bin is light rather than a pedestal (BRIGHT_WIDTHS of its widths above zero
    charge). An independent stand's reference PMT at 20 photoelectrons per event had read 'no light: only 0.00 % of
    events above the pedestal': its 20-PE peak was taken for the pedestal."""
    return ped.position > BRIGHT_WIDTHS * ped.width


def too_bright(hist: dict[str, Any] | None) -> bool:
    """Whether a spectrum that shows no usable light (`no_light`) has, instead, light in nearly every event."""
    ped = _pedestal(hist)
    return ped is not None and _bright(ped)


def _light_in_the_times(fit: dict[str, Any], ped: Pedestal, laser_delay_ns: float) -> str:
    """Why a point whose charges look dark has no gain although its PMT pulses show a laser peak in their times
    after the trigger (`laser_window.laser_delay_ns`: noise and dark pulses have none): the light is there, but
    its photoelectrons are too small against the noise or too few. (An independent stand at 1 mV noise: 0.5e7 at
    0.5-2.5 PE read "no light" with 0.10-0.14 % of events above the pedestal.)"""
    seen = f"light seen (a laser peak in the PMT pulse times {laser_delay_ns:.0f} ns after the trigger), but"
    widths = _q1_in_pedestal_widths(fit)
    if widths is not None and 0 < widths < SEPARATED_Q1:
        return (f"{seen} the 1-PE peak is not separated from the pedestal (the fit's Q1 is {widths:.1f} pedestal "
                "widths): no gain can be measured; lower the noise or raise the HV")
    return (f"{seen} only {100 * ped.above:.2f} % of events lie clearly above the pedestal: too faint for a gain "
            "(more events or more light)")


def _no_signal(fit: dict[str, Any]) -> str | None:
    """A fitted occupancy under NO_SIGNAL_MU, or None."""
    if fit.get("mu") is not None and fit["mu"] < NO_SIGNAL_MU:
        return f"no SPE signal (occupancy {fit['mu']:.3f} PE): laser or fibre problem?"
    return None


def _dead_peak(fit: dict[str, Any]) -> str | None:
    """A fitted 1-PE peak under DEAD_Q1 pedestal widths (no SPE signal at all), or None."""
    widths = _q1_in_pedestal_widths(fit)
    if widths is None or widths >= DEAD_Q1:
        return None
    return (f"no SPE peak separated from the pedestal (Q1 {fit['q1_pc']:.3f} pC < {DEAD_Q1} x pedestal width "
            f"{fit['sigma0_pc']:.3f} pC): no light, or PMT dead?")


def no_light(fit: dict[str, Any], hist: dict[str, Any] | None = None,
             laser_delay_ns: float | None = None) -> str | None:
    """Why a PMT's spectrum shows no light, as `classify` says it for a point (few events above the pedestal
    that no faint light explains, a fitted occupancy under NO_SIGNAL_MU, or a 1-PE peak under DEAD_Q1 pedestal
    widths), or None: light, or a fit that failed and no histogram to tell. For any PMT: the one under test,
    the reference. With a laser peak in the pulse times (laser_delay_ns), the light too small or faint to use."""
    why = _dark_histogram(fit, hist, laser_delay_ns)
    if why or fit.get("status") != "ok":
        return why
    return _no_signal(fit) or _dead_peak(fit)


def _no_gain(fit: dict[str, Any], hist: dict[str, Any] | None, laser_delay_ns: float | None) -> str | None:
    """Why the point has no usable gain, or None."""
    dark = _dark_histogram(fit, hist, laser_delay_ns)
    if dark:
        return dark
    if fit["status"] != "ok":
        return f"no gain: {fit['status']}: {fit.get('reason') or ''}".strip()
    if fit.get("gain") is None or not fit.get("gain_err"):
        return "SPE fit gave no gain with an error"
    dead = _no_signal(fit) or _dead_peak(fit)
    if dead:
        return dead
    widths = _q1_in_pedestal_widths(fit)
    if widths is not None and widths < SEPARATED_Q1:  # (the fit gives no peak-to-valley then)
        return (f"1-PE peak not separated from the pedestal (Q1 {fit['q1_pc']:.3f} pC < {SEPARATED_Q1} x "
                f"pedestal width {fit['sigma0_pc']:.3f} pC): the gain would rest on the model's shape alone; "
                "lower the noise or raise the HV")
    stuck = [p for p in fit.get("at_limit") or [] if p in ("q1", "mu", "r1")]
    if stuck:
        return f"SPE fit stuck at a limit of {', '.join(stuck)}: gain not trustworthy"
    return None


def error_parts(fit: dict[str, Any]) -> str | None:
    """'statistics a %, the under-amplified fraction's prior b %, the 1-PE shape c %': the gain error's three parts
    in % of the gain (they add in quadrature), as the verdict and the report's fit panel give them; None when the
    fit does not give them."""
    gain = fit.get("gain")
    parts = [float(p) for k in ("gain_err_stat", "gain_err_under_prior", "gain_err_syst")
             if isinstance(p := fit.get(k), (int, float))]
    if not isinstance(gain, (int, float)) or not gain or len(parts) < 3:
        return None
    stat, prior, shape = (100 * p / gain for p in parts)
    return f"statistics {stat:.2f} %, the under-amplified fraction's prior {prior:.2f} %, the 1-PE shape {shape:.2f} %"


def _its_error(fit: dict[str, Any]) -> str:
    """'; its error: ...' (`error_parts`) for a point the error leaves undecided: more events shrink the first part,
    and the second only as far as the spectrum comes to tell the fraction. Empty without the parts."""
    parts = error_parts(fit)
    return f"; its error: {parts}" if parts else ""


def classify(fit: dict[str, Any], band: tuple[float, float], kind: str = "scan",
             hist: dict[str, Any] | None = None, laser_delay_ns: float | None = None) -> tuple[str, str]:
    """(status, reason) of a point. HV-check points are off nominal on purpose: judged by the HV fit.
    laser_delay_ns: where the PMT pulses show a laser peak after the trigger (None: none), which tells a dark
    spectrum with light too small or too faint for a gain from one without light."""
    why = _no_gain(fit, hist, laser_delay_ns)
    if why:
        return "error", why
    gain = float(fit["gain"])
    err = float(fit.get("gain_err") or 0.0)
    lo, hi = band
    text = f"gain {gain:.4g} ± {err:.2g}"
    if not fit.get("converged", False):
        return "uncertain", f"{text}: Minuit did not converge ({fit.get('reason')}): cannot decide"
    if kind == "hv":
        return "healthy", f"{text} measured (HV check point)"
    chi2 = fit.get("chi2_ndf")
    if isinstance(chi2, (int, float)) and chi2 > BAD_FIT_CHI2_NDF:
        return "uncertain", (f"{text}: the fit does not describe the spectrum (chi2/ndf {chi2:.1f}): pedestal "
                             "shape (pickup, baseline)? cannot decide")
    outside = gain < lo or gain > hi
    side, edge = ("below", lo) if gain < lo else ("above", hi)
    if outside and abs(gain - edge) > POOR_SIGMAS * err:  # however large the error: clearly outside
        return "poor", f"{text} {side} healthy band {lo:.4g}..{hi:.4g} by {abs(gain - edge) / err:.1f} sigma"
    if err > MAX_ERR_OF_HALF_BAND * 0.5 * (hi - lo):
        return "uncertain", (f"{text}: error larger than the half band width, too large to decide "
                             f"(more events needed){_its_error(fit)}")
    if outside:
        return "uncertain", (f"{text} {side} healthy band {lo:.4g}..{hi:.4g} by less than {POOR_SIGMAS:.0f} "
                             f"sigma: cannot decide{_its_error(fit)}")
    if min(gain - lo, hi - gain) > HEALTHY_SIGMAS * err:
        return "healthy", f"{text} inside healthy band {lo:.4g}..{hi:.4g}"
    return "uncertain", (f"{text} inside healthy band {lo:.4g}..{hi:.4g} but within {HEALTHY_SIGMAS:.0f} "
                         f"sigma of its edge: cannot decide{_its_error(fit)}")


def without_gain(fit: dict[str, Any]) -> dict[str, Any]:
    """The fit of an error point: details kept, the gain moved to `rejected_gain` so nothing shows it."""
    if fit.get("gain") is None:
        return fit
    out = dict(fit)
    out["rejected_gain"], out["rejected_gain_err"] = out.pop("gain"), out.pop("gain_err", None)
    out["gain"], out["gain_err"] = None, None
    return out
