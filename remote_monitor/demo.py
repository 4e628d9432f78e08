"""The embedded default: simulate a PMT scan with faults, run the monitor over it, compare with truth."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from pathlib import Path
from typing import Any

from remote_monitor.service.monitor import Monitor
from remote_monitor.service.store import ResultsStore
from remote_monitor.simulation.stand import HEALTHY_BAND, SimulationConfig, parse_fault, simulate_scan
from remote_monitor.stand.config import Config

DEMO_OCCUPANCY = 0.3  # PE per event at theta0_phi0 (0.27 at the edge): the upper end of the stand's 0.1-0.3
DEFAULT_FAULTS = ("dead:theta20_phi90", "low_gain:theta30_phi180", "truncated:theta50_phi270",
                  "missing_channel:theta40_phi0")


def _gain_text(fit: dict[str, Any], true_gain: float) -> tuple[str, float | None]:
    """'gain ± error' in units of 1e7 and the pull (measured - truth) / error, if there is a gain."""
    gain, err = fit.get("gain"), fit.get("gain_err")
    if not gain:
        return f"{'–':^17s}", None
    if not err:
        return f"{gain / 1e7:6.4f}e7{'':9s}", None
    pull = (gain - true_gain) / err
    return f"{gain / 1e7:6.4f} ± {err / 1e7:6.4f}e7", pull


def _status_ok(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    """The monitor's status agrees with the truth; `uncertain` agrees only when the true gain is within two
    of the quoted errors of a band edge (then the data really cannot decide)."""
    status = got.get("status")
    if status == expected["expected_status"]:
        return True
    err = (got.get("fit") or {}).get("gain_err")
    if status != "uncertain" or not err or expected["expected_status"] not in ("healthy", "poor"):
        return False
    return min(abs(expected["gain"] - edge) for edge in HEALTHY_BAND) < 2 * err


def compare_with_truth(store: ResultsStore, truth: dict[str, Any]) -> list[str]:
    """One printable line per point: status and gain ± error against the simulation's truth, with the pull."""
    points = store.points(truth["serial"], truth["scan_id"])
    lines, mismatches, pulls = [], 0, []
    for point, expected in truth["points"].items():
        got = points.get(point, {})
        gain_text, pull = _gain_text(got.get("fit") or {}, expected["gain"])
        ok = _status_ok(got, expected)
        mismatches += not ok
        if pull is not None and expected["expected_status"] in ("healthy", "poor") and got.get("status") != "error":
            pulls.append(pull)
        lines.append(
            f"{point:15s} {got.get('status', 'no data'):8s} (truth {expected['expected_status']:8s}) "
            f"gain {gain_text} (truth {expected['gain'] / 1e7:6.4f}e7"
            f"{'' if pull is None else f', {pull:+.1f} sigma'})"
            f"{'' if ok else '   <-- differs from truth'}  {got.get('reason', '')}"
        )
    hv_fit = (store.read_scan(truth["serial"], truth["scan_id"]) or {}).get("hv_fit") or {}
    if hv_fit.get("hv_at_target") is not None:
        lines.append(f"HV at gain 1e7: {hv_fit['hv_at_target']:.1f} ± {hv_fit['hv_at_target_err']:.1f} V "
                     f"(truth {truth['hv_at_1e7']:.1f} V), status {hv_fit['status']}")
    if pulls:
        lines.append(f"gain pulls of {len(pulls)} fitted points: mean {statistics.fmean(pulls):+.2f}, "
                     f"rms {statistics.pstdev(pulls):.2f} "
                     "(about 0 and 1 if unbiased with honest errors)")
    lines.append(f"{len(truth['points']) - mismatches} of {len(truth['points'])} point statuses match truth")
    return lines


def default_workers() -> int:
    """Worker processes for the demo: one per core, at most 4 (each holds its own TensorFlow, ~1 GB)."""
    return max(1, min(os.cpu_count() or 1, 4))


def run_demo(workdir: Path, serials: list[str], sim_cfg: SimulationConfig, workers: int | None = None) -> int:
    """Simulate, process with the monitor (once, `workers` processes; default `default_workers`), print the
    comparison and where the report is."""
    if not sim_cfg.faults:
        sim_cfg = dataclasses.replace(sim_cfg, faults=[parse_fault(f) for f in DEFAULT_FAULTS])
    sim_cfg = dataclasses.replace(sim_cfg, mu=DEMO_OCCUPANCY)
    data, out = workdir / "data", workdir / "out"
    truths = [simulate_scan(data, serial, cfg=sim_cfg) for serial in serials]
    cfg = Config()
    cfg = dataclasses.replace(cfg, monitor=dataclasses.replace(cfg.monitor, workers=workers or default_workers()))
    Monitor(cfg, data, out, once=True).run()
    store = ResultsStore(out)
    for truth in truths:
        print(f"\n== {truth['serial']} scan {truth['scan_id']} ==")
        print("\n".join(compare_with_truth(store, truth)))
        print(f"report: {(out / 'reports' / (truth['serial'] + '.html')).absolute().as_uri()}")
    print(f"index:  {(out / 'reports' / 'index.html').absolute().as_uri()}")
    (out / "demo_truth.json").write_text(json.dumps(truths, indent=1))
    return 0
