"""The demo's comparison with the simulation's truth: status mismatches are marked, gains carry pulls."""

from __future__ import annotations

from pathlib import Path

import pytest

from remote_monitor.demo import compare_with_truth
from remote_monitor.service.store import ResultsStore
from remote_monitor.stand.layout import PointKey

SERIAL, SCAN = "DEMO01", "261128_090000"


def _truth() -> dict:
    return {"serial": SERIAL, "scan_id": SCAN, "hv_at_1e7": 1750.0, "points": {
        "theta0_phi0": {"expected_status": "healthy", "gain": 1.02e7},
        "theta10_phi0": {"expected_status": "poor", "gain": 0.87e7},
        "theta20_phi90": {"expected_status": "error", "gain": 1.02e7},
    }}


def test_pulls_and_mismatches_are_reported(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.write_point(PointKey(SERIAL, SCAN, "theta0_phi0"),
                      {"status": "healthy", "fit": {"gain": 1.04e7, "gain_err": 0.01e7}})  # +2 sigma
    store.write_point(PointKey(SERIAL, SCAN, "theta10_phi0"),
                      {"status": "healthy", "fit": {"gain": 1.00e7, "gain_err": 0.02e7}})  # wrong status
    # theta20_phi90 has no result at all: 'no data', which differs from the expected 'error'
    lines = compare_with_truth(store, _truth())
    by_point = {line.split()[0]: line for line in lines}
    assert "+2.0 sigma" in by_point["theta0_phi0"] and "differs" not in by_point["theta0_phi0"]
    assert "+6.5 sigma" in by_point["theta10_phi0"] and "differs from truth" in by_point["theta10_phi0"]
    assert "no data" in by_point["theta20_phi90"] and "differs from truth" in by_point["theta20_phi90"]
    pulls_line = next(line for line in lines if line.startswith("gain pulls"))
    assert "of 2 fitted points" in pulls_line and "mean +4.25" in pulls_line and "rms 2.25" in pulls_line
    assert lines[-1] == "1 of 3 point statuses match truth"


def test_point_without_gain_error_has_no_pull(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.write_point(PointKey(SERIAL, SCAN, "theta0_phi0"), {"status": "healthy", "fit": {"gain": 1.02e7}})
    lines = compare_with_truth(store, _truth())
    assert "sigma" not in lines[0] and "1.0200e7" in lines[0]
    assert not any(line.startswith("gain pulls") for line in lines)


@pytest.mark.parametrize("status", ["healthy", "poor"])
def test_status_column_shows_the_monitor_status(tmp_path: Path, status: str) -> None:
    store = ResultsStore(tmp_path)
    store.write_point(PointKey(SERIAL, SCAN, "theta10_phi0"), {"status": status, "fit": None})
    line = next(ln for ln in compare_with_truth(store, _truth()) if ln.startswith("theta10_phi0"))
    assert line.split()[1] == status
    assert ("differs from truth" in line) == (status != "poor")
