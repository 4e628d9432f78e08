"""Relative detection efficiency: PMT occupancy normalised by the light monitor, relative to the centre point;
uniformity summaries (max-min/mean, centre/side ratio, rms) and a verdict."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from remote_monitor.analysis.spe_result import NO_SIGNAL_MU

NORMALISATIONS = ("sipm_charge", "sipm_occupancy", "reference_occupancy", "none")
OCCUPANCIES = ("quarter_pe", "spe_fit", "zero_pe")
CENTRE = "theta0_phi0"
_THETA = re.compile(r"^theta(\d+)_phi\d+$")


@dataclass(frozen=True)
class EfficiencySettings:
    """How the PMT occupancy is measured and normalised, and the uniformity limits of the verdict."""

    occupancy: str = "quarter_pe"  # quarter_pe (fitted mu over Q1/4), spe_fit (fitted mu) or zero_pe (-ln P0)
    zero_pe_sigmas: float = 3.0  # zero_pe: an event is empty below pedestal + this many pedestal widths
    normalisation: str = "sipm_charge"  # one of NORMALISATIONS
    sipm_window_ns: tuple[float, float] = (280.0, 400.0)  # SiPM charge window after the trigger pulse start
    sipm_occupancy_threshold_pc: float = 1.0
    subtract_dark: bool = True  # the occupancy less the PMT's dark pulses expected in the charge window
    max_de_spread: float = 0.3  # verdict "check" when (max-min)/mean of the relative DE exceeds this
    min_centre_side: float = 0.7  # ... or the side ring / centre ratio of the DE is below this
    max_centre_side: float = 1.3


def empty_share_error(p0: float, n_events: int) -> float:
    """Binomial error of -ln P0 measured on n events with a share p0 of them empty: sqrt((1 - p0) / (n p0))."""
    return math.sqrt((1 - p0) / (max(n_events, 1) * p0))


def zero_pe_occupancy(charges_pc: np.ndarray, q0: float, sigma0: float, n_sigmas: float = 3.0
                      ) -> tuple[float | None, float | None]:
    """-ln(P0) from the fraction of events below pedestal + n_sigmas widths (the pedestal tail above it and
    the few-% of 1 PE below it nearly cancel at the usual 3 sigma); binomial error."""
    n = len(charges_pc)
    n0 = int(np.count_nonzero(charges_pc < q0 + n_sigmas * sigma0))
    if n == 0 or n0 == 0:
        return None, None
    p0 = n0 / n
    return -math.log(p0), empty_share_error(p0, n)


def quarter_pe_occupancy(mu_q: float, fit_err: float | None, n_events: int) -> tuple[float, float]:
    """(photoelectrons over a quarter of the 1-PE peak's charge per event, error): the fitted mu times the fitted
    1-PE response's share over Q1 / 4 (`spe_response.occupancy_over_quarter_pe`). It does not lean on the
    under-amplified photoelectrons hidden in the pedestal, whose share each point's fit extrapolates on its own
    (the project's stand, 20 points of 300k events: relative DE scatter 1.36 % with mu, 0.49 % with this; a PMT's
    share over Q1 / 4 is the same at every point and cancels in the relative DE). Error: the fit's (`fit_err`,
    Hesse's with the fitted share's movement against mu), never below counting the events with one photoelectron
    over Q1 / 4, as -ln P0 (`empty_share_error`, p0 = exp(-mu_q)). The counting error alone was too small on
    independent stands: relative DE pulls rms 1.31 on the eleventh (0.94 with the fit's), 2.19 on the ninth
    (0.72)."""
    counting = empty_share_error(math.exp(-mu_q), n_events)
    return mu_q, max(counting, fit_err) if fit_err is not None and math.isfinite(fit_err) else counting


def laser_occupancy(occupancy: float, occupancy_err: float, dark_rate_hz: float | None,
                    dark_rate_err_hz: float | None, window_ns: float | None) -> tuple[float, float, float | None]:
    """(the laser's photoelectrons per event, error, the dark photoelectrons taken off): the occupancy less the
    PMT's dark pulses expected in the charge window, rate x window (Poisson: they add to the laser's mean); the
    dark part's error added in quadrature. Unchanged (None taken off) without a dark rate or a window; a
    negative measured rate takes nothing off."""
    if dark_rate_hz is None or window_ns is None or not math.isfinite(dark_rate_hz) or window_ns <= 0:
        return occupancy, occupancy_err, None
    dark = max(dark_rate_hz, 0.0) * window_ns * 1e-9
    dark_err = (dark_rate_err_hz or 0.0) * window_ns * 1e-9
    return occupancy - dark, math.hypot(occupancy_err, dark_err), dark


def monitor_value(normalisation: str, sipm: dict[str, Any] | None, reference_mu: tuple[float, float] | None
                  ) -> tuple[float | None, float | None]:
    """(light monitor value, error) of a point for the configured normalisation."""
    if normalisation == "none":
        return 1.0, 0.0
    if normalisation == "reference_occupancy":
        return reference_mu if reference_mu is not None else (None, None)
    if not sipm:
        return None, None
    key = "charge_mean_pc" if normalisation == "sipm_charge" else "occupancy"
    return sipm.get(key), sipm.get(key + "_err")


def monitor_dark(normalisation: str, monitor: float | None, settings: EfficiencySettings) -> str | None:
    """Why the light monitor saw no light on a point, or None: an occupancy (reference PMT, SiPM) under
    NO_SIGNAL_MU, the PMT's own no-light limit; a mean SiPM charge under sipm_occupancy_threshold_pc, the charge
    an event needs to count as lit (a SiPM window that misses the pulses reads noise and dark counts: ~0 pC
    where the pulses give tens)."""
    if monitor is None or normalisation == "none":
        return None
    if normalisation == "sipm_charge":
        limit, text = settings.sipm_occupancy_threshold_pc, f"SiPM mean charge {monitor:.3g} pC"
    else:
        limit, text = NO_SIGNAL_MU, f"{normalisation.replace('_', ' ')} {monitor:.3g} PE"
    return f"no light on the monitor: {text} < {limit:g}" if monitor < limit else None


def raw_efficiency(occupancy: float | None, occupancy_err: float | None, monitor: float | None,
                   monitor_err: float | None) -> tuple[float | None, float | None]:
    """Occupancy / monitor with the quadrature error."""
    if occupancy is None or not monitor or occupancy_err is None or monitor_err is None:
        return None, None
    value = occupancy / monitor
    rel = math.hypot(occupancy_err / occupancy if occupancy else 0.0, monitor_err / monitor)
    return value, abs(value) * rel


def relative(value: float | None, err: float | None, centre: float | None, centre_err: float | None
             ) -> tuple[float | None, float | None]:
    """value / centre with the quadrature error (the centre point itself: 1 with its own error)."""
    if value is None or err is None or not centre or centre_err is None:
        return None, None
    ratio = value / centre
    if value == centre:
        return 1.0, err / centre
    return ratio, abs(ratio) * math.hypot(err / value if value else 0.0, centre_err / centre)


def uniformity(values: dict[str, float | None]) -> dict[str, float | None]:
    """Spread of a per-point quantity over the face: (max-min)/mean, rms/mean and side ring / centre."""
    good = {p: v for p, v in values.items() if v is not None and math.isfinite(v)}
    if len(good) < 2:
        return {"spread": None, "rms": None, "centre_side": None, "n_points": len(good)}
    arr = np.array(list(good.values()))
    mean = float(arr.mean())
    thetas = {p: int(m.group(1)) if (m := _THETA.match(p)) else 0 for p in good}
    outer = max(thetas.values())
    side = [v for p, v in good.items() if thetas[p] == outer and outer > 0]
    centre = good.get(CENTRE)
    return {"spread": float((arr.max() - arr.min()) / mean) if mean else None,
            "rms": float(arr.std() / mean) if mean else None,
            "centre_side": float(np.mean(side) / centre) if side and centre else None, "n_points": len(good)}


def de_verdict(summary: dict[str, Any], settings: EfficiencySettings) -> tuple[str, str]:
    """('pass' | 'check' | 'in progress', reason) of the detection-efficiency uniformity of one PMT."""
    spread, ratio = summary.get("spread"), summary.get("centre_side")
    if spread is None or ratio is None:
        return "in progress", "relative detection efficiency not yet known at the centre and the side ring"
    if spread > settings.max_de_spread:
        return "check", f"DE spread (max-min)/mean {spread:.3f} > {settings.max_de_spread}"
    if not settings.min_centre_side <= ratio <= settings.max_centre_side:
        return "check", (f"DE side/centre {ratio:.3f} outside {settings.min_centre_side}.."
                         f"{settings.max_centre_side}")
    return "pass", f"DE spread {spread:.3f}, side/centre {ratio:.3f}"
