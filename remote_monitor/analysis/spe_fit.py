"""Single-photoelectron fit of a charge histogram with zfit (Minuit + Hesse), binned Poisson likelihood.

Models: "full" is the PMT response model (Bellamy et al.): pedestal Gaussian (q0, sigma0) with weight e^-mu,
Poisson-weighted Gaussians for n = 1..N PE with mean q0 + n Q1 and variance sigma0^2 + n sigma1^2, and
optionally an exponential under-amplified component (weight w, slope alpha). "seed" is the old system's
two Gaussians with mu2 = 2 mu1 on 0.5..4.5 pC. Both are integrated over each bin (no bin-centre bias).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln, ndtr
from scipy.stats import poisson

from remote_monitor.analysis.histogram import Histogram
from remote_monitor.analysis.units import pc_to_gain

os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
SEED_RANGE_PC = (0.5, 4.5)


@dataclass
class SpeFitResult:
    status: str  # ok | failed | too_few_events
    reason: str
    model: str
    gain: float | None = None
    gain_err: float | None = None
    q0_pc: float | None = None
    sigma0_pc: float | None = None
    q1_pc: float | None = None
    q1_err_pc: float | None = None
    sigma1_pc: float | None = None
    spe_resolution: float | None = None
    mu: float | None = None
    mu_err: float | None = None
    peak_to_valley: float | None = None
    chi2_ndf: float | None = None
    n_events: int = 0
    converged: bool = False
    curve: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: non-finite floats become None."""
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value
        return clean(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeFitResult:
        return cls(**data)


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


def _poisson_nll(expected: np.ndarray, counts: np.ndarray) -> float:
    m = np.maximum(expected, 1e-300)
    return float(np.sum(m - counts * np.log(m)))


def _gradient(f: Callable[[np.ndarray], float]) -> Callable[[Any], np.ndarray]:
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


_PARAMS: dict[str, list[Any]] = {}
_BOUNDS = {
    "full": [(0, 1e9), (1e-4, 12), (-5, 5), (1e-3, 10), (0.02, 100), (1e-3, 100), (0, 0.9), (0.05, 20)],
    "seed": [(0, 1e9), (0, 1e9), (0.05, 20), (0.01, 20), (0.01, 20)],
}


def _zfit_params(model: str, start: list[float]) -> list[Any]:
    """zfit parameters of a model, created once per process and reset to the start values for each fit."""
    import zfit

    zfit.run.set_graph_mode(False)  # the model is numpy; no TF graph to build per fit
    zfit.run.set_autograd_mode(False)
    if model not in _PARAMS:
        _PARAMS[model] = [zfit.Parameter(f"spe_{model}_{i}", 0.5 * (lo + hi), lower=lo, upper=hi)
                          for i, (lo, hi) in enumerate(_BOUNDS[model])]
    params = _PARAMS[model][: len(start)]
    for param, value, (lo, hi) in zip(params, start, _BOUNDS[model], strict=False):
        param.set_value(min(max(value, lo + 1e-9 * (hi - lo)), hi - 1e-9 * (hi - lo)))
    return params


def _minimize(model: str, nll: Callable[[np.ndarray], float], start: list[float]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(best values, Hesse errors, converged) with zfit's Minuit."""
    import zfit

    params = _zfit_params(model, start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = zfit.loss.SimpleLoss(lambda v: nll(np.array(v, dtype=float)), params=params, errordef=0.5,
                                    gradient=_gradient(nll))
        result = zfit.minimize.Minuit(gradient="zfit", tol=0.001, mode=1).minimize(loss)
        errors = result.hesse(method="minuit_hesse")
    values = np.array([float(result.params[p]["value"]) for p in params])
    errs = np.array([float(errors[p]["error"]) if p in errors else np.nan for p in params])
    return values, errs, bool(result.valid)


def _start_values(hist: Histogram, n_pe: int, exponential: bool) -> list[float]:  # noqa: ARG001 (replaced by the new response model)
    """Starting point from the histogram: pedestal peak and width, occupancy from the pedestal fraction."""
    x, c = hist.centres, hist.counts.astype(float)
    total = c.sum()
    q0 = 0.0  # baseline-subtracted charges: the pedestal sits at 0; its left half is pure pedestal
    left = x < q0
    left_n = c[left].sum()
    s0 = math.sqrt(float((c[left] * (x[left] - q0) ** 2).sum() / left_n)) if left_n > 0 else 0.2
    s0 = min(max(s0, 0.02), 2.0)
    pedestal = min(max((2 * left_n + c[np.argmin(np.abs(x - q0))]) / total, 0.02), 0.995)
    mu = -math.log(pedestal)
    mean = float((c * x).sum() / total)
    q1 = min(max((mean - q0) / mu, 0.2), 20.0)
    start = [total, mu, q0, s0, q1, 0.35 * q1]
    return start + ([0.05, 1.0 / q1] if exponential else [])


def _peak_to_valley(p: np.ndarray, n_pe: int, exponential: bool) -> float | None:
    """Height of the 1-PE peak over the minimum between pedestal and 1-PE peak, from the fitted model."""
    q0, s0, q1 = p[2], p[3], p[4]
    if q0 + 2 * q1 <= q0 + 2 * s0:
        return None
    edges = np.linspace(q0 + 2 * s0, q0 + 2 * q1, 401)
    density = _full_components(p, edges, n_pe, exponential).sum(axis=0)
    i_valley = int(np.argmin(density[: int(0.5 * len(density)) + 1]))
    peak = float(density[i_valley:].max())
    valley = float(density[i_valley])
    return peak / valley if valley > 0 else None


def _chi2_ndf(expected: np.ndarray, counts: np.ndarray, n_par: int) -> float | None:
    use = expected >= 5
    ndf = int(use.sum()) - n_par
    if ndf <= 0:
        return None
    return float(np.sum((counts[use] - expected[use]) ** 2 / expected[use]) / ndf)


def _pe_terms(n_pe_max: int, mu: float) -> int:
    """At least n_pe_max terms, more when the occupancy is high enough that the Poisson tail matters."""
    n = n_pe_max
    while n < 40 and poisson.sf(n, 1.5 * mu) > 1e-5:
        n += 1
    return n


def _fit_full(hist: Histogram, n_pe_max: int, exponential: bool) -> SpeFitResult:
    edges, counts = hist.edges, hist.counts.astype(float)
    n_pe = _pe_terms(n_pe_max, _start_values(hist, n_pe_max, exponential)[1])

    def nll(p: np.ndarray) -> float:
        return _poisson_nll(_full_components(p, edges, n_pe, exponential).sum(axis=0), counts)

    start = _start_values(hist, n_pe, exponential)
    values, errors, converged = _minimize("full", nll, start)
    components = _full_components(values, edges, n_pe, exponential)
    total = components.sum(axis=0)
    names = ["pedestal"] + [f"{k} PE" for k in range(1, n_pe + 1)] + (["under-amplified"] if exponential else [])
    _, mu, q0, s0, q1, s1 = values[:6]
    return SpeFitResult(
        status="ok", reason="fit converged" if converged else "Minuit did not converge", model="full",
        gain=pc_to_gain(q1), gain_err=pc_to_gain(errors[4]), q0_pc=q0, sigma0_pc=s0, q1_pc=q1,
        q1_err_pc=errors[4], sigma1_pc=s1, spe_resolution=s1 / q1, mu=mu, mu_err=errors[1],
        peak_to_valley=_peak_to_valley(values, n_pe, exponential),
        chi2_ndf=_chi2_ndf(total, counts, len(values)), n_events=int(counts.sum()), converged=converged,
        curve=_curve(hist, total, dict(zip(names, components, strict=False))),
    )


def _fit_seed(hist: Histogram) -> SpeFitResult:
    lo, hi = SEED_RANGE_PC
    keep = (hist.edges[:-1] >= lo) & (hist.edges[1:] <= hi)
    idx = np.flatnonzero(keep)
    if len(idx) < 6:
        return SpeFitResult("failed", f"histogram has too few bins in {lo}..{hi} pC", "seed")
    edges = hist.edges[idx[0]: idx[-1] + 2]
    counts = hist.counts[idx].astype(float)

    def nll(p: np.ndarray) -> float:
        return _poisson_nll(_seed_components(p, edges).sum(axis=0), counts)

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
        sigma1_pc=values[3], spe_resolution=values[3] / values[2], chi2_ndf=_chi2_ndf(in_range, counts, 5),
        n_events=int(hist.counts.sum()), converged=converged,
        curve=_curve(hist, components.sum(axis=0), {"1 PE": components[0], "2 PE": components[1]}),
    )


def _curve(hist: Histogram, total: np.ndarray, components: dict[str, np.ndarray]) -> dict[str, Any]:
    def r(a: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in a]
    return {"x": r(hist.centres), "total": r(total), "components": {k: r(v) for k, v in components.items()}}


def fit_spe(hist: Histogram, model: str = "full", n_pe_max: int = 6, exponential: bool = False,
            min_events: int = 500) -> SpeFitResult:
    """Fit the SPE spectrum; never raises: failures come back as status 'failed' with the reason."""
    n_events = int(hist.counts.sum())
    if model not in ("full", "seed"):
        return SpeFitResult("failed", f"unknown SPE model {model!r} (full or seed)", model, n_events=n_events)
    if n_events < min_events:
        return SpeFitResult("too_few_events", f"{n_events} events in the histogram, need {min_events}",
                            model, n_events=n_events)
    try:
        return _fit_seed(hist) if model == "seed" else _fit_full(hist, n_pe_max, exponential)
    except Exception as exc:  # noqa: BLE001 - a fit must never stop the monitor; the point shows the reason instead
        return SpeFitResult("failed", f"{type(exc).__name__}: {exc}", model, n_events=n_events)
