"""Verify and execute signed flag/archive/unflag command files from <out>/commands/inbox/.

Every command gets a receipt in commands/done/ or commands/rejected/ (with the original command inside);
a rejected command moves nothing. Commands for one scan are serialized with a file lock.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from remote_monitor.service import command_signing
from remote_monitor.service.mover import Mover
from remote_monitor.service.store import ResultsStore, atomic_write_json, read_json
from remote_monitor.stand.layout import (
    DEFAULT_LAYOUT,
    Layout,
    LayoutError,
    point_dir_name,
    validate_point,
    validate_scan_id,
    validate_serial,
)

MAX_COMMAND_BYTES = 64 * 1024
CLOCK_SKEW = timedelta(seconds=120)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "action": (str,), "serial": (str,), "scan_id": (str,), "points": (list, type(None)), "reason": (str,),
    "issuer": (str,), "issued_at": (str,), "expires_at": (str,), "nonce": (str,), "signature": (str,),
}


class Rejected(Exception):
    """A command fails a check; the message is the reason written into its receipt."""


def _parse_time(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected(f"{name} is not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise Rejected(f"{name} has no time zone: {text!r}")
    return moment


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class CommandProcessor:
    """Checks a command (format, signature, expiry, nonce, names, existence) and then moves the data."""

    def __init__(self, data_root: Path, out_root: Path, flag_root: Path, archive_root: Path, key: bytes,
                 store: ResultsStore, now: Callable[[], datetime] | None = None,
                 layout: Layout = DEFAULT_LAYOUT) -> None:
        self.roots = {"data": Path(data_root).absolute(), "flag": Path(flag_root).absolute(),
                      "archive": Path(archive_root).absolute()}
        self.out_root = Path(out_root).absolute()
        self.key = key
        self.store = store
        self.layout = layout
        self.now = now or (lambda: datetime.now(UTC))
        base = self.out_root / "commands"
        self.inbox, self.done, self.rejected = base / "inbox", base / "done", base / "rejected"
        self.locks, self.nonce_file = base / "locks", base / "nonces.json"
        self.mover = Mover(self.out_root / "state" / "moves")

    # ---- entry points -----------------------------------------------------------------------------
    def process_inbox(self) -> list[dict[str, Any]]:
        """Process every command file waiting in the inbox (oldest first)."""
        if not self.inbox.is_dir():
            return []
        files = sorted((p for p in self.inbox.glob("*.json") if p.is_file()), key=lambda p: p.stat().st_mtime)
        return [receipt for path in files if (receipt := self.process_file(path)) is not None]

    def process_file(self, path: Path) -> dict[str, Any] | None:
        """Verify and execute one command file; returns its receipt (None if another process took it)."""
        received = self.now()
        try:
            raw = path.read_bytes()[: MAX_COMMAND_BYTES + 1]
        except FileNotFoundError:
            return None
        cmd: dict[str, Any] = {}
        receipt: dict[str, Any] = {"received_at": received.isoformat(timespec="seconds"), "moved": []}
        try:
            cmd = self._parse(raw)
            self._check(cmd, received)
            receipt["moved"] = self._execute(cmd)
            receipt.update(status="accepted", reason=f"{cmd['action']} done")
        except Rejected as exc:
            receipt.update(status="rejected", reason=str(exc))
        receipt.update({k: cmd.get(k) for k in ("nonce", "action", "serial", "scan_id", "points", "issuer")})
        receipt.update(executed_at=self.now().isoformat(timespec="seconds"), command=cmd or raw.decode("utf-8", "replace"))
        self._file_receipt(path, receipt)
        return receipt

    def _file_receipt(self, path: Path, receipt: dict[str, Any]) -> None:
        """Receipt (holding the original command) into done/ or rejected/, then the inbox file goes."""
        nonce = receipt.get("nonce")
        accepted = receipt["status"] == "accepted"
        name = nonce if isinstance(nonce, str) and command_signing.NONCE_RE.match(nonce) else path.stem
        target = (self.done if accepted else self.rejected) / f"{name}.json"
        n = 1
        while target.exists():
            target = target.with_name(f"{name}.{n}.json")
            n += 1
        atomic_write_json(target, receipt)
        path.unlink(missing_ok=True)

    # ---- checks -----------------------------------------------------------------------------------
    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any]:
        if len(raw) > MAX_COMMAND_BYTES:
            raise Rejected(f"command file larger than {MAX_COMMAND_BYTES} bytes")
        try:
            cmd = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Rejected(f"not a JSON command: {exc}") from None
        if not isinstance(cmd, dict):
            raise Rejected("command must be a JSON object")
        unknown, missing = set(cmd) - set(FIELD_TYPES), set(FIELD_TYPES) - set(cmd)
        if unknown or missing:
            raise Rejected(f"wrong fields: unknown {sorted(unknown)}, missing {sorted(missing)}")
        for name, types in FIELD_TYPES.items():
            if not isinstance(cmd[name], types):
                raise Rejected(f"field {name} has the wrong type")
        return cmd

    def _check(self, cmd: dict[str, Any], now: datetime) -> None:
        if not command_signing.verify_signature(cmd, self.key):
            raise Rejected("bad signature (wrong key, or the command was modified after signing)")
        if cmd["action"] not in command_signing.ACTIONS:
            raise Rejected(f"unknown action {cmd['action']!r}")
        if now > _parse_time(cmd["expires_at"], "expires_at"):
            raise Rejected(f"expired at {cmd['expires_at']}")
        if _parse_time(cmd["issued_at"], "issued_at") > now + CLOCK_SKEW:
            raise Rejected(f"issued_at {cmd['issued_at']} lies in the future")
        if not command_signing.NONCE_RE.match(cmd["nonce"]):
            raise Rejected("nonce must be 32 lowercase hex characters")
        try:
            validate_serial(cmd["serial"])
            validate_scan_id(cmd["scan_id"])
            for point in cmd["points"] or []:
                validate_point(point)
        except LayoutError as exc:
            raise Rejected(str(exc)) from None
        with _locked(self.locks / "nonces.lock"):
            seen = read_json(self.nonce_file) or {}
            if cmd["nonce"] in seen:
                raise Rejected(f"replayed command: nonce {cmd['nonce']} was used at {seen[cmd['nonce']]}")
            seen[cmd["nonce"]] = now.isoformat(timespec="seconds")
            atomic_write_json(self.nonce_file, seen)

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
            return sorted(p for p in folder.glob(f"*{point}.*") if self.layout.file_re.match(p.name))
        return [folder] if folder.exists() else []

    def _execute(self, cmd: dict[str, Any]) -> list[list[str]]:
        serial, scan_id, action, points = cmd["serial"], cmd["scan_id"], cmd["action"], cmd["points"]
        src_area, dst_area = {"flag": ("data", "flag"), "archive": ("data", "archive"),
                              "unflag": ("flag", "data")}[action]
        with _locked(self.locks / f"{serial}_{scan_id}.lock"):
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
            moved: list[list[str]] = []
            try:
                for src, dst in pairs:
                    self.mover.move(src, dst)
                    moved.append([str(src), str(dst)])
            except OSError as exc:
                raise Rejected(f"move failed after {len(moved)} of {len(pairs)} item(s), nothing deleted: {exc}") from exc
            self._prune_empty(src_scan)
            self._update_scan(cmd)
            if dst_area != "data":
                self._snapshot_results(serial, scan_id, dst_scan)
            return moved

    def _prune_empty(self, scan: Path) -> None:
        """Remove folders a move left empty (point folder, scan folder, wavedump_output_* folder)."""
        for folder in (scan / self.layout.hv_dir, scan, scan.parent):
            with suppress(OSError):
                folder.rmdir()

    def _snapshot_results(self, serial: str, scan_id: str, dst_scan: Path) -> None:
        results = self.store.scan_dir(serial, scan_id)
        if results.is_dir():
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
