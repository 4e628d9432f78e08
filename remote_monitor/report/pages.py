"""Render the static, self-contained HTML reports (per PMT scan, and the index) with Jinja2.

plotly.js (the official 'basic' bundle, vendored in report_templates/vendor) is inlined once; the data is
embedded as JSON; the page draws its charts itself, so it works offline and as an e-mailed file.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2

from remote_monitor.analysis.peer_columns import PEER_COLUMNS, peer_table
from remote_monitor.analysis.point_verdict import error_parts
from remote_monitor.report.figures import (
    STATUS_COLOURS,
    VERDICT_COLOURS,
    hv_figure,
    point_label,
    polar_map_figure,
    spectrum_figure,
)
from remote_monitor.report.peer_figures import peer_panels
from remote_monitor.report.svg import figure_svg, polar_svg
from remote_monitor.report.verdict import pmt_verdict
from remote_monitor.stand.layout import SCAN_POINTS, point_angles
from remote_monitor.stand.provenance import code_version, version_text

GRID_SIZE = 11  # 5 rings each side of the centre
CSV_FIELDS = ["point", "kind", "theta", "phi", "hv", "status", "reason", "gain", "gain_err", "gain_err_stat",
              "gain_err_under_prior", "gain_err_syst", "q1_pc",
              "spe_resolution", "mu", "peak_to_valley", "chi2_ndf", "events", "selected_events", "reference_gain",
              "charge_window_ns", "laser_delay_ns", "code_version", "git_commit", "config_hash", "inputs",
              *(c for c in PEER_COLUMNS if c not in ("theta", "phi", "gain", "gain_err"))]


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("report_templates", "."),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["gain"] = lambda g: "–" if g is None else f"{g / 1e7:.4f}e7"
    return env


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return resources.files("report_templates").joinpath("vendor/plotly-basic-4.1.1.min.js").read_text("utf-8")


def _script_json(obj: Any) -> str:
    """JSON safe to embed inside <script type="application/json">: no '<' at all, so neither '</script>'
    nor '<!--' (which would change how the HTML parser reads the rest of the block) can come from data."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")


def grid_position(theta: int, phi: int) -> tuple[int, int]:
    """(row, column), 1-based, of a scan point (theta, phi) in the face-like grid: phi 0 right, 90 up, 180 left, 270
    down."""
    ring = theta // 10
    centre = GRID_SIZE // 2 + 1
    d_row, d_col = {0: (0, 1), 90: (-1, 0), 180: (0, -1), 270: (1, 0)}[phi]
    return centre + ring * d_row, centre + ring * d_col


def _gain(p: dict[str, Any] | None) -> float | None:
    return ((p or {}).get("fit") or {}).get("gain")


def summarize_scan(scan: dict[str, Any], points: dict[str, dict[str, Any]],
                   healthy_band: tuple[float, float] = (0.999e7, 1.049e7), target_gain: float = 1e7) -> dict[str, Any]:
    """One index row: state, progress, poor/error counts, mean gain, uniformity, HV at target (the positions
    are the 21 scan points, and for the Korean stand the positions its files name)."""
    scan_points = {k: v for k, v in points.items() if v.get("kind") == "scan"}
    gains = [g for p in scan_points.values() if p.get("status") in ("healthy", "poor") and (g := _gain(p))]
    mean = sum(gains) / len(gains) if gains else None
    hv_fit = scan.get("hv_fit") or {}
    return {
        "serial": scan["serial"], "scan_id": scan["scan_id"], "state": scan.get("state", "live"),
        "points_done": len(scan_points), "points_total": max(len(SCAN_POINTS), len(scan_points)),
        "hv_done": sum(1 for p in points.values() if p.get("kind") == "hv"),
        "n_healthy": sum(1 for p in scan_points.values() if p.get("status") == "healthy"),
        "n_poor": sum(1 for p in scan_points.values() if p.get("status") == "poor"),
        "n_error": sum(1 for p in points.values() if p.get("status") == "error"),
        "n_uncertain": sum(1 for p in scan_points.values() if p.get("status") == "uncertain"),
        "mean_gain": mean, "uniformity": (max(gains) - min(gains)) / mean if mean else None,
        "hv_at_target": hv_fit.get("hv_at_target"), "hv_at_target_err": hv_fit.get("hv_at_target_err"),
        "target_gain": target_gain, "healthy_band": list(healthy_band),
        "updated_at": scan.get("updated_at", ""), "started_at": scan.get("started_at", ""),
        "state_info": scan.get("state_info"), "flagged_points": scan.get("flagged_points") or [],
        "verdict": pmt_verdict(scan, points).to_dict(),
    }


