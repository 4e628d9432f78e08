"""The SPE fit's zfit model, built once per bin grid and number of n-PE terms and cached: parameters with their
bounds, the response PDF (`spe_pdfs`), an extended binned likelihood whose data are a TF variable (a new
histogram is a variable update, not a new graph), a Gaussian constraint on the under-amplified fraction from
what is known of the R12860 (UNDER_PRIOR), and zfit's Minuit evaluating that loss through one compiled function
of the parameter vector (`vector_minuit`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from remote_monitor.analysis.spe_pdfs import response_pdf
from remote_monitor.analysis.spe_response import BOUNDS, PARAM_NAMES, ResponseShape
from remote_monitor.analysis.vector_minuit import CompiledLoss, vector_minuit

os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")

# What is known of the R12860 before the fit: 5-20 % of its photoelectrons are under-amplified. A Gaussian
# constraint on w (mean 0.125, sigma 0.05: 5-20 % is +-1.5 sigma) is part of the likelihood, so that where the
# spectrum cannot tell the under-amplified part from the pedestal (1 mV noise, low gain) the fit does not put
# it at w -> 0 or at the bound, and its Hesse errors include that prior knowledge. Where the spectrum does tell
# (0.3 mV), the data outweigh it. Refits of the same 30 benchmark spectra (2026-12-01): 21 -> 23 classes within
# 1 % of the true gain, 0.3 mV 14 -> 15 of 15; spectra simulated with 5 % and 20 % under-amplified: mean |bias|
# 0.96 -> 0.66 %.
UNDER_PRIOR = (0.125, 0.05)
MIGRAD_TOL = 1e-5  # zfit's Minuit stops at an estimated distance to the minimum (EDM) below this. At 0.01 (before
# 2026-12-02) Migrad with strategy 0 stopped early, the continuation (`spe_minimize._converged`) did not always recover,
# and a fit could end in a local minimum: on the benchmark's timing spectrum (100k events, 0.1 PE, 1e7, 0.3 mV) at
# 0.58 NLL above the minimum with Q1 0.8 % low, in 4.0 s; at 1e-5 at the minimum (the same as iminuit's on zfit's
# loss with an EDM of 1e-6) in 2.4 s (0.001: 3.5 s, 1e-4: 3.9 s, both at the minimum).
MIGRAD_ROUNDS = 2  # at most two Migrad calls per minimisation, each of at most Minuit's default number of function
# calls (1320 for 8 parameters). zfit's Minuit calls Migrad again, up to 20 times, while its criterion is not met;
# on an unresolved 2.5 PE / 0.5e7 / 0.3 mV spectrum (60k events) whose under-amplified part went to a spike at zero
# charge (u and k_u at their bounds, a direction the likelihood hardly sees) that was 26 080 calls of the 18-term
# model, 214 s for one minimisation. Every other minimisation of the 30 saved classes took at most 727 calls (one
# Migrad; median 110), 2026-12-04.
NEAR_TOL = 0.01  # ... except for a refit that starts at a known nearby minimum with step sizes from its errors (a
# growing point, `spe_fit._refined`): Migrad's first estimate of the covariance is then good and its EDM reliable
# (Q1 within 0.03 % of a full fit; at MIGRAD_TOL that refit took 1.2 s instead of 0.8 s, 2026-12-02)


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
    compiled: CompiledLoss  # the loss's value and gradient, compiled once (shared by both minimisers)
    counts: Any
    loss: Any
    under_prior: tuple[float, float]  # the constraint on the under-amplified fraction in `loss` (centre, width)


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
    pdf = response_pdf(space, params, shape, yield_, tag)
    import tensorflow as tf  # type: ignore[import-untyped]

    counts = tf.Variable(np.ones(len(edges) - 1), dtype=tf.float64, trainable=False)
    under_prior = UNDER_PRIOR  # (read once: the constraint and the model's record of it are the same)
    prior = zfit.constraint.GaussianConstraint(params=params["w"], observation=under_prior[0],
                                               uncertainty=under_prior[1])
    loss = zfit.loss.ExtendedBinnedNLL(pdf, _live_data(space, counts), constraints=prior)
    compiled = CompiledLoss(loss, list(params.values()))  # traced once, for both minimisers
    minimizer = vector_minuit(compiled, MIGRAD_ROUNDS, gradient="zfit", tol=MIGRAD_TOL, mode=0)  # strategy 0: Hesse
    near_minimizer = vector_minuit(compiled, MIGRAD_ROUNDS, gradient="zfit", tol=NEAR_TOL, mode=0)  # runs after Migrad
    _MODELS[key] = BuiltModel(pdf, params, yield_, space, shape, minimizer, near_minimizer, compiled, counts, loss,
                              under_prior)
    return _MODELS[key]
