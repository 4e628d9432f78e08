"""The HTML report: deterministic, structurally right (grid like the PMT face), self-contained, small."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from typing import Any

import pytest

from remote_monitor.report import pages as report
from remote_monitor.stand.layout import SCAN_POINTS

from .report_fixtures import SCAN_ID, SERIAL, expected_statuses, scan_with_faults

BAND = (0.999e7, 1.049e7)


class Structure(HTMLParser):
    """Collects the cells, scripts and links of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, dict[str, str]] = {}
        self.scripts: list[dict[str, str]] = []
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-point" in a:
            self.cells[a["data-point"]] = a
        if tag == "script":
            self.scripts.append(a)
        if tag in ("a", "link", "img", "iframe") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))
        if "id" in a:
            self.ids.add(a["id"])


def render(scan: dict[str, Any], points: dict[str, dict[str, Any]], **kw: Any) -> str:
    return report.render_scan_page(scan, points, healthy_band=BAND, target_gain=1e7, other_scans=[SCAN_ID],
                                   generated_at="2026-11-25T10:40:00+00:00", **kw)


def parse(html: str) -> Structure:
    structure = Structure()
    structure.feed(html)
    return structure


def test_rendering_is_deterministic() -> None:
    scan, points = scan_with_faults()
    assert render(scan, points) == render(scan, dict(reversed(list(points.items()))))


def test_grid_is_laid_out_like_the_pmt_face() -> None:
    scan, points = scan_with_faults()
    page = parse(render(scan, points))
    grid = {p: a for p, a in page.cells.items() if p in SCAN_POINTS}
    assert len(grid) == 21
    assert {p: a["data-status"] for p, a in grid.items()} == expected_statuses(points)
    pos = {p: (int(a["data-row"]), int(a["data-col"])) for p, a in grid.items()}
    assert pos["theta0_phi0"] == (6, 6)
    assert pos["theta10_phi0"] == (6, 7) and pos["theta50_phi0"] == (6, 11)      # phi 0 to the right
    assert pos["theta10_phi90"] == (5, 6) and pos["theta50_phi90"] == (1, 6)     # phi 90 up
    assert pos["theta30_phi180"] == (6, 3)                                        # phi 180 left
    assert pos["theta40_phi270"] == (10, 6)                                       # phi 270 down
    hv = [p for p in page.cells if p.startswith("HV_")]
    assert hv == ["HV_1650", "HV_1700", "HV_1750", "HV_1800", "HV_1850"]
    assert {"polar-map", "hv-plot", "spectrum", "fit-params", "download-csv", "download-json"} <= page.ids


def test_page_is_self_contained_and_small() -> None:
    scan, points = scan_with_faults()
    html = render(scan, points, reference_spectrum=points["theta0_phi0"]["histogram"], live=True)
    page = parse(html)
    assert all(not s.get("src") for s in page.scripts)  # everything inline
    assert all(link.startswith(("data:", f"{SERIAL}_", "#")) for link in page.links), page.links
    assert {link[1:] for link in page.links if link.startswith("#")} <= page.ids  # in-page links all land
    assert html.count("plotly.js (basic - minified)") == 1  # plotly.js included once
    size = len(html.encode())
    print(f"scan page: {size / 1e6:.2f} MB")
    assert size <= 3 * 1024 * 1024
    data = json.loads(html.split('id="report-data">')[1].split("</script>")[0])
    assert data["live"] is True and set(data["spectra"]) >= {"theta0_phi0", "HV_1750"}
    assert any(t["name"].startswith("reference") for t in data["spectra"]["theta0_phi0"]["data"])


@pytest.mark.parametrize("case", ["no data yet", "partial scan", "flagged"])
def test_states_render(case: str) -> None:
    scan, points = scan_with_faults()
    if case == "no data yet":
        points = {}
        scan = {"serial": SERIAL, "scan_id": SCAN_ID, "state": "live"}
    elif case == "partial scan":
        points = {p: r for p, r in points.items() if p in SCAN_POINTS[:7]}
    else:
        scan = {**scan, "state": "flagged", "state_info": {"by": "alice", "at": "2026-11-25T11:00:00+00:00",
                                                           "reason": "HV cable loose", "command_id": "ab" * 16,
                                                           "action": "flag", "points": None}}
    html = render(scan, points)
    page = parse(html)
    statuses = [a["data-status"] for p, a in page.cells.items() if p in SCAN_POINTS]
    assert len(statuses) == 21
    if case == "no data yet":
        assert set(statuses) == {"no_data"} and "0 / 21" in html
    elif case == "partial scan":
        assert statuses.count("no_data") == 14 and "7 / 21" in html
    else:
        assert "flagged" in html and "alice" in html and "HV cable loose" in html


def test_a_reference_pmt_without_a_gain_says_why() -> None:
    # a reference PMT at 20 PE per event has no single-photoelectron gain: its row says why instead of vanishing
    scan, points = scan_with_faults()
    why = "too much light for a single-photoelectron gain: no pedestal at zero charge"
    points["theta0_phi0"]["reference"] = {"gain": None, "gain_err": None, "status": "too_bright", "reason": why}
    table = render(scan, points).split('id="reference-table"')[1].split("</table>")[0]
    rows = {r.split("</td>")[0].split("<td>")[-1]: r for r in table.split("<tr>")[2:]}
    assert why in rows["theta0_phi0"] and "1.0000e7" in rows["theta30_phi180"], table


def test_summary_and_downloads() -> None:
    scan, points = scan_with_faults()
    summary = report.summarize_scan(scan, points, BAND)
    assert summary["points_done"] == 20 and summary["n_poor"] == 1 and summary["n_error"] == 1
    assert summary["hv_at_target"] == pytest.approx(scan["hv_fit"]["hv_at_target"])
    rows = list(csv.DictReader(io.StringIO(report.scan_csv(points))))
    assert len(rows) == 25 and rows[0]["point"] == "theta0_phi0"
    assert json.loads(report.scan_json(scan, points))["points"]["HV_1750"]["fit"]["gain"] > 0
    index = report.render_index_page([summary], generated_at="x")
    assert f'href="{SERIAL}.html"' in index and "1 poor" in index and "20 of 21" in index
    assert "No PMT scans yet" in report.render_index_page([], generated_at="x")
