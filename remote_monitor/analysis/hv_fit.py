"""Gain-vs-HV power law gain = a * HV^b, fitted in log-log with the gain errors; HV at the target gain.

Auditable: every point's gain error gets a relative floor (ERR_FLOOR: point-to-point systematics of the SPE
fit), points the caller marks as excluded (e.g. bad peak-to-valley) are listed with the reason, each used
point carries its pull, and the exponent b comes with its error. When chi2/ndf > 1 the errors of b and of the
HV at the target are scaled by sqrt(chi2/ndf) (the points scatter more than their errors say).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class HVFitResult:
    status: str  # ok | too_few_points | target_outside_range | failed
    reason: str
    a: float | None = None
    b: float | None = None
    cov: list[list[float]] | None = None  # of (log10 a, b)
    hv_at_target: float | None = None
    hv_at_target_err: float | None = None
    target_gain: float = 1e7
    chi2_ndf: float | None = None
    b_err: float | None = None
    err_scale: float = 1.0
    points: list[dict[str, float]] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ERR_FLOOR = 0.005  # relative gain error floor per HV point


def fit_hv(hv: Sequence[float], gain: Sequence[float], gain_err: Sequence[float | None],
           target_gain: float = 1e7, excluded: Sequence[dict[str, Any]] = (),
           common_rel_syst: float = 0.0) -> HVFitResult:
    """Weighted least squares of log10(gain) = log10(a) + b log10(HV); never raises.

    `excluded`: points the caller left out, as {"hv": ..., "reason": ...}, reported with the result.
    `common_rel_syst`: relative gain systematic shared by all points (the SPE model's): it does not average
    down over points and shifts the HV at the target by HV * syst / b, added in quadrature."""
    usable: list[tuple[float, float, float]] = []
    skipped: list[float] = []
    for hv_i, g_i, e_i in zip(hv, gain, gain_err, strict=False):
        if all(x is not None and math.isfinite(x) and x > 0 for x in (hv_i, g_i, e_i)):
            usable.append((float(hv_i), float(g_i), max(float(e_i or 0.0), ERR_FLOOR * float(g_i))))
        else:
            skipped.append(hv_i)
    points = [{"hv": p[0], "gain": p[1], "gain_err": p[2]} for p in usable]
    left_out = [dict(x) for x in excluded] + [{"hv": x, "reason": "no positive gain and error"} for x in skipped]
    note = f"; skipped {len(skipped)} point(s) without a positive gain and error" if skipped else ""
    if len(usable) < 2:
        return HVFitResult("too_few_points", f"{len(usable)} usable HV point(s), need 2{note}",
                           target_gain=target_gain, points=points, excluded=left_out)
    try:
        arr = np.array(usable, dtype=float)
        v, g, e = arr[:, 0], arr[:, 1], arr[:, 2]
        x, y = np.log10(v), np.log10(g)
        sigma = e / (g * math.log(10))
        design = np.column_stack([np.ones_like(x), x])
        weights = 1.0 / sigma**2
        cov = np.linalg.inv(design.T @ (design * weights[:, None]))
        log_a, b = cov @ design.T @ (weights * y)
        residual = y - (log_a + b * x)
        ndf = len(x) - 2
        chi2_ndf = float(np.sum(weights * residual**2) / ndf) if ndf > 0 else None
        scale = math.sqrt(max(chi2_ndf, 1.0)) if chi2_ndf is not None else 1.0
        cov = cov * scale**2
        for point, r, s_ in zip(points, residual.tolist(), sigma.tolist(), strict=True):
            point["pull"] = float(r / s_)
        log_hv = (math.log10(target_gain) - log_a) / b
        grad = np.array([-1.0 / b, -log_hv / b])  # d(log10 HV*) / d(log10 a, b)
        hv_target = 10**log_hv
        hv_err = hv_target * math.log(10) * math.sqrt(float(grad @ cov @ grad))
        hv_err = math.hypot(hv_err, hv_target * common_rel_syst / abs(b))
    except (np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError, ValueError) as exc:
        return HVFitResult("failed", f"HV fit failed: {exc}{note}", target_gain=target_gain, points=points,
                           excluded=left_out)
    status, reason = "ok", f"power law fitted to {len(x)} points{note}"
    if not v.min() <= hv_target <= v.max():
        status = "target_outside_range"
        reason = (f"HV at gain {target_gain:.3g} is {hv_target:.0f} V, outside the measured "
                  f"{v.min():.0f}..{v.max():.0f} V (extrapolated){note}")
    return HVFitResult(status, reason, a=float(10**log_a), b=float(b), cov=cov.tolist(),
                       hv_at_target=float(hv_target), hv_at_target_err=float(hv_err), target_gain=target_gain,
                       chi2_ndf=chi2_ndf, b_err=float(math.sqrt(cov[1, 1])), err_scale=scale, points=points,
                       excluded=left_out)
