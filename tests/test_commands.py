"""Signed commands: each check rejects with its reason and moves nothing; valid ones move data and mark the scan."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remote_monitor.service.command_signing import build_command, sign
from remote_monitor.service.commands import CommandProcessor
from remote_monitor.service.store import ResultsStore, atomic_write_json

KEY = b"s" * 32
SN, SCAN = "EA0001", "261125_101500"


@pytest.fixture
def stand(tmp_path: Path) -> dict[str, Any]:
    data, out = tmp_path / "data", tmp_path / "out"
    scan = data / f"wavedump_output_{SCAN}" / SN
    for point in ("theta0_phi0", "theta10_phi90"):
        (scan / f"wavesave_{point}").mkdir(parents=True)
        (scan / f"wavesave_{point}" / f"wave2save_{point}.txt").write_text("Record Length: 1\n")
    (scan / "wavesave_HV_CHECK").mkdir()
    for hv in (1700, 1750):
        (scan / "wavesave_HV_CHECK" / f"wave2save_HV_{hv}.txt").write_text("x")
    store = ResultsStore(out)
    store.update_scan(SN, SCAN, state="live")
    return {"data": data, "out": out, "flag": tmp_path / "FLAG", "archive": tmp_path / "ARCHIVE", "scan": scan,
            "store": store, "tmp": tmp_path}


def processor(stand: dict[str, Any], now: datetime | None = None) -> CommandProcessor:
    return CommandProcessor(stand["data"], stand["out"], stand["flag"], stand["archive"], KEY, stand["store"],
                            now=(lambda: now) if now else None)


def send(stand: dict[str, Any], cmd: dict[str, Any] | str, now: datetime | None = None) -> dict[str, Any]:
    inbox = stand["out"] / "commands" / "inbox"
    name = cmd["nonce"] if isinstance(cmd, dict) else "raw"
    path = inbox / f"{name}.json"
    if isinstance(cmd, dict):
        atomic_write_json(path, cmd)
    else:
        inbox.mkdir(parents=True, exist_ok=True)
        path.write_text(cmd)
    receipt = processor(stand, now).process_file(path)
    assert not path.exists()  # filed away, never silently deleted
    return receipt


def command(action: str = "flag", serial: str = SN, scan_id: str = SCAN, key: bytes = KEY, **kw: Any) -> dict[str, Any]:
    return sign(build_command(action, serial, scan_id, reason=kw.pop("reason", "no SPE peak"),
                              issuer=kw.pop("issuer", "alice"), **kw), key)


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_flag_moves_data_and_marks_scan(stand: dict[str, Any]) -> None:
    receipt = send(stand, command())
    assert receipt["status"] == "accepted", receipt
    moved = stand["flag"] / f"wavedump_output_{SCAN}" / SN
    assert (moved / "wavesave_theta0_phi0" / "wave2save_theta0_phi0.txt").exists()
    assert (moved / "monitor_results" / "scan.json").exists()
    assert not stand["scan"].exists()
    scan = stand["store"].read_scan(SN, SCAN)
    assert scan["state"] == "flagged" and scan["state_info"]["by"] == "alice"
    assert scan["state_info"]["reason"] == "no SPE peak"
    done = json.loads((stand["out"] / "commands" / "done" / f"{receipt['nonce']}.json").read_text())
    assert done["command"]["signature"] and done["moved"]


def test_point_flag_and_unflag(stand: dict[str, Any]) -> None:
    assert send(stand, command(points=["theta10_phi90", "HV_1700"]))["status"] == "accepted"
    flagged = stand["flag"] / f"wavedump_output_{SCAN}" / SN
    assert (flagged / "wavesave_theta10_phi90").is_dir()
    assert (flagged / "wavesave_HV_CHECK" / "wave2save_HV_1700.txt").exists()
    assert (stand["scan"] / "wavesave_theta0_phi0").is_dir()
    assert (stand["scan"] / "wavesave_HV_CHECK" / "wave2save_HV_1750.txt").exists()
    scan = stand["store"].read_scan(SN, SCAN)
    assert scan["state"] == "live" and scan["flagged_points"] == ["HV_1700", "theta10_phi90"]
    assert send(stand, command("unflag", points=["theta10_phi90"]))["status"] == "accepted"
    assert (stand["scan"] / "wavesave_theta10_phi90" / "wave2save_theta10_phi90.txt").exists()
    assert stand["store"].read_scan(SN, SCAN)["flagged_points"] == ["HV_1700"]


def test_archive_then_flag_is_rejected(stand: dict[str, Any]) -> None:
    assert send(stand, command("archive"))["status"] == "accepted"
    assert (stand["archive"] / f"wavedump_output_{SCAN}" / SN / "wavesave_theta0_phi0").is_dir()
    assert stand["store"].read_scan(SN, SCAN)["state"] == "archived"
    receipt = send(stand, command("flag"))
    assert receipt["status"] == "rejected" and "not in the data area" in receipt["reason"]


def _forged(cmd: dict[str, Any]) -> dict[str, Any]:
    return {**cmd, "reason": "changed after signing"}


REJECTIONS = {
    "forged signature": (lambda: command(key=b"m" * 32), "bad signature"),
    "modified body": (lambda: _forged(command()), "bad signature"),
    "expired": (lambda: command(ttl_s=-1), "expired"),
    "from the future": (lambda: command(now=datetime.now(UTC) + timedelta(hours=1)), "future"),
    "unknown action": (lambda: command("delete"), "unknown action"),
    "serial ../x": (lambda: command(serial="../x"), "serial"),
    "serial a/b": (lambda: command(serial="a/b"), "serial"),
    "bad scan id": (lambda: command(scan_id="../../etc"), "scan"),
    "scan does not exist": (lambda: command(scan_id="261125_999999"), "not in the data area"),
    "point does not exist": (lambda: command(points=["theta50_phi90"]), "not found"),
    "bad point name": (lambda: command(points=["../../x"]), "point"),
    "extra field": (lambda: {**command(), "rm": "-rf"}, "unknown ['rm']"),
    "not JSON": (lambda: "{flag everything", "not a JSON command"),
}


@pytest.mark.parametrize("case", REJECTIONS)
def test_bad_commands_are_rejected_and_move_nothing(stand: dict[str, Any], case: str) -> None:
    make, reason = REJECTIONS[case]
    before = snapshot(stand["tmp"] / "data")
    receipt = send(stand, make())
    assert receipt["status"] == "rejected" and reason in receipt["reason"], receipt
    assert snapshot(stand["tmp"] / "data") == before
    assert not stand["flag"].exists() and not stand["archive"].exists()
    assert list((stand["out"] / "commands" / "rejected").glob("*.json"))
    assert stand["store"].read_scan(SN, SCAN)["state"] == "live"


def test_replayed_nonce_is_rejected_also_after_restart(stand: dict[str, Any]) -> None:
    cmd = command(points=["theta0_phi0"])
    assert send(stand, cmd)["status"] == "accepted"
    send(stand, command("unflag", points=["theta0_phi0"]))
    before = snapshot(stand["tmp"] / "data")
    receipt = send(stand, cmd)  # a new CommandProcessor each time: state comes from disk
    assert receipt["status"] == "rejected" and "replayed" in receipt["reason"]
    assert snapshot(stand["tmp"] / "data") == before


def test_two_commands_for_one_scan_are_serialized(stand: dict[str, Any]) -> None:
    commands = [command("flag"), command("archive")]
    inbox = stand["out"] / "commands" / "inbox"
    paths = []
    for cmd in commands:
        atomic_write_json(inbox / f"{cmd['nonce']}.json", cmd)
        paths.append(inbox / f"{cmd['nonce']}.json")
    receipts: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def run(path: Path) -> None:
        barrier.wait()
        receipts.append(processor(stand).process_file(path))
    threads = [threading.Thread(target=run, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r["status"] for r in receipts)
    assert statuses == ["accepted", "rejected"], receipts
    loser = next(r for r in receipts if r["status"] == "rejected")
    assert "not in the data area" in loser["reason"]
    in_flag = (stand["flag"] / f"wavedump_output_{SCAN}" / SN).exists()
    in_archive = (stand["archive"] / f"wavedump_output_{SCAN}" / SN).exists()
    assert in_flag != in_archive  # exactly one move happened, whole
