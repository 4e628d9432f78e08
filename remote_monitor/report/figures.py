"""Plotly figure specifications (plain dicts: data + layout) for the report; drawn by the page's own JS."""

from __future__ import annotations

import itertools
import math
from html import escape
from typing import Any

from remote_monitor.report.curves import expand_curve
from remote_monitor.stand.layout import point_angles, point_hv

# Okabe-Ito colours (safe for the common colour-vision deficiencies); every status also has a text label.
STATUS_COLOURS = {"healthy": "#009E73", "poor": "#E69F00", "error": "#D55E00", "uncertain": "#56B4E9",
                  "no_data": "#9E9E9E", "acquiring": "#0072B2"}
VERDICT_COLOURS = {"pass": "#009E73", "check": "#E69F00", "fail": "#D55E00", "in progress": "#0072B2"}
#: fit components by name; the total fit is blue (#0072B2), the reference overlay reddish purple (#CC79A7),
#: the data black: no two series of a spectrum share a colour
COMPONENT_COLOURS = {"pedestal": "#999999", "1 PE": "#E69F00", "2 PE": "#56B4E9", "3 PE": "#009E73",
                     "4 PE": "#F0E442", "exponential": "#D55E00", "under-amplified": "#D55E00"}
FIT_COLOUR, REFERENCE_COLOUR, OTHER_COLOUR = "#0072B2", "#CC79A7", "#7f7f7f"
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 15}


def point_label(point: str) -> str:
    """A point's short name on the page: a grid cell, an axis tick: 'θ10 φ270', '1750 V' (else the name itself)."""
    angles, hv = point_angles(point), point_hv(point)
    if angles:
        return f"θ{angles[0]} φ{angles[1]}"
    return f"{hv} V" if hv is not None else point


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "font": FONT, "margin": {"l": 70, "r": 20, "t": 50, "b": 100},
            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#fbfbfb", "legend": {"orientation": "h", "y": -0.32},
            **extra}


def _r(values: list[float | None], digits: int = 3) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else round(v, digits) for v in values]


