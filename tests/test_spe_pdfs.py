"""The SPE response as zfit PDFs (pedestal and photoelectrons summed by zfit's BinnedSumPDF, which the fit
minimises) against the numpy formula that draws the report's curves and components: the same expected counts,
in total and per population, and each population with its Poisson share of the events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from remote_monitor.analysis.spe_model import get_model
from remote_monitor.analysis.spe_response import (
    QUARTER_PE,
    ResponseShape,
    n_pe_terms,
    occupancy_over_quarter_pe,
    response_counts,
    share_over,
)

EVENTS = 1e5
SPECTRA = [  # a low-occupancy 0.3 mV point with the Gamma under-amplified shape; a 1 mV, 2.5 PE one with the flat
    {"mu": 0.1, "q0": 0.02, "sigma0": 0.16, "q1": 1.6, "r1": 0.32, "w": 0.14, "u": 0.3, "k_u": 1.2, "b": 0.0},
    {"mu": 2.5, "q0": -0.05, "sigma0": 0.5, "q1": 0.8, "r1": 0.35, "w": 0.12, "u": 0.4, "k_u": 2.0, "b": 1.0},
    # a mixture of the two shapes (the fits hold b at 0 or 1)
    {"mu": 0.5, "q0": 0.0, "sigma0": 0.2, "q1": 1.2, "r1": 0.3, "w": 0.2, "u": 0.35, "k_u": 1.5, "b": 0.4},
]


@pytest.mark.parametrize("values", SPECTRA)
def test_the_zfit_pdfs_give_the_numpy_formulas_counts(values: dict[str, float]) -> None:
    edges = np.linspace(-3.0, 16.0, 257)  # holds the whole spectrum: both normalise to the same events
    n_max = n_pe_terms(values["mu"])
    model = get_model(edges, n_max)
    for name, value in values.items():
        model.params[name].set_value(value)
    model.yield_.set_value(EVENTS)
    pedestal_pdf, photoelectron_pdf = model.pdf.pdfs
    expected = response_counts(values, ResponseShape(edges, n_max), EVENTS)
    total = sum(expected.values())
    np.testing.assert_allclose(np.asarray(model.pdf.counts()), total, rtol=1e-6, atol=1e-6 * EVENTS / len(total))
    np.testing.assert_allclose(np.asarray(pedestal_pdf.counts()), expected["pedestal"], rtol=1e-6,
                               atol=1e-6 * EVENTS / len(total))
    assert float(np.sum(pedestal_pdf.counts())) == pytest.approx(EVENTS * math.exp(-values["mu"]), rel=1e-6)
    assert float(np.sum(photoelectron_pdf.counts())) == pytest.approx(EVENTS * -math.expm1(-values["mu"]), rel=1e-6)


@pytest.mark.parametrize("values", SPECTRA)
def test_the_share_over_a_fraction_of_q1_is_that_of_the_1pe_response_drawn(values: dict[str, float]) -> None:
    """Main peak Gamma(mean Q1, width r1), under-amplified part a Gamma of mean u Q1 (1 - b) and flat on 0..Q1
    (b), drawn in their shares."""
    rng = np.random.default_rng(3)
    n, q1, r1 = 1_000_000, values["q1"], values["r1"]
    main = rng.gamma(1 / r1**2, r1**2 * q1, n)
    gamma_under = rng.gamma(values["k_u"], values["u"] * q1 / values["k_u"], n)
    under = np.where(rng.random(n) < values["b"], rng.uniform(0, q1, n), gamma_under)
    charges = np.where(rng.random(n) < values["w"], under, main)
    for fraction in (QUARTER_PE, 0.5):  # (a binomial sd of 0.0003)
        assert share_over(values, fraction) == pytest.approx(np.mean(charges > fraction * q1), abs=0.0015)
    assert occupancy_over_quarter_pe(values) == pytest.approx(values["mu"] * share_over(values, QUARTER_PE))
