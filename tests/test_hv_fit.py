"""HV power-law fit: recovers the HV at gain 1e7 within 5 V, with an honest error, and clear statuses."""

from __future__ import annotations

import numpy as np
import pytest

from remote_monitor.analysis.hv_fit import fit_hv

HV = np.array([1650.0, 1700.0, 1750.0, 1800.0, 1850.0])


def _gains(rng: np.random.Generator, b: float = 7.0, hv_target: float = 1750.0) -> tuple[np.ndarray, np.ndarray]:
    true = 1e7 * (HV / hv_target) ** b
    return true * (1 + 0.01 * rng.normal(size=HV.size)), 0.01 * true


def test_recovers_hv_at_target_with_sensible_error() -> None:
    pulls = []
    for seed in range(40):
        gain, err = _gains(np.random.default_rng(seed), hv_target=1742.0)
        result = fit_hv(HV, gain, err)
        assert result.status == "ok", result.reason
        assert abs(result.hv_at_target - 1742.0) < 5.0
        assert result.b == pytest.approx(7.0, abs=0.5)
        pulls.append((result.hv_at_target - 1742.0) / result.hv_at_target_err)
    assert 0.6 < np.std(pulls) < 1.5 and abs(np.mean(pulls)) < 0.5


def test_edge_statuses() -> None:
    assert fit_hv([1750], [1e7], [1e5]).status == "too_few_points"
    result = fit_hv([1650, 1700, 1750], [1e7, -1.0, None], [1e5, 1e5, 1e5])  # type: ignore[list-item]
    assert result.status == "too_few_points" and "skipped 2" in result.reason
    far = fit_hv(HV, 2e7 * (HV / 1750) ** 7, 2e5 * (HV / 1750) ** 7)
    assert far.status == "target_outside_range" and far.hv_at_target < 1650
    assert far.to_dict()["hv_at_target"] == far.hv_at_target


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hv_at_1e7_from_realistic_spectra(seed: int) -> None:
    """Whole HV check on realistic spectra (not the fit's shape family): within 5 V of the truth, pull < 3,
    the exponent with its error, per-point pulls."""
    from remote_monitor.analysis.histogram import fill_histogram
    from remote_monitor.analysis.spe_fit import fit_spe
    from remote_monitor.simulation.spe_charge import PmtPhysics, event_charges, pedestal_charges

    rng = np.random.default_rng(seed)
    hv_true = 1750.0 + rng.uniform(-30, 30)
    gains, errs, syst = [], [], []
    for hv in HV:
        true = 1e7 * (hv / hv_true) ** 7.0
        n = 60_000
        charges = event_charges(rng, n, 0.3, true, PmtPhysics(), pedestal_charges(rng, 0.3, n))
        fit = fit_spe(fill_histogram(charges, 560, -3.0, 25.0))
        assert fit.status == "ok", fit.reason
        gains.append(fit.gain)
        errs.append(fit.gain_err)
        syst.append(fit.gain_err_syst / fit.gain)
    result = fit_hv(HV, gains, errs, common_rel_syst=float(np.mean(syst)))
    assert result.status == "ok", result.reason
    assert abs(result.hv_at_target - hv_true) < 5.0, (result.hv_at_target, hv_true)
    assert abs(result.hv_at_target - hv_true) < 3 * result.hv_at_target_err
    assert result.b == pytest.approx(7.0, abs=3 * result.b_err + 0.1)
    assert all("pull" in p for p in result.points)


def test_points_with_a_poor_peak_to_valley_are_left_out_as_configured() -> None:
    # a noisy stand's HV points: no valley at the two lowest voltages, 1.11 at nominal; their gains are fine
    from remote_monitor.service.scan_results import hv_fit_for
    from remote_monitor.stand.config import Config, HVSettings

    gain, err = _gains(np.random.default_rng(1), hv_target=1745.0)
    points = {f"HV_{int(v)}": {"kind": "hv", "hv": float(v), "status": "healthy",
                               "fit": {"status": "ok", "gain": g, "gain_err": e, "peak_to_valley": pv}}
              for v, g, e, pv in zip(HV, gain, err, (1.0, 1.0, 1.11, 1.3, 1.5), strict=True)}
    default = hv_fit_for(points, Config())  # points without a valley are left out
    assert default is not None and [x["hv"] for x in default["excluded"]] == [1650.0, 1700.0]
    assert default["excluded"][0]["reason"] == "peak-to-valley 1.00 (no valley), at most [hv] min_peak_to_valley = 1"
    strict = hv_fit_for(points, Config(hv=HVSettings(min_peak_to_valley=1.2)))
    assert strict is not None and [x["hv"] for x in strict["excluded"]] == [1650.0, 1700.0, 1750.0]
    assert strict["excluded"][2]["reason"] == "peak-to-valley 1.11, at most [hv] min_peak_to_valley = 1.2"
    assert strict["status"] == "target_outside_range"  # extrapolated from 1800 and 1850 V
    assert abs(default["hv_at_target"] - 1745.0) < 5.0 and default["hv_at_target_err"] < strict["hv_at_target_err"]
