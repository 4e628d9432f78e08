"""`remote-monitor` command line: clear errors instead of tracebacks, reprocessing one scan, keygen."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from remote_monitor.cli import main
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan


def test_bad_config_and_missing_sbatch_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "monitor.toml"
    bad.write_text("[gain]\nhealthy_band = [1.05e7, 0.99e7]\n")
    assert main(["run", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "monitor.toml" in err and "healthy_band" in err and "Traceback" not in err
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["submit", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "sbatch not found on PATH" in capsys.readouterr().err


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    key = tmp_path / "k" / "monitor.key"
    assert main(["keygen", "--key", str(key)]) == 0 and key.stat().st_mode & 0o777 == 0o600
    before = key.read_text()
    assert main(["keygen", "--key", str(key)]) == 2 and "refusing to overwrite" in capsys.readouterr().err
    assert key.read_text() == before


def test_reprocess_one_scan_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, out = tmp_path / "ARCHIVE", tmp_path / "reprocessed"
    points = ["theta0_phi0", "theta10_phi90", "HV_1700", "HV_1800"]
    simulate_scan(data, "RE0001", scan_id="261120_090000", points=points,
                  cfg=SimulationConfig(n_events=1500, record_length=300, seed=2))
    config = tmp_path / "monitor.toml"
    config.write_text("[fit]\nmin_events = 200\n")
    scan_dir = data / "wavedump_output_261120_090000" / "RE0001"
    assert main(["reprocess", "--scan-dir", str(scan_dir), "--out", str(out), "--config", str(config)]) == 0
    results = out / "results" / "RE0001" / "261120_090000"
    assert sorted(p.stem for p in (results / "points").glob("*.json")) == sorted(points)
    scan = json.loads((results / "scan.json").read_text())
    assert scan["hv_fit"]["status"] in ("ok", "target_outside_range") and len(scan["hv_fit"]["points"]) == 2
    assert (out / "reports" / "RE0001.html").exists()
    assert main(["reprocess", "--scan-dir", str(tmp_path), "--out", str(out)]) == 2  # not a scan: clear error
    capsys.readouterr()
    assert main(["reprocess", "--scan-dir", str(scan_dir.parent), "--out", str(out)]) == 2  # the level above
    assert f"give one of them, e.g. --scan-dir {scan_dir}" in capsys.readouterr().err


def test_monitor_ignores_path_tricks_in_the_data_directory(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    simulate_scan(data, "OK0001", scan_id="261125_090000", points=["theta0_phi0"],
                  cfg=SimulationConfig(n_events=600, record_length=300))
    for name in ("..x", "a b", ".hidden", "-rf"):
        evil = data / "wavedump_output_261125_090000" / name / "wavesave_theta0_phi0"
        evil.mkdir(parents=True)
        (evil / "wave2save_theta0_phi0.txt").write_text("Record Length: 1\n")
    config = tmp_path / "monitor.toml"
    config.write_text("[fit]\nmin_events = 200\n")
    assert main(["run", "--data", str(data), "--out", str(out), "--config", str(config), "--once"]) == 0
    assert [p.name for p in (out / "results").iterdir()] == ["OK0001"]


def test_monitor_takes_points_in_the_order_the_stand_wrote_them(tmp_path: Path) -> None:
    """Not by name: theta10_phi90 is written before theta10_phi180 but sorts after it."""
    data, out = tmp_path / "data", tmp_path / "out"
    written = ["theta10_phi90", "theta10_phi180", "theta0_phi0", "HV_1800"]
    simulate_scan(data, "ORD001", scan_id="261125_090000", points=written,
                  cfg=SimulationConfig(n_events=600, record_length=300))
    for age, point in enumerate(reversed(written)):  # the first written is the oldest
        for path in (data / "wavedump_output_261125_090000" / "ORD001").glob(f"*/wave*_{point}.txt"):
            os.utime(path, (1.7e9 - 60 * age, 1.7e9 - 60 * age))
    config = tmp_path / "monitor.toml"
    config.write_text("[fit]\nmin_events = 200\n")
    assert main(["run", "--data", str(data), "--out", str(out), "--config", str(config), "--once"]) == 0
    journal = (out / "state" / "processed.jsonl").read_text().splitlines()
    assert [json.loads(line)["point"] for line in journal] == written


def test_monitor_follows_a_configured_layout(tmp_path: Path) -> None:
    """A stand that names things differently: [layout] in the configuration, nothing else changes."""
    import numpy as np

    from remote_monitor.analysis.wavedump_writer import write_binary
    from remote_monitor.simulation.stand import simulate_point_waveforms
    from remote_monitor.stand.config import load_config
    from remote_monitor.stand.layout import PointKey, channel_file

    config = tmp_path / "monitor.toml"
    config.write_text('[layout]\nscan_dir_prefix = "pmt_scan_"\npoint_dir_prefix = "pos_"\nhv_dir = "hv"\n'
                      'file_prefix = "ch"\nfile_infix = "_"\n[fit]\nmin_events = 200\n')
    layout = load_config(config).layout
    data, out = tmp_path / "data", tmp_path / "out"
    waves = simulate_point_waveforms(np.random.default_rng(1), 800, 300, 1.02e7, 1.0, SimulationConfig())
    for point in ("theta10_phi90", "HV_1750"):
        for ch, samples in waves.items():
            path = channel_file(data, PointKey("LAY001", "261125_090000", point), ch, binary=True, layout=layout)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_binary(path, samples, ch)
    assert (data / "pmt_scan_261125_090000" / "LAY001" / "pos_theta10_phi90" / "ch2_theta10_phi90.dat").exists()
    assert (data / "pmt_scan_261125_090000" / "LAY001" / "hv" / "ch2_HV_1750.dat").exists()
    assert main(["run", "--data", str(data), "--out", str(out), "--config", str(config), "--once"]) == 0
    results = json.loads((out / "results" / "LAY001" / "261125_090000" / "points" / "theta10_phi90.json").read_text())
    assert results["fit"]["status"] == "ok" and results["events"] == 800, results["reason"]
    assert (out / "results" / "LAY001" / "261125_090000" / "points" / "HV_1750.json").exists()

