"""Campaign outputs over every PMT and scan in a results tree: summary tables (CSV, Parquet) with one row
per point and one per PMT scan, and a ROOT file with each point's charge histogram and fitted curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from remote_monitor.report.curves import expand_curve
from remote_monitor.report.pages import _point_order, _point_row, summarize_scan
from remote_monitor.report.verdict import pmt_verdict
from remote_monitor.stand.provenance import config_hash, version_text

PMT_FIELDS = ["serial", "scan_id", "state", "verdict", "verdict_reasons", "points_done", "points_total", "hv_done",
              "n_healthy", "n_poor", "n_error", "n_uncertain", "mean_gain", "uniformity", "hv_at_target",
              "hv_at_target_err", "started_at", "updated_at", "code_versions", "config_hashes"]

Scans = list[tuple[dict[str, Any], dict[str, dict[str, Any]]]]


def load_scans(store: Any) -> Scans:
    """(scan summary, point results) of every scan in a ResultsStore, newest first."""
    return [(store.read_scan(serial, scan_id) or {"serial": serial, "scan_id": scan_id, "state": "live"},
             store.points(serial, scan_id)) for serial, scan_id in store.scans()]


def point_rows(scans: Scans) -> list[dict[str, Any]]:
    """One row per point of every scan: identity, status, reason, fit numbers, provenance."""
    rows = []
    for scan, points in scans:
        for pid in sorted(points, key=_point_order):
            row = {"serial": scan["serial"], "scan_id": scan["scan_id"], **_point_row(pid, points[pid])}
            row["warnings"] = "; ".join(row.get("warnings") or [])
            rows.append(row)
    return rows


def pmt_rows(scans: Scans, healthy_band: tuple[float, float], target_gain: float) -> list[dict[str, Any]]:
    """One row per PMT scan: the index's summary plus the verdict with its reasons and the provenance seen."""
    rows = []
    for scan, points in scans:
        summary = summarize_scan(scan, points, healthy_band, target_gain)
        verdict = pmt_verdict(scan, points)
        provs = [p.get("provenance") or {} for p in points.values()]
        rows.append({**{k: summary.get(k) for k in PMT_FIELDS}, "verdict": verdict.verdict,
                     "verdict_reasons": "; ".join(verdict.reasons),
                     "code_versions": "; ".join(sorted({version_text(p) for p in provs if p})),
                     "config_hashes": "; ".join(sorted({str(p.get("config_hash")) for p in provs if p}))})
    return rows


def write_tables(rows: list[dict[str, Any]], stem: Path, formats: tuple[str, ...] = ("csv", "parquet")) -> list[Path]:
    """rows -> <stem>.csv and/or <stem>.parquet (pandas + pyarrow); returns the files written."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    written = []
    stem.parent.mkdir(parents=True, exist_ok=True)
    if "csv" in formats:
        frame.to_csv(stem.with_suffix(".csv"), index=False)
        written.append(stem.with_suffix(".csv"))
    if "parquet" in formats:
        frame.to_parquet(stem.with_suffix(".parquet"), index=False)
        written.append(stem.with_suffix(".parquet"))
    return written


def write_root(scans: Scans, path: Path) -> int:
    """<serial>/<scan_id>/<point>/charge (TH1D) and fit_total, fit_<component> (TGraph) per point; returns
    the number of histograms written. Units: charge in pC, y in events per bin."""
    import numpy as np
    import pandas as pd
    import uproot

    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with uproot.recreate(path) as out:
        for scan, points in scans:
            for pid, p in sorted(points.items()):
                hist = p.get("histogram")
                if not hist:
                    continue
                where = f"{scan['serial']}/{scan['scan_id']}/{pid}"
                edges = np.asarray(hist["edges"], dtype=float)
                out[f"{where}/charge"] = (np.asarray(hist["counts"], dtype=float), edges)
                count += 1
                curve = expand_curve((p.get("fit") or {}).get("curve"), hist)
                if not curve:
                    continue
                x = np.asarray(curve["x"], dtype=float)
                series = {"total": curve.get("total") or [], **(curve.get("components") or {})}
                for name, values in series.items():
                    if len(values) == len(x):
                        frame = pd.DataFrame({"x": x, "y": np.asarray(values, dtype=float)})
                        out[f"{where}/fit_{name.replace(' ', '')}"] = uproot.as_TGraph(
                            frame, title=f"{pid} fit {name}", xAxisLabel="charge [pC]", yAxisLabel="events / bin")
    return count


def export_campaign(store: Any, out_dir: Path, healthy_band: tuple[float, float], target_gain: float,
                    formats: tuple[str, ...] = ("csv", "parquet", "root"), cfg: Any = None) -> list[Path]:
    """Write campaign_points.*, campaign_pmts.* and campaign.root into out_dir; returns the paths."""
    scans = load_scans(store)
    table_formats = tuple(f for f in formats if f != "root")
    written = write_tables(point_rows(scans), out_dir / "campaign_points", table_formats)
    written += write_tables(pmt_rows(scans, healthy_band, target_gain), out_dir / "campaign_pmts", table_formats)
    if "root" in formats:
        write_root(scans, out_dir / "campaign.root")
        written.append(out_dir / "campaign.root")
    if cfg is not None:
        (out_dir / "campaign_config_hash.txt").write_text(config_hash(cfg) + "\n")
    return written
