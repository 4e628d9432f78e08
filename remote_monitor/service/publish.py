"""Render the HTML reports of a PMT (and the index) from the stored results and write them atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from remote_monitor.report import pages as report
from remote_monitor.service.problems import load_problems
from remote_monitor.service.publish_mirror import PublishMirror
from remote_monitor.service.store import ResultsStore, atomic_write_bytes, atomic_write_json, read_json
from remote_monitor.stand.config import Config


def page_name(serial: str, scan_id: str | None = None) -> str:
    """File name of a PMT's newest-scan page (scan_id None) or of one scan's page."""
    return f"{serial}.html" if scan_id is None else f"{serial}_{scan_id}.html"


class Publisher:
    """Keeps <out>/reports/ in step with <out>/results/: one page per scan, one per PMT, the index."""

    def __init__(self, store: ResultsStore, cfg: Config, live: bool = False) -> None:
        self.store = store
        self.cfg = cfg
        self.live = live
        self.reports_dir: Path = store.reports_dir
        self.reference_spectrum = self._load_reference(cfg.report.reference_spectrum)
        self.mirror = PublishMirror.from_config(cfg, self.reports_dir)  # [publish] dir / run --publish

    @staticmethod
    def _load_reference(path: str) -> dict[str, Any] | None:
        if not path:
            return None
        spectrum = read_json(Path(path))
        if spectrum is None or not {"edges", "counts"} <= set(spectrum):
            raise ValueError(f"{path}: reference spectrum must be JSON with 'edges' and 'counts'")
        return spectrum

    def _write_if_changed(self, name: str, text: str, versions: dict[str, str]) -> None:
        data = text.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()[:16]
        if versions.get(name) != digest or not (self.reports_dir / name).exists():
            atomic_write_bytes(self.reports_dir / name, data)
            versions[name] = digest

    def _scan_page(self, serial: str, scan_id: str, other_scans: list[str]) -> str:
        scan = self.store.read_scan(serial, scan_id) or {"serial": serial, "scan_id": scan_id, "state": "live"}
        return report.render_scan_page(
            scan,
            self.store.points(serial, scan_id),
            healthy_band=self.cfg.gain.healthy_band,
            target_gain=self.cfg.gain.target,
            other_scans=other_scans,
            reference_spectrum=self.reference_spectrum,
            generated_at=scan.get("updated_at", ""),
            live=self.live,
        )

    def _summary(self, serial: str, scan_id: str, fresh: bool) -> dict[str, Any]:
        """A scan's index row; kept per scan in <out>/state/summaries so that publishing one PMT's point does
        not re-read every point of every other scan (fresh=True: computed from the points and saved)."""
        path = self.store.out_root / "state" / "summaries" / f"{serial}_{scan_id}.json"
        if not fresh:
            cached = read_json(path)
            if isinstance(cached, dict) and cached.get("serial") == serial and cached.get("scan_id") == scan_id:
                return cached
        summary = report.summarize_scan(
            self.store.read_scan(serial, scan_id) or {"serial": serial, "scan_id": scan_id, "state": "live"},
            self.store.points(serial, scan_id),
            healthy_band=self.cfg.gain.healthy_band,
            target_gain=self.cfg.gain.target,
        )
        atomic_write_json(path, summary)
        return summary

    def publish(self, serial: str | None = None) -> None:
        """Re-render the pages of one PMT (all PMTs if None), then the index and version.json."""
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        versions = read_json(self.reports_dir / "version.json") or {}
        scans = self.store.scans()  # newest first
        by_serial: dict[str, list[str]] = {}
        for sn, scan_id in scans:
            by_serial.setdefault(sn, []).append(scan_id)
        for sn, scan_ids in sorted(by_serial.items()):
            if serial is not None and sn != serial:
                continue
            for scan_id in scan_ids:
                page = self._scan_page(sn, scan_id, scan_ids)
                self._write_if_changed(page_name(sn, scan_id), page, versions)
                if scan_id == scan_ids[0]:
                    self._write_if_changed(page_name(sn), page, versions)
        summaries = [self._summary(sn, scan_id, fresh=serial is None or sn == serial) for sn, scan_id in scans]
        generated = max((s.get("updated_at") or "" for s in summaries), default="")
        index = report.render_index_page(summaries, generated_at=generated, live=self.live,
                                         problems=load_problems(self.store.out_root))
        self._write_if_changed("index.html", index, versions)
        if versions != read_json(self.reports_dir / "version.json"):
            atomic_write_json(self.reports_dir / "version.json", versions)
        if self.mirror is not None:
            self.mirror.sync()

