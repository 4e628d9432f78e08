"""The PMT charge response as a binned zfit PDF (analytic bin integrals, one vectorised expression).

Response of one photoelectron (charge above the pedestal):
    (1 - w) Gamma(mean Q1, relative width r1)  +  w [(1 - b) Gamma(mean u Q1, shape k_u)  +  b Uniform(0, Q1)]
the main peak has mean Q1 (the gain, Q1 / e) and relative width r1 (Gamma = Polya); the under-amplified part
(photoelectrons that miss the first dynode, backscattered ones) is a Gamma of mean u Q1 and shape k_u (k_u = 1:
an exponential), or (b = 1) flat from 0 up to the peak, the two shapes the issue names. The fit uses b = 0 and
takes b = 1 as the second shape for the systematic (`spe_fit`): a free b traded against Q1 (tried 2026-12-01).
Terms with one under-amplified photoelectron are exact (the Gamma part as the Gamma of the same mean and variance
as main peak + Gamma, the flat part convolved with the main peak's n - 1 photoelectrons); the other n-fold
convolutions are Gammas of the same mean and variance (exact for the main peak alone: shape n k). Analytic bin
integrals with tf.math.igamma. Poisson weights in the occupancy mu, binomial weights in w.
The pedestal is a Gaussian (q0, sigma0) integrated over each bin; the signal is convolved with the same
Gaussian noise on the bin grid (a discrete kernel whose width is corrected for the bin width).
The likelihood carries a Gaussian constraint on w from what is known of the R12860 (UNDER_PRIOR).

`ResponseShape` holds the bin grid and the term list; `response_counts` is the same formula in numpy, for
components, curves and peak-to-valley after the fit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammainc, gammaln, ndtr

os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")

PARAM_NAMES = ("mu", "q0", "sigma0", "q1", "r1", "w", "u", "k_u", "b")
BOUNDS: dict[str, tuple[float, float]] = {
    "mu": (1e-4, 8.0), "q0": (-3.0, 3.0), "sigma0": (5e-3, 1.0), "q1": (0.05, 60.0), "r1": (0.12, 0.8),
    "w": (0.0, 0.3), "u": (0.03, 0.6), "k_u": (0.5, 4.0), "b": (0.0, 1.0),
}
# The under-amplified part: at most 30 % of the photoelectrons (R12860: 5-20 % plus some backscatter), mean at
# most 0.6 of the peak. With up to 40 % allowed, low-gain or low-occupancy fits ended with w at 0.4 and k_u at
# 0.5 (a spike at zero charge that trades against the pedestal and the occupancy), the gain 2-3 % low with errors
# of 0.4 % (repeated simulations of the benchmark's classes, 2026-11-30).
# What is known of the R12860 before the fit: 5-20 % of its photoelectrons are under-amplified. A Gaussian
# constraint on w (mean 0.125, sigma 0.05: 5-20 % is +-1.5 sigma) is part of the likelihood, so that where the
# spectrum cannot tell the under-amplified part from the pedestal (1 mV noise, low gain) the fit does not put
# it at w -> 0 or at the bound, and its Hesse errors include that prior knowledge. Where the spectrum does tell
# (0.3 mV), the data outweigh it. Refits of the same 30 benchmark spectra (2026-12-01): 21 -> 23 classes within
# 1 % of the true gain, 0.3 mV 14 -> 15 of 15; spectra simulated with 5 % and 20 % under-amplified: mean |bias|
# 0.96 -> 0.66 %.
UNDER_PRIOR = (0.125, 0.05)
TERM_TIERS = (5, 8, 12, 18, 26)
MIGRAD_TOL = 1e-5  # zfit's Minuit stops at an estimated distance to the minimum (EDM) below this. At 0.01 (before
# 2026-12-02) Migrad with strategy 0 stopped early, the continuation (`spe_fit._converged`) did not always recover,
# and a fit could end in a local minimum: on the benchmark's timing spectrum (100k events, 0.1 PE, 1e7, 0.3 mV) at
# 0.58 NLL above the minimum with Q1 0.8 % low, in 4.0 s; at 1e-5 at the minimum (the same as iminuit's on zfit's
# loss with an EDM of 1e-6) in 2.4 s (0.001: 3.5 s, 1e-4: 3.9 s, both at the minimum).
NEAR_TOL = 0.01  # ... except for a refit that starts at a known nearby minimum with step sizes from its errors (a
# growing point, `spe_fit._refined`): Migrad's first estimate of the covariance is then good and its EDM reliable
# (Q1 within 0.03 % of a full fit; at MIGRAD_TOL that refit took 1.2 s instead of 0.8 s, 2026-12-02)


def n_pe_terms(mu: float) -> int:
    """Highest n-PE term needed for occupancy mu (Poisson tail below 1e-6), from fixed tiers (few graphs)."""
    from scipy.stats import poisson

    for n in TERM_TIERS:
        if poisson.sf(n, 1.3 * mu + 0.05) < 1e-6:
            return n
    return TERM_TIERS[-1]


@dataclass(frozen=True)
class ResponseShape:
    """Bin grid and the (n, j) term list of a model: n photoelectrons of which j under-amplified."""

    edges: np.ndarray
    n_max: int

    @property
    def width(self) -> float:
        return float(self.edges[1] - self.edges[0])

    @property
    def terms(self) -> tuple[np.ndarray, np.ndarray]:
        n = np.concatenate([np.full(m + 1, m) for m in range(1, self.n_max + 1)]).astype(float)
        j = np.concatenate([np.arange(m + 1) for m in range(1, self.n_max + 1)]).astype(float)
        return n, j

    @property
    def log_coeff(self) -> np.ndarray:
        n, j = self.terms
        return gammaln(n + 1) - gammaln(j + 1) - gammaln(n - j + 1) - gammaln(n + 1)

    def kernel_half(self) -> int:
        """Half length in bins of the noise kernel (covers 6 sigma0 at the upper bound)."""
        return max(3, min(len(self.edges) - 2, math.ceil(6 * BOUNDS["sigma0"][1] / self.width)))


def term_weights(p: dict[str, float], shape: ResponseShape) -> np.ndarray:
    """Weight of every (n, j) term: Poisson(n; mu) * Binomial(j; n, w) (numpy)."""
    n, j = shape.terms
    mu, w = p["mu"], min(max(p["w"], 1e-12), 1 - 1e-12)
    log_w = -mu + n * math.log(mu) + shape.log_coeff + j * math.log(w) + (n - j) * math.log(1 - w)
    return np.exp(log_w)


def under_moments(p: dict[str, Any]) -> tuple[Any, Any]:
    """Mean and variance of one under-amplified photoelectron's charge: Gamma (1 - b) and shelf 0..Q1 (b)
    (floats or TF tensors: the fit's PDF uses it too)."""
    q1, uq, b = p["q1"], p["u"] * p["q1"], p["b"]
    mean = (1 - b) * uq + b * q1 / 2
    second = (1 - b) * uq**2 * (1 + 1 / p["k_u"]) + b * q1**2 / 3
    return mean, second - mean**2


def _shelf_cdf(n: np.ndarray, q1: float, r1: float, above: np.ndarray) -> np.ndarray:
    """CDF (rows: n, columns: charges above the pedestal) of a flat shelf on 0..Q1 plus n - 1 main-peak
    photoelectrons (a Gamma of shape (n - 1) / r1^2, scale r1^2 Q1): (I(x) - I(x - Q1)) / Q1, where
    I(y) = y P(A, y / scale) - A scale P(A + 1, y / scale) is the integral of the Gamma CDF (numpy)."""
    scale, a = r1**2 * q1, np.maximum(n - 1, 1)[:, None] / r1**2

    def integral(y: np.ndarray) -> np.ndarray:
        y = np.clip(y, 0.0, None)
        return y * gammainc(a, y / scale) - a * scale * gammainc(a + 1, y / scale)

    smeared = (integral(above[None, :]) - integral(above[None, :] - q1)) / q1
    return np.where((n == 1)[:, None], np.clip(above / q1, 0.0, 1.0)[None, :], smeared)


def term_bins(p: dict[str, float], shape: ResponseShape) -> np.ndarray:
    """Noise-free bin probabilities of every (n, j) term, rows = terms (numpy). Terms with one under-amplified
    photoelectron (j = 1) are the mixture exactly: its Gamma part as the Gamma of the same mean and variance as
    main peak + Gamma, its shelf convolved with the main peak's n - 1 photoelectrons; j > 1 terms (weight
    ~ (w mu)^2) as the Gamma of the same mean and variance."""
    n, j = shape.terms
    q1, uq, k_u, r1, b = p["q1"], p["u"] * p["q1"], p["k_u"], p["r1"], p["b"]
    under_mean, under_var = under_moments(p)
    mean = (n - j) * q1 + j * under_mean
    var = (n - j) * (r1 * q1) ** 2 + j * under_var
    a, scale = mean**2 / var, var / mean
    above = shape.edges - p["q0"]
    cdf = gammainc(a[:, None], np.clip(above[None, :] / scale[:, None], 0.0, None))
    one = j == 1
    mean_g = (n[one] - 1) * q1 + uq
    var_g = (n[one] - 1) * (r1 * q1) ** 2 + uq**2 / k_u
    gamma = gammainc((mean_g**2 / var_g)[:, None], np.clip(above[None, :] * (mean_g / var_g)[:, None], 0.0, None))
    cdf[one] = (1 - b) * gamma + b * _shelf_cdf(n[one], q1, r1, above)
    return np.diff(cdf, axis=1)


def _noise_kernel(p: dict[str, float], shape: ResponseShape) -> np.ndarray:
    h, half = shape.width, shape.kernel_half()
    sigma = math.sqrt(max(p["sigma0"] ** 2 - h * h / 12.0, (0.05 * h) ** 2))
    m = np.arange(-half, half + 1)
    return ndtr((m + 0.5) * h / sigma) - ndtr((m - 0.5) * h / sigma)


def response_counts(p: dict[str, float], shape: ResponseShape, total: float) -> dict[str, np.ndarray]:
    """Expected counts of the fitted model: pedestal, n PE (main peak and mixed), under-amplified (numpy)."""
    n, j = shape.terms
    rows = term_weights(p, shape)[:, None] * term_bins(p, shape)
    kernel = _noise_kernel(p, shape)
    half = shape.kernel_half()
    smear = np.array([np.convolve(r, kernel)[half:half + len(r)] for r in rows])
    pedestal = math.exp(-p["mu"]) * np.diff(ndtr((shape.edges - p["q0"]) / p["sigma0"]))
    parts = {"pedestal": pedestal}
    for m in range(1, shape.n_max + 1):
        parts[f"{m} PE"] = smear[(n == m) & (j == 0)].sum(axis=0)
    parts["under-amplified"] = smear[j > 0].sum(axis=0)
    norm = float(sum(v.sum() for v in parts.values()))
    return {name: total * v / norm for name, v in parts.items()}


def _zfit_pdf_class() -> type:
    """The zfit PDF class, defined on first use (zfit is imported lazily: it takes seconds)."""
    import tensorflow as tf  # type: ignore[import-untyped]
    import zfit
    import zfit.z.numpy as znp

    def _ndtr(x: Any) -> Any:
        return 0.5 * tf.math.erfc(-x / math.sqrt(2.0))

    class SpeResponsePDF(zfit.pdf.BaseBinnedPDF):
        """Pedestal + Poisson sum of Gamma n-PE terms with under-amplified photoelectrons, noise-smeared."""

        def __init__(self, obs: Any, params: dict[str, Any], shape: ResponseShape, extended: Any) -> None:
            self._shape = shape
            n, j = shape.terms
            self._n, self._j = tf.constant(n), tf.constant(j)
            self._one_rows = tf.constant(np.flatnonzero(j == 1)[:, None])
            self._one_n = tf.constant(n[j == 1])
            self._log_coeff = tf.constant(shape.log_coeff)
            self._edges = tf.constant(shape.edges)
            self._half = shape.kernel_half()
            super().__init__(obs=obs, params=params, extended=extended, name="SpeResponsePDF")

        def _one_under_cdf(self, p: dict[str, Any], above: Any) -> Any:
            """CDF of the terms with one under-amplified photoelectron (as `term_bins`)."""
            q1, uq, r1, b = p["q1"], p["u"] * p["q1"], p["r1"], p["b"]
            rest = self._one_n - 1
            mean_g = rest * q1 + uq
            var_g = rest * (r1 * q1) ** 2 + uq**2 / p["k_u"]
            gamma = tf.math.igamma((mean_g**2 / var_g)[:, None],
                                   tf.maximum(above[None, :] * (mean_g / var_g)[:, None], 0.0))
            scale, a = r1**2 * q1, tf.maximum(rest, 1.0)[:, None] / r1**2

            def integral(y: Any) -> Any:
                y = tf.maximum(y, 0.0)
                return y * tf.math.igamma(a, y / scale) - a * scale * tf.math.igamma(a + 1, y / scale)

            smeared = (integral(above[None, :]) - integral(above[None, :] - q1)) / q1
            shelf = tf.where((rest == 0)[:, None], tf.clip_by_value(above / q1, 0.0, 1.0)[None, :], smeared)
            return (1 - b) * gamma + b * shelf

        def _rel_counts(self, x: Any, norm: Any = None, *, params: Any = None) -> Any:  # noqa: ARG002
            p = {name: znp.asarray(self.params[name].value()) for name in PARAM_NAMES}
            h = self._shape.width
            under_mean, under_var = under_moments(p)
            mean = (self._n - self._j) * p["q1"] + self._j * under_mean
            var = (self._n - self._j) * (p["r1"] * p["q1"]) ** 2 + self._j * under_var
            a, scale = mean**2 / var, var / mean
            above = self._edges - p["q0"]
            cdf = tf.math.igamma(a[:, None], tf.maximum(above[None, :] / scale[:, None], 0.0))
            cdf = tf.tensor_scatter_nd_update(cdf, self._one_rows, self._one_under_cdf(p, above))
            w = tf.clip_by_value(p["w"], 1e-12, 1 - 1e-12)
            log_weight = (-p["mu"] + self._n * tf.math.log(p["mu"]) + self._log_coeff
                          + self._j * tf.math.log(w) + (self._n - self._j) * tf.math.log(1 - w))
            signal = tf.linalg.matvec(tf.transpose(cdf[:, 1:] - cdf[:, :-1]), tf.exp(log_weight))
            sigma = tf.sqrt(tf.maximum(p["sigma0"] ** 2 - h * h / 12.0, (0.05 * h) ** 2))
            m = tf.range(-self._half, self._half + 1, dtype=tf.float64)
            kernel = _ndtr((m + 0.5) * h / sigma) - _ndtr((m - 0.5) * h / sigma)
            smeared = tf.nn.conv1d(signal[None, :, None], kernel[:, None, None], stride=1, padding="SAME")[0, :, 0]
            pedestal = tf.exp(-p["mu"]) * (_ndtr((self._edges[1:] - p["q0"]) / p["sigma0"])
                                           - _ndtr((self._edges[:-1] - p["q0"]) / p["sigma0"]))
            total = pedestal + smeared
            return total / znp.sum(total)

    return SpeResponsePDF


@dataclass
class BuiltModel:
    """A zfit model ready to fit histograms with the same bins: PDF, parameters, yield, and one loss whose
    data are a TF variable (`counts`), so that a new histogram is a variable update, not a new graph."""

    pdf: Any
    params: dict[str, Any]
    yield_: Any
    space: Any
    shape: ResponseShape
    minimizer: Any
    near_minimizer: Any  # for a start at a known nearby minimum (NEAR_TOL)
    counts: Any
    loss: Any


def _live_data(space: Any, counts: Any) -> Any:
    """zfit BinnedData whose values are read from the TF variable `counts` each time the loss is evaluated."""
    import zfit
    from zfit._data.binneddatav1 import BinnedHolder

    class LiveHolder(BinnedHolder):
        def __init__(self) -> None:
            self.space, self.variances = space, None

        @property
        def values(self) -> Any:
            return counts.read_value()

        def with_obs(self, obs: Any) -> Any:  # noqa: ARG002 - one observable: nothing to reorder
            return self

    data = zfit.data.BinnedData.from_tensor(space, counts.read_value())
    data.holder = LiveHolder()
    return data


_MODELS: dict[tuple[Any, ...], BuiltModel] = {}


def model_cache() -> dict[tuple[Any, ...], BuiltModel]:
    """The models built in this process (the worker warm-up fills it)."""
    return _MODELS


def get_model(edges: np.ndarray, n_max: int) -> BuiltModel:
    """The model for these bins and terms, built once per process and reused (parameters reset per fit)."""
    key = (len(edges), round(float(edges[0]), 9), round(float(edges[-1]), 9), n_max)
    if key in _MODELS:
        return _MODELS[key]
    import zfit

    tag = f"{len(_MODELS)}"
    params = {name: zfit.Parameter(f"spe_{name}_{tag}", 0.5 * sum(BOUNDS[name]), lower=BOUNDS[name][0],
                                   upper=BOUNDS[name][1]) for name in PARAM_NAMES}
    yield_ = zfit.Parameter(f"spe_yield_{tag}", 1000.0, lower=0.0, upper=1e10)
    binning = zfit.binned.VariableBinning(np.asarray(edges, dtype=float), name="charge")
    space = zfit.Space("charge", binning=binning)
    shape = ResponseShape(np.asarray(edges, dtype=float), n_max)
    yield_.floating = False  # equals the histogram total at the minimum (the shape is normalised)
    pdf = _zfit_pdf_class()(space, params, shape, extended=yield_)
    minimizer = zfit.minimize.Minuit(gradient="zfit", tol=MIGRAD_TOL, mode=0)  # strategy 0: Hesse runs after it anyway
    near_minimizer = zfit.minimize.Minuit(gradient="zfit", tol=NEAR_TOL, mode=0)
    import tensorflow as tf

    counts = tf.Variable(np.ones(len(edges) - 1), dtype=tf.float64, trainable=False)
    prior = zfit.constraint.GaussianConstraint(params=params["w"], observation=UNDER_PRIOR[0],
                                               uncertainty=UNDER_PRIOR[1])
    loss = zfit.loss.ExtendedBinnedNLL(pdf, _live_data(space, counts), constraints=prior)
    _MODELS[key] = BuiltModel(pdf, params, yield_, space, shape, minimizer, near_minimizer, counts, loss)
    return _MODELS[key]
