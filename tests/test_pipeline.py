"""End to end on one point: simulated waveforms -> WaveDump files -> charges -> histogram -> fit -> status."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis.wavedump_writer import write_ascii, write_binary
from remote_monitor.service.processing import point_sources, process_point
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms
from remote_monitor.stand.config import Config, FitSettings
from remote_monitor.stand.layout import PointKey, channel_file

SIM = SimulationConfig(n_events=6000, record_length=400, include_reference=False, seed=11)
CFG = Config(fit=FitSettings(min_events=200))


def _write_point(data: Path, key: PointKey, waves: dict[int, np.ndarray], binary: bool) -> None:
    for channel, samples in waves.items():
        path = channel_file(data, key, channel, binary=binary)
        path.parent.mkdir(parents=True, exist_ok=True)
        (write_binary if binary else write_ascii)(path, samples, channel)


@pytest.mark.parametrize(("gain", "mu", "expected"),
                         [(1.024e7, 0.2, ("healthy", "uncertain")), (0.87e7, 1.0, ("poor",))])
def test_gain_from_simulated_waveforms_matches_truth(tmp_path: Path, gain: float, mu: float,
                                                    expected: tuple[str, ...]) -> None:
    """The whole chain (realistic PMT physics, noise, pulse shape, baseline, window, histogram, zfit) recovers
    the true main-peak gain within its error; the waveform path agrees with the charge-level benchmark."""
    rng = np.random.default_rng(int(gain / 1e4 + mu * 100))
    waves = simulate_point_waveforms(rng, 30_000, 260, gain, mu, SIM)
    key = PointKey("PIPE1", "261125_120000", "theta0_phi0")
    _write_point(tmp_path, key, waves, binary=True)
    result = process_point(key, point_sources(tmp_path, key), CFG)
    fit = result["fit"]
    assert fit["status"] == "ok", result["reason"]
    assert result["events"] == 30_000
    assert abs(fit["gain"] / gain - 1) < 0.03, (fit["gain"], gain)  # measured: -2.3 % at 0.2 PE (2 sigma)
    assert abs(fit["gain"] - gain) < 3 * fit["gain_err"], (fit["gain"], fit["gain_err"])
    assert abs(fit["mu"] / mu - 1) < 0.1, (fit["mu"], mu)
    assert result["status"] in expected, result["reason"]  # 30k events at 0.2 PE: error ~1.9 %, may not decide


def test_dead_point_is_an_error_without_a_gain(tmp_path: Path) -> None:
    """No light at all (3000 events): never 'poor', and no gain is shown."""
    waves = simulate_point_waveforms(np.random.default_rng(3), 3000, 260, 1.0e7, 0.0, SIM)
    key = PointKey("DEAD1", "261125_120000", "theta20_phi90")
    _write_point(tmp_path, key, waves, binary=True)
    result = process_point(key, point_sources(tmp_path, key), CFG)
    assert result["status"] == "error", result["reason"]
    assert result["fit"] is None or result["fit"]["gain"] is None


def test_ascii_and_binary_files_give_identical_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    waves = simulate_point_waveforms(rng, 1500, 300, 1.0e7, 1.0, SIM)
    results = []
    for binary in (False, True):
        key = PointKey("FMT01", "261125_120000" if binary else "261125_110000", "theta0_phi0")
        _write_point(tmp_path, key, waves, binary=binary)
        sources = point_sources(tmp_path, key)
        assert all(p.suffix == (".dat" if binary else ".txt") for p in sources.values())
        results.append(process_point(key, sources, CFG))
    ascii_result, binary_result = results
    assert ascii_result["histogram"] == binary_result["histogram"]
    assert ascii_result["selected_events"] == binary_result["selected_events"] == 1500
    assert ascii_result["fit"]["gain"] == pytest.approx(binary_result["fit"]["gain"], rel=1e-9)


def test_pyrate_root_file_is_an_alternative_input(tmp_path: Path) -> None:
    """A Pyrate ROOT file in the point folder is read instead of the waveforms and gives the same gain."""
    uproot = pytest.importorskip("uproot")
    from remote_monitor.analysis.charges import extract_point_charges

    rng = np.random.default_rng(9)
    waves = simulate_point_waveforms(rng, 3000, 300, 1.03e7, 0.8, SIM)
    key = PointKey("ROOT01", "261125_120000", "theta20_phi180")
    _write_point(tmp_path, key, waves, binary=True)
    from_waves = process_point(key, point_sources(tmp_path, key), CFG)

    sources = point_sources(tmp_path, key)
    charges = extract_point_charges({int(c): p for c, p in sources.items()}, CFG.channels, CFG.analysis)
    trigger_ns = np.full(charges.n_selected, 120.0)
    root_path = sources["2"].parent / f"pyrate_{key.point}.root"
    with uproot.recreate(root_path) as root_file:
        root_file["Tree_CH0"] = {"PulseStart": trigger_ns, "PulseCharge": np.full_like(trigger_ns, 30.0)}
        root_file["Tree_CH2"] = {"PulseStart": trigger_ns + 325.0, "PulseCharge": charges.pmt_charge_pc}
    for path in sources.values():
        path.unlink()  # only the ROOT file is left
    result = process_point(key, point_sources(tmp_path, key), CFG)
    assert result["fit"]["status"] == "ok", result["reason"]
    assert result["fit"]["gain"] == pytest.approx(from_waves["fit"]["gain"], rel=1e-3)
    assert "pyrate" in next(iter(result["source_files"].values()))["path"]


def test_truncated_file_is_a_warning_when_its_good_events_fit(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    waves = simulate_point_waveforms(rng, 1500, 300, 1.0e7, 1.0, SIM)
    key = PointKey("TRUNC1", "261125_120000", "theta0_phi0")
    _write_point(tmp_path, key, waves, binary=False)
    pmt = channel_file(tmp_path, key, 2)
    size = pmt.stat().st_size
    with open(pmt, "r+b") as fh:
        fh.truncate(size - 1000)  # cut inside the last event
    original_other = channel_file(tmp_path, key, 0).read_bytes()
    result = process_point(key, point_sources(tmp_path, key), CFG)
    assert result["status"] != "error" and "truncated" in result["reason"], result["reason"]
    assert any("truncated" in w for w in result["warnings"])
    assert result["fit"]["status"] == "ok" and result["fit"]["gain"] and result["events"] == 1499
    assert pmt.stat().st_size == size - 1000  # nothing rewritten or lost
    assert channel_file(tmp_path, key, 0).read_bytes() == original_other
