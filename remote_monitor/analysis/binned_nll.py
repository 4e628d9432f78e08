"""Binned Poisson likelihood, its central-difference gradient and their minimisation with zfit (`SimpleLoss`,
Minuit, Hesse), for the numpy likelihoods of the seed SPE model and the timing fit."""

from __future__ import annotations

import warnings
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


def minimize_nll(nll: Callable[[np.ndarray], float], params: list[Any]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(best values, Hesse covariance, Minuit's verdict) of a numpy NLL over zfit parameters, from their values.

    Graph and autograd modes are off only inside: set globally, every later SPE fit of the process would run
    eagerly with numerical gradients, 100x slower."""
    import zfit

    with warnings.catch_warnings(), zfit.run.set_graph_mode(False), zfit.run.set_autograd_mode(False):
        warnings.simplefilter("ignore")
        loss = zfit.loss.SimpleLoss(lambda v: nll(np.array(v, dtype=float)), params=params, errordef=0.5,
                                    gradient=central_gradient(nll))
        result = zfit.minimize.Minuit(gradient="zfit", tol=0.001, mode=1).minimize(loss)
        cov = np.asarray(result.covariance(params=params, method="minuit_hesse"))
    values = np.array([float(result.params[p]["value"]) for p in params])
    return values, cov, bool(result.valid)
