"""The fitted SPE curve in a point result: stored compactly, expanded for drawing and export.

The fit returns the total and each component (pedestal, 1 PE, ... 9 PE) at every histogram bin centre:
eleven 560-long arrays, most of them zeros, plus an x array equal to the histogram's bin centres. Stored
compactly, x is left out (the histogram's edges give it), values are rounded to 0.01 events, and each
component keeps only its span above 0.005 events ({"start": first bin, "values": [...]}).
"""

from __future__ import annotations

import itertools
from typing import Any

DIGITS = 2
FLOOR = 0.5 * 10 ** -DIGITS


def _centres(histogram: dict[str, Any]) -> list[float]:
    return [round(0.5 * (a + b), 6) for a, b in itertools.pairwise(histogram["edges"])]


def _span(values: list[float]) -> dict[str, Any]:
    keep = [i for i, v in enumerate(values) if abs(v) >= FLOOR]
    if not keep:
        return {"start": 0, "values": []}
    return {"start": keep[0], "values": [round(v, DIGITS) for v in values[keep[0]:keep[-1] + 1]]}


def compact_fit(fit: dict[str, Any] | None, histogram: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fit dict with a compact curve (no-op for a fit without a curve or already compact)."""
    curve = (fit or {}).get("curve")
    if not fit or not curve or curve.get("compact") or not histogram:
        return fit
    x = curve.get("x") or []
    if len(x) != len(histogram["counts"]) or any(abs(a - b) > 1e-6 for a, b in zip(x, _centres(histogram),
                                                                                      strict=True)):
        return fit  # not on the histogram's bins: keep as it is
    compact = {"compact": True, "total": _span(curve.get("total") or []),
               "components": {name: _span(values) for name, values in (curve.get("components") or {}).items()}}
    return {**fit, "curve": compact}


def _full(span: dict[str, Any], n: int) -> list[float]:
    values = [0.0] * n
    values[span["start"]:span["start"] + len(span["values"])] = span["values"]
    return values


def expand_curve(curve: dict[str, Any] | None, histogram: dict[str, Any] | None) -> dict[str, Any] | None:
    """{"x", "total", "components"} with full arrays, from either the compact or the full stored form."""
    if not curve or not curve.get("compact"):
        return curve
    if not histogram:
        return None
    x = _centres(histogram)
    return {"x": x, "total": _full(curve["total"], len(x)),
            "components": {name: _full(span, len(x)) for name, span in curve["components"].items()}}
