"""Follow the channel files of one point while WaveDump writes them.

Per channel a reader keeps the byte offset after the last complete event; each `update` reads only the
bytes written since, aligns the channels by event number and adds the selected charges to a running
histogram. The state (offsets, histograms, counters, file identities) is saved as JSON so a restarted
monitor resumes where it was. A file that was rewritten or shrank is detected and read from scratch."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from remote_monitor.analysis.charges import ChargeAccumulator, make_readers, read_blocks
from remote_monitor.analysis.histogram import Histogram
from remote_monitor.analysis.laser_window import laser_delay_ns
from remote_monitor.stand.config import Config

log = logging.getLogger("remote_monitor")
STATE_VERSION = 1
_PROBE = 4096


def _digest(path: Path, start: int, size: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha1(os.pread(fh.fileno(), size, max(0, start))).hexdigest()


def file_identity(path: Path, offset: int) -> dict[str, Any]:
    """What tells a file that only grew from one that was rewritten: inode, head and the bytes before offset."""
    st = path.stat()
    return {"inode": st.st_ino, "head": _digest(path, 0, min(offset, _PROBE)),
            "tail": _digest(path, offset - _PROBE, min(offset, _PROBE))}


class PointFollower:
    """Running charge histogram of one point whose files are still growing."""

    def __init__(self, files: dict[int, Path], cfg: Config, notes: tuple[str, ...] = ()) -> None:
        """notes: warnings the point's results carry besides the readers' (e.g. the PMT channel used)."""
        self.files = {int(ch): Path(p) for ch, p in files.items()}
        self.cfg = cfg
        self.notes = list(notes)
        self.rewrites = 0
        self._reset()

    def _reset(self) -> None:
        lo, hi = self.cfg.histogram.range_pc
        self.readers = make_readers(self.files, self.cfg.channels, self.cfg.analysis)
        self.acc = ChargeAccumulator(self.cfg.channels, self.cfg.analysis)
        self.pmt = Histogram.empty(self.cfg.histogram.n_bins, lo, hi)
        self.reference = Histogram.empty(self.cfg.histogram.n_bins, lo, hi) if self.cfg.channels.reference is not None \
            else None
        self.n_selected = 0
        self.finalized = False
        self.identities: dict[int, dict[str, Any]] = {}

    # ---- reading ----------------------------------------------------------------------------------
    def rewritten(self) -> str | None:
        """Why the files are not the ones followed so far (None: they only grew)."""
        for ch, reader in self.readers.items():
            if reader.offset == 0:
                continue
            try:
                size = reader.path.stat().st_size
                now = file_identity(reader.path, reader.offset)
            except OSError as exc:
                return f"{reader.path.name}: {exc.strerror or exc}"
            if size < reader.offset:
                return f"{reader.path.name} shrank from {reader.offset} to {size} bytes"
            if ch in self.identities and now != self.identities[ch]:
                return f"{reader.path.name} was rewritten"
        return None

    def update(self, final: bool = False) -> int:
        """Read what was written since the last update (all of it with final=True); events added."""
        why = self.rewritten()
        if why is not None or self.finalized:
            log.info("%s: reading the point from the start", why or "files changed after the final result")
            self.rewrites += why is not None
            self._reset()
        before = self.acc.n_events
        for block in read_blocks(self.readers, self.acc, final=final):
            self.pmt.fill(block.pmt)
            self.n_selected += len(block.pmt)
            if self.reference is not None and block.reference is not None:
                self.reference.fill(block.reference)
        self.identities = {ch: file_identity(r.path, r.offset) for ch, r in self.readers.items() if r.offset}
        self.finalized = final
        return self.acc.n_events - before

    @property
    def n_events(self) -> int:
        return self.acc.n_events

    def warnings(self) -> list[str]:
        return [w for r in self.readers.values() for w in r.warnings] + self.acc.warnings() + self.notes

    def summary(self) -> dict[str, Any]:
        """What a worker needs to fit and build the point's result (small: histograms and counters)."""
        return {"histogram": self.pmt.to_dict(), "n_events": self.n_events, "n_selected": self.n_selected,
                "reference": self.reference.to_dict() if self.reference is not None else None,
                "warnings": self.warnings(), "charge_window_ns": self.acc.window_ns(),
                "laser_delay_ns": laser_delay_ns(self.acc.delays)}

    # ---- persistence ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Offsets from which a new follower sees exactly the events not counted yet, with the counts."""
        channels = {}
        for ch, reader in self.readers.items():
            offset, events = self.acc.resume_point(ch, reader)
            channels[str(ch)] = {"path": str(reader.path), "offset": offset, "events_read": events,
                                 "identity": file_identity(reader.path, offset) if offset else None}
        return {"version": STATE_VERSION, "channels": channels, "counts": self.pmt.counts.tolist(),
                "reference_counts": self.reference.counts.tolist() if self.reference is not None else None,
                "n_events": self.acc.n_events, "n_untriggered": self.acc.n_untriggered,
                "dropped": self.acc.dropped, "n_selected": self.n_selected, "binning": self._binning(),
                "delay_counts": self.acc.delays.counts.tolist(), "record_end_ns": self.acc.record_end_ns}

    def _binning(self) -> list[float]:
        lo, hi = self.cfg.histogram.range_pc
        return [self.cfg.histogram.n_bins, lo, hi]

    def restore(self, state: dict[str, Any]) -> bool:
        """Continue from a saved state if it belongs to these files as they are now; False if not usable."""
        try:
            channels = state["channels"]
            if state.get("version") != STATE_VERSION or state.get("binning") != self._binning() or \
                    sorted(channels) != sorted(str(ch) for ch in self.readers):
                return False
            for ch, reader in self.readers.items():
                saved = channels[str(ch)]
                offset = int(saved["offset"])
                if saved["path"] != str(reader.path) or reader.path.stat().st_size < offset:
                    return False
                if offset and saved["identity"] != file_identity(reader.path, offset):
                    return False
            for ch, reader in self.readers.items():
                reader.offset = int(channels[str(ch)]["offset"])
                reader.events_read = int(channels[str(ch)]["events_read"])
            self.pmt.counts[:] = np.asarray(state["counts"], dtype=np.int64)
            if self.reference is not None:
                self.reference.counts[:] = np.asarray(state["reference_counts"], dtype=np.int64)
            self.acc.n_events, self.acc.n_untriggered = int(state["n_events"]), int(state["n_untriggered"])
            self.acc.dropped, self.n_selected = int(state["dropped"]), int(state["n_selected"])
            delays = np.asarray(state.get("delay_counts") or [], dtype=np.int64)  # (states saved before: none)
            if len(delays) == len(self.acc.delays.counts):
                self.acc.delays.counts[:] = delays
            end = state.get("record_end_ns")  # (states saved before: none)
            self.acc.record_end_ns = None if end is None else float(end)
        except (KeyError, TypeError, ValueError, OSError):
            self._reset()
            return False
        self.identities = {ch: file_identity(r.path, r.offset) for ch, r in self.readers.items() if r.offset}
        return True
