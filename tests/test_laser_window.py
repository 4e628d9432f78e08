"""The charge window and the laser pulses: a window set for another stand's delay does not read as "no light"
alone, the point says where the PMT pulses arrive and which setting moves the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from remote_monitor.analysis.charges import AnalysisSettings
from remote_monitor.analysis.laser_window import (
    delay_histogram,
    laser_delay_ns,
    window_miss,
    window_warning,
)
from remote_monitor.analysis.wavedump_writer import write_binary
from remote_monitor.service.processing import point_sources, process_point
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms
from remote_monitor.stand.config import Config, FitSettings
from remote_monitor.stand.layout import PointKey, channel_file


def test_laser_peak_is_found_over_noise_and_judged_against_the_window() -> None:
    rng = np.random.default_rng(1)
    delays = delay_histogram()
    delays.fill(np.concatenate([rng.normal(180.0, 2.0, 3000), rng.uniform(-100.0, 500.0, 6000)]))
    assert abs(laser_delay_ns(delays) - 180.0) < 2.0  # type: ignore[operator]
    warning = window_warning(delays, (300.0, 420.0), "fixed_window_start_ns")
    assert warning is not None and "arrive 180 ns" in warning
    assert window_miss(["dropped 3 event(s) not present in every channel", warning]) == warning
    assert window_warning(delays, (150.0, 270.0), "fixed_window_start_ns") is None
    flat = delay_histogram()
    flat.fill(rng.uniform(-100.0, 500.0, 20_000))  # noise and dark pulses only: nothing to judge by
    assert laser_delay_ns(flat) is None and window_warning(flat, (300.0, 420.0), "x") is None


def test_point_whose_window_misses_the_pulses_says_where_they_are(tmp_path: Path) -> None:
    sim = SimulationConfig(n_events=6000, record_length=260, include_reference=False, seed=4)
    waves = simulate_point_waveforms(np.random.default_rng(4), 6000, 260, 1.0e7, 0.3, sim)
    key = PointKey("WIN1", "261202_120000", "theta0_phi0")
    for channel, samples in waves.items():
        path = channel_file(tmp_path, key, channel, binary=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_binary(path, samples, channel)
    fit = FitSettings(min_events=200)
    good = process_point(key, point_sources(tmp_path, key), Config(fit=fit))
    assert good["status"] != "error", good["reason"]
    assert window_miss(good["warnings"]) is None
    off = Config(fit=fit, analysis=AnalysisSettings(fixed_window_start_ns=0.0))  # 0-120 ns: before the pulses
    result = process_point(key, point_sources(tmp_path, key), off)
    assert result["status"] == "error" and "no light" in result["reason"], result["reason"]
    miss = window_miss(result["warnings"])
    assert miss is not None and result["reason"].startswith(miss) and "fixed_window_start_ns" in miss
    arrive = float(result["reason"].split("arrive ")[1].split(" ns")[0])
    assert 300.0 <= arrive <= 420.0, result["reason"]  # inside the default window, where the good point read them
