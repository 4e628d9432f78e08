"""Journaled moves: rename, verified cross-filesystem copy, and recovery after a crash at each step."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from remote_monitor.service import mover as mover_module
from remote_monitor.service.mover import MoveError, Mover


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    src = tmp_path / "data" / "wavedump_output_261125_101500" / "EA0001"
    for i in range(3):
        (src / f"wavesave_theta{i * 10}_phi0").mkdir(parents=True)
        (src / f"wavesave_theta{i * 10}_phi0" / "wave2.txt").write_bytes(os.urandom(1000 + i))
    return src


def _no_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    def exdev(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    monkeypatch.setattr(Mover, "_rename", staticmethod(exdev))


def test_same_filesystem_rename(tmp_path: Path, scan: Path) -> None:
    before = _tree(scan)
    dst = tmp_path / "FLAG" / "x" / "EA0001"
    Mover(tmp_path / "journal").move(scan, dst)
    assert not scan.exists() and _tree(dst) == before
    assert not list((tmp_path / "journal").glob("*.json"))
    with pytest.raises(MoveError, match="target exists"):
        Mover(tmp_path / "journal").move(dst, dst)


def test_cross_filesystem_copy_is_verified_before_delete(tmp_path: Path, scan: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _no_rename(monkeypatch)
    before = _tree(scan)
    dst = tmp_path / "ARCHIVE" / "EA0001"
    Mover(tmp_path / "journal").move(scan, dst)
    assert not scan.exists() and _tree(dst) == before


def test_copy_that_does_not_verify_keeps_the_source(tmp_path: Path, scan: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _no_rename(monkeypatch)
    def corrupting_copy(src: Path, dst: Path) -> None:
        shutil.copytree(src, dst)
        next(Path(dst).rglob("wave2.txt")).write_bytes(b"bit rot")
    monkeypatch.setattr(Mover, "_copy", staticmethod(corrupting_copy))
    before = _tree(scan)
    with pytest.raises(MoveError, match="differs"):
        Mover(tmp_path / "journal").move(scan, tmp_path / "ARCHIVE" / "EA0001")
    assert _tree(scan) == before


@pytest.mark.parametrize("crash_in", ["copytree", "fsync", "verify", "delete"])
def test_crash_at_each_step_then_resume(tmp_path: Path, scan: Path, monkeypatch: pytest.MonkeyPatch,
                                        crash_in: str) -> None:
    _no_rename(monkeypatch)
    before = _tree(scan)
    dst = tmp_path / "ARCHIVE" / "EA0001"
    targets = {"copytree": (Mover, "_copy"), "fsync": (mover_module, "_fsync_tree"),
               "verify": (Mover, "_verify"), "delete": (mover_module.shutil, "rmtree")}
    owner, name = targets[crash_in]
    original = getattr(owner, name)

    def crash(*args: object, **kwargs: object) -> None:
        if crash_in == "copytree":
            original(*args, **kwargs)  # the copy is half done when the power goes
            shutil.rmtree(next(Path(args[1]).iterdir()))
        raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(owner, name, staticmethod(crash) if owner is Mover else crash)
    with pytest.raises(KeyboardInterrupt):
        Mover(tmp_path / "journal").move(scan, dst)
    assert _tree(scan) == before  # nothing deleted before a verified copy exists
    monkeypatch.setattr(owner, name, staticmethod(original) if owner is Mover else original)
    finished = Mover(tmp_path / "journal").resume()
    assert finished == [(str(scan), str(dst))]
    assert not scan.exists() and _tree(dst) == before
    assert not list((tmp_path / "journal").glob("*.json")) and not list(dst.parent.glob(".*partial"))
