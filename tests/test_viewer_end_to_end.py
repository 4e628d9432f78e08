"""The laptop viewer against the real monitor and its HTTP endpoint on loopback: mirror, flag, forgery."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from local_viewer.cli import main as viewer_main
from local_viewer.mirror import Mirror
from remote_monitor.service.command_signing import generate_key_file
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan

from .monitor_helpers import point_results, start_monitor, stop, wait_for, write_config

pytestmark = pytest.mark.slow

SERIAL, SCAN = "VIEW01", "261125_140000"
POINTS = ["theta0_phi0", "theta10_phi90", "theta20_phi180"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unchanged_for(paths: list[Path], seconds: float) -> Callable[[], bool]:
    """A condition: every file exists and none was written in the last `seconds` (the monitor renders a report
    after it writes the point's result, so the third result's file can come before the report that shows it)."""
    return lambda: all(p.exists() and time.time() - p.stat().st_mtime > seconds for p in paths)


def test_viewer_mirrors_and_flags_through_the_real_monitor(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, out, laptop = tmp_path / "data", tmp_path / "out", tmp_path / "laptop"
    simulate_scan(data, SERIAL, scan_id=SCAN, cfg=SimulationConfig(n_events=1000, record_length=300, seed=4),
                  points=POINTS)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_monitor(data, out, write_config(tmp_path, quiet=0.2), "--serve", f"127.0.0.1:{port}")
    try:
        wait_for(lambda: len(point_results(out, SERIAL, SCAN)) == 3, 240, "three processed points", proc)
        reports = [out / "reports" / name for name in ("index.html", f"{SERIAL}.html")]
        wait_for(_unchanged_for(reports, 2.0), 60, "the reports, written and settled", proc)

        mirror = Mirror(url, laptop)
        mirror.poll_once()
        for name in ("index.html", f"{SERIAL}.html"):
            local = next(laptop.rglob(name))
            assert local.read_bytes() == (out / "reports" / name).read_bytes()

        # a command signed with a key the monitor does not know is rejected, nothing moves
        wrong_key = generate_key_file(tmp_path / "wrong.key")
        code = viewer_main(["flag", SERIAL, "--scan", SCAN, "--reason", "test", "--key", str(wrong_key),
                            "--url", url, "--wait", "60", "--issuer", "mallory"])
        assert code == 1
        assert "rejected" in capsys.readouterr().out
        assert (data / f"wavedump_output_{SCAN}" / SERIAL / "wavesave_theta10_phi90").is_dir()

        # the real key flags one point: its data moves to the FLAG area and the report says who and why
        code = viewer_main(["flag", SERIAL, "--scan", SCAN, "--points", "theta10_phi90", "--reason",
                            "laser fibre unplugged", "--key", str(out / "private" / "monitor.key"), "--url", url,
                            "--wait", "60", "--issuer", "alice"])
        assert code == 0, capsys.readouterr()
        assert "accepted" in capsys.readouterr().out
        assert (tmp_path / "FLAG" / f"wavedump_output_{SCAN}" / SERIAL / "wavesave_theta10_phi90").is_dir()
        wait_for(lambda: "laser fibre unplugged" in (out / "reports" / f"{SERIAL}.html").read_text(), 30,
                 "the report to show the flag", proc)
        mirror.poll_once()
        assert "laser fibre unplugged" in next(laptop.rglob(f"{SERIAL}.html")).read_text()
        scan = json.loads((out / "results" / SERIAL / SCAN / "scan.json").read_text())
        assert scan["flagged_points"] == ["theta10_phi90"] and scan["state_info"]["by"] == "alice"
    finally:
        code, output = stop(proc)
    assert code == 0, output
