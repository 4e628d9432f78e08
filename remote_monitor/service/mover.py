"""Journaled, crash-safe directory moves: rename on one filesystem; across filesystems copy, fsync,
verify size and SHA-256 of every file, then delete the source. Nothing is deleted without a verified copy."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from remote_monitor.service.store import atomic_write_json, read_json


class MoveError(OSError):
    """A move cannot be done safely (target exists, copy does not verify)."""


def _files(root: Path) -> dict[str, Path]:
    if root.is_file():
        return {"": root}
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Mover:
    """Moves with a journal entry in journal_dir for each move in progress; resume() finishes them."""

    def __init__(self, journal_dir: Path) -> None:
        self.journal_dir = Path(journal_dir)

    def move(self, src: Path, dst: Path) -> None:
        src, dst = Path(src), Path(dst)
        if not src.exists():
            raise MoveError(f"cannot move {src}: it does not exist")
        if dst.exists():
            raise MoveError(f"cannot move {src} to {dst}: target exists already")
        entry = self.journal_dir / f"{uuid.uuid4().hex}.json"
        atomic_write_json(entry, {"src": str(src), "dst": str(dst), "step": "started"})
        self._run(entry, src, dst)

    def _run(self, entry: Path, src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            if src.exists() and not dst.exists():
                self._rename(src, dst)
                entry.unlink()
                return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        self._copy_verify_delete(entry, src, dst)

    @staticmethod
    def _rename(src: Path, dst: Path) -> None:
        os.rename(src, dst)

    @staticmethod
    def _copy(src: Path, dst: Path) -> None:
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)

    def _copy_verify_delete(self, entry: Path, src: Path, dst: Path) -> None:
        """Cross-filesystem path; every step can be re-run after a crash."""
        if src.exists():
            partial = dst.with_name(f".{dst.name}.partial")
            if not dst.exists():
                if partial.exists():
                    shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
                self._copy(src, partial)
                _fsync_tree(partial)
                os.rename(partial, dst)
            self._verify(src, dst)
            atomic_write_json(entry, {"src": str(src), "dst": str(dst), "step": "verified"})
            shutil.rmtree(src) if src.is_dir() else src.unlink()
        entry.unlink()

    @staticmethod
    def _verify(src: Path, dst: Path) -> None:
        a, b = _files(src), _files(dst)
        if set(a) != set(b):
            raise MoveError(f"copy of {src} at {dst} has different files; source kept")
        for name, path in a.items():
            if path.stat().st_size != b[name].stat().st_size or _sha256(path) != _sha256(b[name]):
                raise MoveError(f"copy of {path} at {b[name]} differs (size or SHA-256); source kept")

    def resume(self) -> list[tuple[str, str]]:
        """Finish every move a crash interrupted; returns the (src, dst) pairs it finished."""
        finished = []
        for entry in sorted(self.journal_dir.glob("*.json")):
            job = read_json(entry)
            src, dst = Path(job["src"]), Path(job["dst"])
            if not src.exists() and dst.exists():
                entry.unlink()  # the rename or the delete had happened
            elif src.exists() and dst.exists() and job["step"] == "started" and not self._verifies(src, dst):
                raise MoveError(f"{dst} exists but is not a verified copy of {src}; resolve by hand ({entry})")
            else:
                self._run(entry, src, dst) if not dst.exists() else self._copy_verify_delete(entry, src, dst)
            finished.append((str(src), str(dst)))
        return finished

    def _verifies(self, src: Path, dst: Path) -> bool:
        try:
            self._verify(src, dst)
            return True
        except MoveError:
            return False
