"""What the command processor keeps on disk besides the data: used nonces, receipts, commands in execution.

- nonces.json: nonce -> time first seen; corrupt -> quarantined and rebuilt from the receipts; entries
  older than the longest command lifetime are dropped (such a command is expired anyway).
- done/ and rejected/: one receipt per command, the oldest rotated out beyond `keep`.
- executing/<nonce>.json: the intent of a command whose checks passed, written before anything moves, so a
  restart finishes exactly what was accepted (see CommandProcessor.recover).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from remote_monitor.service.command_signing import NONCE_RE
from remote_monitor.service.store import CorruptFile, atomic_write_json, read_json, read_json_object


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive flock on path (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class CommandState:
    """The files below <out>/commands/ other than the inbox."""

    def __init__(self, base: Path, keep: int, forget_after: timedelta,
                 on_corrupt: Callable[[CorruptFile], None]) -> None:
        self.base = base
        self.done, self.rejected, self.executing = base / "done", base / "rejected", base / "executing"
        self.locks, self.nonce_file = base / "locks", base / "nonces.json"
        self.keep = keep
        self.forget_after = forget_after
        self.on_corrupt = on_corrupt

    # ---- nonces -----------------------------------------------------------------------------------
    def _nonces(self) -> dict[str, str]:
        try:
            seen = read_json_object(self.nonce_file)
            if seen is not None and all(isinstance(v, str) for v in seen.values()):
                return seen
            if seen is not None:
                raise CorruptFile(self.nonce_file, "values must be times")
        except CorruptFile as exc:
            self.on_corrupt(exc)  # quarantines the file
        else:
            return {}
        return self._rebuilt_nonces()

    def _rebuilt_nonces(self) -> dict[str, str]:
        """Every nonce that has a receipt or an intent (the record of what was used)."""
        seen: dict[str, str] = {}
        for folder in (self.done, self.rejected, self.executing):
            for path in folder.glob("*.json"):
                nonce = path.name.split(".")[0]
                if NONCE_RE.fullmatch(nonce):
                    seen.setdefault(nonce, datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(
                        timespec="seconds"))
        return seen

    def claim(self, nonce: str, now: datetime, intent: dict[str, Any]) -> str | None:
        """Record the nonce as used (and the intent before it); the earlier use's time if it was used."""
        with locked(self.locks / "nonces.lock"):
            seen = self._nonces()
            if nonce in seen:
                return seen[nonce]
            self.write_intent(nonce, intent)
            seen[nonce] = now.isoformat(timespec="seconds")
            horizon = now - self.forget_after
            atomic_write_json(self.nonce_file, {n: t for n, t in seen.items() if not _older(t, horizon)})
            return None

    # ---- intents ----------------------------------------------------------------------------------
    def write_intent(self, nonce: str, intent: dict[str, Any]) -> None:
        atomic_write_json(self.executing / f"{nonce}.json", intent)

    def intents(self) -> list[tuple[str, dict[str, Any] | None]]:
        """(nonce, intent or None if unreadable) of every command in execution."""
        found: list[tuple[str, dict[str, Any] | None]] = []
        for path in sorted(self.executing.glob("*.json")):
            try:
                found.append((path.stem, read_json_object(path)))
            except CorruptFile:
                found.append((path.stem, None))
        return found

    def close_intent(self, nonce: str) -> None:
        (self.executing / f"{nonce}.json").unlink(missing_ok=True)

    # ---- receipts ---------------------------------------------------------------------------------
    def receipt(self, nonce: str) -> dict[str, Any] | None:
        for folder in (self.done, self.rejected):
            with contextlib.suppress(OSError, ValueError):
                found = read_json(folder / f"{nonce}.json")
                if isinstance(found, dict):
                    return found
        return None

    def file_receipt(self, name: str, receipt: dict[str, Any]) -> Path:
        """Write the receipt into done/ (accepted) or rejected/ under a free name; rotate old ones out."""
        folder = self.done if receipt["status"] == "accepted" else self.rejected
        target = folder / f"{name}.json"
        n = 1
        while target.exists():
            target = target.with_name(f"{name}.{n}.json")
            n += 1
        atomic_write_json(target, receipt)
        self._rotate(folder)
        return target

    def _rotate(self, folder: Path) -> None:
        entries = []
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.endswith(".json"):
                    with contextlib.suppress(OSError):
                        entries.append((entry.stat().st_mtime_ns, entry.name))
        for _, name in sorted(entries)[: max(0, len(entries) - self.keep)]:
            (folder / name).unlink(missing_ok=True)


def _older(text: str, horizon: datetime) -> bool:
    try:
        moment = datetime.fromisoformat(text)
        return moment.tzinfo is not None and moment < horizon
    except ValueError:
        return False
