"""Terminal status per PMT from the mirrored results, and alerts when a point turns poor or error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

SCAN_POINT_COUNT = 21


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class StatusBoard:
    """Reads <mirror>/results/<SN>/<scan>/... and remembers which bad points it already alerted on."""

    def __init__(self, mirror_dir: Path) -> None:
        self.results = Path(mirror_dir) / "results"
        self.alerted: set[tuple[str, str, str]] = set()

    def scans(self) -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
        """(serial, scan_id, points) of the newest scan of every PMT."""
        newest: dict[str, Path] = {}
        for folder in sorted(self.results.glob("*/*")):
            if folder.is_dir() and folder.name > newest.get(folder.parent.name, Path()).name:
                newest[folder.parent.name] = folder
        found = []
        for serial, folder in sorted(newest.items()):
            points = {p.stem: r for p in sorted((folder / "points").glob("*.json")) if (r := _read(p))}
            found.append((serial, folder.name, points))
        return found

    def update(self) -> tuple[list[str], list[str]]:
        """(one line per PMT, new alerts)."""
        lines, alerts = [], []
        for serial, scan_id, points in self.scans():
            scan = _read(self.results / serial / scan_id / "scan.json") or {}
            done = sum(1 for p in points.values() if p.get("kind") == "scan")
            poor = sorted(k for k, p in points.items() if p.get("status") == "poor")
            errors = sorted(k for k, p in points.items() if p.get("status") == "error")
            latest = max(points.values(), key=lambda p: p.get("processed_at") or "", default=None)
            gain = ((latest or {}).get("fit") or {}).get("gain")
            last = f"last {latest['point']} gain {gain / 1e7:.4f}e7" if latest and gain else "last gain –"
            lines.append(f"{serial:10s} scan {scan_id} [{scan.get('state', 'live'):8s}] {done:2d}/{SCAN_POINT_COUNT} "
                         f"points, {len(poor)} poor, {len(errors)} error, {last}")
            for point in poor + errors:
                key = (serial, scan_id, point)
                if key not in self.alerted:
                    self.alerted.add(key)
                    p = points[point]
                    alerts.append(f"ALERT {serial} {point}: {p['status'].upper()} – {p.get('reason', '')}")
        return lines, alerts


def notify(alerts: list[str], bell: bool = True) -> None:
    """Terminal bell, and a desktop notification where notify-send exists."""
    if not alerts:
        return
    if bell:
        sys.stdout.write("\a")
        sys.stdout.flush()
    exe = shutil.which("notify-send")
    if exe:
        subprocess.run([exe, "PMT monitor", "\n".join(alerts[:5])], check=False, timeout=5)
