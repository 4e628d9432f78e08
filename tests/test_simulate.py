"""The simulated stand: layout, truth, faults on disk, determinism, and waveform physics."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis.units import MV_PER_ADC, gain_to_pc
from remote_monitor.simulation.pulses import PICKUP_MV
from remote_monitor.simulation.spe_charge import (
    UNDER_MEAN,
    PmtPhysics,
    mean_charge_per_pe,
    pe_charge_density,
    pe_charges,
    share_over,
)
from remote_monitor.simulation.stand import (
    SimulationConfig,
    parse_fault,
    simulate_point_waveforms,
    simulate_scan,
)
from remote_monitor.stand.layout import SCAN_POINTS

SMALL = SimulationConfig(n_events=50, record_length=300)


def test_layout_truth_and_faults(tmp_path: Path) -> None:
    faults = [parse_fault(f) for f in ("dead:theta20_phi90", "low_gain:theta30_phi180", "missing_channel:theta40_phi0",
                                       "truncated:theta50_phi270", "garbage:theta10_phi0")]
    cfg = SimulationConfig(n_events=50, record_length=300, faults=faults, include_reference=True)
    truth = simulate_scan(tmp_path, "SN001", scan_id="261125_101500", cfg=cfg)
    scan = tmp_path / "wavedump_output_261125_101500" / "SN001"
    assert len([d for d in scan.iterdir() if d.is_dir()]) == 22  # 21 point folders + HV_CHECK
    assert sorted(p.name for p in (scan / "wavesave_theta10_phi90").iterdir()) == [
        f"wave{c}save_theta10_phi90.txt" for c in (0, 1, 2, 4)]
    assert len(list((scan / "wavesave_HV_CHECK").glob("wave2save_HV_*.txt"))) == 5
    assert json.loads((scan / "truth.json").read_text()) == json.loads(json.dumps(truth))
    points = truth["points"]
    assert set(points) == set(SCAN_POINTS) | {f"HV_{v}" for v in (1650, 1700, 1750, 1800, 1850)}
    assert points["theta30_phi180"]["expected_status"] == "poor"
    assert points["theta20_phi90"]["mu"] == 0 and points["theta20_phi90"]["expected_status"] == "error"
    assert not (scan / "wavesave_theta40_phi0" / "wave2save_theta40_phi0.txt").exists()
    assert b"#N/A" in (scan / "wavesave_theta10_phi0" / "wave2save_theta10_phi0.txt").read_bytes()
    healthy = [p for p, t in points.items() if t["expected_status"] == "healthy" and p.startswith("theta")]
    # the truncated file is judged by its good events: 17 healthy scan points
    assert len(healthy) == 17 and all(0.999e7 < points[p]["gain"] < 1.049e7 for p in healthy)
    keys = {"occupancy", "sipm_occupancy", "detection_efficiency", "transit_time_ns", "tts_sigma_ns",
            "dark_rate_hz", "gain", "mean_charge_per_pe_gain"}
    assert all(keys <= set(t) for t in points.values())
    assert points["theta0_phi0"]["detection_efficiency"] == 1.0
    assert points["theta50_phi0"]["occupancy"] < points["theta0_phi0"]["occupancy"]
    assert all(t["mean_charge_per_pe_gain"] < t["gain"] for t in points.values())
    assert 1650 < truth["hv_at_1e7"] < 1850


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = simulate_scan(tmp_path / "a", "SN002", scan_id="261125_101500", cfg=SMALL, points=["theta0_phi0"])
    b = simulate_scan(tmp_path / "b", "SN002", scan_id="261125_101500", cfg=SMALL, points=["theta0_phi0"])
    rel = "wavedump_output_261125_101500/SN002/wavesave_theta0_phi0/wave2save_theta0_phi0.txt"
    assert a == b and (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_binary_format_and_slow_writing(tmp_path: Path) -> None:
    cfg = SimulationConfig(n_events=20, record_length=300, fmt="binary", chunks_per_file=3, write_delay_s=0.03)
    simulate_scan(tmp_path, "SN003", scan_id="261125_101500", cfg=cfg, points=["theta0_phi0", "HV_1750"])
    files = sorted((tmp_path / "wavedump_output_261125_101500" / "SN003").rglob("*.dat"))
    assert len(files) == 6 and all(f.stat().st_size == 20 * (24 + 600) for f in files)


def test_waveform_physics() -> None:
    rng = np.random.default_rng(0)
    gain, mu = 1.0e7, 1.5
    waves = simulate_point_waveforms(rng, 600, 400, gain, mu, SimulationConfig(noise_mv=0.6))
    pmt = waves[2].astype(float)
    baseline = pmt[:, :40].mean(axis=1, keepdims=True)
    assert abs(np.median(baseline) - 14000) <= 200  # DC offset of the channel
    per_sample = np.hypot(0.6 * np.sqrt(0.375), PICKUP_MV / np.sqrt(2))  # low-passed white noise and pickup
    assert np.std((pmt[:, :40] - baseline) * MV_PER_ADC) == pytest.approx(per_sample, rel=0.1)
    mv = (pmt - baseline) * MV_PER_ADC * -1
    assert mv.max() > 5 and mv.min() > -5  # pulses negative on the wire, positive after the flip
    trigger = waves[0].astype(float)
    trig_start = np.argmax((trigger - trigger[:, :40].mean(axis=1, keepdims=True)) * MV_PER_ADC > 100, axis=1)
    rows = np.arange(len(mv))
    window = np.array([mv[i, s + 150: s + 210].sum() for i, s in zip(rows, trig_start, strict=False)]) * 0.04
    assert window.mean() == pytest.approx(mu * mean_charge_per_pe(gain, PmtPhysics()), rel=0.06)
    assert window.mean() < mu * gain_to_pc(gain)  # under-amplified photoelectrons: below the main peak
    over = mv > 3.0
    hit = over.any(axis=1) & (window > 0.8)
    dt = (np.argmax(over, axis=1) - trig_start)[hit] * 2.0
    assert np.mean((dt >= 321) & (dt <= 330)) > 0.95


def test_bad_fault_text() -> None:
    with pytest.raises(ValueError, match="KIND:POINT"):
        parse_fault("melted:theta0_phi0")
    with pytest.raises(ValueError):
        parse_fault("dead:theta7_phi0")


@pytest.mark.parametrize(("under_shape", "peak_shape"), [
    *((under, peak) for under in ("mixed", "exponential", "uniform") for peak in ("polya_mixture", "gamma")),
    *(("exponential", peak) for peak in ("lognormal", "gaussian", "unequal_mixture", "two_gains"))])
def test_other_1pe_shapes_keep_the_gain_definition(under_shape: str, peak_shape: str) -> None:
    """The shapes `bench_gain.py --shapes` and `--peaks` check the fit with: the main peak alone has mean Q1 =
    gain e and relative width rel_width (the Polya mixture: its two widths' mean square); the under-amplified ones
    alone have the stated mean (uniform: up to the peak); and the mean over all photoelectrons is
    `mean_charge_per_pe`; the share over a quarter of Q1 is `share_over`."""
    rng, n, q1 = np.random.default_rng(3), 1_000_000, gain_to_pc(1e7)
    phys = PmtPhysics(under_shape=under_shape, peak_shape=peak_shape)
    assert pe_charges(rng, n, 1e7, phys).mean() == pytest.approx(mean_charge_per_pe(1e7, phys), rel=0.002)
    main = pe_charges(rng, n, 1e7, dataclasses.replace(phys, under_fraction=0.0, backscatter_fraction=0.0))
    assert main.mean() == pytest.approx(q1, rel=0.001)
    width = math.sqrt(phys.rel_width**2 + 0.05**2) if peak_shape == "polya_mixture" else phys.rel_width
    assert main.std() / main.mean() == pytest.approx(width, rel=0.01)
    under = pe_charges(rng, n, 1e7, dataclasses.replace(phys, under_fraction=1.0, backscatter_fraction=0.0))
    assert under.mean() == pytest.approx(UNDER_MEAN[under_shape] * q1, rel=0.005)
    if under_shape == "uniform":
        assert under.max() <= q1 and under.min() >= 0.0
    everything = pe_charges(rng, n, 1e7, phys)
    assert share_over(0.25, phys) == pytest.approx(np.mean(everything > 0.25 * q1), abs=0.001)  # the truth's


@pytest.mark.parametrize("kwargs", [{}, {"under_shape": "exponential", "peak_shape": "gamma"},
                                    {"under_shape": "uniform", "backscatter_fraction": 0.0},
                                    {"peak_shape": "lognormal"}, {"peak_shape": "gaussian"},
                                    {"peak_shape": "two_gains"}])
def test_charge_density_is_the_distribution_the_charges_are_drawn_from(kwargs: dict[str, str | float]) -> None:
    """`pe_charge_density` (the benchmark's expected spectra) against a histogram of `pe_charges`: it integrates
    to 1 and its bin probabilities give a chi2 per bin about 1 (without the 2 % backscatter it is 9.6)."""
    phys, q1 = PmtPhysics(**kwargs), gain_to_pc(1e7)  # type: ignore[arg-type]
    fine = np.linspace(0.0, 4 * q1, 40_001)
    density = pe_charge_density(0.5 * (fine[1:] + fine[:-1]), 1e7, phys)
    assert density.sum() * (fine[1] - fine[0]) == pytest.approx(1.0, abs=1e-3)
    counts, edges = np.histogram(pe_charges(np.random.default_rng(5), 1_000_000, 1e7, phys), bins=100,
                                 range=(0.0, 2.5 * q1))
    expected = 1_000_000 * np.add.reduceat(density[:25_000], np.arange(0, 25_000, 250)) * (fine[1] - fine[0])
    assert np.allclose(edges, fine[:25_001:250])
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 / len(counts) < 1.5


def test_unknown_1pe_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="under_shape 'flat'"):
        PmtPhysics(under_shape="flat")
    with pytest.raises(ValueError, match="peak_shape"):
        PmtPhysics(peak_shape="gauss")
