"""Attacks on the command path: poison commands, lifetimes, corrupt state, floods of junk, failing moves."""

from __future__ import annotations

import errno
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remote_monitor.service.command_signing import build_command, sign
from remote_monitor.service.commands import CommandProcessor
from remote_monitor.service.mover import Mover
from remote_monitor.service.store import ResultsStore, atomic_write_json

KEY = b"k" * 32
SN, SCAN = "EA0001", "261125_101500"
POINTS = ("theta0_phi0", "theta10_phi90")


def make_stand(root: Path, file_bytes: int = 100) -> dict[str, Any]:
    """A data area with one scan of two points, an empty <out>, and where FLAG/ARCHIVE go."""
    data, out = root / "data", root / "out"
    scan = data / f"wavedump_output_{SCAN}" / SN
    for point in POINTS:
        (scan / f"wavesave_{point}").mkdir(parents=True)
        (scan / f"wavesave_{point}" / f"wave2save_{point}.txt").write_bytes(os.urandom(file_bytes))
    ResultsStore(out).update_scan(SN, SCAN, state="live")
    return {"data": data, "out": out, "scan": scan, "flag": root / "FLAG", "archive": root / "ARCHIVE"}


def processor(stand: dict[str, Any], **kw: Any) -> CommandProcessor:
    return CommandProcessor(stand["data"], stand["out"], stand["flag"], stand["archive"], KEY,
                            ResultsStore(stand["out"]), **kw)


def signed(action: str = "flag", **kw: Any) -> dict[str, Any]:
    return sign(build_command(action, SN, SCAN, reason=kw.pop("reason", "bad"), issuer="alice", **kw), KEY)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def inbox(stand: dict[str, Any]) -> Path:
    folder = stand["out"] / "commands" / "inbox"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def receipts(stand: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((stand["out"] / "commands" / folder).glob("*.json"))]


@pytest.fixture
def stand(tmp_path: Path) -> dict[str, Any]:
    return make_stand(tmp_path)


def _signed_text(**fields: Any) -> bytes:
    cmd = signed()
    cmd.update(fields)
    return json.dumps(cmd).encode()


POISON: dict[str, bytes] = {
    # a lone surrogate is valid JSON but cannot be encoded: it killed the monitor on every start
    "lone surrogate in reason": _signed_text(reason="\ud800"),
    "lone surrogate in a point": _signed_text(points=["\udfff"]),
    "deeply nested JSON": b'{"a":' * 20000 + b"1" + b"}" * 20000,
    "nested array": b"[" * 60000 + b"]" * 60000,
    "wrong types": _signed_text(points=[1, 2], reason=5),
    "points not a list": _signed_text(points={"theta0_phi0": 1}),
    "huge reason": _signed_text(reason="x" * 50000),
    "too many points": _signed_text(points=["theta0_phi0"] * 1000),
    "not UTF-8": b'{"reason": "\xff\xfe"}',
    "NaN and numbers": b'{"nonce": NaN, "x": 1e999999}',
    "larger than 64 kB": b'{"reason": "' + b"x" * 70000 + b'"}',
    "empty": b"",
    "JSON null": b"null",
}


@pytest.mark.parametrize("case", POISON)
def test_poison_command_is_rejected_with_a_receipt_and_leaves_the_inbox(stand: dict[str, Any], case: str) -> None:
    before = tree(stand["data"])
    (inbox(stand) / "poison.json").write_bytes(POISON[case])
    got = processor(stand).process_inbox()
    assert [r["status"] for r in got] == ["rejected"], got
    assert not list(inbox(stand).iterdir())
    assert len(receipts(stand, "rejected")) == 1
    assert len(json.dumps(receipts(stand, "rejected")[0])) < 10_000  # junk is not copied whole into receipts
    if case.startswith("lone surrogate"):  # the sender finds the receipt under the command's nonce
        nonce = json.loads(POISON[case])["nonce"]
        assert (stand["out"] / "commands" / "rejected" / f"{nonce}.json").is_file()
    assert tree(stand["data"]) == before
    # the processor still works after the poison
    assert processor(stand).process_file(_drop(stand, signed()))["status"] == "accepted"


def _drop(stand: dict[str, Any], cmd: dict[str, Any]) -> Path:
    path = inbox(stand) / f"{cmd['nonce']}.json"
    atomic_write_json(path, cmd)
    return path


def test_fifo_and_symlink_in_the_inbox_do_not_block_or_leak(stand: dict[str, Any], tmp_path: Path) -> None:
    os.mkfifo(inbox(stand) / "fifo.json")  # reading it would block for ever
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (inbox(stand) / "link.json").symlink_to(secret)
    got = processor(stand).process_inbox()
    assert sorted(r["status"] for r in got) == ["rejected", "rejected"]
    assert not list(inbox(stand).iterdir())
    assert "top secret" not in json.dumps(receipts(stand, "rejected"))
    assert secret.read_text() == "top secret"


