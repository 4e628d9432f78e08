"""Small static SVG pictures of the report's charts, drawn on the server.

They are what a reader sees with scripts off (mail clients, filters); when scripts run, the interactive
Plotly chart replaces them. Input: the same Plotly figure dicts that figures.py builds, so the two agree.
"""

from __future__ import annotations

import itertools
import math
from html import escape
from typing import Any

W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 30, 78


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """About five round tick values in [lo, hi] (decades on a log axis)."""
    if log:
        if hi - lo < 1.2:  # less than about a decade: round values in between
            return _ticks(10 ** lo, 10 ** hi, False)
        return [10.0 ** k for k in range(math.ceil(lo), math.floor(hi) + 1)]
    span = hi - lo or 1.0
    step = 10 ** math.floor(math.log10(span / 5))
    step *= next(m for m in (1, 2, 5, 10) if span / (step * m) <= 6)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-2):
        e = math.floor(math.log10(abs(v)))
        return f"{v / 10 ** e:.3g}e{e}"
    return f"{v:g}"


class _Axes:
    """Data -> pixel mapping of one chart."""

    def __init__(self, xr: tuple[float, float], yr: tuple[float, float], logx: bool, logy: bool) -> None:
        self.logx, self.logy = logx, logy
        self.x0, self.x1 = xr
        self.y0, self.y1 = yr

    def tx(self, v: float) -> float | None:
        return self._map(v, self.logx, self.x0, self.x1, LEFT, W - RIGHT)

    def ty(self, v: float) -> float | None:
        return self._map(v, self.logy, self.y0, self.y1, H - BOTTOM, TOP)

    @staticmethod
    def _map(v: float | None, log: bool, lo: float, hi: float, p0: float, p1: float) -> float | None:
        if v is None or (log and v <= 0):
            return None
        u = math.log10(v) if log else v
        return round(p0 + (u - lo) / ((hi - lo) or 1.0) * (p1 - p0), 1)


def _range(values: list[float | None], log: bool, tozero: bool = False) -> tuple[float, float]:
    vals = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if not vals:
        return (0.0, 1.0)
    if log:
        lo, hi = math.log10(min(vals)), math.log10(max(vals))
        pad = max(0.05 * (hi - lo), 0.02)
        return (lo - pad, hi + pad)
    lo, hi = (min(0.0, *vals) if tozero else min(vals)), max(vals)
    pad = 0.05 * ((hi - lo) or abs(hi) or 1.0)
    return (lo if tozero else lo - pad, hi + pad)


def _path(ax: _Axes, xs: list[float], ys: list[float], step: bool = False) -> str:
    """A path through the finite points; a gap (None, or <= 0 on a log axis) starts a new piece."""
    parts, pen = [], False
    for x, y in zip(xs, ys, strict=False):
        px, py = ax.tx(x), ax.ty(y)
        if px is None or py is None:
            pen = False
            continue
        parts.append(f"{'L' if pen else 'M'}{px:g} {py:g}" if not (step and pen) else f"H{px:g}V{py:g}")
        pen = True
    return "".join(parts)


def _frame(ax: _Axes, xlabel: str, ylabel: str) -> list[str]:
    out = [(f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
            f'fill="#fbfbfb" stroke="#ccc"/>')]
    for v in _ticks(ax.x0, ax.x1, ax.logx):
        px = ax.tx(v)
        if px is not None:
            out.append(f'<text x="{px:g}" y="{H - BOTTOM + 16}" text-anchor="middle">{_label(v)}</text>')
    for v in _ticks(ax.y0, ax.y1, ax.logy):
        py = ax.ty(v)
        if py is not None:
            out.append(f'<path d="M{LEFT} {py:g}H{W - RIGHT}" stroke="#e6e6e6"/>'
                       f'<text x="{LEFT - 5}" y="{py + 4:g}" text-anchor="end">{_label(v)}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2:g}" y="{H - BOTTOM + 34}" text-anchor="middle">'
               f'{escape(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {(TOP + H - BOTTOM) / 2:g}) rotate(-90)" text-anchor="middle">'
               f'{escape(ylabel)}</text>')
    return out


def _legend(items: list[tuple[str, str, bool]]) -> list[str]:
    out: list[str] = []
    x, y = float(LEFT), H - 22
    for name, colour, dashed in items:
        width = 26 + 6.6 * len(name)
        if x + width > W - RIGHT:
            x, y = float(LEFT), y + 16
        dash = ' stroke-dasharray="3 2"' if dashed else ""
        out.append(f'<path d="M{x:g} {y - 4}h18" stroke="{colour}" stroke-width="2.5"{dash}/>'
                   f'<text x="{x + 22:g}" y="{y}">{escape(name)}</text>')
        x += width + 10
    return out


def _svg(body: list[str], label: str, title: str = "") -> str:
    head = (f'<svg class="static-svg" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)}" '
            'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12" fill="#222">')
    t = f'<text x="{W / 2:g}" y="18" text-anchor="middle" font-size="14" font-weight="600">{escape(title)}</text>'
    return head + (t if title else "") + "".join(body) + "</svg>"


