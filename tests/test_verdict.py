"""The per-PMT verdict from point statuses and the scan summary."""

from __future__ import annotations

from typing import Any

from remote_monitor.report.verdict import CHECK, FAIL, IN_PROGRESS, PASS, pmt_verdict
from remote_monitor.stand.layout import SCAN_POINTS


def _points(status: dict[str, str] | None = None, hv: int = 5) -> dict[str, dict[str, Any]]:
    points = {name: {"kind": "scan", "status": (status or {}).get(name, "healthy")} for name in SCAN_POINTS}
    points.update({f"HV_{1700 + 25 * i}": {"kind": "hv", "status": "healthy"} for i in range(hv)})
    return points


def _scan(state: str = "complete", hv_status: str = "ok") -> dict[str, Any]:
    return {"state": state, "hv_fit": {"status": hv_status, "hv_at_target": 1743.2, "reason": "too few points"}}


def test_all_healthy_passes() -> None:
    verdict = pmt_verdict(_scan(), _points())
    assert verdict.verdict == PASS
    assert "1743.2 V" in verdict.reasons[0]


def test_a_poor_point_fails_and_names_it() -> None:
    verdict = pmt_verdict(_scan(), _points({"theta30_phi180": "poor", "theta0_phi0": "error"}))
    assert verdict.verdict == FAIL
    assert "theta30_phi180" in verdict.reasons[0]
    assert any("error at theta0_phi0" in r for r in verdict.reasons)


def test_error_or_uncertain_points_need_a_look() -> None:
    assert pmt_verdict(_scan(), _points({"theta10_phi0": "uncertain"})).verdict == CHECK
    assert pmt_verdict(_scan(), _points({"theta10_phi0": "error"})).verdict == CHECK
    assert pmt_verdict(_scan(hv_status="failed"), _points()).verdict == CHECK


def test_live_incomplete_scan_is_in_progress_until_something_is_wrong() -> None:
    some = dict(list(_points(hv=0).items())[:5])
    assert pmt_verdict(_scan("live"), some).verdict == IN_PROGRESS
    some["theta0_phi0"]["status"] = "poor"
    assert pmt_verdict(_scan("live"), some).verdict == FAIL


def test_complete_scan_with_missing_points_says_which() -> None:
    points = _points()
    del points["theta50_phi270"]
    verdict = pmt_verdict(_scan("archived"), points)
    assert verdict.verdict == CHECK
    assert "no data at theta50_phi270" in verdict.reasons
