"""Process one Korean-stand ROOT file: three PMT points (gain, DE, timing, dark rate), results JSON + CSV."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from remote_monitor.analysis import pickup
from remote_monitor.analysis.charges import baseline_veto, busy_baseline_warning
from remote_monitor.analysis.korean_root import (
    KoreanPmt,
    parse_korean_name,
    pickup_removal,
    read_korean_charges,
)
from remote_monitor.analysis.peer_columns import PEER_COLUMNS, peer_columns
from remote_monitor.analysis.point_extras import Digitizer
from remote_monitor.service.peer_metrics import finish_extras, new_accumulator
from remote_monitor.service.processing import _fit_charges, fingerprint, judge, reference_entry
from remote_monitor.service.store import now_iso
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import ROOT_SOURCE, KoreanFile
from remote_monitor.stand.provenance import point_provenance


def _select(q: np.ndarray, cfg: Config) -> np.ndarray:
    lo, hi = cfg.analysis.charge_range_pc
    return q[(q >= lo) & (q <= hi)]


def process_korean_file(path: Path, cfg: Config) -> list[dict[str, Any]]:
    """One result dict per PMT of the file (the same fields as a WaveDump point, plus 'channel')."""
    started = time.perf_counter()
    ks = cfg.korean
    pmts = parse_korean_name(path.name, ks)
    digitizer = Digitizer(ks.mv_per_adc, ks.ns_per_sample, ks.pedestal_samples[1], ks.trigger_threshold_mv)
    accs = {p.channel: new_accumulator(cfg, digitizer) for p in pmts}

    def on_block(trigger: np.ndarray, samples: dict[int, np.ndarray]) -> None:
        for ch, acc in accs.items():
            acc.add(trigger, samples[ch])

    channels = [p.channel for p in pmts] + ([ks.monitor_channel] if ks.monitor_channel >= 0 else [])
    veto = baseline_veto(cfg.analysis.baseline_veto_mv, ks.mv_per_adc)
    pickups = {p.channel: removal for p in pmts if cfg.analysis.remove_pickup
               and (removal := pickup_removal(ks, cfg.analysis.pmt_threshold_mv)) is not None}
    charges, n_events, n_untriggered, busy = read_korean_charges(path, ks, channels, on_block, veto, pickups)
    monitor = None
    if ks.monitor_channel >= 0:
        mon_fit, mon_hist = _fit_charges(_select(charges[ks.monitor_channel], cfg), cfg)
        monitor = {k: v for k, v in reference_entry(mon_fit, mon_hist).items() if k != "minima"}
    return [_pmt_result(path, p, _select(charges[p.channel], cfg), accs[p.channel], monitor, n_events,
                        _read_warnings(n_events, n_untriggered, busy[p.channel], veto, pickups.get(p.channel)),
                        cfg, started) for p in pmts]


def _read_warnings(n_events: int, n_untriggered: int, busy: int, veto_mv: float,
                   removal: pickup.Removal | None) -> list[str]:
    """A PMT's warnings from reading its file: events without a trigger pulse, the baseline veto's share, and the
    pickup line removed."""
    untriggered = [f"dropped {n_untriggered} event(s) without a trigger pulse"] if n_untriggered else []
    left_out = busy_baseline_warning(busy, n_events - n_untriggered, veto_mv)
    line = removal.line if removal is not None else None
    return untriggered + ([left_out] if left_out else []) + ([line.describe()] if line is not None else [])


def _pmt_result(path: Path, pmt: KoreanPmt, q: np.ndarray, acc: Any, monitor: dict[str, Any] | None,
                n_events: int, warnings: list[str], cfg: Config, started: float) -> dict[str, Any]:
    theta, phi = pmt.theta_phi
    fit, hist = _fit_charges(q, cfg)
    window = list(cfg.korean.signal_window_ns)
    result = {"serial": pmt.serial, "scan_id": path.stem, "point": pmt.point, "kind": "scan", "theta": theta,
              "phi": phi, "hv": pmt.hv, "channel": pmt.channel, "events": n_events, "selected_events": len(q),
              "histogram": hist, "reference": monitor, "warnings": warnings, "charge_window_ns": window,
              "source_files": {ROOT_SOURCE: str(path)}}
    judge(result, fit, cfg, "scan")
    result["peer"] = finish_extras(acc, fit, monitor, q, cfg, hist, charge_window_ns=window)
    result["processed_at"] = now_iso()
    result["processing_seconds"] = round(time.perf_counter() - started, 3)
    return result


def process_korean_job(file: KoreanFile, cfg: Config) -> dict[str, Any]:
    """What a monitor worker runs for a Korean file: {"points": [one result per PMT]} or {"error": why}.

    Each result carries the scan id of the file's folder and the file's fingerprint (size, mtime), so that the
    monitor records it as a point of that scan and processes the file again only when it changes."""
    path = Path(file.path)
    prints = fingerprint({ROOT_SOURCE: path})
    try:
        results = process_korean_file(path, cfg)
    except Exception as exc:  # noqa: BLE001  (uproot raises many kinds on a corrupt or half-written file)
        return {"error": f"unreadable Korean DAQ file {path.name}: {type(exc).__name__}: {str(exc)[:300]}"}
    provenance = point_provenance(cfg, {ROOT_SOURCE: path})  # reads the file's head and tail: once per file
    for r in results:
        r.update(scan_id=file.scan_id, source_files=prints, provenance=provenance)
    return {"points": results}


def korean_csv(results: list[dict[str, Any]]) -> str:
    """serial, point, status and the peer columns of each PMT; relative_de is occupancy / monitor occupancy."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["serial", "point", "hv", "status", *PEER_COLUMNS],
                            lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in results:
        peer = r.get("peer") or {}
        writer.writerow({"serial": r["serial"], "point": r["point"], "hv": r["hv"], "status": r["status"],
                         **peer_columns(r, None), "relative_de": peer.get("raw_de"),
                         "relative_de_err": peer.get("raw_de_err")})
    return buffer.getvalue()


def write_korean_results(path: Path, out: Path, cfg: Config) -> list[dict[str, Any]]:
    """Process a file and write OUT/<file stem>/<serial>_<point>.json and OUT/<file stem>.csv."""
    results = process_korean_file(path, cfg)
    folder = out / path.stem
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        (folder / f"{r['serial']}_{r['point']}.json").write_text(json.dumps(r, default=float))
    (out / f"{path.stem}.csv").write_text(korean_csv(results))
    return results
