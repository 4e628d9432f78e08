"""Journaled, crash-safe directory moves: rename on one filesystem; across filesystems copy, fsync,
verify size and SHA-256 of every file, then delete the source. Nothing is deleted without a verified copy.

A move that fails before its copy is verified leaves nothing behind (partial copy removed, journal entry
closed). Once the copy is verified the move is committed: resume() after a crash only deletes what is left
of the source. resume() never raises: what it cannot finish goes to journal_dir/attention/ for a person."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from remote_monitor.service.store import atomic_write_json, read_json


class MoveError(OSError):
    """A move cannot be done safely (target exists, copy does not verify); nothing was moved."""


class MoveCommitted(MoveError):
    """The verified copy exists but the source could not be removed completely (resume() retries)."""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


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
        self.problems: list[str] = []  # what resume() could not finish (for the monitor's problem list)

    def move(self, src: Path, dst: Path) -> None:
        src, dst = Path(src), Path(dst)
        if not src.exists():
            raise MoveError(f"cannot move {src}: it does not exist")
        if dst.exists():
            raise MoveError(f"cannot move {src} to {dst}: target exists already")
        entry = self.journal_dir / f"{uuid.uuid4().hex}.json"
        atomic_write_json(entry, {"src": str(src), "dst": str(dst), "step": "started"})
        try:
            self._run(entry, src, dst)
        except MoveCommitted:
            raise
        except Exception as exc:  # not committed: leave nothing behind (a crash is left to resume())
            self._roll_back(entry, src, dst)
            if isinstance(exc, MoveError):
                raise
            raise MoveError(f"cannot move {src} to {dst}: {exc}; nothing moved") from exc

    @staticmethod
    def _roll_back(entry: Path, src: Path, dst: Path) -> None:
        """Remove this move's partial or unverified copy (the source is complete) and close its entry."""
        if src.exists():
            for leftover in (dst.with_name(f".{dst.name}.partial"), dst):
                if leftover.exists() or leftover.is_symlink():
                    _remove(leftover)
        entry.unlink(missing_ok=True)

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

    def _copy_verify_delete(self, entry: Path, src: Path, dst: Path, verified: bool = False) -> None:
        """Cross-filesystem path; every step can be re-run after a crash."""
        if src.exists() and not verified:
            partial = dst.with_name(f".{dst.name}.partial")
            if not dst.exists():
                if partial.exists():
                    _remove(partial)
                self._copy(src, partial)
                _fsync_tree(partial)
                os.rename(partial, dst)
            self._verify(src, dst)
            atomic_write_json(entry, {"src": str(src), "dst": str(dst), "step": "verified"})
        if src.exists() or src.is_symlink():
            try:
                _remove(src)
            except OSError as exc:
                raise MoveCommitted(f"{src} copied and verified at {dst}, but removing the source failed: "
                                    f"{exc}; it is retried at the next start") from exc
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
        """Finish every move a crash interrupted; returns the (src, dst) pairs it finished.

        Never raises: an entry it cannot finish is moved to journal_dir/attention/ and described in
        self.problems (the monitor shows them and runs on)."""
        finished = []
        for entry in sorted(self.journal_dir.glob("*.json")):
            try:
                job = read_json(entry)
                src, dst, step = Path(job["src"]), Path(job["dst"]), job["step"]
                if step not in ("started", "verified"):
                    raise ValueError(f"unknown step {step!r}")
            except Exception as exc:  # noqa: BLE001 - a corrupt journal entry: a person has to look
                self._attention(entry, f"unreadable move journal entry: {type(exc).__name__}: {exc}")
                continue
            try:
                self._resume_one(entry, src, dst, step)
            except Exception as exc:  # noqa: BLE001 - an error boundary
                self._attention(entry, f"move of {src} to {dst} could not be finished: {exc}")
                continue
            finished.append((str(src), str(dst)))
        return finished

    def _resume_one(self, entry: Path, src: Path, dst: Path, step: str) -> None:
        partial = dst.with_name(f".{dst.name}.partial")
        if partial.exists() or partial.is_symlink():
            _remove(partial)  # the interrupted copy of this move (whichever way it is finished now)
        if not src.exists() and dst.exists():
            entry.unlink()  # the rename or the delete had happened
        elif not src.exists():
            raise MoveError("neither the source nor the target exists")
        elif step == "verified":
            self._copy_verify_delete(entry, src, dst, verified=True)  # only the source removal was left
        elif dst.exists() and not self._verifies(src, dst):
            _remove(dst)  # our own copy, interrupted before it was verified (the target was checked free)
            self._run(entry, src, dst)
        elif dst.exists():
            self._copy_verify_delete(entry, src, dst)
        else:
            self._run(entry, src, dst)

    def _attention(self, entry: Path, what: str) -> None:
        folder = self.journal_dir / "attention"
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.replace(entry, folder / entry.name)
        self.problems.append(f"{what} (journal entry now in {folder / entry.name}; resolve by hand)")

    def _verifies(self, src: Path, dst: Path) -> bool:
        try:
            self._verify(src, dst)
            return True
        except MoveError:
            return False
