"""Covariance of a zfit fit from the loss's analytic gradient: the Hessian as central differences of the gradient,
a method for `FitResult.hesse(method=...)`.

Minuit's Hesse differentiates the likelihood twice numerically (about 90 likelihood values for 8 parameters,
0.44 s for the SPE model); the gradient that zfit computes by automatic differentiation gives the Hessian from
2 n gradients (16 for 8 parameters). TensorFlow cannot differentiate the gradient itself (the incomplete gamma
function's derivative in its shape has no derivative), so zfit's own `hesse_np` falls back to a numerical Hessian
of the value (13 s). A Hessian that is not positive definite (a minimum not reached, a flat direction) is
refused, and the caller falls back to Minuit's Hesse.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

STEP_OF_ERROR = 0.1  # the difference step: a tenth of Migrad's running error estimate
STEP_OF_RANGE = 1e-4  # ... or this fraction of the parameter's range when Migrad gave none


class NotPositiveDefinite(ValueError):
    """The Hessian at the point has a non-positive eigenvalue: no covariance from it."""


def _limits(param: Any) -> tuple[float, float]:
    lower, upper = getattr(param, "lower", None), getattr(param, "upper", None)
    return (-math.inf if lower is None else float(lower)), (math.inf if upper is None else float(upper))


def _migrad_errors(result: Any) -> dict[Any, float]:
    """Migrad's running error estimate of each parameter (from its approximate inverse Hessian); {} if none."""
    try:
        inverse = result.approx.inv_hessian(invert=True)
    except Exception:  # noqa: BLE001 - no estimate kept: the steps fall back to the ranges
        return {}
    if inverse is None:
        return {}
    diagonal = np.diag(np.asarray(inverse, dtype=float))
    return {param: math.sqrt(v) for param, v in zip(result.params, diagonal, strict=False) if v > 0}


def _step(param: Any, migrad_error: float | None) -> float:
    """Difference step of one parameter: STEP_OF_ERROR of Migrad's error estimate, else of its range."""
    if migrad_error is not None and math.isfinite(migrad_error) and migrad_error > 0:
        return STEP_OF_ERROR * migrad_error
    lower, upper = _limits(param)
    span = upper - lower if math.isfinite(upper - lower) else max(abs(float(param.value())), 1.0)
    return STEP_OF_RANGE * span


def _gradient_at(loss: Any, params: list[Any], values: np.ndarray) -> np.ndarray:
    import zfit

    zfit.param.assign_values(params, values)  # (set_values checks more, and took 30-50 ms a call)
    return np.asarray(loss.gradient(params), dtype=float)


def hessian_from_gradient(loss: Any, params: list[Any], steps: list[float]) -> np.ndarray:
    """Symmetrised Hessian of `loss` at the parameters' current values: central differences of its gradient,
    one-sided (towards the inside) for a parameter within a step of a limit. Leaves the values as it found them."""
    x0 = np.array([float(p.value()) for p in params])
    centre: np.ndarray | None = None
    rows = []
    try:
        for i, (param, step) in enumerate(zip(params, steps, strict=True)):
            lower, upper = _limits(param)
            up, down = min(step, upper - x0[i]), min(step, x0[i] - lower)
            shifted = x0.copy()
            if up > 0 and down > 0:
                shifted[i] = x0[i] + up
                plus = _gradient_at(loss, params, shifted)
                shifted[i] = x0[i] - down
                rows.append((plus - _gradient_at(loss, params, shifted)) / (up + down))
                continue
            if centre is None:
                centre = _gradient_at(loss, params, x0)
            sign, h = (1.0, up) if up > 0 else (-1.0, down)
            shifted[i] = x0[i] + sign * h
            rows.append(sign * (_gradient_at(loss, params, shifted) - centre) / h)
    finally:
        import zfit

        zfit.param.assign_values(params, x0)
    hessian = np.array(rows)
    return 0.5 * (hessian + hessian.T)


def covariance_from_hessian(hessian: np.ndarray) -> np.ndarray:
    """Inverse of a negative-log-likelihood Hessian (errordef 0.5); NotPositiveDefinite if it has no inverse that
    is a covariance."""
    if not np.all(np.isfinite(hessian)):
        raise NotPositiveDefinite("the Hessian has non-finite entries")
    scale = np.sqrt(np.abs(np.diag(hessian)))
    if np.any(scale == 0):
        raise NotPositiveDefinite("a parameter does not change the likelihood")
    unit = hessian / np.outer(scale, scale)  # unit diagonal: the eigenvalue test does not depend on the units
    if np.linalg.eigvalsh(unit).min() <= 1e-10:
        raise NotPositiveDefinite("the Hessian is not positive definite")
    return np.linalg.inv(unit) / np.outer(scale, scale)


def gradient_covariance(result: Any, params: list[Any]) -> dict[tuple[Any, Any], float]:
    """`FitResult.hesse` / `covariance` method: the covariance of `params` from the gradient's differences."""
    errors = _migrad_errors(result)
    hessian = hessian_from_gradient(result.loss, params, [_step(p, errors.get(p)) for p in params])
    cov = covariance_from_hessian(hessian)
    return {(a, b): float(cov[i, j]) for i, a in enumerate(params) for j, b in enumerate(params)}