def spectrum_figure(point: dict[str, Any], reference: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Charge histogram with sqrt(N) errors, fitted total and components, optional reference overlay."""
    hist = point.get("histogram")
    if not hist:
        return None
    edges, counts = hist["edges"], hist["counts"]
    centres = [0.5 * (a + b) for a, b in itertools.pairwise(edges)]
    fit = point.get("fit") or {}
    curve = expand_curve(fit.get("curve"), hist) or {}
    last = max([i for i, c in enumerate(counts) if c > 0] + [0])
    end = min(len(counts), last + 10)
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "markers", "name": "data", "x": _r(centres[:end]), "y": counts[:end],
        "error_y": {"type": "data", "array": _r([math.sqrt(c) for c in counts[:end]], 2), "visible": True,
                    "thickness": 1, "width": 0, "color": "#555"},
        "marker": {"size": 4, "color": "#222"},
    }]
    for name, values in sorted((curve.get("components") or {}).items(), key=lambda kv: (kv[0] != "pedestal", kv[0])):
        if max(values[:end], default=0) < 0.5:
            continue
        data.append({"type": "scatter", "mode": "lines", "name": name, "x": _r(curve["x"][:end]),
                     "y": _r(values[:end], 2), "line": {"width": 1.5, "dash": "dot",
                                                        "color": COMPONENT_COLOURS.get(name, OTHER_COLOUR)}})
    if curve.get("total"):
        data.append({"type": "scatter", "mode": "lines", "name": f"fit ({fit.get('model', '')} model)",
                     "x": _r(curve["x"][:end]), "y": _r(curve["total"][:end], 2),
                     "line": {"width": 2.5, "color": FIT_COLOUR}})
    if reference and sum(reference["counts"]) > 0 and sum(counts) > 0:
        scale = sum(counts) / sum(reference["counts"])
        ref_x = [0.5 * (a + b) for a, b in itertools.pairwise(reference["edges"])]
        keep = [i for i, x in enumerate(ref_x) if x <= centres[end - 1]]
        data.append({"type": "scatter", "mode": "lines", "name": "reference PMT (same area)",
                     "x": _r([ref_x[i] for i in keep]), "y": _r([reference["counts"][i] * scale for i in keep], 2),
                     "line": {"shape": "hvh", "color": REFERENCE_COLOUR, "width": 1.5}})
    title = f"Charge spectrum {point['point']}"
    peak = max(counts[:end], default=1) or 1
    # log by default: at the stand's low occupancy the pedestal is 10-100x the 1-PE peak
    yaxis = {"title": {"text": "events / bin"}, "type": "log", "range": [-0.3, math.log10(peak) + 0.3],
             "dtick": 1}
    # legend inside the top right corner: empty in a falling spectrum, and no space taken from the plot
    legend = {"x": 0.99, "xanchor": "right", "y": 0.99, "yanchor": "top", "bgcolor": "rgba(255,255,255,0.8)",
              "font": {"size": 11}}
    return {"data": data, "layout": _layout(title, xaxis={"title": {"text": "charge [pC]"}, "zeroline": False},
                                            yaxis=yaxis, legend=legend, height=460,
                                            margin={"l": 60, "r": 10, "t": 40, "b": 50})}


def polar_map_figure(points: dict[str, dict[str, Any]], healthy_band: tuple[float, float]) -> dict[str, Any]:
    """Gain over the PMT face: theta as radius, phi as angle (phi 0 to the right, 90 up), band colours."""
    lo, hi = healthy_band
    rings = [{"type": "circle", "xref": "x", "yref": "y", "x0": -t, "y0": -t, "x1": t, "y1": t,
              "line": {"color": "#ddd", "width": 1}} for t in (10, 20, 30, 40, 50)]
    spokes = [{"type": "line", "x0": 0, "y0": 0, "x1": 55 * math.cos(math.radians(p)),
               "y1": 55 * math.sin(math.radians(p)), "line": {"color": "#ddd", "width": 1}} for p in (0, 90, 180, 270)]
    xs, ys, gains, texts, colours = [], [], [], [], []
    for pid, p in sorted(points.items()):
        if p.get("kind") != "scan" or p.get("theta") is None:
            continue
        status = p.get("status", "no_data")
        gain = None if status == "error" else (p.get("fit") or {}).get("gain")  # an error has no gain to show
        xs.append(round(p["theta"] * math.cos(math.radians(p["phi"])), 3))
        ys.append(round(p["theta"] * math.sin(math.radians(p["phi"])), 3))
        gains.append(round(gain / 1e7, 4) if gain else None)
        texts.append(f"{pid}<br>{status}<br>gain {gain / 1e7:.4f}e7" if gain
                     else f"{pid}<br>{status}: {escape(str(p.get('reason', '')))}")
        colours.append(STATUS_COLOURS.get(status, "#9E9E9E"))
    data = [{
        "type": "scatter", "mode": "markers", "x": xs, "y": ys,
        "hovertext": texts, "hoverinfo": "text", "name": "gain / 1e7",
        "marker": {"size": 26, "color": gains, "cmin": lo / 1e7 - 0.05, "cmax": hi / 1e7 + 0.05,
                   "colorscale": "Cividis", "showscale": True,
                   "colorbar": {"title": {"text": "gain / 1e7"}, "tickformat": ".3f"},
                   "line": {"color": colours, "width": 4}},
    }]
    # phi labels sit outside the outer ring so that they never cover a marker; the title is the page's h2
    layout = _layout("", margin={"l": 10, "r": 10, "t": 10, "b": 10},
                     xaxis={"visible": False, "range": [-72, 72], "scaleanchor": "y"},
                     yaxis={"visible": False, "range": [-72, 72]}, shapes=rings + spokes, showlegend=False,
                     annotations=[{"x": 66, "y": 0, "text": "φ0°", "showarrow": False},
                                  {"x": 0, "y": 66, "text": "φ90°", "showarrow": False},
                                  {"x": -66, "y": 0, "text": "φ180°", "showarrow": False},
                                  {"x": 0, "y": -66, "text": "φ270°", "showarrow": False}]
                     + [{"x": t * 0.72, "y": t * 0.72, "text": f"θ{t}", "showarrow": False,
                         "font": {"size": 11, "color": "#888"}} for t in (10, 30, 50)])
    return {"data": data, "layout": layout}


def hv_figure(hv_fit: dict[str, Any] | None, target_gain: float) -> dict[str, Any] | None:
    """Gain vs HV on log-log axes with the power-law fit and the HV at the target gain."""
    if not hv_fit or not hv_fit.get("points"):
        return None
    pts = hv_fit["points"]
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "markers", "name": "measured gain", "x": [p["hv"] for p in pts],
        "y": [p["gain"] for p in pts], "error_y": {"type": "data", "array": [p["gain_err"] for p in pts]},
        "marker": {"size": 10, "color": "#0072B2"},
    }]
    shapes: list[dict[str, Any]] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": target_gain,
                                     "y1": target_gain, "line": {"dash": "dash", "color": "#999"}}]
    if hv_fit.get("a") and hv_fit.get("b"):
        lo, hi = min(p["hv"] for p in pts) - 20, max(p["hv"] for p in pts) + 20
        xs = [lo + (hi - lo) * i / 40 for i in range(41)]
        data.append({"type": "scatter", "mode": "lines", "name": f"fit gain = a·HV^{hv_fit['b']:.2f}",
                     "x": _r(xs, 1), "y": [hv_fit["a"] * x ** hv_fit["b"] for x in xs],
                     "line": {"color": "#D55E00", "width": 2}})
    if hv_fit.get("hv_at_target"):
        shapes.append({"type": "line", "yref": "paper", "y0": 0, "y1": 1, "x0": hv_fit["hv_at_target"],
                       "x1": hv_fit["hv_at_target"], "line": {"dash": "dot", "color": "#009E73"}})
    title = "Gain vs HV"
    if hv_fit.get("hv_at_target"):
        title += f": HV at {target_gain:.2g} = {hv_fit['hv_at_target']:.1f} ± {hv_fit['hv_at_target_err']:.1f} V"
    return {"data": data, "layout": _layout(title, shapes=shapes, legend={"x": 0.02, "y": 0.98},
                                            xaxis={"title": {"text": "HV [V]"}, "type": "log"},
                                            yaxis={"title": {"text": "gain"}, "type": "log"})}
