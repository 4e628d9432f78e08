"""Report panels of the other analyses: relative detection-efficiency map, PMT-trigger time histogram with the
timing fit per point, dark rate per point (Plotly figure dicts, like figures.py)."""

from __future__ import annotations

import itertools
import math
from typing import Any

from remote_monitor.analysis.dark_rate import applied_efficiency, scales_up
from remote_monitor.analysis.peer_columns import peer_table
from remote_monitor.report.figures import _layout, _r, point_label


def de_map_figure(points: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Relative detection efficiency over the PMT face (theta radius, phi angle), relative to theta0_phi0."""
    table = peer_table(points)
    xs, ys, values, texts = [], [], [], []
    for pid, c in sorted(table.items()):
        if points[pid].get("kind") != "scan" or c["theta"] is None or c["relative_de"] is None:
            continue
        xs.append(round(c["theta"] * math.cos(math.radians(c["phi"])), 3))
        ys.append(round(c["theta"] * math.sin(math.radians(c["phi"])), 3))
        values.append(round(c["relative_de"], 4))
        texts.append(f"{pid}<br>relative DE {c['relative_de']:.3f} ± {c['relative_de_err']:.3f}")
    data = [{"type": "scatter", "mode": "markers", "x": xs, "y": ys, "hovertext": texts, "hoverinfo": "text",
             "name": "relative DE", "marker": {"size": 26, "color": values, "colorscale": "Viridis", "showscale": True,
                                               "colorbar": {"title": {"text": "relative DE"}, "tickformat": ".2f"}}}]
    rings = [{"type": "circle", "x0": -t, "y0": -t, "x1": t, "y1": t, "line": {"color": "#ddd", "width": 1}}
             for t in (10, 20, 30, 40, 50)]
    return {"data": data, "layout": _layout("relative detection efficiency (centre = 1)", shapes=rings,
                                            xaxis={"visible": False, "range": [-62, 62], "scaleanchor": "y"},
                                            yaxis={"visible": False, "range": [-62, 62]}, showlegend=False)}


# px: the page's plots are as high as their figure says (the container's 300 px left a strip of 150 px for the
# timing plot under its title and legend, and less for the dark rate under its point names)
TIMING_HEIGHT, DARK_HEIGHT = 420, 500


def timing_figure(point: dict[str, Any]) -> dict[str, Any] | None:
    """PMT-minus-trigger time histogram with the timing fit (core + late tail + flat); its numbers and notes as
    lines of text for under the plot (`timing_lines`: a plot's title neither wraps nor grows, and four lines in it
    had squeezed the plot to a strip)."""
    timing = (point.get("peer") or {}).get("timing") or {}
    hist, curve = timing.get("histogram"), timing.get("curve")
    if not hist:
        return None
    edges = hist["edges"]
    centres = [0.5 * (a + b) for a, b in itertools.pairwise(edges)]
    data: list[dict[str, Any]] = [{"type": "scatter", "mode": "markers", "name": "data", "x": _r(centres),
                                   "y": hist["counts"], "marker": {"size": 4, "color": "#222"}}]
    if curve:
        data.append({"type": "scatter", "mode": "lines", "name": "core + late tail + flat fit", "x": curve["x"],
                     "y": curve["y"], "line": {"width": 2.5, "color": "#0072B2"}})
    layout = _layout(f"PMT − trigger time {point['point']}", xaxis={"title": {"text": "time [ns]"}},
                     yaxis={"title": {"text": "events / bin"}, "rangemode": "tozero"}, height=TIMING_HEIGHT)
    return {"data": data, "layout": layout, "lines": timing_lines(timing)}


def timing_lines(timing: dict[str, Any]) -> list[str]:
    """The timing fit's numbers, the PMT's own TTS (the fitted core less the noise's jitter, `timing_jitter`) or
    why there is none, and the monitor's note on merged photoelectrons, one line each."""
    lines = []
    if timing.get("transit_time_ns") is not None:
        lines.append(f"TT {timing['transit_time_ns']:.2f} ± {timing['transit_time_err_ns']:.2f} ns, "
                     f"TTS σ {timing['tts_sigma_ns']:.2f} ns, FWHM {timing['tts_fwhm_ns']:.2f} ns")
    if timing.get("tts_sigma_pmt_ns") is not None:
        lines.append(f"the PMT's TTS σ, less the noise's jitter of {timing['noise_jitter_ns']:.2f} ns: "
                     f"{timing['tts_sigma_pmt_ns']:.2f} ± {timing['tts_sigma_pmt_err_ns']:.2f} ns"
                     + (f", FWHM {timing['tts_fwhm_pmt_ns']:.2f} ns" if timing.get("tts_fwhm_pmt_ns") else ""))
    return lines + [note for note in (timing.get("tts_sigma_pmt_note"), timing.get("note")) if note]


DARK_MARKERS = {"corrected": ("dark rate", "circle", "#D55E00"),
                "counted": ("counted only (not corrected for the threshold efficiency)", "circle-open", "#777"),
                "borrowed": ("counted, over the other points' threshold efficiency", "diamond-open", "#D55E00")}


def _dark_trace(kind: str, rows: list[tuple[str, float, float]]) -> dict[str, Any]:
    name, symbol, colour = DARK_MARKERS[kind]
    return {"type": "scatter", "mode": "markers", "name": name, "x": [pid for pid, _, _ in rows],
            "y": [round(r, 1) for _, r, _ in rows],
            "error_y": {"type": "data", "array": [round(e, 1) for *_, e in rows]},
            "marker": {"size": 8, "color": colour, "symbol": symbol}}


def dark_rate_figure(points: dict[str, dict[str, Any]], pooled: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Dark rate of every point with its error, in point order: the rates corrected for the threshold efficiency,
    the ones counted only, and (from the PMT's pooled rate, `dark_rate.pooled_dark_rate`) the points without a 1-PE
    response of their own over the other points' efficiency; the pooled rate as a line."""
    rows: dict[str, list[tuple[str, float, float]]] = {kind: [] for kind in DARK_MARKERS}
    for pid, p in points.items():
        dark = (p.get("peer") or {}).get("dark") or {}
        if dark.get("dark_rate_hz") is None:
            continue
        kind = "corrected" if scales_up(applied_efficiency(dark)) else "counted"
        rows[kind].append((pid, float(dark["dark_rate_hz"]), float(dark.get("dark_rate_err_hz") or 0.0)))
    rows["borrowed"] = [(b["point"], b["dark_rate_hz"], b["dark_rate_err_hz"])
                        for b in (pooled or {}).get("borrowed", [])]
    if not rows["corrected"] and not rows["counted"]:
        return None
    title, shapes = "dark rate per point", []
    if pooled and pooled.get("dark_rate_hz") is not None:
        rate, err = pooled["dark_rate_hz"], pooled["dark_rate_err_hz"]
        title += f"<br><sub>the PMT's, pooled: {rate:.0f} ± {err:.0f} Hz (dashed)</sub>"
        shapes = [{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": rate - err, "y1": rate + err,
                   "fillcolor": "rgba(213,94,0,0.15)", "line": {"width": 0}},
                  {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": rate, "y1": rate,
                   "line": {"color": "#D55E00", "width": 1, "dash": "dash"}}]
    order = {pid: i for i, pid in enumerate(points)}
    data = [_dark_trace(kind, sorted(r, key=lambda row: order.get(row[0], len(order))))
            for kind, r in rows.items() if r]
    ids = list(points)
    layout = _layout(title, xaxis={"type": "category", "categoryorder": "array", "categoryarray": ids,
                                   "tickmode": "array", "tickvals": ids, "ticktext": [point_label(p) for p in ids],
                                   "tickangle": -90, "automargin": True},
                     yaxis={"title": {"text": "dark rate [Hz]"}, "rangemode": "tozero"}, shapes=shapes,
                     height=DARK_HEIGHT)
    if shapes:
        layout["margin"] = {**layout["margin"], "t": 90}
    return {"data": data, "layout": layout}


def peer_panels(points: dict[str, dict[str, Any]], pooled_dark: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report data of these panels: DE map (None without DE), timing figure per point, dark-rate figure (with
    the PMT's pooled dark rate when given)."""
    de = de_map_figure(points)
    timing = {pid: fig for pid, p in sorted(points.items()) if (fig := timing_figure(p))}
    return {"de_map": de if de["data"][0]["x"] else None, "timing": timing,
            "dark": dark_rate_figure(points, pooled_dark)}
