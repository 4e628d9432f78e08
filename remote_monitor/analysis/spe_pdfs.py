"""The PMT charge response as zfit binned PDFs, composed as the spectrum's two populations: events without a
photoelectron (`PedestalPDF`) and events with photoelectrons (`PhotoelectronPDF`: the Poisson sum of n-PE terms
of the 1-PE response, noise-smeared), summed by zfit's `BinnedSumPDF` with the Poisson yields N exp(-mu) and
N (1 - exp(-mu)). The formula is `spe_response`'s (numpy), written in TensorFlow: analytic bin integrals with
tf.math.igamma, all n-PE terms in one vectorised expression (`../shared/design/zfit-speed.md`: the fast way
to write a zfit model of this kind).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from remote_monitor.analysis.spe_response import PARAM_NAMES, ResponseShape, under_moments


@functools.cache
def zfit_pdf_classes() -> tuple[type, type]:
    """The zfit PDF classes, defined once, on first use (zfit is imported lazily: it takes seconds)."""
    import tensorflow as tf  # type: ignore[import-untyped]
    import zfit
    import zfit.z.numpy as znp

    def _ndtr(x: Any) -> Any:
        return 0.5 * tf.math.erfc(-x / math.sqrt(2.0))

    def _bin_contents(cdf: Any) -> Any:
        """Bin contents from a CDF at the bin edges, along the last axis (each edge's CDF computed once)."""
        return cdf[..., 1:] - cdf[..., :-1]

    class PedestalPDF(zfit.pdf.BaseBinnedPDF):
        """Events without a photoelectron: a Gaussian (q0, sigma0) integrated over each bin."""

        def __init__(self, obs: Any, q0: Any, sigma0: Any, edges: np.ndarray, extended: Any) -> None:
            self._edges = tf.constant(edges)
            super().__init__(obs=obs, params={"q0": q0, "sigma0": sigma0}, extended=extended, name="PedestalPDF")

        def _rel_counts(self, x: Any, norm: Any = None, *, params: Any = None) -> Any:  # noqa: ARG002
            q0, sigma0 = self.params["q0"].value(), self.params["sigma0"].value()
            bins = _bin_contents(_ndtr((self._edges - q0) / sigma0))
            return bins / znp.sum(bins)

    class PhotoelectronPDF(zfit.pdf.BaseBinnedPDF):
        """Events with at least one photoelectron: the Poisson sum (occupancy mu) of n-PE terms, each the n-fold
        convolution of the 1-PE response (main peak Gamma, under-amplified Gamma or flat part), with the
        pedestal's noise (q0, sigma0)."""

        def __init__(self, obs: Any, params: dict[str, Any], shape: ResponseShape, extended: Any) -> None:
            self._shape = shape
            n, j = shape.terms
            self._n, self._j = tf.constant(n), tf.constant(j)
            self._one_rows = tf.constant(np.flatnonzero(j == 1)[:, None])
            self._one_n = tf.constant(n[j == 1])
            self._log_coeff = tf.constant(shape.log_coeff)
            self._edges = tf.constant(shape.edges)
            self._half = shape.kernel_half()
            super().__init__(obs=obs, params=params, extended=extended, name="PhotoelectronPDF")

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

        def _term_bins(self, p: dict[str, Any]) -> Any:
            """Noise-free bin probabilities of every (n, j) term, rows = terms (as `term_bins`)."""
            under_mean, under_var = under_moments(p)
            mean = (self._n - self._j) * p["q1"] + self._j * under_mean
            var = (self._n - self._j) * (p["r1"] * p["q1"]) ** 2 + self._j * under_var
            a, scale = mean**2 / var, var / mean
            above = self._edges - p["q0"]
            cdf = tf.math.igamma(a[:, None], tf.maximum(above[None, :] / scale[:, None], 0.0))
            cdf = tf.tensor_scatter_nd_update(cdf, self._one_rows, self._one_under_cdf(p, above))
            return _bin_contents(cdf)

        def _term_weights(self, p: dict[str, Any]) -> Any:
            """Poisson(n; mu) * Binomial(j; n, w) of every term (as `term_weights`)."""
            w = tf.clip_by_value(p["w"], 1e-12, 1 - 1e-12)
            return tf.exp(-p["mu"] + self._n * tf.math.log(p["mu"]) + self._log_coeff
                          + self._j * tf.math.log(w) + (self._n - self._j) * tf.math.log(1 - w))

        def _noise_kernel(self, sigma0: Any) -> Any:
            """The pedestal's Gaussian on the bin grid, its width corrected for the bin width (as `_noise_kernel`)."""
            h = self._shape.width
            sigma = tf.sqrt(tf.maximum(sigma0**2 - h * h / 12.0, (0.05 * h) ** 2))
            edges = tf.range(-self._half, self._half + 2, dtype=tf.float64) - 0.5
            return _bin_contents(_ndtr(edges * h / sigma))

        def _rel_counts(self, x: Any, norm: Any = None, *, params: Any = None) -> Any:  # noqa: ARG002
            p = {name: znp.asarray(self.params[name].value()) for name in PARAM_NAMES}
            signal = tf.linalg.matvec(tf.transpose(self._term_bins(p)), self._term_weights(p))
            kernel = self._noise_kernel(p["sigma0"])
            smeared = tf.nn.conv1d(signal[None, :, None], kernel[:, None, None], stride=1, padding="SAME")[0, :, 0]
            return smeared / znp.sum(smeared)

    return PedestalPDF, PhotoelectronPDF


def response_pdf(space: Any, params: dict[str, Any], shape: ResponseShape, yield_: Any, tag: str) -> Any:
    """The spectrum as a zfit sum of its two populations, each with its Poisson share of the events: without a
    photoelectron (`PedestalPDF`, exp(-mu)) and with photoelectrons (`PhotoelectronPDF`, 1 - exp(-mu))."""
    import zfit
    import zfit.z.numpy as znp

    pedestal_pdf, photoelectron_pdf = zfit_pdf_classes()
    mu = params["mu"]
    no_pe = zfit.ComposedParameter(f"spe_no_pe_yield_{tag}", lambda n, m: n * znp.exp(-m), params=[yield_, mu])
    some_pe = zfit.ComposedParameter(f"spe_pe_yield_{tag}", lambda n, m: -n * znp.expm1(-m), params=[yield_, mu])
    pedestal = pedestal_pdf(space, params["q0"], params["sigma0"], shape.edges, extended=no_pe)
    photoelectrons = photoelectron_pdf(space, params, shape, extended=some_pe)
    return zfit.pdf.BinnedSumPDF([pedestal, photoelectrons])
