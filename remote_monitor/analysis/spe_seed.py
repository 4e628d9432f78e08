"""The old system's SPE fit, kept for comparison (`[fit] model = "seed"`): two Gaussians with mu2 = 2 mu1 on
0.5..4.5 pC, a numpy likelihood minimised by zfit's Minuit. Also the Gaussian response components that test
fixtures draw. Not the default: it is biased on skewed, under-amplified spectra (see benchmarks/bench_gain.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import gammaln, ndtr

from remote_monitor.analysis.binned_nll import minimize_nll, poisson_nll
from remote_monitor.analysis.histogram import Histogram
from remote_monitor.analysis.spe_result import SpeFitResult, chi2_ndf, curve
from remote_monitor.analysis.units import pc_to_gain

SEED_RANGE_PC = (0.5, 4.5)


def _gauss_bins(edges: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Probability of each bin for Gaussians (one row per mean/sigma)."""
    cdf = ndtr((edges[None, :] - mean[:, None]) / sigma[:, None])
    return np.diff(cdf, axis=1)


def _full_components(p: np.ndarray, edges: np.ndarray, n_pe: int, exponential: bool) -> np.ndarray:
    """Expected counts per bin of pedestal, 1..n_pe PE (rows) [and the exponential as the last row]."""
    total, mu, q0, s0, q1, s1 = p[:6]
    k = np.arange(n_pe + 1)
    weights = np.exp(-mu + k * math.log(max(mu, 1e-300)) - gammaln(k + 1))
    rows = weights[:, None] * _gauss_bins(edges, q0 + k * q1, np.sqrt(s0**2 + k * s1**2))
    if not exponential:
        return total * rows
    w, alpha = p[6], p[7]
    lo = np.clip(edges[:-1] - q0, 0, None)
    hi = np.clip(edges[1:] - q0, 0, None)
    expo = (1 - weights[0]) * w * (np.exp(-alpha * lo) - np.exp(-alpha * hi))
    rows[1:] *= 1 - w
    return total * np.vstack([rows, expo])


def _seed_components(p: np.ndarray, edges: np.ndarray) -> np.ndarray:
    n1, n2, m1, s1, s2 = p
    return np.vstack([n1 * _gauss_bins(edges, np.array([m1]), np.array([s1]))[0],
                      n2 * _gauss_bins(edges, np.array([2 * m1]), np.array([s2]))[0]])


_PARAMS: dict[str, list[Any]] = {}
_BOUNDS = {
    "seed": [(0, 1e9), (0, 1e9), (0.05, 20), (0.01, 20), (0.01, 20)],
}


def _zfit_params(model: str, start: list[float]) -> list[Any]:
    """zfit parameters of a model, created once per process and reset to the start values for each fit."""
    import zfit

    if model not in _PARAMS:
        _PARAMS[model] = [zfit.Parameter(f"spe_{model}_{i}", 0.5 * (lo + hi), lower=lo, upper=hi)
                          for i, (lo, hi) in enumerate(_BOUNDS[model])]
    params = _PARAMS[model][: len(start)]
    for param, value, (lo, hi) in zip(params, start, _BOUNDS[model], strict=False):
        param.set_value(min(max(value, lo + 1e-9 * (hi - lo)), hi - 1e-9 * (hi - lo)))
    return params


def _minimize(model: str, nll: Callable[[np.ndarray], float],
              start: list[float]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(best values, Hesse errors, converged) with zfit's Minuit."""
    values, cov, valid = minimize_nll(nll, _zfit_params(model, start))
    return values, np.sqrt(np.clip(np.diag(cov), 0, None)), valid


def fit_seed(hist: Histogram) -> SpeFitResult:
    lo, hi = SEED_RANGE_PC
    keep = (hist.edges[:-1] >= lo) & (hist.edges[1:] <= hi)
    idx = np.flatnonzero(keep)
    if len(idx) < 6:
        return SpeFitResult("failed", f"histogram has too few bins in {lo}..{hi} pC", "seed")
    edges = hist.edges[idx[0]: idx[-1] + 2]
    counts = hist.counts[idx].astype(float)

    def nll(p: np.ndarray) -> float:
        return poisson_nll(_seed_components(p, edges).sum(axis=0), counts)

    x = 0.5 * (edges[1:] + edges[:-1])
    m1 = float(x[np.argmax(counts)])
    start = [counts.sum() * 0.8, counts.sum() * 0.2, max(m1, 0.6), 0.4 * max(m1, 0.6), 0.6 * max(m1, 0.6)]
    values, errors, converged = _minimize("seed", nll, start)
    components = _seed_components(values, hist.edges)
    components[:, ~keep] = 0.0
    in_range = _seed_components(values, edges).sum(axis=0)
    return SpeFitResult(
        status="ok", reason="fit converged" if converged else "Minuit did not converge", model="seed",
        gain=pc_to_gain(values[2]), gain_err=pc_to_gain(errors[2]), q1_pc=values[2], q1_err_pc=errors[2],
        sigma1_pc=values[3], spe_resolution=values[3] / values[2], chi2_ndf=chi2_ndf(in_range, counts, 5),
        n_events=int(hist.counts.sum()), converged=converged,
        curve=curve(hist, components.sum(axis=0), {"1 PE": components[0], "2 PE": components[1]}),
    )
