"""The monitor handles a Korean-stand directory like WaveDump points: each DAQ ROOT file that appears in
<data>/korean_<scan id>/ is processed once quiet, one point per PMT, into the same store and report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from remote_monitor.service.korean import process_korean_file
from remote_monitor.simulation.korean_writer import simulate_korean_file
from remote_monitor.stand.config import Config
from tests.monitor_helpers import journal, point_results, start_monitor, stop, wait_for, write_config

SCAN = "261130_120000"
PMTS = [("EM2740A", 1670, 0, 0, 1.0e7, 0.5), ("EL1635B", 1840, 45, -20, 1.2e7, 0.8),
        ("EK0042C", 1700, 90, 30, 0.8e7, 1.0)]
POINTS = {"EM2740A": "theta0_phi0", "EL1635B": "theta20_phi225", "EK0042C": "theta30_phi90"}


def _all_recorded(out: Path, serials: list[str]) -> bool:
    return all(point_results(out, s, SCAN) for s in serials)


@pytest.fixture(scope="module")
def korean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Korean DAQ file (3 PMTs, 6000 events of 512 samples), written outside the data area."""
    return simulate_korean_file(tmp_path_factory.mktemp("korean_src"), PMTS, n_events=6000, record_length=512)


def test_monitor_processes_korean_files_as_points_and_reports_them(tmp_path: Path, korean_file: Path):
    data, out = tmp_path / "data", tmp_path / "out"
    folder = data / f"korean_{SCAN}"
    folder.mkdir(parents=True)
    proc = start_monitor(data, out, write_config(tmp_path, quiet=1.0))
    try:
        wait_for((out / "reports" / "index.html").exists, 120, "the monitor to start", proc)
        os.link(korean_file, folder / korean_file.name)  # appears at once, complete
        wait_for(lambda: _all_recorded(out, list(POINTS)), 240, "a result for each PMT of the file", proc)

        expected = {r["serial"]: r for r in process_korean_file(korean_file, Config())}
        for serial, point in POINTS.items():
            result = point_results(out, serial, SCAN)[point]
            assert result["status"] != "error", result["reason"]
            assert result["hv"] == expected[serial]["hv"]
            assert result["fit"]["gain"] == pytest.approx(expected[serial]["fit"]["gain"], rel=1e-3)
            assert result["source_files"]["root"]["size"] == korean_file.stat().st_size
            assert result["peer"]["timing"]["transit_time_ns"] > 0
        page = (out / "reports" / "EL1635B.html").read_text()
        assert "Other positions" in page and 'data-point="theta20_phi225"' in page
        assert "EK0042C" in (out / "reports" / "index.html").read_text()

        # a corrupt file named like a Korean file: an error for each of its PMTs, and the monitor goes on
        bad = folder / "prd_EA0001A_hv1600_R00_T10_run9.root"
        bad.write_bytes(korean_file.read_bytes()[: korean_file.stat().st_size // 3])
        wait_for(lambda: point_results(out, "EA0001A", SCAN).get("theta10_phi0"), 120, "the corrupt file's result",
                 proc)
        broken = point_results(out, "EA0001A", SCAN)["theta10_phi0"]
        assert broken["status"] == "error" and "unreadable Korean DAQ file" in broken["reason"]
        assert broken["fit"] is None
        # a ROOT file whose name names no PMT: one problem, nothing recorded
        (folder / "calibration_run.root").write_bytes(b"not a Korean file")
        wait_for(lambda: "calibration_run.root" in _problems_text(out), 60, "the unnamed file's problem", proc)
        assert proc.poll() is None
    finally:
        code, output = stop(proc, signal.SIGTERM)
    assert code == 0, output
    lines = journal(out)
    assert sorted(line["serial"] for line in lines) == sorted([*POINTS, "EA0001A"])  # each PMT once

    # a restart processes nothing again (the files are unchanged)
    rerun = subprocess.run([sys.executable, "-m", "remote_monitor.cli", "run", "--once", "--data", str(data),
                            "--out", str(out), "--config", str(tmp_path / "monitor.toml")],
                           check=False, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(journal(out)) == len(lines)


def test_a_newer_file_of_the_same_pmt_and_position_wins_without_ping_pong(tmp_path: Path, korean_file: Path):
    data, out = tmp_path / "data", tmp_path / "out"
    folder = data / f"korean_{SCAN}"
    folder.mkdir(parents=True)
    older = folder / korean_file.name
    os.link(korean_file, older)
    os.utime(older, (1_700_000_000, 1_700_000_000))
    newer = folder / korean_file.name.replace(".root", "_repeat.root")
    newer.write_bytes(korean_file.read_bytes())
    run = [sys.executable, "-m", "remote_monitor.cli", "run", "--once", "--data", str(data), "--out", str(out),
           "--config", str(write_config(tmp_path))]
    first = subprocess.run(run, check=False, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    for serial, point in POINTS.items():
        assert point_results(out, serial, SCAN)[point]["source_files"]["root"]["path"] == str(newer)
    recorded = len(journal(out))
    second = subprocess.run(run, check=False, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and len(journal(out)) == recorded  # the older file does not take over


def _problems_text(out: Path) -> str:
    path = out / "state" / "problems.json"
    return json.dumps(json.loads(path.read_text())) if path.exists() else ""
