"""The monitor's side of the signed commands: its key, running the inbox, and what follows each receipt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from remote_monitor.service import command_signing
from remote_monitor.service.commands import CommandProcessor
from remote_monitor.service.error_boundary import ErrorBoundary
from remote_monitor.service.notify import Notifier
from remote_monitor.service.problems import printable
from remote_monitor.service.store import ResultsStore
from remote_monitor.stand.config import Config

log = logging.getLogger("remote_monitor")


def ensure_key(cfg: Config, out_root: Path) -> bytes:
    """The monitor's HMAC key. A configured key_file must exist (KeyFileError otherwise); the default one,
    <out>/private/monitor.key (never served), is created (mode 0600) on first start."""
    path = cfg.key_path(out_root)
    if cfg.areas.key_file:
        if not path.exists():
            raise command_signing.KeyFileError(
                f"{path}: the configured key_file does not exist; create it with `remote-monitor keygen --key "
                f"{path}` or copy the operators' key there")
        return command_signing.load_key(path)
    old = out_root / "monitor.key"
    if not path.exists() and old.is_file() and not old.is_symlink():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        old.rename(path)  # keys of earlier versions lived in the served <out>
        log.info("moved the command key %s to %s (outside the served tree)", old, path)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        command_signing.generate_key_file(path)
        log.info("created command key %s (copy it to the operators' laptops)", path)
    return command_signing.load_key(path)


class CommandRunner:
    """Runs the inbox's commands inside the error boundary; on_moved(serial, scan_id) after an accepted one."""

    def __init__(self, cfg: Config, data_root: Path, out_root: Path, key: bytes, store: ResultsStore, *,
                 boundary: ErrorBoundary, notifier: Notifier, on_moved: Callable[[str, str], None]) -> None:
        self.processor = CommandProcessor(
            data_root, out_root, cfg.flag_root(data_root),
            cfg.archive_root(data_root), key, store, layout=cfg.layout,
            max_lifetime=timedelta(seconds=cfg.monitor.max_command_lifetime_seconds),
            receipts_keep=cfg.monitor.receipts_keep, on_corrupt=boundary.on_corrupt,
        )
        self.boundary = boundary
        self.notifier = notifier
        self.on_moved = on_moved

    def recover(self) -> None:
        """Finish what crashes interrupted (moves, accepted commands); what needs a person is reported."""
        for receipt in self.processor.recover():
            self._after(receipt)
        self._report_problems()

    def process(self) -> None:
        """Verify and execute every command file of the inbox."""
        receipts = self.boundary.run("command inbox", self.processor.process_inbox) or []
        for receipt in receipts:
            self.boundary.run(f"command {printable(receipt.get('nonce'))}", self._after, receipt)
        self._report_problems()

    def _report_problems(self) -> None:
        for what in self.processor.problems:
            self.boundary.problems.add("commands", what)
        self.processor.problems.clear()

    def _after(self, receipt: dict[str, Any]) -> None:
        log.info("command %s %s/%s: %s %s", *(printable(receipt.get(k), 300) for k in
                                              ("action", "serial", "scan_id", "status", "reason")))
        if receipt.get("status") == "rejected":
            self.notifier.event("rejected", str(receipt.get("nonce")), f"command {receipt.get('action')} "
                                f"{receipt.get('serial')}/{receipt.get('scan_id')} rejected: {receipt.get('reason')}")
        if receipt.get("status") == "accepted":
            self.on_moved(receipt["serial"], receipt["scan_id"])
