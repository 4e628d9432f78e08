"""Atomic persistence and the results layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remote_monitor.service.store import (
    ResultsStore,
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    remove_stale_temp_files,
)
from remote_monitor.stand.layout import LayoutError, PointKey


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert read_json(target) == {"x": 2}
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.json"
    atomic_write_bytes(target, b'{"good": true}')
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"{}")
    assert read_json(target) == {"good": True} and len(list(tmp_path.iterdir())) == 1


def test_stale_temp_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "r" / "p.json", {"ok": 1})
    (tmp_path / "r" / ".p.json.abc123.tmp").write_bytes(b'{"o')
    assert remove_stale_temp_files(tmp_path) == [tmp_path / "r" / ".p.json.abc123.tmp"]
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["p.json"]


def test_corrupt_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: corrupt JSON"):
        read_json(tmp_path / "bad.json")
    assert read_json(tmp_path / "missing.json") is None


def test_results_store_layout_and_scans(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    key = PointKey("EA0001", "261125_101500", "theta10_phi90")
    store.write_point(key, {"status": "healthy"})
    assert store.point_path(key) == tmp_path / "results/EA0001/261125_101500/points/theta10_phi90.json"
    assert store.read_point(key) == {"status": "healthy"}
    assert store.points("EA0001", "261125_101500") == {"theta10_phi90": {"status": "healthy"}}
    scan = store.update_scan("EA0001", "261125_101500", hv_fit=None)
    assert scan["state"] == "live" and scan["started_at"] and scan["updated_at"]
    assert store.update_scan("EA0001", "261125_101500", state="complete")["started_at"] == scan["started_at"]
    store.update_scan("EA0002", "261126_080000")
    assert store.scans() == [("EA0002", "261126_080000"), ("EA0001", "261125_101500")]
    with pytest.raises(LayoutError):
        store.scan_dir("../etc", "261125_101500")
