"""Automatic archiving: when a new scan of a PMT begins, its older scans are archived through signed
commands, each once none of its points is pending or being processed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from remote_monitor.service import command_signing
from remote_monitor.service.store import ResultsStore, atomic_write_json
from remote_monitor.stand.layout import Layout, iter_scans

log = logging.getLogger("remote_monitor")

Scan = tuple[str, str]  # (serial, scan id)


class AutoArchive:
    """The older scans due for archiving, and the archive commands already sent."""

    def __init__(self, data_root: Path, layout: Layout, store: ResultsStore, key: bytes, inbox: Path) -> None:
        self.data_root = data_root
        self.layout = layout
        self.store = store
        self.key = key
        self.inbox = inbox
        self.due: set[Scan] = set()
        self.sent: set[Scan] = set()

    def schedule_superseded(self) -> None:
        """Schedule every scan that has a newer scan of the same PMT (at start and at each rescan)."""
        scans = iter_scans(self.data_root, self.layout)
        newest: dict[str, str] = {}
        for serial, scan_id, _ in scans:
            newest[serial] = max(newest.get(serial, scan_id), scan_id)
        for serial, scan_id, _ in scans:
            if scan_id < newest[serial]:
                self.schedule(serial, scan_id)

    def new_scan(self, serial: str, scan_id: str) -> None:
        """A scan just appeared: the older scans of its PMT are due."""
        log.info("new scan %s of %s", scan_id, serial)
        for sn, old_id, _ in iter_scans(self.data_root, self.layout):
            if sn == serial and old_id < scan_id:
                self.schedule(sn, old_id)

    def schedule(self, serial: str, scan_id: str) -> None:
        state = (self.store.read_scan(serial, scan_id) or {}).get("state")
        if state not in ("archived", "flagged") and (serial, scan_id) not in self.sent:
            self.due.add((serial, scan_id))

    def send_due(self, busy: set[Scan], process_commands: Callable[[], None]) -> None:
        """Write a signed archive command for each due scan not busy; process_commands runs after each."""
        for serial, scan_id in sorted(self.due - busy):
            newer = max(s for sn, s, _ in iter_scans(self.data_root, self.layout) if sn == serial)
            cmd = command_signing.sign(
                command_signing.build_command(
                    "archive", serial, scan_id, issuer="remote-monitor (automatic)",
                    reason=f"new scan {newer} of {serial} started",
                ),
                self.key,
            )
            atomic_write_json(self.inbox / f"{cmd['nonce']}.json", cmd)
            self.due.discard((serial, scan_id))
            self.sent.add((serial, scan_id))
            log.info("archive of %s scan %s requested (new scan %s)", serial, scan_id, newer)
            process_commands()
