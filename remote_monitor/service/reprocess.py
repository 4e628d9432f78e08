"""Reprocess one archived scan synchronously (one task of the Slurm reprocessing job array)."""

from __future__ import annotations

import logging
from pathlib import Path

from remote_monitor.service.processing import point_sources, process_point
from remote_monitor.service.publish import Publisher
from remote_monitor.service.scan_results import record_point
from remote_monitor.service.store import ResultsStore
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import DEFAULT_LAYOUT, Layout, PointKey, parse_source_file

log = logging.getLogger("remote_monitor")


def scan_points_on_disk(scan_dir: Path, layout: Layout = DEFAULT_LAYOUT) -> list[PointKey]:
    """Every point of a scan directory (<root>/wavedump_output_<id>/<SN>) that has at least one file."""
    data_root = scan_dir.parent.parent
    keys = {parsed[0] for path in scan_dir.glob("*/*")
            if (parsed := parse_source_file(path, data_root, layout)) is not None}
    if not keys:
        raise ValueError(f"{scan_dir}: no waveform or Pyrate files of the stand's layout found"
                         f"{_serials_hint(scan_dir, layout)}")
    return sorted(keys)


def _serials_hint(scan_dir: Path, layout: Layout) -> str:
    """Where the directory given is the level above (<root>/wavedump_output_<id>, which holds one folder per PMT):
    the paths to give instead."""
    if not scan_dir.name.startswith(layout.scan_dir_prefix) or not scan_dir.is_dir():
        return ""
    serials = sorted(d.name for d in scan_dir.iterdir() if d.is_dir() and not d.is_symlink())
    if not serials:
        return ""
    return f"; it holds the scans of {len(serials)} PMT(s): give one of them, e.g. --scan-dir {scan_dir / serials[0]}"


def reprocess_scan(scan_dir: Path, out_root: Path, cfg: Config) -> int:
    """Process every point of one scan and render its report; returns the number of points."""
    data_root = scan_dir.absolute().parent.parent
    store = ResultsStore(out_root)
    keys = scan_points_on_disk(scan_dir.absolute(), cfg.layout)
    for key in keys:
        result = process_point(key, point_sources(data_root, key, cfg.layout), cfg)
        record_point(store, key, result, cfg)
        log.info("reprocessed %s: %s %s", key.label, result["status"], result.get("reason", ""))
    Publisher(store, cfg).publish(keys[0].serial)
    return len(keys)
