"""SPE fit on charges sampled from the PMT response model: gain within 1 % and 3 sigma of truth."""

from __future__ import annotations

import numpy as np
import pytest

from remote_monitor.analysis.histogram import fill_histogram
from remote_monitor.analysis.spe_fit import SpeFitResult, fit_spe
from remote_monitor.analysis.units import gain_to_pc


def sample_charges(rng: np.random.Generator, n: int, mu: float, gain: float, sigma0: float = 0.2,
                   resolution: float = 0.3) -> np.ndarray:
    """Pedestal noise on every event plus k ~ Poisson(mu) photoelectrons of N(Q1, resolution*Q1) each."""
    q1 = gain_to_pc(gain)
    k = rng.poisson(mu, n)
    return rng.normal(0.0, sigma0, n) + rng.normal(k * q1, resolution * q1 * np.sqrt(k))


@pytest.mark.parametrize("gain", [0.5e7, 1e7, 2e7])
@pytest.mark.parametrize("mu", [0.1, 0.5, 1.0, 2.0])
def test_full_model_recovers_gain(mu: float, gain: float) -> None:
    rng = np.random.default_rng([int(mu * 10), int(gain / 1e6)])
    n = 250_000 if mu < 0.3 else 80_000
    hist = fill_histogram(sample_charges(rng, n, mu, gain), 200, -2.0, 8 * gain_to_pc(gain) + 2)
    result = fit_spe(hist)
    assert result.status == "ok" and result.converged, result.reason
    assert abs(result.gain / gain - 1) < 0.01, (result.gain, gain)
    assert abs(result.gain - gain) < 3 * result.gain_err, (result.gain, result.gain_err)
    assert result.gain_err < 0.01 * gain  # statistics well below the 1 % requirement
    assert result.mu == pytest.approx(mu, rel=0.05)
    assert result.spe_resolution == pytest.approx(0.3, abs=0.05)
    assert result.chi2_ndf < 2.0
    assert set(result.curve["components"]) >= {"pedestal", "1 PE"}
    assert len(result.curve["total"]) == len(hist.counts)


def test_peak_to_valley_grows_with_gain() -> None:
    rng = np.random.default_rng(5)
    pv = [fit_spe(fill_histogram(sample_charges(rng, 40_000, 0.5, g), 200, -2, 20)).peak_to_valley for g in (0.7e7, 1.5e7)]
    assert 1.0 < pv[0] < pv[1]


def test_failures_come_back_as_status_not_exceptions() -> None:
    empty = fill_histogram(np.array([]), 100, -2, 10)
    assert fit_spe(empty).status == "too_few_events"
    few = fill_histogram(np.random.default_rng(1).normal(0, 0.2, 100), 100, -2, 10)
    result = fit_spe(few, min_events=500)
    assert result.status == "too_few_events" and "100 events" in result.reason
    assert fit_spe(few, model="magic", min_events=1).status == "failed"
    assert SpeFitResult.from_dict(result.to_dict()) == result


def test_exponential_component_and_seed_model_run() -> None:
    rng = np.random.default_rng(7)
    hist = fill_histogram(sample_charges(rng, 40_000, 1.0, 1e7), 300, -2, 14)
    with_exp = fit_spe(hist, exponential=True)
    assert with_exp.status == "ok" and abs(with_exp.gain / 1e7 - 1) < 0.03
    assert "under-amplified" in with_exp.curve["components"]
    seed = fit_spe(hist, model="seed")
    assert seed.status == "ok" and seed.model == "seed" and 0.5e7 < seed.gain < 1.5e7
