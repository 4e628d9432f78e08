"""The columns the other pre-calibration analyses' plotting reads, per point, from stored results (pure)."""

from __future__ import annotations

import math
from typing import Any

from remote_monitor.analysis.angles import hamamatsu_angle
from remote_monitor.analysis.detection_efficiency import CENTRE, relative

PEER_COLUMNS = ["theta", "phi", "hamamatsu_angle", "gain", "gain_err", "occupancy", "occupancy_err",
                "occupancy_dark", "relative_de", "relative_de_err", "transit_time_ns", "transit_time_err_ns",
                "tts_sigma_ns", "tts_sigma_err_ns", "tts_fwhm_ns", "tts_fwhm_err_ns", "noise_jitter_ns",
                "tts_sigma_pmt_ns", "tts_sigma_pmt_err_ns", "tts_fwhm_pmt_ns", "tts_fwhm_pmt_err_ns",
                "dark_rate_hz", "dark_rate_err_hz", "dark_rate_quarter_pe_hz", "dark_rate_quarter_pe_err_hz",
                "baseline_mv", "baseline_rms_mv", "pedestal_pc", "pedestal_width_pc"]


def _f(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def de_left_out(result: dict[str, Any]) -> str | None:
    """Why a point's detection efficiency is left out of the relative DE and its uniformity, or None: an error
    point (no light on the PMT, no usable fit: its occupancy means nothing) or one without a raw DE."""
    if result.get("status") == "error":
        return str(result.get("reason") or "error")
    extras = result.get("peer") or {}
    if extras and extras.get("raw_de") is None:
        return str(extras.get("raw_de_reason") or "no raw DE")
    return None


def peer_columns(result: dict[str, Any], centre: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CSV columns of the other analyses for one point (relative DE needs the centre point's result; none
    where either is left out, `de_left_out`)."""
    extras = result.get("peer") or {}
    fit = result.get("fit") or {}
    timing = extras.get("timing") or {}
    cext = (centre or {}).get("peer") or {}
    rel, rel_err = (None, None) if de_left_out(result) or de_left_out(centre or {}) else \
        relative(extras.get("raw_de"), extras.get("raw_de_err"), cext.get("raw_de"), cext.get("raw_de_err"))
    ped = extras.get("pedestal") or {}
    dark = extras.get("dark") or {}
    return {
        "theta": result.get("theta"), "phi": result.get("phi"), "hamamatsu_angle": hamamatsu_angle(result.get("theta")),
        "gain": fit.get("gain"), "gain_err": fit.get("gain_err"), "occupancy": _f(extras.get("occupancy")),
        "occupancy_err": _f(extras.get("occupancy_err")), "occupancy_dark": _f(extras.get("occupancy_dark")),
        "relative_de": rel, "relative_de_err": rel_err,
        **{k: _f(timing.get(k)) for k in ("transit_time_ns", "transit_time_err_ns", "tts_sigma_ns",
                                          "tts_sigma_err_ns", "tts_fwhm_ns", "tts_fwhm_err_ns", "noise_jitter_ns",
                                          "tts_sigma_pmt_ns", "tts_sigma_pmt_err_ns", "tts_fwhm_pmt_ns",
                                          "tts_fwhm_pmt_err_ns")},
        **{k: _f(dark.get(k)) for k in ("dark_rate_hz", "dark_rate_err_hz", "dark_rate_quarter_pe_hz",
                                        "dark_rate_quarter_pe_err_hz")},
        "baseline_mv": _f(ped.get("baseline_mv")), "baseline_rms_mv": _f(ped.get("baseline_rms_mv")),
        "pedestal_pc": _f(fit.get("q0_pc")), "pedestal_width_pc": _f(fit.get("sigma0_pc")),
    }


def peer_table(points: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """peer_columns of every point of a scan."""
    centre = points.get(CENTRE)
    return {pid: peer_columns(p, centre) for pid, p in points.items()}
