"""One monitor per <out>; the command key outside the served tree; a configured key must exist."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from remote_monitor.service.command_signing import KeyFileError, generate_key_file, load_key
from remote_monitor.service.monitor import ensure_key
from remote_monitor.service.out_lock import OutLock, OutLocked
from remote_monitor.stand.config import AreaSettings, Config


def test_second_lock_on_the_same_out_names_the_holder(tmp_path: Path) -> None:
    with OutLock(tmp_path), pytest.raises(OutLocked, match=rf"pid {os.getpid()} on host \S+"):
        OutLock(tmp_path).acquire()
    with OutLock(tmp_path):  # released: the next one gets it
        pass


def test_lock_of_a_killed_holder_does_not_block(tmp_path: Path) -> None:
    script = ("import sys, time\nfrom pathlib import Path\nfrom remote_monitor.service.out_lock import OutLock\n"
              f"lock = OutLock(Path({str(tmp_path)!r}))\nlock.acquire()\nprint('locked', flush=True)\ntime.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(OutLocked, match=f"pid {holder.pid}"):
        OutLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    with OutLock(tmp_path):  # the kernel dropped the dead holder's lock
        pass


def test_default_key_lives_outside_the_served_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    key = ensure_key(Config(), out)
    path = out / "private" / "monitor.key"
    assert load_key(path) == key and not path.parent.stat().st_mode & 0o077
    assert not (out / "monitor.key").exists()  # the server serves reports/ and results/ only


def test_key_of_an_earlier_version_is_moved_out_of_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = generate_key_file(out / "monitor.key")
    key = load_key(old)
    assert ensure_key(Config(), out) == key
    assert not old.exists() and (out / "private" / "monitor.key").is_file()


def test_missing_configured_key_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    configured = tmp_path / "keys" / "monitor.key"
    cfg = replace(Config(), areas=AreaSettings(key_file=str(configured)))
    with pytest.raises(KeyFileError, match="does not exist"):
        ensure_key(cfg, tmp_path / "out")
    assert not configured.exists()
    generate_key_file(configured)
    assert ensure_key(cfg, tmp_path / "out") == load_key(configured)