def _inputs_text(prov: dict[str, Any]) -> str:
    """'2:wave2save_x.txt:12345:<digest>;3:...' (channel, file name, size, head+tail BLAKE2b) for the CSV."""
    return ";".join(f"{ch}:{f.get('name')}:{f.get('size', '')}:{f.get('head_tail_blake2b', f.get('error', ''))}"
                    for ch, f in sorted((prov.get("inputs") or {}).items()))


def _window_text(window: list[float] | None) -> str | None:
    """'270-390' (ns after the trigger) for the page and the CSV; None when not known."""
    return f"{window[0]:.0f}-{window[1]:.0f}" if window else None


def _cell(pid: str, p: dict[str, Any] | None) -> dict[str, Any]:
    """A point's row as the page's cells and fit panel show it: with its short name (`point_label`) and its gain
    error's parts in words (`error_parts`; the CSV and campaign tables hold them as numbers)."""
    row = _point_row(pid, p)  # (its gain and the error's parts are the fit's, none for an error point)
    return {**row, "label": point_label(pid), "gain_err_parts": error_parts(row)}


def _de_occupancy(peer: dict[str, Any] | None) -> dict[str, Any]:
    """The occupancy the detection efficiency takes (the laser's) and the dark pulses taken off for it."""
    return {"occupancy_dark": (peer or {}).get("occupancy_dark"), "de_occupancy": (peer or {}).get("occupancy")}


def _point_row(pid: str, p: dict[str, Any] | None) -> dict[str, Any]:
    """One point as the page, the CSV and the campaign table show it; an error point shows no gain."""
    status = (p or {}).get("status", "no_data")
    fit = {} if status == "error" else (p or {}).get("fit") or {}
    ref = (p or {}).get("reference") or {}
    prov = (p or {}).get("provenance") or {}
    row = {"point": pid, "status": status, "reason": (p or {}).get("reason", "no data yet"),
           "gain": fit.get("gain"), "gain_err": fit.get("gain_err"), "gain_err_stat": fit.get("gain_err_stat"),
           "gain_err_under_prior": fit.get("gain_err_under_prior"), "gain_err_syst": fit.get("gain_err_syst"),
           "q1_pc": fit.get("q1_pc"),
           "spe_resolution": fit.get("spe_resolution"), "mu": fit.get("mu"),
           **_de_occupancy((p or {}).get("peer") if fit else None),
           "peak_to_valley": fit.get("peak_to_valley"),
           "chi2_ndf": fit.get("chi2_ndf"), "events": (p or {}).get("events"),
           "selected_events": (p or {}).get("selected_events"), "reference_gain": ref.get("gain"),
           "reference_reason": None if ref.get("gain") else ref.get("reason"),
           "charge_window_ns": _window_text((p or {}).get("charge_window_ns")),
           "laser_delay_ns": (p or {}).get("laser_delay_ns"),
           "fit_status": ((p or {}).get("fit") or {}).get("status"), "model": fit.get("model"),
           "warnings": (p or {}).get("warnings", []), "code_version": prov.get("version"),
           "git_commit": prov.get("git_commit"), "config_hash": prov.get("config_hash"), "inputs": _inputs_text(prov)}
    for name in ("kind", "theta", "phi", "hv"):
        row[name] = (p or {}).get(name)
    return row


