"""Scan-position angles in the Hamamatsu convention used by the collaboration's pre-calibration analyses."""

from __future__ import annotations

HAMAMATSU_COEFFICIENTS = (-0.0049, 1.7515, -0.0402)  # a x^2 + b x + c, degrees, from the stand's theta x


def hamamatsu_angle(theta: float | None) -> float | None:
    """Hamamatsu angle in degrees of the stand's theta (degrees): -0.0049 x^2 + 1.7515 x - 0.0402."""
    if theta is None:
        return None
    a, b, c = HAMAMATSU_COEFFICIENTS
    return a * theta * theta + b * theta + c
