"""Results on disk: atomic writes (temp + fsync + rename) and the layout of <out>/results/."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remote_monitor.stand.layout import PointKey, validate_point, validate_scan_id, validate_serial


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write so that readers see the old or the new file, never half of one, even after a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # reports and results are for everyone on the machine to read
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files of atomic writes a killed process left behind (call before writers start)."""
    stale = sorted(Path(folder).rglob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False).encode("utf-8"))


class CorruptFile(ValueError):
    """A state or result file that cannot be used (not UTF-8, not JSON, too deeply nested, wrong shape)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: corrupt JSON ({why})")
        self.path = Path(path)


def read_json(path: Path) -> Any:
    """The parsed file, None if it does not exist; a corrupt file is a CorruptFile (ValueError) naming it."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
        return json.loads(text)
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptFile(path, f"{type(exc).__name__}: {str(exc)[:200]}") from None


def read_json_object(path: Path) -> dict[str, Any] | None:
    """Like read_json, but the file must hold a JSON object."""
    obj = read_json(path)
    if obj is not None and not isinstance(obj, dict):
        raise CorruptFile(path, f"a {type(obj).__name__}, not an object")
    return obj


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ResultsStore:
    """<out>/results/<SN>/<scan_id>/{scan.json, points/<point>.json}; everything derived from the files."""

    def __init__(self, out_root: Path, on_corrupt: Callable[[CorruptFile], None] | None = None) -> None:
        self.out_root = Path(out_root)
        self.results_dir = self.out_root / "results"
        self.reports_dir = self.out_root / "reports"
        self.on_corrupt = on_corrupt  # when set, corrupt files are handed over (quarantined) and read as missing

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            return read_json_object(path)
        except CorruptFile as exc:
            if self.on_corrupt is None:
                raise
            self.on_corrupt(exc)
            return None

    def scan_dir(self, serial: str, scan_id: str) -> Path:
        return self.results_dir / validate_serial(serial) / validate_scan_id(scan_id)

    def point_path(self, key: PointKey) -> Path:
        return self.scan_dir(key.serial, key.scan_id) / "points" / f"{validate_point(key.point)}.json"

    def write_point(self, key: PointKey, result: dict[str, Any]) -> None:
        atomic_write_json(self.point_path(key), result)

    def read_point(self, key: PointKey) -> dict[str, Any] | None:
        return self._read(self.point_path(key))

    def points(self, serial: str, scan_id: str) -> dict[str, dict[str, Any]]:
        folder = self.scan_dir(serial, scan_id) / "points"
        found = {p.stem: self._read(p) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
        return {name: point for name, point in found.items() if point is not None}

    def read_scan(self, serial: str, scan_id: str) -> dict[str, Any] | None:
        return self._read(self.scan_dir(serial, scan_id) / "scan.json")

    def update_scan(self, serial: str, scan_id: str, **fields: Any) -> dict[str, Any]:
        """Read-modify-write scan.json (created as a live scan if missing)."""
        scan = self.read_scan(serial, scan_id) or {
            "serial": serial, "scan_id": scan_id, "started_at": now_iso(), "state": "live",
            "state_info": None, "flagged_points": [], "hv_fit": None,
        }
        scan.update(fields, updated_at=now_iso())
        atomic_write_json(self.scan_dir(serial, scan_id) / "scan.json", scan)
        return scan

    def scans(self) -> list[tuple[str, str]]:
        """(serial, scan_id) of every stored scan, newest scan first."""
        found = [(d.parent.name, d.name) for d in self.results_dir.glob("*/*") if d.is_dir()]
        return sorted(found, key=lambda s: (s[1], s[0]), reverse=True)
