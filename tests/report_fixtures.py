"""Realistic result dicts (as the monitor stores them) for report tests, without running fits."""

from __future__ import annotations

from typing import Any

import numpy as np

from remote_monitor.analysis.histogram import fill_histogram
from remote_monitor.analysis.hv_fit import fit_hv
from remote_monitor.analysis.spe_fit import _full_components
from remote_monitor.analysis.units import gain_to_pc
from remote_monitor.stand.layout import SCAN_POINTS, point_angles

SERIAL, SCAN_ID = "EA0042", "261125_101500"


def point_result(point: str, gain: float | None, status: str, rng: np.random.Generator, reason: str = "",
                 reference_gain: float | None = None) -> dict[str, Any]:
    """A stored point result whose histogram is sampled from the response model and whose curve is the truth."""
    angles = point_angles(point)
    hv = int(point[3:]) if point.startswith("HV_") else None
    base: dict[str, Any] = {"serial": SERIAL, "scan_id": SCAN_ID, "point": point, "kind": "hv" if hv else "scan",
                            "theta": angles[0] if angles else None, "phi": angles[1] if angles else None, "hv": hv,
                            "status": status, "reason": reason or status, "events": 0, "selected_events": 0,
                            "fit": None, "histogram": None, "reference": None, "warnings": [],
                            "source_files": {}, "processed_at": "2026-11-25T10:20:00+00:00"}
    if gain is None:
        return base
    q1, mu, n = gain_to_pc(gain), 1.0, 5000
    k = rng.poisson(mu, n)
    charges = rng.normal(0, 0.2, n) + rng.normal(k * q1, 0.3 * q1 * np.sqrt(k))
    hist = fill_histogram(charges, 280, -3.0, 25.0)
    params = np.array([n, mu, 0.0, 0.2, q1, 0.3 * q1])
    comps = _full_components(params, hist.edges, 4, False)
    names = ["pedestal", "1 PE", "2 PE", "3 PE", "4 PE"]
    base.update(events=n, selected_events=n, histogram=hist.to_dict(), fit={
        "status": "ok", "reason": "fit converged", "model": "full", "gain": gain, "gain_err": 0.004 * gain,
        "q0_pc": 0.0, "sigma0_pc": 0.2, "q1_pc": q1, "q1_err_pc": 0.004 * q1, "sigma1_pc": 0.3 * q1,
        "spe_resolution": 0.3, "mu": mu, "mu_err": 0.01, "peak_to_valley": 3.1, "chi2_ndf": 1.02, "n_events": n,
        "converged": True, "curve": {"x": hist.centres.round(4).tolist(), "total": comps.sum(0).round(3).tolist(),
                                     "components": {m: c.round(3).tolist()
                                                    for m, c in zip(names, comps, strict=False)}}})
    if reference_gain:
        base["reference"] = {"gain": reference_gain, "gain_err": 4e4, "status": "ok"}
    return base


def scan_with_faults(seed: int = 1,
                     missing: tuple[str, ...] = ("theta50_phi90",)) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A complete-looking scan with an error point, a poor point and missing points, plus the HV check."""
    rng = np.random.default_rng(seed)
    points: dict[str, dict[str, Any]] = {}
    for i, point in enumerate(SCAN_POINTS):
        if point in missing:
            continue
        if point == "theta20_phi90":
            points[point] = point_result(point, None, "error", rng, "no SPE signal (occupancy 0.000 PE)")
        elif point == "theta30_phi180":
            points[point] = point_result(point, 0.87e7, "poor", rng, "gain 8.7e6 below healthy band",
                                         reference_gain=1.0e7)
        else:
            points[point] = point_result(point, 1.02e7 + 1e4 * i, "healthy", rng, reference_gain=1.0e7)
    hvs = [1650, 1700, 1750, 1800, 1850]
    for hv in hvs:
        points[f"HV_{hv}"] = point_result(f"HV_{hv}", 1.02e7 * (hv / 1750) ** 7, "healthy", rng)
    hv_fit = fit_hv(hvs, [points[f"HV_{v}"]["fit"]["gain"] for v in hvs],
                    [points[f"HV_{v}"]["fit"]["gain_err"] for v in hvs]).to_dict()
    scan = {"serial": SERIAL, "scan_id": SCAN_ID, "started_at": "2026-11-25T10:15:00+00:00",
            "updated_at": "2026-11-25T10:40:00+00:00", "state": "live", "state_info": None, "flagged_points": [],
            "hv_fit": hv_fit}
    return scan, points


def expected_statuses(points: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {p: points[p]["status"] if p in points else "no_data" for p in SCAN_POINTS}
