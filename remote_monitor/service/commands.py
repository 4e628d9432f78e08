"""Verify and execute signed flag/archive/unflag command files from <out>/commands/inbox/.

Every command file is untrusted input: whatever it holds, it gets a receipt in commands/done/ or
commands/rejected/ (with the command, or the first bytes of an unusable file, inside) and leaves the
inbox. A rejected command moves nothing. Commands for one scan are serialized with a file lock. The
intent of an accepted command is written before anything moves, so that recover() after a crash (kill -9
anywhere) finishes exactly that command and files its receipt, instead of calling it a replay.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from remote_monitor.service import command_signing
from remote_monitor.service.command_checks import (
    CLOCK_SKEW,
    DEFAULT_MAX_LIFETIME,
    MAX_COMMAND_BYTES,
    MAX_RAW_IN_RECEIPT,
    Rejected,
    check_command,
    nonce_of,
    parse_command,
    read_regular,
)
from remote_monitor.service.command_state import CommandState, locked
from remote_monitor.service.mover import MoveCommitted, Mover
from remote_monitor.service.store import CorruptFile, ResultsStore
from remote_monitor.stand.layout import (
    DEFAULT_LAYOUT,
    Layout,
    point_dir_name,
)


class CommandProcessor:
    """Checks a command (format, signature, expiry, nonce, names, existence) and then moves the data."""

    def __init__(self, data_root: Path, out_root: Path, flag_root: Path, archive_root: Path, key: bytes,
                 store: ResultsStore, now: Callable[[], datetime] | None = None,
                 layout: Layout = DEFAULT_LAYOUT, max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
                 receipts_keep: int = 1000, on_corrupt: Callable[[CorruptFile], None] | None = None) -> None:
        self.roots = {"data": Path(data_root).absolute(), "flag": Path(flag_root).absolute(),
                      "archive": Path(archive_root).absolute()}
        self.out_root = Path(out_root).absolute()
        self.key = key
        self.store = store
        self.layout = layout
        self.max_lifetime = max_lifetime
        self.now = now or (lambda: datetime.now(UTC))
        base = self.out_root / "commands"
        self.inbox, self.locks = base / "inbox", base / "locks"
        self.state = CommandState(base, receipts_keep, max_lifetime + 2 * CLOCK_SKEW,
                                  on_corrupt or self._quarantine)
        self.done, self.rejected = self.state.done, self.state.rejected
        self.mover = Mover(self.out_root / "state" / "moves")
        self.problems: list[str] = []  # for a person: what recover() could not finish

    def _quarantine(self, exc: CorruptFile) -> None:
        from remote_monitor.service.problems import quarantine

        quarantine(exc.path, self.out_root)
        self.problems.append(f"{exc}; moved to quarantine and rebuilt")

    # ---- entry points -----------------------------------------------------------------------------
    def process_inbox(self) -> list[dict[str, Any]]:
        """Process every command file waiting in the inbox (oldest first)."""
        if not self.inbox.is_dir():
            return []
        files = []
        with os.scandir(self.inbox) as it:
            for entry in it:
                with suppress(OSError):  # gone between listing and stat
                    if not entry.name.startswith("."):
                        files.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
        return [receipt for _, name in sorted(files)
                if (receipt := self.process_file(self.inbox / name)) is not None]

    def process_file(self, path: Path) -> dict[str, Any] | None:
        """Verify and execute one command file; returns its receipt (None if another process took it)."""
        received = self.now()
        raw = read_regular(path, MAX_COMMAND_BYTES + 1)
        if raw is None:
            return None
        cmd: dict[str, Any] = {}
        receipt: dict[str, Any] = {"received_at": received.isoformat(timespec="seconds"), "moved": []}
        claimed = False
        try:
            cmd = parse_command(raw)
            check_command(cmd, received, self.key, self.max_lifetime)
            if (self.state.executing / f"{cmd['nonce']}.json").exists():
                return self._recover_one(cmd["nonce"])  # interrupted by a crash: finish, not a replay
            self._claim(cmd, received, path)
            claimed = True
            receipt["moved"] = self._execute(cmd)
            receipt.update(status="accepted", reason=f"{cmd['action']} done")
        except Rejected as exc:
            receipt.update(status="rejected", reason=str(exc))
        except Exception as exc:  # noqa: BLE001 - anything unforeseen: this command is rejected, the monitor runs on
            receipt.update(status="rejected", reason=f"cannot process this command: {type(exc).__name__}: {exc}")
        receipt.update({k: cmd.get(k) for k in ("nonce", "action", "serial", "scan_id", "points", "issuer")})
        receipt.update(executed_at=self.now().isoformat(timespec="seconds"),
                       command=cmd or raw[:MAX_RAW_IN_RECEIPT].decode("utf-8", "replace"))
        if not cmd:  # unusable, but the sender finds the receipt under its nonce
            receipt["nonce"] = nonce_of(raw)
        self._file_receipt(path, receipt)
        if claimed:
            self.state.close_intent(cmd["nonce"])
        return receipt

    def _file_receipt(self, path: Path, receipt: dict[str, Any]) -> None:
        """Receipt (holding the original command) into done/ or rejected/, then the inbox file goes."""
        nonce = receipt.get("nonce")
        name = nonce if isinstance(nonce, str) and command_signing.NONCE_RE.fullmatch(nonce) else "unnamed"
        self.state.file_receipt(name, receipt)
        path.unlink(missing_ok=True)

    # ---- checks -----------------------------------------------------------------------------------
    def _claim(self, cmd: dict[str, Any], now: datetime, path: Path) -> None:
        """Use up the nonce; the intent is on disk before the nonce counts as used."""
        intent = {"command": cmd, "inbox_file": path.name, "received_at": now.isoformat(timespec="seconds"),
                  "step": "claimed", "pairs": None}
        earlier = self.state.claim(cmd["nonce"], now, intent)
        if earlier is not None:
            raise Rejected(f"replayed command: nonce {cmd['nonce']} was used at {earlier}")

    # ---- execution --------------------------------------------------------------------------------
    def _scan_path(self, area: str, serial: str, scan_id: str) -> Path:
        root = self.roots[area]
        path = (root / f"{self.layout.scan_dir_prefix}{scan_id}" / serial).resolve()
        if not path.is_relative_to(root.resolve()):
            raise Rejected(f"path escapes the {area} area")
        return path

    def _point_paths(self, scan: Path, point: str) -> list[Path]:
        """What belongs to one point: its folder, or for an HV point its files in the HV-check folder."""
        folder = scan / point_dir_name(point, self.layout)
        if point.startswith("HV_"):
            return sorted(p for p in folder.glob(f"*{point}.*") if self.layout.file_re.fullmatch(p.name))
        return [folder] if folder.exists() else []

    def _execute(self, cmd: dict[str, Any]) -> list[list[str]]:
        serial, scan_id, action, points = cmd["serial"], cmd["scan_id"], cmd["action"], cmd["points"]
        src_area, dst_area = {"flag": ("data", "flag"), "archive": ("data", "archive"),
                              "unflag": ("flag", "data")}[action]
        with locked(self.locks / f"{serial}_{scan_id}.lock"):
            src_scan = self._scan_path(src_area, serial, scan_id)
            dst_scan = self._scan_path(dst_area, serial, scan_id)
            if not src_scan.is_dir():
                raise Rejected(f"scan {scan_id} of {serial} is not in the {src_area} area")
            if points:
                pairs = []
                for point in points:
                    found = self._point_paths(src_scan, point)
                    if not found:
                        raise Rejected(f"point {point} of scan {scan_id} of {serial} not found in the {src_area} area")
                    pairs += [(p, dst_scan / p.relative_to(src_scan)) for p in found]
            else:
                pairs = [(src_scan, dst_scan)]
            for _, dst in pairs:
                if dst.exists():
                    raise Rejected(f"{dst} exists already in the {dst_area} area")
            self.state.write_intent(cmd["nonce"], {**self._intent(cmd), "step": "moving",
                                                   "pairs": [[str(a), str(b)] for a, b in pairs]})
            moved: list[list[str]] = []
            try:
                for src, dst in pairs:
                    try:
                        self.mover.move(src, dst)
                    except MoveCommitted as exc:
                        self.problems.append(str(exc))
                    moved.append([str(src), str(dst)])
            except OSError as exc:
                undone = self._move_back(moved)
                raise Rejected(f"move failed after {len(moved)} of {len(pairs)} item(s) ({exc}); {undone}") from exc
            self._complete(cmd, src_scan, dst_scan, dst_area)
            return moved

    def _intent(self, cmd: dict[str, Any]) -> dict[str, Any]:
        intent = next((i for n, i in self.state.intents() if n == cmd["nonce"] and i), None)
        return intent or {"command": cmd, "inbox_file": f"{cmd['nonce']}.json"}

    def _move_back(self, moved: list[list[str]]) -> str:
        """Undo the moves of a command that failed half way; says what happened (for the receipt)."""
        try:
            for src, dst in reversed(moved):
                self.mover.move(Path(dst), Path(src))
        except OSError as exc:
            self.problems.append(f"moving back {moved} after a failed command failed: {exc}; resolve by hand")
            return f"moving back the {len(moved)} moved item(s) FAILED ({exc}): see the problems list"
        return "nothing moved" if not moved else f"the {len(moved)} moved item(s) were moved back"

    def _complete(self, cmd: dict[str, Any], src_scan: Path, dst_scan: Path, dst_area: str) -> None:
        """After the moves: empty folders pruned, scan state updated, results copied along."""
        self._prune_empty(src_scan)
        self._update_scan(cmd)
        if dst_area != "data":
            self._snapshot_results(cmd["serial"], cmd["scan_id"], dst_scan)

    # ---- recovery after a crash -------------------------------------------------------------------
    def recover(self) -> list[dict[str, Any]]:
        """At start: finish interrupted moves, then every command whose intent is on disk. Never raises."""
        self.mover.resume()
        self.problems += self.mover.problems
        self.mover.problems = []
        receipts = []
        for nonce, _ in self.state.intents():
            try:
                receipt = self._recover_one(nonce)
            except Exception as exc:  # noqa: BLE001 - an error boundary
                self.problems.append(f"command {nonce} could not be recovered: {type(exc).__name__}: {exc}")
                continue
            if receipt is not None:
                receipts.append(receipt)
        return receipts

    def _recover_one(self, nonce: str) -> dict[str, Any] | None:
        intent = dict(self.state.intents()).get(nonce)
        if intent is None or not isinstance(intent.get("command"), dict):
            self.problems.append(f"command {nonce}: unreadable intent in {self.state.executing}; resolve by hand")
            self._set_aside(nonce)
            return None
        cmd = intent["command"]
        inbox_file = self.inbox / Path(str(intent.get("inbox_file") or f"{nonce}.json")).name
        if self.state.receipt(nonce) is not None:  # the receipt was filed: only the clean-up was left
            inbox_file.unlink(missing_ok=True)
            self.state.close_intent(nonce)
            return None
        receipt: dict[str, Any] = {"received_at": intent.get("received_at"), "recovered": True, "moved": []}
        try:
            if intent.get("step") == "moving":
                receipt["moved"] = self._finish_moves(cmd, intent.get("pairs") or [])
            else:
                receipt["moved"] = self._execute(cmd)
            receipt.update(status="accepted", reason=f"{cmd['action']} done (finished after a restart)")
        except Rejected as exc:
            receipt.update(status="rejected", reason=str(exc))
        receipt.update({k: cmd.get(k) for k in ("nonce", "action", "serial", "scan_id", "points", "issuer")})
        receipt.update(executed_at=self.now().isoformat(timespec="seconds"), command=cmd)
        self._file_receipt(inbox_file, receipt)
        self.state.close_intent(nonce)
        return receipt

    def _finish_moves(self, cmd: dict[str, Any], pairs: list[list[str]]) -> list[list[str]]:
        """Carry the accepted moves of an interrupted command forward; inconsistencies go to a person."""
        serial, scan_id, action = cmd["serial"], cmd["scan_id"], cmd["action"]
        src_area, dst_area = {"flag": ("data", "flag"), "archive": ("data", "archive"),
                              "unflag": ("flag", "data")}[action]
        with locked(self.locks / f"{serial}_{scan_id}.lock"):
            moved, lost = [], []
            for src, dst in ((Path(a), Path(b)) for a, b in pairs):
                if src.exists() and not dst.exists():
                    self.mover.move(src, dst)
                if dst.exists() and not src.exists():
                    moved.append([str(src), str(dst)])
                else:
                    lost.append(f"{src} -> {dst}")
            if lost:
                self.problems.append(f"command {cmd['nonce']} ({action} {serial}/{scan_id}): inconsistent after a "
                                     f"crash, resolve by hand: {lost}")
                raise Rejected(f"interrupted and inconsistent, a person has to look: {lost}")
            self._complete(cmd, self._scan_path(src_area, serial, scan_id), self._scan_path(dst_area, serial, scan_id),
                           dst_area)
            return moved

    def _set_aside(self, nonce: str) -> None:
        folder = self.state.base / "attention"
        folder.mkdir(parents=True, exist_ok=True)
        with suppress(OSError):
            os.replace(self.state.executing / f"{nonce}.json", folder / f"{nonce}.json")


    def _prune_empty(self, scan: Path) -> None:
        """Remove folders a move left empty (point folder, scan folder, wavedump_output_* folder)."""
        for folder in (scan / self.layout.hv_dir, scan, scan.parent):
            with suppress(OSError):
                folder.rmdir()

    def _snapshot_results(self, serial: str, scan_id: str, dst_scan: Path) -> None:
        results = self.store.scan_dir(serial, scan_id)
        if results.is_dir() and dst_scan.is_dir():
            shutil.copytree(results, dst_scan / "monitor_results", dirs_exist_ok=True)

    def _update_scan(self, cmd: dict[str, Any]) -> None:
        serial, scan_id, action, points = cmd["serial"], cmd["scan_id"], cmd["action"], cmd["points"] or []
        scan = self.store.read_scan(serial, scan_id) or {}
        flagged = set(scan.get("flagged_points") or [])
        info = {"by": cmd["issuer"], "at": cmd["issued_at"], "reason": cmd["reason"], "command_id": cmd["nonce"],
                "action": action, "points": points or None}
        fields: dict[str, Any] = {"state_info": info}
        if action == "flag":
            if points:
                fields["flagged_points"] = sorted(flagged | set(points))
            else:
                fields["state"] = "flagged"
        elif action == "archive":
            fields["state"] = "archived"
        else:
            fields["flagged_points"] = sorted(flagged - set(points)) if points else []
            if not points:
                fields["state"] = "live"
        self.store.update_scan(serial, scan_id, **fields)
