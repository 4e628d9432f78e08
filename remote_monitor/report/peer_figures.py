"""Report panels of the other analyses: relative detection-efficiency map, PMT-trigger time histogram with the
timing fit per point, dark rate per point (Plotly figure dicts, like figures.py)."""

from __future__ import annotations

import itertools
import math
from typing import Any

from remote_monitor.analysis.peer_columns import peer_table
from remote_monitor.report.figures import _layout, _r


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


def timing_figure(point: dict[str, Any]) -> dict[str, Any] | None:
    """PMT-minus-trigger time histogram with the timing fit (core + late tail + flat) and the transit time / TTS in the title."""
    timing = (point.get("peer") or {}).get("timing") or {}
    hist, curve = timing.get("histogram"), timing.get("curve")
    if not hist:
        return None
    edges = hist["edges"]
    centres = [0.5 * (a + b) for a, b in itertools.pairwise(edges)]
    data: list[dict[str, Any]] = [{"type": "scatter", "mode": "markers", "name": "data", "x": _r(centres),
                                   "y": hist["counts"], "marker": {"size": 4, "color": "#222"}}]
    if curve:
        data.append({"type": "scatter", "mode": "lines", "name": "core + late tail + flat fit", "x": curve["x"], "y": curve["y"],
                     "line": {"width": 2.5, "color": "#0072B2"}})
    title = f"PMT − trigger time {point['point']}"
    if timing.get("transit_time_ns") is not None:
        title += (f": TT {timing['transit_time_ns']:.2f} ± {timing['transit_time_err_ns']:.2f} ns, "
                  f"TTS σ {timing['tts_sigma_ns']:.2f} ns, FWHM {timing['tts_fwhm_ns']:.2f} ns")
    margin = {}
    if timing.get("note"):  # (the monitor's own text), its two sentences on two lines
        title += "<br><sub>" + timing["note"].replace(". ", ".<br>", 1) + "</sub>"
        margin = {"margin": {"l": 70, "r": 20, "t": 100, "b": 100}}
    return {"data": data, "layout": _layout(title, xaxis={"title": {"text": "time [ns]"}},
                                            yaxis={"title": {"text": "events / bin"}, "rangemode": "tozero"},
                                            **margin)}


def dark_rate_figure(points: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Dark rate of every point with its error, in point order."""
    table = peer_table(points)
    rows = [(pid, c) for pid, c in table.items() if c["dark_rate_hz"] is not None]
    if not rows:
        return None
    data = [{"type": "scatter", "mode": "markers", "name": "dark rate", "x": [pid for pid, _ in rows],
             "y": [round(c["dark_rate_hz"], 1) for _, c in rows],
             "error_y": {"type": "data", "array": [round(c["dark_rate_err_hz"] or 0, 1) for _, c in rows]},
             "marker": {"size": 8, "color": "#D55E00"}}]
    return {"data": data, "layout": _layout("dark rate per point", xaxis={"type": "category"},
                                            yaxis={"title": {"text": "dark rate [Hz]"}, "rangemode": "tozero"})}


def peer_panels(points: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report data of these panels: DE map (None without DE), timing figure per point, dark-rate figure."""
    de = de_map_figure(points)
    timing = {pid: fig for pid, p in sorted(points.items()) if (fig := timing_figure(p))}
    return {"de_map": de if de["data"][0]["x"] else None, "timing": timing, "dark": dark_rate_figure(points)}
