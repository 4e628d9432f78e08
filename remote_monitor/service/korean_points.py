"""Korean-stand DAQ files in the monitor's data area (`<data>/korean_<YYMMDD_HHMMSS>/<file>.root`): found like
WaveDump points, processed once quiet, and recorded as one point per PMT of the file (serial, position and HV
from the file name). A file is processed again only when it changes; when two files hold the same PMT at the
same position in one scan, the newer file's result is kept."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from remote_monitor.analysis.korean_root import KoreanPmt, parse_korean_name
from remote_monitor.service.inflight import InFlight
from remote_monitor.service.korean import process_korean_job
from remote_monitor.service.processing import base_result, fingerprint
from remote_monitor.service.store import ResultsStore, now_iso
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import (
    ROOT_SOURCE,
    KoreanFile,
    PointKey,
    is_regular_data_file,
    parse_korean_source,
)

log = logging.getLogger("remote_monitor")
Prints = dict[str, dict[str, Any]]


class KoreanFiles:
    """The Korean files waiting to be processed: last fingerprint and since when it has not changed."""

    def __init__(self, cfg: Config, data_root: Path, store: ResultsStore) -> None:
        self.cfg = cfg
        self.data_root = data_root
        self.store = store
        self.pending: dict[KoreanFile, tuple[Prints, float]] = {}
        self.unnamed: set[KoreanFile] = set()  # files whose name names no PMT (reported once)

    def note(self, path: Path) -> bool:
        """Take a changed path; True if it is a Korean file (then pending).

        Raises ValueError, once per file, for a file whose name names no PMT (it is not processed)."""
        file = parse_korean_source(path, self.data_root, self.cfg.layout)
        if file is None:
            return False
        if file in self.unnamed:
            return True
        try:
            self._pmts(file)
        except ValueError as exc:
            self.unnamed.add(file)
            raise ValueError(f"{exc} (file not processed)") from None
        self.pending.setdefault(file, ({}, 0.0))
        return True

    def files(self) -> list[Path]:
        """Every candidate Korean file of the data area (for the monitor's rescans)."""
        return sorted(self.data_root.glob(f"{self.cfg.layout.korean_dir_prefix}*/*.root"))

    def ready(self, now: float, quiet: float) -> list[tuple[KoreanFile, Prints]]:
        """Files unchanged for `quiet` seconds and not recorded yet (gone or recorded ones are forgotten)."""
        due = []
        for file, (old, since) in list(self.pending.items()):
            path = Path(file.path)
            prints = fingerprint({ROOT_SOURCE: path}) if is_regular_data_file(path, self.data_root) else {}
            if not prints:
                self.pending.pop(file)
            elif prints != old:
                self.pending[file] = (prints, now)
            elif now - since >= quiet:
                self.pending.pop(file)
                if not self._recorded(file, prints):
                    due.append((file, prints))
        return due

    def submit_ready(self, now: float, quiet: float, inflight: InFlight) -> None:
        """Hand the quiet files to free workers (a file waits while every worker is busy: neither its
        fingerprint nor the store is looked at again until a worker is free)."""
        pool = inflight.pool
        assert pool is not None
        if not pool.idle():
            return
        for file, prints in self.ready(now, quiet):
            if not (pool.idle() and pool.submit(file, (process_korean_job, file, self.cfg))):
                self.pending[file] = (prints, now - quiet)
                continue
            inflight.points[file] = prints
            log.info("processing %s", file.label)

    def _pmts(self, file: KoreanFile) -> list[KoreanPmt]:
        return parse_korean_name(Path(file.path).name, self.cfg.korean)

    def _recorded(self, file: KoreanFile, prints: Prints) -> bool:
        """True when every PMT of the file holds this file's result, or one from a newer file."""
        return all(not self._takes(PointKey(p.serial, file.scan_id, p.point), prints) for p in self._pmts(file))

    def _takes(self, key: PointKey, prints: Prints) -> bool:
        """Should a result from the file with these prints replace the point's stored result?"""
        stored = (self.store.read_point(key) or {}).get("source_files") or {}
        mine, theirs = prints[ROOT_SOURCE], stored.get(ROOT_SOURCE)
        if theirs == mine:
            return False  # already this file's result
        if not isinstance(theirs, dict) or theirs.get("path") == mine["path"]:
            return True  # nothing from a Korean file yet, or this file changed since
        return not Path(str(theirs.get("path"))).exists() or float(theirs.get("mtime", 0)) <= mine["mtime"]

    def results(self, file: KoreanFile, prints: Prints,
                outcome: dict[str, Any]) -> list[tuple[PointKey, dict[str, Any]]]:
        """(point, result) per PMT to record: the worker's results, or one error per PMT with the reason;
        nothing if the file changed while it was processed (it is pending again)."""
        if fingerprint({ROOT_SOURCE: Path(file.path)}) != prints:
            log.info("%s: changed while processing; processing again", file.label)
            self.pending[file] = ({}, 0.0)
            return []
        if "points" in outcome:
            found = [(PointKey(r["serial"], file.scan_id, r["point"]), r) for r in outcome["points"]]
        else:
            reason = str(outcome.get("error") or outcome.get("reason") or "no result")
            found = [(key, {**base_result(key, prints), "hv": p.hv, "status": "error", "reason": reason,
                            "processed_at": now_iso()})
                     for p in self._pmts(file) for key in [PointKey(p.serial, file.scan_id, p.point)]]
        kept = []
        for key, result in found:
            if self._takes(key, prints):
                kept.append((key, result))
            else:
                log.info("%s: a newer file holds this PMT at this position; %s not recorded", key.label, file.label)
        return kept
