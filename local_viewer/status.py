"""Terminal status per PMT from the mirrored results, and alerts when a point turns poor or error."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .atomic import read_json

SCAN_POINT_COUNT = 21
BAD = ("poor", "error")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _gain(point: dict[str, Any]) -> float | None:
    gain = _dict(point.get("fit")).get("gain")
    return float(gain) if isinstance(gain, (int, float)) and not isinstance(gain, bool) else None


def _names(points: list[str], limit: int = 4) -> str:
    shown = ", ".join(points[:limit]) + (", ..." if len(points) > limit else "")
    return f" ({shown})" if points else ""


class StatusBoard:
    """Reads <mirror>/results/<SN>/<scan>/... and remembers which bad points it already alerted on."""

    def __init__(self, mirror_dir: Path) -> None:
        self.results = Path(mirror_dir) / "results"
        self.alerted: set[tuple[str, str, str, str]] = set()

    def scans(self) -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
        """(serial, scan_id, {point: result}) of the newest scan of every PMT (scan ids sort by time)."""
        newest: dict[str, Path] = {}
        for folder in sorted(self.results.glob("*/*")):
            if folder.is_dir() and folder.name > newest.get(folder.parent.name, Path()).name:
                newest[folder.parent.name] = folder
        found = []
        for serial, folder in sorted(newest.items()):
            points = {p.stem: r for p in sorted((folder / "points").glob("*.json"))
                      if isinstance(r := read_json(p), dict)}
            found.append((serial, folder.name, points))
        return found

    def update(self) -> tuple[list[str], list[str]]:
        """(one line per PMT, alerts for points that turned poor/error since the previous call)."""
        lines, alerts = [], []
        for serial, scan_id, points in self.scans():
            state = _dict(read_json(self.results / serial / scan_id / "scan.json")).get("state", "live")
            done = sum(1 for name in points if name.startswith("theta"))  # HV points do not count
            poor = sorted(k for k, p in points.items() if p.get("status") == "poor")
            errors = sorted(k for k, p in points.items() if p.get("status") == "error")
            latest = max(points.items(), key=lambda kv: str(kv[1].get("processed_at") or ""), default=None)
            gain = _gain(latest[1]) if latest else None
            last = f"last {latest[0]} gain {gain / 1e7:.4f}e7" if latest and gain is not None else "last gain -"
            lines.append(f"{serial:10s} scan {scan_id} [{state!s:8s}] {done:2d}/{SCAN_POINT_COUNT} points, "
                         f"{len(poor)} poor{_names(poor)}, {len(errors)} error{_names(errors)}, {last}")
            for point in poor + errors:
                status = points[point]["status"]
                key = (serial, scan_id, point, status)
                if key not in self.alerted:
                    self.alerted.add(key)
                    alerts.append(f"ALERT {serial} {scan_id} {point}: {status.upper()} - "
                                  f"{points[point].get('reason') or 'no reason given'}")
        return lines, alerts


def notify(alerts: list[str], bell: bool = True) -> None:
    """Terminal bell, and a desktop notification where `notify-send` is on PATH (never fails the viewer)."""
    if not alerts:
        return
    if bell:
        sys.stdout.write("\a")
        sys.stdout.flush()
    exe = shutil.which("notify-send")
    if exe:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([exe, "--urgency=critical", "PMT monitor alert", "\n".join(alerts[:5])],
                           check=False, timeout=5, stdin=subprocess.DEVNULL)