def figure_svg(figure: dict[str, Any] | None, log_y: bool | None = None) -> str:
    """A Plotly scatter figure (markers, lines, hv steps, error bars, full-width shapes) as a static SVG."""
    if not figure:
        return ""
    layout = figure["layout"]
    logx = (layout.get("xaxis") or {}).get("type") == "log"
    logy = (layout.get("yaxis") or {}).get("type") == "log" if log_y is None else log_y
    traces = figure["data"]
    xs = [x for t in traces for x in t["x"] if x is not None]
    ys = [y for t in traces for y in t["y"] if y is not None]
    given = (layout.get("yaxis") or {}).get("range")  # the figure's own y range (log10 units on a log axis)
    yr = (float(given[0]), float(given[1])) if given and logy else _range(ys, logy, tozero=not logy)
    ax = _Axes(_range(xs, logx), yr, logx, logy)
    body = _frame(ax, _axis_title(layout, "xaxis"), _axis_title(layout, "yaxis"))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    body.append(f'<svg x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" viewBox="{LEFT} {TOP} {pw} {ph}">')
    legend = []
    for t in traces:
        colour = (t.get("line") or {}).get("color") or (t.get("marker") or {}).get("color") or "#222"
        if t.get("mode") == "markers":
            dots = "".join(f"M{px:g} {py:g}h0" for px, py in ((ax.tx(x), ax.ty(y)) for x, y in zip(t["x"], t["y"],
                           strict=False)) if px is not None and py is not None)
            body.append(f'<path d="{dots}" stroke="{colour}" stroke-width="{4 if len(t["x"]) > 40 else 8}" '
                        'stroke-linecap="round"/>')
        else:
            line = t.get("line") or {}
            dash = ' stroke-dasharray="4 3"' if line.get("dash") else ""
            body.append(f'<path d="{_path(ax, t["x"], t["y"], line.get("shape") == "hvh")}" fill="none" '
                        f'stroke="{colour}" stroke-width="{line.get("width", 1.5)}"{dash}/>')
        legend.append((str(t.get("name", "")), colour, bool((t.get("line") or {}).get("dash"))))
    for shape in layout.get("shapes") or []:
        body.append(_shape(ax, shape))
    body.append("</svg>")  # end of the clipped plot area
    if layout.get("showlegend", True):
        body += _legend(legend)
    title = ((layout.get("title") or {}).get("text") or "")
    scale = " (log scale)" if logy and not logx else ""
    return _svg(body, title + scale, title + scale)


def _axis_title(layout: dict[str, Any], axis: str) -> str:
    return str(((layout.get(axis) or {}).get("title") or {}).get("text") or "")


def _shape(ax: _Axes, shape: dict[str, Any]) -> str:
    """Horizontal or vertical reference lines spanning the plot (xref/yref 'paper')."""
    colour = (shape.get("line") or {}).get("color", "#999")
    if shape.get("xref") == "paper":
        py = ax.ty(shape["y0"])
        d = f"M{LEFT} {py:g}H{W - RIGHT}" if py is not None else ""
    elif shape.get("yref") == "paper":
        px = ax.tx(shape["x0"])
        d = f"M{px:g} {TOP}V{H - BOTTOM}" if px is not None else ""
    else:
        return ""
    return f'<path d="{d}" stroke="{colour}" stroke-dasharray="5 4"/>' if d else ""


CIVIDIS = [(0.0, (0, 34, 78)), (0.25, (61, 77, 110)), (0.5, (124, 123, 120)), (0.75, (190, 175, 111)),
           (1.0, (254, 232, 56))]


def cividis(u: float) -> str:
    """The colour-blind-safe Cividis colour scale at u in [0, 1] (clipped), as #rrggbb."""
    u = min(1.0, max(0.0, u))
    for (a, ca), (b, cb) in itertools.pairwise(CIVIDIS):
        if u <= b:
            f = (u - a) / (b - a)
            return "#" + "".join(f"{round(x + f * (y - x)):02x}" for x, y in zip(ca, cb, strict=True))
    return "#fee838"


def polar_svg(cells: list[dict[str, Any]], band: tuple[float, float], colours: dict[str, str]) -> str:
    """The gain map: PMT face from the front, fill = gain (Cividis), ring = status; a colour bar beside it."""
    lo, hi = band[0] / 1e7 - 0.05, band[1] / 1e7 + 0.05
    size, cx, cy, scale = 400, 200, 200, 2.8
    body = [f'<circle cx="{cx}" cy="{cy}" r="{t * scale:g}" fill="none" stroke="#ddd"/>' for t in (10, 20, 30, 40, 50)]
    body += [f'<text x="{cx + 156}" y="{cy + 4}" fill="#777">φ0°</text>',
             f'<text x="{cx}" y="{cy - 160}" text-anchor="middle" fill="#777">φ90°</text>',
             f'<text x="{cx - 156}" y="{cy + 4}" text-anchor="end" fill="#777">φ180°</text>',
             f'<text x="{cx}" y="{cy + 170}" text-anchor="middle" fill="#777">φ270°</text>']
    for c in cells:
        x = cx + scale * c["theta"] * math.cos(math.radians(c["phi"]))
        y = cy - scale * c["theta"] * math.sin(math.radians(c["phi"]))
        gain = c.get("gain")
        fill = cividis((gain / 1e7 - lo) / (hi - lo)) if gain else "#f4f4f4"
        tip = f"{c['point']}: {c['status']}" + (f", gain {gain / 1e7:.4f}e7" if gain else f" ({c['reason']})")
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="11" fill="{fill}" '
                    f'stroke="{colours.get(c["status"], "#999")}" '
                    f'stroke-width="4"><title>{escape(tip)}</title></circle>')
    bar_x = size + 20
    body += [f'<rect x="{bar_x}" y="{40 + i * 2.8:.1f}" width="18" height="3" fill="{cividis(1 - i / 99)}"/>'
             for i in range(100)]
    body += [f'<text x="{bar_x + 24}" y="{44 + (1 - (v - lo) / (hi - lo)) * 277:.0f}">{v:.3f}</text>'
             for v in (lo, (lo + hi) / 2, hi)]
    body.append(f'<text x="{bar_x - 4}" y="28">gain / 1e7</text>')
    return (f'<svg class="static-svg" viewBox="0 0 500 {size}" role="img" aria-label="gain map" '
            'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12" fill="#222">'
            + "".join(body) + "</svg>")
