"""Binned Poisson likelihood and its central-difference gradient, for the numpy likelihoods that zfit's
`SimpleLoss` minimises (the seed SPE model and the timing fit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def poisson_nll(expected: np.ndarray, counts: np.ndarray) -> float:
    """-log L of binned Poisson counts up to a constant (expected clipped away from 0)."""
    m = np.maximum(expected, 1e-300)
    return float(np.sum(m - counts * np.log(m)))


def central_gradient(f: Callable[[np.ndarray], float]) -> Callable[[Any], np.ndarray]:
    """The gradient of f by central differences (relative step 1e-6), as zfit's SimpleLoss takes it."""
    def grad(values: Any) -> np.ndarray:
        p = np.array(values, dtype=float)
        g = np.empty_like(p)
        for i in range(len(p)):
            h = 1e-6 * max(abs(p[i]), 1e-3)
            up, down = p.copy(), p.copy()
            up[i] += h
            down[i] -= h
            g[i] = (f(up) - f(down)) / (2 * h)
        return g
    return grad
