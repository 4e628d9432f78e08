"""Transit time and transit-time spread: exponentially modified Gaussian + flat background, binned, with zfit.

The model's expected count per bin uses the analytic EMG cumulative distribution (no bin-centre bias); the
binned Poisson likelihood is minimised with zfit's Minuit and errors come from Hesse. The transit time is the
mean of the fitted EMG (mu + tau: the mean time of the direct photoelectrons, whose sampled CFD times are
slightly skewed), the peak its Gaussian mean, the TTS its Gaussian sigma; the FWHM is that of the EMG.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import log_ndtr, ndtr

from remote_monitor.analysis.binned_nll import central_gradient, poisson_nll

os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
_PARAMS: list[Any] = []
_NAMES = ("n_signal", "n_background", "mu", "sigma", "tau")


@dataclass
class TimingFitResult:
    status: str  # ok | failed | too_few_events
    reason: str = ""
    transit_time_ns: float | None = None
    transit_time_err_ns: float | None = None
    transit_time_peak_ns: float | None = None
    tts_sigma_ns: float | None = None
    tts_sigma_err_ns: float | None = None
    tts_fwhm_ns: float | None = None
    tts_fwhm_err_ns: float | None = None
    tau_ns: float | None = None
    n_signal: float | None = None
    n_background: float | None = None
    n_events: int = 0
    converged: bool = False
    histogram: dict[str, Any] | None = None
    curve: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: non-finite floats become None."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def emg_cdf(x: np.ndarray, mu: float, sigma: float, tau: float) -> np.ndarray:
    """Cumulative distribution of a Gaussian (mu, sigma) convolved with an exponential of mean tau (stable)."""
    z = (x - mu) / sigma
    lam = 1.0 / tau
    return ndtr(z) - np.exp(np.minimum(-lam * (x - mu) + 0.5 * (lam * sigma) ** 2 + log_ndtr(z - lam * sigma), 0.0))


def expected_counts(p: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Expected events per bin: n_signal EMG bin integrals + n_background flat over the range."""
    n_sig, n_bkg, mu, sigma, tau = p
    width = np.diff(edges)
    return n_sig * np.diff(emg_cdf(edges, mu, sigma, tau)) + n_bkg * width / (edges[-1] - edges[0])


def emg_fwhm(mu: float, sigma: float, tau: float) -> float:
    """Full width at half maximum of the EMG density (numerically, on a fine grid)."""
    x = np.linspace(mu - 6 * sigma, mu + 6 * sigma + 12 * tau, 20001)
    pdf = np.gradient(emg_cdf(x, mu, sigma, tau), x)
    above = x[pdf >= 0.5 * pdf.max()]
    return float(above[-1] - above[0])


def _params(start: np.ndarray, bounds: list[tuple[float, float]]) -> list[Any]:
    import zfit

    if not _PARAMS:
        _PARAMS.extend(zfit.Parameter(f"timing_{n}", 1.0, lower=-1e12, upper=1e12) for n in _NAMES)
    for param, value, (lo, hi) in zip(_PARAMS, start, bounds, strict=True):
        param.lower, param.upper = lo, hi
        param.set_value(min(max(value, lo + 1e-9 * (hi - lo)), hi - 1e-9 * (hi - lo)))
    return _PARAMS


def _nll_factory(counts: np.ndarray, edges: np.ndarray) -> Any:
    def nll(values: Any) -> float:
        return poisson_nll(expected_counts(np.asarray(values, dtype=float), edges), counts)
    return nll


def fit_timing(times_ns: np.ndarray, range_ns: tuple[float, float] | None = None, bin_ns: float = 0.25,
               min_events: int = 200) -> TimingFitResult:
    """EMG + flat fit of PMT-minus-trigger times (ns); range defaults to the median +- 20 ns."""
    times = np.asarray(times_ns, dtype=float)
    times = times[np.isfinite(times)]
    if len(times) < min_events:
        return TimingFitResult("too_few_events", f"{len(times)} timed pulses < {min_events}", n_events=len(times))
    centre = float(np.median(times))
    lo, hi = range_ns if range_ns is not None else (centre - 20.0, centre + 20.0)
    edges = np.arange(lo, hi + 0.5 * bin_ns, bin_ns)
    counts = np.histogram(times, edges)[0].astype(float)
    n = counts.sum()
    core = times[(times > centre - 5) & (times < centre + 5)]
    start = np.array([0.95 * n, 0.05 * n, centre, max(float(np.std(core)), 0.2), 0.5])
    bounds = [(0.0, 2 * n + 10), (0.0, 2 * n + 10), (lo, hi), (0.05, 10.0), (0.02, 20.0)]
    return _minimise(counts, edges, start, bounds, len(times))


def _minimise(counts: np.ndarray, edges: np.ndarray, start: np.ndarray, bounds: list[tuple[float, float]],
              n_events: int) -> TimingFitResult:
    import zfit

    nll = _nll_factory(counts, edges)
    params = _params(start, bounds)
    # numpy likelihood: no TF graph, no autograd, only for this fit (set globally, it would make every later
    # SPE fit in the process run eagerly with numerical gradients, 100x slower)
    with warnings.catch_warnings(), zfit.run.set_graph_mode(False), zfit.run.set_autograd_mode(False):
        warnings.simplefilter("ignore")
        loss = zfit.loss.SimpleLoss(nll, params=params, errordef=0.5, gradient=central_gradient(nll))
        result = zfit.minimize.Minuit(gradient="zfit", tol=0.001, mode=1).minimize(loss)
        cov = np.asarray(result.covariance(params=params, method="minuit_hesse"))
    values = np.array([float(result.params[p]["value"]) for p in params])
    errors = np.sqrt(np.clip(np.diag(cov), 0, None))
    n_sig, n_bkg, mu, sigma, tau = values
    fwhm = emg_fwhm(mu, sigma, tau)
    jac = np.zeros(len(values))  # FWHM error by propagating the covariance of (mu, sigma, tau)
    for i in (3, 4):
        step = 1e-3 * max(abs(values[i]), 1e-2)
        v = values.copy()
        v[i] += step
        jac[i] = (emg_fwhm(*v[2:]) - fwhm) / step
    centres = 0.5 * (edges[1:] + edges[:-1])
    return TimingFitResult(
        status="ok" if result.valid else "failed", reason="" if result.valid else "Minuit did not converge",
        transit_time_ns=float(mu + tau), transit_time_err_ns=float(np.sqrt(max(cov[2, 2] + cov[4, 4] + 2 * cov[2, 4], 0))),
        transit_time_peak_ns=float(mu), tts_sigma_ns=float(sigma), tts_sigma_err_ns=float(errors[3]),
        tts_fwhm_ns=fwhm, tts_fwhm_err_ns=float(np.sqrt(max(jac @ cov @ jac, 0.0))), tau_ns=float(tau),
        n_signal=float(n_sig), n_background=float(n_bkg), n_events=n_events, converged=bool(result.valid),
        histogram={"edges": edges.round(4).tolist(), "counts": counts.astype(int).tolist()},
        curve={"x": centres.round(4).tolist(), "y": expected_counts(values, edges).round(3).tolist()},
    )
