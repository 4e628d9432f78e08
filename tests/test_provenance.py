"""Provenance: a point result names the checkout's commit, the configuration's hash and its input files."""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
from pathlib import Path

from remote_monitor.report import pages
from remote_monitor.service.processing import point_sources, process_point
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan
from remote_monitor.stand.config import Config, FitSettings
from remote_monitor.stand.layout import PointKey
from remote_monitor.stand.provenance import config_hash, full_digest, head_tail_digest

REPO = Path(__file__).resolve().parents[1]


def test_point_result_names_commit_config_and_inputs(tmp_path: Path) -> None:
    simulate_scan(tmp_path, "PV0001", scan_id="261129_120000", points=["theta0_phi0"],
                  cfg=SimulationConfig(n_events=600, record_length=300, seed=3))
    key = PointKey("PV0001", "261129_120000", "theta0_phi0")
    sources = point_sources(tmp_path, key)
    cfg = Config(fit=FitSettings(min_events=200))
    result = process_point(key, sources, cfg)
    prov = result["provenance"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert prov["git_commit"] == head
    assert prov["config_hash"] == config_hash(cfg) != config_hash(Config())
    assert set(prov["inputs"]) == set(sources) and len(sources) >= 2
    for name, path in sources.items():
        record = prov["inputs"][name]
        assert record["size"] == path.stat().st_size and record["name"] == path.name
        assert record["head_tail_blake2b"] == head_tail_digest(path)
    row = next(csv.DictReader(io.StringIO(pages.scan_csv({"theta0_phi0": result}))))
    assert row["git_commit"] == head and row["config_hash"] == prov["config_hash"]


def test_config_hash_follows_every_setting() -> None:
    base = Config()
    assert config_hash(base) == config_hash(Config())
    changed = dataclasses.replace(base, fit=dataclasses.replace(base.fit, n_pe_max=base.fit.n_pe_max + 1))
    assert config_hash(changed) != config_hash(base)


def test_head_tail_digest_sees_size_head_and_tail_changes(tmp_path: Path) -> None:
    path = tmp_path / "big.dat"
    data = bytearray(b"x" * (3 << 20))
    path.write_bytes(data)
    original = head_tail_digest(path)
    for offset in (0, len(data) - 1):
        changed = bytearray(data)
        changed[offset] = ord("y")
        path.write_bytes(changed)
        assert head_tail_digest(path) != original
    path.write_bytes(data + b"x")
    assert head_tail_digest(path) != original
    middle = bytearray(data)
    middle[len(data) // 2] = ord("y")  # the documented blind spot, which full_digest covers
    path.write_bytes(middle)
    assert head_tail_digest(path) == original
    path.write_bytes(data)
    full = full_digest(path)
    path.write_bytes(middle)
    assert full_digest(path) != full
