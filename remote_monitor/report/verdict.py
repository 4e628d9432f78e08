"""The per-PMT verdict of one scan: pass / check / fail / in progress, with the reasons a person reads.

One place decides it; the report pages, the index, the CSV, the e-mail and the notifications all show it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from remote_monitor.stand.layout import SCAN_POINTS

PASS, CHECK, FAIL, IN_PROGRESS = "pass", "check", "fail", "in progress"
#: point statuses that need a person's look but do not say the PMT is bad
NEEDS_LOOK = ("error", "uncertain")


@dataclass(frozen=True)
class Verdict:
    """`verdict` is one of pass, check, fail, in progress; `reasons` are short sentences, worst first."""

    verdict: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _listed(points: list[str], limit: int = 6) -> str:
    shown = ", ".join(points[:limit])
    return shown + (f" and {len(points) - limit} more" if len(points) > limit else "")


def pmt_verdict(scan: dict[str, Any], points: dict[str, dict[str, Any]]) -> Verdict:
    """Judge one scan of a PMT from its scan summary (scan.json) and its point results.

    fail: a scan point's gain is outside the healthy band beyond its uncertainty (status poor).
    check: some point could not be judged (error, uncertain, flagged) or the HV check has no result.
    in progress: nothing bad so far, but the scan is still live and incomplete.
    pass: all 21 scan points healthy and the HV at the target gain measured.
    """
    scan_points = {name: p for name, p in points.items() if p.get("kind") == "scan"}  # + Korean positions
    by_status: dict[str, list[str]] = {}
    for name in [*(n for n in SCAN_POINTS if n in scan_points), *sorted(set(scan_points) - set(SCAN_POINTS))]:
        by_status.setdefault(str(scan_points[name].get("status")), []).append(name)
    hv_points = [name for name, p in points.items() if p.get("kind") == "hv"]
    hv_errors = [name for name in hv_points if points[name].get("status") == "error"]
    missing = [name for name in SCAN_POINTS if name not in scan_points]
    flagged = list(scan.get("flagged_points") or [])
    hv_fit = scan.get("hv_fit") or {}

    fail = [f"gain outside the healthy band at {_listed(by_status['poor'])}"] if by_status.get("poor") else []
    check = [f"{status} at {_listed(by_status[status])}" for status in NEEDS_LOOK if by_status.get(status)]
    if hv_errors:
        check.append(f"HV check: error at {_listed(hv_errors)}")
    if flagged:
        check.append(f"flagged points: {_listed(flagged)}")
    if scan.get("state") == "flagged":
        check.append("scan flagged: " + str((scan.get("state_info") or {}).get("reason") or "no reason given"))
    live = scan.get("state", "live") == "live" and (missing or not hv_points)
    if not live and hv_points and hv_fit.get("status") not in (None, "ok"):
        check.append(f"HV check: {hv_fit.get('reason') or hv_fit.get('status')}")
    if not live and missing:
        check.append(f"no data at {_listed(missing)}")
    if fail:
        return Verdict(FAIL, fail + check)
    if check:
        return Verdict(CHECK, check)
    if live:
        done = f"{len(scan_points)} of {len(SCAN_POINTS)} scan points and {len(hv_points)} HV points done"
        return Verdict(IN_PROGRESS, [done])
    hv_text = f", HV at target {hv_fit['hv_at_target']:.1f} V" if hv_fit.get("hv_at_target") else ""
    return Verdict(PASS, [f"all {len(SCAN_POINTS)} scan points healthy{hv_text}"])
