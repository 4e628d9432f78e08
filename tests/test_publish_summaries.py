"""Publishing one PMT's point renders the index from the saved per-scan summaries of the other scans,
without reading their points again; a full publish rebuilds every summary from the points."""

from __future__ import annotations

from pathlib import Path

from remote_monitor.service.processing import base_result
from remote_monitor.service.publish import Publisher
from remote_monitor.service.scan_results import record_point
from remote_monitor.service.store import ResultsStore
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import PointKey


def _point(store: ResultsStore, serial: str, point: str, gain: float) -> None:
    key = PointKey(serial, "261129_090000", point)
    result = {**base_result(key, {}), "status": "healthy", "reason": "ok", "events": 1000,
              "fit": {"status": "ok", "gain": gain, "gain_err": 1e4, "converged": True}}
    record_point(store, key, result, Config())


def test_index_of_other_pmts_comes_from_their_saved_summaries(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    publisher = Publisher(store, Config())
    _point(store, "OTHER1", "theta0_phi0", 1.01e7)
    _point(store, "LIVE01", "theta0_phi0", 1.02e7)
    publisher.publish()
    # the other PMT's point files vanish: a publish for LIVE01 must not need them
    for path in (store.results_dir / "OTHER1").rglob("points/*.json"):
        path.unlink()
    _point(store, "LIVE01", "theta10_phi0", 1.03e7)
    publisher.publish("LIVE01")
    index = (store.reports_dir / "index.html").read_text()
    assert "OTHER1" in index and "LIVE01" in index
    summaries = {p.stem: p for p in (tmp_path / "state" / "summaries").glob("*.json")}
    assert set(summaries) == {"OTHER1_261129_090000", "LIVE01_261129_090000"}
    assert '"points_done": 2' in summaries["LIVE01_261129_090000"].read_text()
    assert '"points_done": 1' in summaries["OTHER1_261129_090000"].read_text()
    publisher.publish()  # a full publish rebuilds from the points (OTHER1 has none now)
    assert '"points_done": 0' in summaries["OTHER1_261129_090000"].read_text()
