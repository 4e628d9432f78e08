"""Transit time and transit-time spread: Gaussian core + late tail + flat background, binned, with zfit.

Signal = (1 - f) Gauss(mu, sigma) + f EMG(mu, sigma, tau): the direct photoelectrons and a late tail
(photoelectrons scattered inside the tube: the same Gaussian spread, then an exponential delay of mean tau).
A single exponentially modified Gaussian (the peer analyses' model) lets its exponential take part of the
Gaussian width when a few per cent of late photoelectrons sit on top of direct ones: its sigma read 9-11 % low
on the realistic stand. A late tail is late and a minority: tau >= `tail_tau_min` (several ns, at least twice the
core width) and f <= `MAX_LATE_FRACTION`. Free, an EMG with tau < sigma is a shifted Gaussian, and small
distortions of the core (the CFD's sample-phase bias) let the "tail" become the core: f 0.8-0.96, tau 0.3 ns,
the transit time 0.2-0.35 ns low. Expected counts per bin from analytic cumulative distributions (no bin-centre
bias); the binned Poisson likelihood is minimised with zfit's Minuit, errors from Hesse. The transit time is mu
(the mean time of the direct photoelectrons), the TTS sigma, the FWHM that of the whole signal; its error is
propagated through (tau, f) only when the tail is measured, else through sigma alone.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import log_ndtr, ndtr

from remote_monitor.analysis.binned_nll import minimize_nll, poisson_nll

os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
_PARAMS: list[Any] = []
_NAMES = ("n_signal", "n_background", "mu", "sigma", "tau", "late_fraction")
# Late pulses of the R12860 (photoelectrons scattered back from the first dynode) come ~10-60 ns after the direct
# ones, a few per cent of them. An exponential standing for them has a mean of several ns: at least 2 ns and twice
# the core's width, so that it is skewed, not a shifted Gaussian (tau << sigma) that can trade places with the
# core. Up to 20 ns, the half-range of the fit (or 4x the shortest). 30 % is far above any late-pulse fraction
# yet keeps the direct photoelectrons the majority.
MIN_TAIL_TAU_NS = 2.0
SINGLE_PE_OCCUPANCY = 0.2  # photoelectrons per event up to which an event's pulse is one photoelectron's: above
# it, a fifth or more of the lit events hold several, merged into one pulse (their spread, 1-2 ns, is far under the
# pulse width), which is timed nearer their mean (`multi_photoelectron_note`)
MAX_TAIL_TAU_NS = 20.0
MAX_LATE_FRACTION = 0.3
MAX_TTS_NS = 10.0  # the core's width's upper bound: a fit there found no peak in the +-20 ns it sees
MIN_SIGNAL_EVENTS = 50  # a laser peak holds at least this many events ...
MIN_SIGNAL_SIGMAS = 5.0  # ... and this many Poisson errors of the background under it (within 2 sigma)


@dataclass
class TimingFitResult:
    status: str  # ok | failed | too_few_events | no_peak
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


def signal_pdf(x: np.ndarray, mu: float, sigma: float, tau: float, late: float) -> np.ndarray:
    """Density of the signal: (1 - late) Gaussian + late EMG (stable for tau << sigma and far tails)."""
    z = (x - mu) / sigma
    gauss = np.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))
    emg = np.exp(-(x - mu) / tau + 0.5 * (sigma / tau) ** 2 + log_ndtr(z - sigma / tau)) / tau
    return (1.0 - late) * gauss + late * emg


def signal_fwhm(mu: float, sigma: float, tau: float, late: float = 1.0) -> float:
    """Full width at half maximum of the signal density: a fine grid, then the peak and the outermost
    half-height crossings refined to 1e-10 ns (smooth in the parameters: the FWHM error differentiates it; the
    grid alone made steps of its spacing, derivatives of 10 ns/ns and FWHM errors of 100s of ns)."""
    x = np.linspace(mu - 6 * sigma, mu + 6 * sigma + 12 * tau, 20001)
    pdf = signal_pdf(x, mu, sigma, tau, late)
    i, step = int(np.argmax(pdf)), x[1] - x[0]
    peak = minimize_scalar(lambda t: -float(signal_pdf(np.array(t), mu, sigma, tau, late)),
                           bounds=(x[i] - step, x[i] + step), method="bounded", options={"xatol": 1e-10})
    half = 0.5 * max(-float(peak.fun), float(pdf[i]))
    above = np.flatnonzero(pdf >= half)

    def excess(t: float) -> float:
        return float(signal_pdf(np.array(t), mu, sigma, tau, late)) - half

    left = brentq(excess, x[above[0] - 1], float(peak.x), xtol=1e-10) if above[0] > 0 else float(x[0])
    last = len(x) - 1
    right = brentq(excess, float(peak.x), x[above[-1] + 1], xtol=1e-10) if above[-1] < last else float(x[-1])
    return float(right - left)


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
    """Gaussian core + late tail + flat fit of PMT-minus-trigger times (ns); range: the median +- 20 ns."""
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
    width = max(float(np.std(core)), 0.2)
    tau_min = tail_tau_min(width)
    start = np.array([0.95 * n, 0.05 * n, centre, width, max(5.0, 2 * tau_min), 0.05])
    tau_max = max(MAX_TAIL_TAU_NS, 4 * tau_min)
    bounds = [(0.0, 2 * n + 10), (0.0, 2 * n + 10), (lo, hi), (0.05, MAX_TTS_NS), (tau_min, tau_max),
              (0.0, MAX_LATE_FRACTION)]
    return _minimise(counts, edges, start, bounds, len(times))


def multi_photoelectron_note(occupancy: float | None) -> str | None:
    """What the timing of a point with more than SINGLE_PE_OCCUPANCY photoelectrons per event does not measure
    (None up to it): several photoelectrons of one event merge into one pulse (their spread, 1-2 ns, is far under
    the pulse width), which is timed nearer their mean, so the spread reads narrower than a single
    photoelectron's TTS. An independent stand (TTS 1.3 ns, 0.3 mV noise) read 1.32-1.44 ns at 0.03-0.1 PE, 1.24-
    1.32 at 0.5, 1.18-1.21 at 1 and 0.98-1.01 ns at 2.5 PE, its transit time 0.2 ns early."""
    if occupancy is None or not occupancy > SINGLE_PE_OCCUPANCY:
        return None
    several = 1.0 - occupancy * math.exp(-occupancy) / -math.expm1(-occupancy)  # of the events with light
    return (f"{occupancy:.2f} PE per event: {100 * several:.0f} % of the lit events hold several photoelectrons, "
            "timed as one merged pulse. The TTS reads narrower than one photoelectron's (about -7 % at 0.5 PE, "
            f"-25 % at 2.5 PE); single-photoelectron timing needs at most {SINGLE_PE_OCCUPANCY} PE.")


def no_peak(values: np.ndarray, edges: np.ndarray) -> str | None:
    """Why the fitted signal is no laser peak, or None: fewer than MIN_SIGNAL_EVENTS events, fewer than
    MIN_SIGNAL_SIGMAS Poisson errors of the flat background within 2 sigma of it, or a width at its bound.
    Noise crossings and dark pulses of a point without light made 'peaks' of 18 events over 5900 (TTS 0.08 ns)
    and, at 2 mV noise, of 10 ns (an independent stand's laser-off points)."""
    n_sig, n_bkg, _, sigma = values[:4]
    under = n_bkg * min(4.0 * sigma / (edges[-1] - edges[0]), 1.0)
    if n_sig < MIN_SIGNAL_EVENTS or n_sig < MIN_SIGNAL_SIGMAS * math.sqrt(max(under, 1.0)):
        return f"no laser peak in the PMT pulse times: {n_sig:.0f} events over a background of {under:.0f}"
    if sigma >= 0.99 * MAX_TTS_NS:
        return f"no laser peak in the PMT pulse times: the fitted width reached its {MAX_TTS_NS:.0f} ns bound"
    return None


def tail_tau_min(core_width_ns: float) -> float:
    """Shortest mean delay of a late tail: MIN_TAIL_TAU_NS, and twice the core's width (its rough sigma)."""
    return max(MIN_TAIL_TAU_NS, 2.0 * core_width_ns)


def tail_measured(values: np.ndarray, errors: np.ndarray, bounds: list[tuple[float, float]]) -> bool:
    """Whether the fit determined the late tail: f over twice its error and (tau, f) off their bounds."""
    late, err = values[5], errors[5]
    off_bounds = all(lo + 1e-3 * (hi - lo) < values[i] < hi - 1e-3 * (hi - lo) for i in (4, 5)
                     for lo, hi in [bounds[i]])
    return bool(off_bounds and np.isfinite(err) and 0 < err < 0.5 * late)


def fwhm_error(values: np.ndarray, cov: np.ndarray, bounds: list[tuple[float, float]],
               through: list[int]) -> float:
    """FWHM error, propagating the covariance of the parameters `through` (indices) by central differences."""
    jac = np.zeros(len(values))
    for i in through:
        step = max(1e-3 * float(np.sqrt(max(cov[i, i], 0.0))), 1e-6 * max(abs(values[i]), 1e-2))
        up, down = values.copy(), values.copy()
        up[i], down[i] = min(values[i] + step, bounds[i][1]), max(values[i] - step, bounds[i][0])
        jac[i] = (signal_fwhm(*up[2:]) - signal_fwhm(*down[2:])) / (up[i] - down[i])
    return float(np.sqrt(max(jac @ cov @ jac, 0.0)))


def _core_only(nll: Any, values: np.ndarray,
               bounds: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Refit with no late tail (f = 0, tau held): a Gaussian core + flat, its covariance padded to all six."""
    tau = float(values[4])
    start = np.concatenate([values[:4], [tau, 0.0]])
    params = _params(start, bounds)[:4]
    core, cov4, valid = minimize_nll(lambda v: nll(np.concatenate([v, [tau, 0.0]])), params)
    cov = np.zeros((6, 6))
    cov[:4, :4] = cov4
    return np.concatenate([core, [tau, 0.0]]), cov, valid


def _minimise(counts: np.ndarray, edges: np.ndarray, start: np.ndarray, bounds: list[tuple[float, float]],
              n_events: int) -> TimingFitResult:
    nll = _nll_factory(counts, edges)
    values, cov, fit_valid = minimize_nll(nll, _params(start, bounds))
    errors = np.sqrt(np.clip(np.diag(cov), 0, None))
    measured = tail_measured(values, errors, bounds)
    if not fit_valid and not measured:  # f -> 0 leaves tau free and Minuit unhappy: the core alone is the fit
        values, cov, fit_valid = _core_only(nll, values, bounds)
        errors = np.sqrt(np.clip(np.diag(cov), 0, None))
    histogram = {"edges": edges.round(4).tolist(), "counts": counts.astype(int).tolist()}
    absent = no_peak(values, edges)
    if absent:
        return TimingFitResult("no_peak", absent, n_signal=float(values[0]), n_background=float(values[1]),
                               n_events=n_events, converged=fit_valid, histogram=histogram)
    n_sig, n_bkg, mu, sigma, tau, late = values
    fwhm = signal_fwhm(mu, sigma, tau, late)
    # a tail not measured (f ~ 0: tau free, their covariance meaningless) adds no FWHM error: sigma's alone
    fwhm_err = fwhm_error(values, cov, bounds, [3, 4, 5] if measured else [3])
    # a tail too small to measure leaves tau free: the core (mu, sigma) stands
    core_ok = bool(np.all(np.isfinite(errors[2:4])) and np.all(errors[2:4] > 0))
    valid = fit_valid or (not measured and late < 0.005 and core_ok)
    centres = 0.5 * (edges[1:] + edges[:-1])
    expected = expected_counts(values, edges)
    return TimingFitResult(
        status="ok" if valid else "failed", reason="" if valid else "Minuit did not converge",
        transit_time_ns=float(mu), transit_time_err_ns=float(errors[2]),
        transit_time_peak_ns=float(centres[np.argmax(expected)]),
        tts_sigma_ns=float(sigma), tts_sigma_err_ns=float(errors[3]),
        tts_fwhm_ns=fwhm, tts_fwhm_err_ns=fwhm_err, tau_ns=float(tau) if measured else None,
        late_fraction=float(late), n_signal=float(n_sig), n_background=float(n_bkg), n_events=n_events,
        converged=fit_valid,
        histogram=histogram, curve={"x": centres.round(4).tolist(), "y": expected.round(3).tolist()},
    )
