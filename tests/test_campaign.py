"""Campaign outputs: tables over all PMTs and scans (CSV = Parquet), ROOT histograms and fitted curves that
match the stored results, and the compact stored curve that draws the same as the full one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uproot

from remote_monitor.cli import main
from remote_monitor.report.curves import compact_fit, expand_curve
from remote_monitor.report.figures import spectrum_figure
from remote_monitor.service.store import ResultsStore, atomic_write_json
from remote_monitor.stand.layout import PointKey

from .report_fixtures import SCAN_ID, SERIAL, scan_with_faults


def _store(out: Path) -> list[tuple[dict[str, Any], dict[str, dict[str, Any]]]]:
    """Two PMTs: the fixture scan (compact curves, as the monitor now stores them) and a partial one."""
    store = ResultsStore(out)
    scan, points = scan_with_faults()
    other_scan = {**scan, "serial": "EB0007", "scan_id": "261126_090000", "state": "live"}
    other = {p: {**r, "serial": "EB0007", "scan_id": "261126_090000"} for p, r in list(points.items())[:5]}
    scans = [(scan, points), (other_scan, other)]
    for s, pts in scans:
        for pid, result in pts.items():
            stored = {**result, "fit": compact_fit(result["fit"], result["histogram"])}
            store.write_point(PointKey(s["serial"], s["scan_id"], pid), stored)
        atomic_write_json(store.scan_dir(s["serial"], s["scan_id"]) / "scan.json", s)
    return scans


def test_export_tables_and_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scans = _store(tmp_path / "out")
    assert main(["export", "--out", str(tmp_path / "out"), "--to", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().out.count("wrote ") == 5
    points = pd.read_csv(tmp_path / "c" / "campaign_points.csv")
    assert len(points) == sum(len(p) for _, p in scans) == 25 + 5
    parquet = pd.read_parquet(tmp_path / "c" / "campaign_points.parquet")
    assert list(parquet.columns) == list(points.columns)
    key = ["serial", "scan_id", "point", "status", "reason", "gain", "gain_err", "events"]
    pd.testing.assert_frame_equal(points[key], parquet[key], check_dtype=False)
    error = points[(points.serial == SERIAL) & (points.point == "theta20_phi90")].iloc[0]
    assert error.status == "error" and np.isnan(error.gain) and "no SPE signal" in error.reason
    pmts = pd.read_parquet(tmp_path / "c" / "campaign_pmts.parquet").set_index("serial")
    assert pmts.loc[SERIAL, "verdict"] == "fail" and "theta30_phi180" in pmts.loc[SERIAL, "verdict_reasons"]
    assert pmts.loc["EB0007", "verdict"] == "in progress" and pmts.loc["EB0007", "points_done"] == 5
    with uproot.open(tmp_path / "c" / "campaign.root") as root:
        point = scans[0][1]["theta0_phi0"]
        hist = root[f"{SERIAL}/{SCAN_ID}/theta0_phi0/charge"]
        assert hist.values().tolist() == point["histogram"]["counts"]
        assert hist.axis().edges().tolist() == pytest.approx(point["histogram"]["edges"])
        graph = root[f"{SERIAL}/{SCAN_ID}/theta0_phi0/fit_total"]
        x, y = graph.values()
        assert x.tolist() == pytest.approx(point["fit"]["curve"]["x"], abs=1e-6)
        assert y.tolist() == pytest.approx(point["fit"]["curve"]["total"], abs=0.006)
        assert f"{SERIAL}/{SCAN_ID}/theta20_phi90/charge" not in root  # an error point has no histogram


def test_compact_curve_is_smaller_and_draws_the_same() -> None:
    _, points = scan_with_faults()
    point = points["theta10_phi0"]
    compact = compact_fit(point["fit"], point["histogram"])
    assert compact is not None
    full_size, compact_size = len(json.dumps(point)), len(json.dumps({**point, "fit": compact}))
    print(f"point JSON {full_size} -> {compact_size} bytes")
    assert compact_size < 0.6 * full_size and "x" not in compact["curve"]
    expanded = expand_curve(compact["curve"], point["histogram"])
    assert expanded is not None
    for name, values in point["fit"]["curve"]["components"].items():
        assert np.max(np.abs(np.subtract(values, expanded["components"][name]))) <= 0.0051
    before = spectrum_figure(point)
    after = spectrum_figure({**point, "fit": compact})
    assert before is not None and after is not None
    assert [t["name"] for t in before["data"]] == [t["name"] for t in after["data"]]
    assert compact_fit(compact, point["histogram"]) is compact  # idempotent


def test_export_without_results_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--out", str(tmp_path)]) == 2
    assert "no results/ directory" in capsys.readouterr().err
