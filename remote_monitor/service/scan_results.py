"""Record a processed point into the store and keep the scan summary (state, HV fit) current."""

from __future__ import annotations

from typing import Any

from remote_monitor.analysis.hv_fit import fit_hv
from remote_monitor.service.peer_metrics import peer_summary
from remote_monitor.service.store import ResultsStore
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import SCAN_POINTS, PointKey


def common_syst(fits: list[dict[str, Any]]) -> float:
    """Mean relative model systematic of the SPE fits (shared by all HV points, so it does not average down)."""
    rel = [f["gain_err_syst"] / f["gain"] for f in fits if f.get("gain_err_syst") and f.get("gain")]
    return sum(rel) / len(rel) if rel else 0.0


def poor_separation(peak_to_valley: float, limit: float) -> str:
    """Why an HV point is left out for its peak-to-valley (1.0: no valley)."""
    valley = " (no valley)" if peak_to_valley <= 1.0 else ""
    return f"peak-to-valley {peak_to_valley:.2f}{valley}, at most [hv] min_peak_to_valley = {limit:g}"


def hv_fit_for(points: dict[str, dict[str, Any]], cfg: Config) -> dict[str, Any] | None:
    """Power-law fit of the HV points that have a gain; None when the scan has no HV point yet."""
    hv_points = sorted(
        (p for p in points.values() if p["kind"] == "hv" and p.get("fit")), key=lambda p: p["hv"]
    )
    if not hv_points:
        return None
    usable, excluded = [], []
    for p in hv_points:
        fit = p["fit"]
        pv = fit.get("peak_to_valley")
        if p.get("status") == "error" or fit["status"] != "ok" or fit.get("gain") is None:
            excluded.append({"hv": p["hv"], "reason": f"no gain: {p.get('reason') or fit.get('reason')}"})
        elif pv is not None and pv <= cfg.hv.min_peak_to_valley:
            excluded.append({"hv": p["hv"], "reason": poor_separation(pv, cfg.hv.min_peak_to_valley)})
        else:
            usable.append(p)
    return fit_hv(
        [p["hv"] for p in usable],
        [p["fit"]["gain"] for p in usable],
        [p["fit"]["gain_err"] for p in usable],
        target_gain=cfg.gain.target,
        excluded=excluded,
        common_rel_syst=common_syst([p["fit"] for p in usable]),
    ).to_dict()


def is_complete(points: dict[str, dict[str, Any]], cfg: Config) -> bool:
    """All 21 scan points and as many HV points as configured offsets have a result."""
    n_hv = sum(1 for p in points.values() if p["kind"] == "hv")
    return all(p in points for p in SCAN_POINTS) and n_hv >= len(cfg.hv.offsets)


def record_point(store: ResultsStore, key: PointKey, result: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """Persist one point's result and update its scan's summary; returns the new scan summary."""
    store.write_point(key, result)
    points = store.points(key.serial, key.scan_id)
    scan = store.read_scan(key.serial, key.scan_id) or {}
    fields: dict[str, Any] = {}
    if key.kind == "hv":
        fields["hv_fit"] = hv_fit_for(points, cfg)
    else:
        fields["peer_summary"] = peer_summary(points, cfg)
    if scan.get("state", "live") in ("live", "complete"):
        fields["state"] = "complete" if is_complete(points, cfg) else "live"
    return store.update_scan(key.serial, key.scan_id, **fields)
