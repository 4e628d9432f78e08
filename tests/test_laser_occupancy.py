"""The occupancy behind the detection efficiency is the laser's: the PMT's dark pulses in the charge window are
taken off (they add to the fitted mean photoelectrons per event as a second Poisson source)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from remote_monitor.analysis.detection_efficiency import laser_occupancy
from remote_monitor.service.processing import point_sources, process_point
from remote_monitor.simulation.spe_charge import PmtPhysics
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey


def test_the_dark_photoelectrons_in_the_window_are_rate_times_window_with_their_error():
    occ, err, dark = laser_occupancy(0.060, 0.001, 50e3, 5e3, 120.0)
    assert dark == pytest.approx(0.006) and occ == pytest.approx(0.054)
    assert err == pytest.approx(math.hypot(0.001, 0.0006))
    assert laser_occupancy(0.060, 0.001, None, None, 120.0) == (0.060, 0.001, None)
    assert laser_occupancy(0.060, 0.001, 50e3, 5e3, None) == (0.060, 0.001, None)
    assert laser_occupancy(0.060, 0.001, -200.0, 300.0, 120.0)[0] == pytest.approx(0.060)


def test_a_pmt_with_a_high_dark_rate_reads_the_laser_occupancy_not_laser_plus_dark(tmp_path: Path):
    """100 kHz of dark pulses put ~0.01 PE into a ~100 ns window at 0.05 PE of laser light: the fitted mu reads
    ~20 % high; the DE's occupancy, less rate x window, reads the laser's."""
    sim = SimulationConfig(n_events=40000, record_length=260, fmt="binary", seed=8, mu=0.05,
                           physics=replace(PmtPhysics(), dark_rate_hz=100e3))
    truth = simulate_scan(tmp_path, "DARK01", "261207_000000", sim, points=["theta0_phi0"])
    key = PointKey("DARK01", "261207_000000", "theta0_phi0")
    cfg = Config()
    result = process_point(key, point_sources(tmp_path, key), replace(cfg, efficiency=replace(cfg.efficiency,
                                                                                              occupancy="spe_fit")))
    mu_laser = truth["points"]["theta0_phi0"]["occupancy"]
    fit, peer = result["fit"], result["peer"]
    window = result["charge_window_ns"][1] - result["charge_window_ns"][0]
    assert fit["mu"] - mu_laser > 5 * fit["mu_err"], (fit["mu"], mu_laser)  # the dark pulses are in the fit's mu
    dark = peer["dark"]
    assert abs(dark["dark_rate_hz"] - 100e3) < 3 * dark["dark_rate_err_hz"], dark  # read 114.6 ± 4.1 kHz before
    assert peer["occupancy_dark"] == pytest.approx(100e3 * window * 1e-9, rel=0.15), peer["dark"]
    assert peer["occupancy"] == pytest.approx(fit["mu"] - peer["occupancy_dark"])
    assert abs(peer["occupancy"] - mu_laser) < 3 * peer["occupancy_err"], (peer["occupancy"], mu_laser)
