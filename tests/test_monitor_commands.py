"""Signed commands executed by the running monitor, and automatic archiving when a new scan starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remote_monitor.service import command_signing
from remote_monitor.service.store import atomic_write_json
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan

from .monitor_helpers import point_results, start_monitor, stop, wait_for, write_config

pytestmark = pytest.mark.slow

SERIAL = "CMD01"
OLD, NEW = "261125_080000", "261125_090000"
POINTS = ["theta0_phi0", "theta10_phi0"]
SIM = SimulationConfig(n_events=1200, record_length=400, seed=7)


def _send(out: Path, cmd: dict) -> dict:
    """Drop a command file into the inbox and wait for its receipt."""
    atomic_write_json(out / "commands" / "inbox" / f"{cmd['nonce']}.json", cmd)
    receipts = [out / "commands" / d / f"{cmd['nonce']}.json" for d in ("done", "rejected")]
    found = wait_for(lambda: next((r for r in receipts if r.exists()), None), 60, "a receipt")
    return json.loads(found.read_text())


def test_flag_forgery_and_automatic_archive_through_the_monitor(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    simulate_scan(data, SERIAL, scan_id=OLD, cfg=SIM, points=POINTS)
    proc = start_monitor(data, out, write_config(tmp_path, quiet=0.2))
    try:
        wait_for(lambda: len(point_results(out, SERIAL, OLD)) == 2, 240, "the first scan", proc)
        key = command_signing.load_key(out / "private" / "monitor.key")
        old_dir = data / f"wavedump_output_{OLD}" / SERIAL

        forged = command_signing.sign(command_signing.build_command(
            "flag", SERIAL, OLD, reason="test", issuer="mallory"), b"\x00" * 32)
        receipt = _send(out, forged)
        assert receipt["status"] == "rejected" and "signature" in receipt["reason"]
        assert old_dir.is_dir()

        flag = command_signing.sign(command_signing.build_command(
            "flag", SERIAL, OLD, reason="HV cable loose", issuer="alice", points=["theta10_phi0"]), key)
        receipt = _send(out, flag)
        assert receipt["status"] == "accepted", receipt
        flagged = tmp_path / "FLAG" / f"wavedump_output_{OLD}" / SERIAL / "wavesave_theta10_phi0"
        assert flagged.is_dir() and not (old_dir / "wavesave_theta10_phi0").exists()
        assert (old_dir / "wavesave_theta0_phi0").is_dir()  # only the flagged point moved
        wait_for(lambda: "HV cable loose" in (out / "reports" / f"{SERIAL}.html").read_text(), 30,
                 "the report to show the flag", proc)

        # a new scan of the same PMT begins: the old one is archived automatically
        simulate_scan(data, SERIAL, scan_id=NEW, cfg=SIM, points=POINTS)
        archived = tmp_path / "ARCHIVE" / f"wavedump_output_{OLD}" / SERIAL
        wait_for(archived.is_dir, 240, "the old scan to be archived", proc)
        wait_for(lambda: len(point_results(out, SERIAL, NEW)) == 2, 240, "the new scan", proc)
        scan = json.loads((out / "results" / SERIAL / OLD / "scan.json").read_text())
        assert scan["state"] == "archived" and "automatic" in scan["state_info"]["by"]
        assert not old_dir.exists()
        assert (archived / "wavesave_theta0_phi0").is_dir()
    finally:
        code, output = stop(proc)
    assert code == 0, output
