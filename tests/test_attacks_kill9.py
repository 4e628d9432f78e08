"""kill -9 at each step of a flag across file systems, then a restart: the accepted command is finished exactly
once, recorded in the scan and in an "accepted" receipt; never "rejected: replayed command" for moved data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remote_monitor.service.mover import Mover
from remote_monitor.service.store import ResultsStore

from .test_attacks_commands import POINTS, SCAN, SN, _drop, _exdev, make_stand, processor, signed, tree

# runs in a child process: the step given is replaced by "do a part of it, then SIGKILL myself"
CHILD = r"""
import errno, os, shutil, signal, sys
from pathlib import Path
from remote_monitor.service import mover, command_state
from remote_monitor.service.commands import CommandProcessor
from remote_monitor.service.mover import Mover
from remote_monitor.service.store import ResultsStore

step, data, out, flag, archive = sys.argv[1], *map(Path, sys.argv[2:6])
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def exdev(src, dst):
    raise OSError(errno.EXDEV, "Invalid cross-device link")  # FLAG on another file system
mover.Mover._rename = staticmethod(exdev)
copies = []
original_copy, original_remove = mover.Mover._copy, mover._remove
original_receipt = command_state.CommandState.file_receipt
def copy(src, dst):
    copies.append(src)
    original_copy(src, dst)
    if step == "copy":
        shutil.rmtree(next(p for p in Path(dst).iterdir() if p.is_dir()))  # half of the copy is there
        die()
    if step == "second pair" and len(copies) == 2:
        die()
def remove(path):
    if step == "delete" and Path(path).is_dir() and str(path).startswith(str(data)):
        next(p for p in Path(path).rglob("*") if p.is_file()).unlink()  # half of the source is gone
        die()
    original_remove(path)
def receipt(self, name, content):
    target = original_receipt(self, name, content)
    die()
patches = {
    "claimed": (CommandProcessor, "_execute", lambda self, cmd: die()),
    "fsync": (mover, "_fsync_tree", lambda root: die()),
    "verify": (mover.Mover, "_verify", staticmethod(lambda src, dst: die())),
    "scan update": (CommandProcessor, "_update_scan", lambda self, cmd: die()),
    "receipt": (command_state.CommandState, "file_receipt", receipt),
}
mover.Mover._copy = staticmethod(copy)
mover._remove = remove
if step in patches:
    owner, name, replacement = patches[step]
    setattr(owner, name, replacement)
proc = CommandProcessor(data, out, flag, archive, b"k" * 32, ResultsStore(out))
proc.process_inbox()
print("finished without being killed")
"""

STEPS = ["claimed", "copy", "fsync", "verify", "delete", "second pair", "scan update", "receipt"]


@pytest.mark.parametrize("same_fs_after_restart", [False, True])
@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_then_restart_finishes_the_command_once(tmp_path: Path, step: str,
                                                                    same_fs_after_restart: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stand: dict[str, Any] = make_stand(tmp_path, file_bytes=20_000)
    before = tree(stand["scan"])
    cmd = signed(points=list(POINTS)) if step == "second pair" else signed()
    _drop(stand, cmd)
    child = subprocess.run([sys.executable, "-c", CHILD, step, *(str(stand[k]) for k in
                                                                   ("data", "out", "flag", "archive"))],
                           capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == -signal.SIGKILL, (child.stdout, child.stderr)

    if not same_fs_after_restart:
        monkeypatch.setattr(Mover, "_rename", staticmethod(_exdev))
    restarted = processor(stand)  # the monitor's start: recover, then the inbox
    recovered = restarted.recover() + restarted.process_inbox()
    assert restarted.problems == []
    flagged = stand["flag"] / f"wavedump_output_{SCAN}" / SN
    moved = {k: v for k, v in tree(flagged).items() if not k.startswith("monitor_results/")}
    assert moved == before  # all data moved, complete (the copy of the results aside)
    assert not stand["scan"].exists()
    done = [json.loads(p.read_text()) for p in (stand["out"] / "commands" / "done").glob("*.json")]
    rejected = list((stand["out"] / "commands" / "rejected").glob("*.json"))
    assert [r["nonce"] for r in done] == [cmd["nonce"]] and not rejected, (done, rejected, recovered)
    assert done[0]["status"] == "accepted"
    scan = ResultsStore(stand["out"]).read_scan(SN, SCAN)
    if step == "second pair":
        assert scan["flagged_points"] == sorted(POINTS)
    else:
        assert scan["state"] == "flagged"
    assert scan["state_info"]["command_id"] == cmd["nonce"]
    commands = stand["out"] / "commands"
    assert not list((commands / "inbox").iterdir()) and not list((commands / "executing").glob("*"))
    assert not list((stand["out"] / "state" / "moves").glob("*.json"))
    assert not list(stand["flag"].rglob(".*partial"))
    # and the same command sent again now is a replay
    again = processor(stand).process_file(_drop(stand, cmd))
    assert again["status"] == "rejected" and "replayed" in again["reason"]