def scan_csv(points: dict[str, dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    peer = peer_table(points)
    for pid in sorted(points, key=_point_order):
        writer.writerow({**_point_row(pid, points[pid]), **peer[pid]})
    return buffer.getvalue()


def scan_json(scan: dict[str, Any], points: dict[str, dict[str, Any]]) -> str:
    """Scan summary and every point's result (histogram and fit parameters; the drawn fit curve is left out)."""
    slim = {pid: {**p, "fit": {k: v for k, v in (p.get("fit") or {}).items() if k != "curve"} or None}
            for pid, p in points.items()}
    return json.dumps({"scan": scan, "points": slim}, sort_keys=True, separators=(",", ":"))


def _point_order(pid: str) -> tuple[int, int]:
    return ((0, SCAN_POINTS.index(pid)) if pid in SCAN_POINTS
            else (1, int(pid[3:]) if pid[3:].lstrip("-").isdigit() else 0))


def _data_uri(text: str, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(text.encode()).decode()}"


def provenance_summary(points: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct (code version, git commit, config hash) that produced these points, with point counts."""
    counts: dict[tuple[str, str, str], int] = {}
    for p in points.values():
        prov = p.get("provenance") or {}
        key = (version_text(prov) if prov else "unrecorded", str(prov.get("config_hash") or "–"),
               str(prov.get("git_commit") or "–"))
        counts[key] = counts.get(key, 0) + 1
    return [{"version": v, "config_hash": c, "points": n} for (v, c, _), n in sorted(counts.items())]


def _static_spectra(cells: list[dict[str, Any]], spectra: dict[str, Any]) -> list[dict[str, Any]]:
    """Per point: its static spectrum SVG (empty without a spectrum) and the caption a reader without scripts sees."""
    return [{"point": c["point"], "status": c["status"], "reason": c["reason"], "gain": c["gain"],
             "gain_err": c["gain_err"], "svg": figure_svg(spectra.get(c["point"]))} for c in cells]


def render_scan_page(scan: dict[str, Any], points: dict[str, dict[str, Any]], *, healthy_band: tuple[float, float],
                     target_gain: float, other_scans: list[str], reference_spectrum: dict[str, Any] | None = None,
                     generated_at: str, live: bool = False) -> str:
    """The per-PMT page of one scan (deterministic for the same inputs).

    Everything a reader needs is plain HTML (verdict, grid, numbers) or a static SVG; with scripts on,
    Plotly charts replace the SVGs and add zoom, hover and the log/linear switch.
    """
    summary = summarize_scan(scan, points, healthy_band, target_gain)
    cells = []
    for pid in SCAN_POINTS:
        theta, phi = point_angles(pid)  # type: ignore[misc]  # (SCAN_POINTS are all scan points)
        row, col = grid_position(theta, phi)
        cells.append({**_cell(pid, points.get(pid)), "row": row, "col": col, "theta": theta, "phi": phi})
    other_ids = sorted((k for k, v in points.items() if v.get("kind") == "scan" and k not in SCAN_POINTS),
                       key=lambda k: point_angles(k) or (0, 0))  # e.g. the Korean stand's positions
    other_cells = [_cell(pid, points[pid]) for pid in other_ids]
    hv_ids = sorted((k for k, v in points.items() if v.get("kind") == "hv"), key=_point_order)
    hv_cells = [_cell(pid, points[pid]) for pid in hv_ids]
    spectra = {pid: spectrum_figure(p, reference_spectrum) for pid, p in sorted(points.items())}
    first = next((c["point"] for c in cells if spectra.get(c["point"])), hv_ids[0] if hv_ids else None)
    hv_fig = hv_figure(scan.get("hv_fit"), target_gain)
    data = {
        "serial": scan["serial"], "scan_id": scan["scan_id"], "live": live, "first_point": first,
        "page": f"{scan['serial']}.html", "rows": {c["point"]: c for c in cells + other_cells + hv_cells},
        "spectra": {k: v for k, v in spectra.items() if v}, "polar": polar_map_figure(points, healthy_band),
        "hv": hv_fig,
        **peer_panels(points, (scan.get("peer_summary") or {}).get("dark_rate")),
    }
    return _env().get_template("scan.html.j2").render(
        s=summary, scan=scan, cells=cells, other_cells=other_cells, hv_cells=hv_cells, hv_fit=scan.get("hv_fit"),
        other_scans=sorted(other_scans, reverse=True),
        colours=STATUS_COLOURS, verdict_colours=VERDICT_COLOURS, version=version_text(code_version()),
        provenance=provenance_summary(points), generated_at=generated_at, live=live,
        data_json=_script_json(data), plotly_js=_plotly_js(),
        has_reference=any(c["reference_gain"] or c["reference_reason"] for c in cells + other_cells + hv_cells),
        csv_uri=_data_uri(scan_csv(points), "text/csv"),
        json_uri=_data_uri(scan_json(scan, points), "application/json"),
        csv_name=f"{scan['serial']}_{scan['scan_id']}.csv", json_name=f"{scan['serial']}_{scan['scan_id']}.json",
        grid_size=GRID_SIZE, first_point=first, has_de=bool(data["de_map"]),
        static_spectra=_static_spectra(cells + other_cells + hv_cells, spectra),
        polar_svg=polar_svg(cells + other_cells, healthy_band, STATUS_COLOURS), hv_svg=figure_svg(hv_fig),
    )


def render_index_page(summaries: list[dict[str, Any]], *, generated_at: str, live: bool = False,
                      problems: list[dict[str, Any]] | None = None) -> str:
    """Every PMT with its scans, newest scan first; then the problems the monitor met (newest first)."""
    by_serial: dict[str, list[dict[str, Any]]] = {}
    for s in sorted(summaries, key=lambda s: (s["scan_id"], s["serial"]), reverse=True):
        by_serial.setdefault(s["serial"], []).append(s)
    return _env().get_template("index.html.j2").render(
        pmts=list(by_serial.items()), generated_at=generated_at, live=live, version=version_text(code_version()),
        colours=STATUS_COLOURS, verdict_colours=VERDICT_COLOURS,
        data_json=_script_json({"live": live, "page": "index.html"}),
        problems=list(reversed(problems or []))[:50],
    )