def test_command_lifetime_is_limited(stand: dict[str, Any]) -> None:
    forever = signed(ttl_s=(datetime(9999, 1, 1, tzinfo=UTC) - datetime.now(UTC)).total_seconds())
    receipt = processor(stand).process_file(_drop(stand, forever))
    assert receipt["status"] == "rejected" and "lifetime" in receipt["reason"]
    two_days = signed(ttl_s=2 * 86400)
    assert processor(stand).process_file(_drop(stand, two_days))["status"] == "rejected"
    allowed = processor(stand, max_lifetime=timedelta(days=3)).process_file(_drop(stand, signed(ttl_s=2 * 86400)))
    assert allowed["status"] == "accepted"


@pytest.mark.parametrize("corruption", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"a": 1}' * 3, b""])
def test_corrupt_nonce_file_is_quarantined_and_rebuilt_from_receipts(stand: dict[str, Any],
                                                                    corruption: bytes) -> None:
    first = signed(points=["theta0_phi0"])
    assert processor(stand).process_file(_drop(stand, first))["status"] == "accepted"
    nonces = stand["out"] / "commands" / "nonces.json"
    nonces.write_bytes(corruption)
    problems: list[str] = []
    proc = processor(stand)
    replay = proc.process_file(_drop(stand, first))
    problems += proc.problems
    assert replay["status"] == "rejected" and "replayed" in replay["reason"], replay  # rebuilt, still refused
    assert list((stand["out"] / "quarantine").iterdir()) and problems
    assert processor(stand).process_file(_drop(stand, signed(points=["theta10_phi90"])))["status"] == "accepted"


def test_junk_flood_keeps_the_receipts_bounded(stand: dict[str, Any]) -> None:
    proc = processor(stand, receipts_keep=20)
    for i in range(150):
        (inbox(stand) / f"junk{i}.json").write_bytes(b'{"nonce": "%032x", "junk": true}' % i)
    got = proc.process_inbox()
    assert len(got) == 150 and {r["status"] for r in got} == {"rejected"}
    assert len(list((stand["out"] / "commands" / "rejected").iterdir())) == 20
    assert not list(inbox(stand).iterdir())


def _exdev(src: object, dst: object) -> None:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def test_disk_full_during_a_cross_filesystem_flag_leaves_nothing_behind(stand: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Mover, "_rename", staticmethod(_exdev))

    def half_copy_then_full(src: Path, dst: Path) -> None:
        shutil.copytree(src, dst)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Mover, "_copy", staticmethod(half_copy_then_full))
    before = tree(stand["data"])
    cmd = signed()
    receipt = processor(stand).process_file(_drop(stand, cmd))
    assert receipt["status"] == "rejected" and "No space left" in receipt["reason"], receipt
    assert tree(stand["data"]) == before
    assert not [p for p in stand["flag"].rglob("*") if p.is_file()]  # no partial copy left
    assert not list((stand["out"] / "state" / "moves").glob("*.json"))  # journal entry closed
    assert not list((stand["out"] / "commands" / "executing").glob("*.json"))
    monkeypatch.undo()
    # space is back; a restart must NOT carry out the rejected flag
    proc = processor(stand)
    assert proc.recover() == [] and proc.problems == []
    assert tree(stand["data"]) == before and ResultsStore(stand["out"]).read_scan(SN, SCAN)["state"] == "live"


def test_disk_full_on_a_real_small_tmpfs(tmp_path: Path) -> None:
    """FLAG on a 2 MB tmpfs, a scan of 3 MB: the flag is rejected and nothing is left on the tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    if os.system(f"mount -t tmpfs -o size=2m tmpfs {small} 2>/dev/null") != 0:
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        stand = make_stand(tmp_path, file_bytes=1_500_000)
        stand["flag"] = small / "FLAG"
        before = tree(stand["data"])
        receipt = processor(stand).process_file(_drop(stand, signed()))
        assert receipt["status"] == "rejected" and "No space left" in receipt["reason"], receipt
        assert tree(stand["data"]) == before
        assert not [p for p in small.rglob("*") if p.is_file()], list(small.rglob("*"))
        assert not list((stand["out"] / "state" / "moves").glob("*.json"))
        proc = processor(stand)
        assert proc.recover() == [] and tree(stand["data"]) == before
        # a flag of one point that fits goes through
        ok = processor(stand).process_file(_drop(stand, signed(points=["theta0_phi0"])))
        assert ok["status"] == "accepted", ok
    finally:
        os.system(f"umount {small}")
