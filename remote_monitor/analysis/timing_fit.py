"""Transit time and transit-time spread: Gaussian core + late tail + flat background, binned, with zfit.

Signal = (1 - f) Gauss(mu, sigma) + f EMG(mu, sigma, tau): the direct photoelectrons and a late tail
(photoelectrons scattered inside the tube: the same Gaussian spread, then an exponential delay of mean tau).
A single exponentially modified Gaussian (the peer analyses' model) lets its exponential take part of the
Gaussian width when a few per cent of late photoelectrons sit on top of direct ones: its sigma read 9-11 % low
on the realistic stand. f = 1 is that EMG. Expected counts per bin from analytic cumulative distributions (no
bin-centre bias); the binned Poisson likelihood is minimised with zfit's Minuit, errors from Hesse. The transit
time is mu (the mean time of the direct photoelectrons), the TTS sigma, the FWHM that of the whole signal.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import log_ndtr, ndtr

from remote_monitor.analysis.binned_nll import minimize_nll, poisson_nll

os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
_PARAMS: list[Any] = []
_NAMES = ("n_signal", "n_background", "mu", "sigma", "tau", "late_fraction")


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
    late_fraction: float | None = None
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


def signal_cdf(x: np.ndarray, mu: float, sigma: float, tau: float, late: float) -> np.ndarray:
    """Cumulative distribution of the signal: (1 - late) Gaussian + late EMG, both of mean time mu, width sigma."""
    return (1.0 - late) * ndtr((x - mu) / sigma) + late * emg_cdf(x, mu, sigma, tau)


def expected_counts(p: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Expected events per bin: n_signal signal bin integrals + n_background flat over the range."""
    n_sig, n_bkg, mu, sigma, tau, late = p
    width = np.diff(edges)
    return n_sig * np.diff(signal_cdf(edges, mu, sigma, tau, late)) + n_bkg * width / (edges[-1] - edges[0])


def signal_fwhm(mu: float, sigma: float, tau: float, late: float = 1.0) -> float:
    """Full width at half maximum of the signal density (numerically, on a fine grid)."""
    x = np.linspace(mu - 6 * sigma, mu + 6 * sigma + 12 * tau, 20001)
    pdf = np.gradient(signal_cdf(x, mu, sigma, tau, late), x)
    above = x[pdf >= 0.5 * pdf.max()]
    return float(above[-1] - above[0])


def emg_fwhm(mu: float, sigma: float, tau: float) -> float:
    """Full width at half maximum of the EMG density (the signal with late fraction 1)."""
    return signal_fwhm(mu, sigma, tau, 1.0)


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
    start = np.array([0.95 * n, 0.05 * n, centre, max(float(np.std(core)), 0.2), 2.0, 0.1])
    bounds = [(0.0, 2 * n + 10), (0.0, 2 * n + 10), (lo, hi), (0.05, 10.0), (0.1, 20.0), (0.0, 1.0)]
    return _minimise(counts, edges, start, bounds, len(times))


def _minimise(counts: np.ndarray, edges: np.ndarray, start: np.ndarray, bounds: list[tuple[float, float]],
              n_events: int) -> TimingFitResult:
    values, cov, fit_valid = minimize_nll(_nll_factory(counts, edges), _params(start, bounds))
    errors = np.sqrt(np.clip(np.diag(cov), 0, None))
    n_sig, n_bkg, mu, sigma, tau, late = values
    fwhm = signal_fwhm(mu, sigma, tau, late)
    jac = np.zeros(len(values))  # FWHM error by propagating the covariance of (sigma, tau, late)
    for i in (3, 4, 5):
        step = 1e-3 * max(abs(values[i]), 1e-2)
        v = values.copy()
        v[i] = v[i] + step if v[i] + step <= bounds[i][1] else v[i] - step
        jac[i] = (signal_fwhm(*v[2:]) - fwhm) / (v[i] - values[i])
    # a tail too small to measure leaves tau free: the core (mu, sigma) stands
    valid = fit_valid or (late < 0.005 and bool(np.isfinite(errors[3]) and errors[3] > 0))
    centres = 0.5 * (edges[1:] + edges[:-1])
    expected = expected_counts(values, edges)
    return TimingFitResult(
        status="ok" if valid else "failed", reason="" if valid else "Minuit did not converge",
        transit_time_ns=float(mu), transit_time_err_ns=float(errors[2]),
        transit_time_peak_ns=float(centres[np.argmax(expected)]),
        tts_sigma_ns=float(sigma), tts_sigma_err_ns=float(errors[3]),
        tts_fwhm_ns=fwhm, tts_fwhm_err_ns=float(np.sqrt(max(jac @ cov @ jac, 0.0))), tau_ns=float(tau),
        late_fraction=float(late), n_signal=float(n_sig), n_background=float(n_bkg), n_events=n_events,
        converged=fit_valid,
        histogram={"edges": edges.round(4).tolist(), "counts": counts.astype(int).tolist()},
        curve={"x": centres.round(4).tolist(), "y": expected.round(3).tolist()},
    )
