"""Korean-stand ROOT files: name parsing, and the same gains as the same events written as WaveDump."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis.charges import ChannelMap, extract_point_charges
from remote_monitor.analysis.korean_root import KoreanSettings, parse_korean_name
from remote_monitor.cli import main
from remote_monitor.service.korean import process_korean_file
from remote_monitor.service.processing import _fit_charges
from remote_monitor.simulation.korean_writer import simulate_korean_file
from remote_monitor.stand.config import Config

PMTS = [("EM2740A", 1670, 0, 0, 1.0e7, 0.5), ("EL1635B", 1840, 45, -20, 1.2e7, 0.8), ("EK0042C", 1700, 90, 30, 0.8e7, 1.0)]


def test_file_name_gives_serials_hvs_angles_and_channels():
    pmts = parse_korean_name("prd_EM2740A_hv1670_R00_T00_EL1635B_hv1840_RP45_TM20_run12.root")
    assert [(p.serial, p.hv, p.r_deg, p.t_deg, p.channel) for p in pmts] == [
        ("EM2740A", 1670, 0, 0, 1), ("EL1635B", 1840, 45, -20, 2)]
    assert [p.point for p in pmts] == ["theta0_phi0", "theta20_phi225"]
    with pytest.raises(ValueError, match="no '<SERIAL>"):
        parse_korean_name("run12.root")
    with pytest.raises(ValueError, match="only channels"):
        parse_korean_name("prd_EM2740A_hv1670_R00_T00_EL1635B_hv1840_RP45_TM20.root",
                          KoreanSettings(pmt_channels=(1,)))


def test_korean_file_gives_the_wavedump_gains(tmp_path: Path):
    path = simulate_korean_file(tmp_path, PMTS, n_events=12000, record_length=512, wavedump_dir=tmp_path / "wd")
    cfg = Config(korean=KoreanSettings(step_entries=1000))
    results = process_korean_file(path, cfg)
    assert [r["serial"] for r in results] == [p[0] for p in PMTS]
    assert min(r["selected_events"] for r in results) < 12000  # a dark pulse among some baseline samples
    for r, spec in zip(results, PMTS, strict=True):
        files = {0: tmp_path / "wd" / spec[0] / "wave0.dat", 2: tmp_path / "wd" / spec[0] / "wave2.dat"}
        wd = extract_point_charges(files, ChannelMap(sipm=None), cfg.analysis)
        wd_fit, _ = _fit_charges(wd.pmt_charge_pc, cfg)
        assert r["selected_events"] == wd.n_selected  # both leave out the same events (`baseline_veto_mv`)
        assert r["fit"]["gain"] == pytest.approx(wd_fit["gain"], rel=1e-6)
        assert abs(r["fit"]["gain"] / spec[4] - 1) < 4 * r["fit"]["gain_err"] / spec[4] + 0.01
        assert r["hv"] == spec[1]
        assert np.isfinite(r["peer"]["timing"]["transit_time_ns"])


def test_korean_cli_writes_json_and_a_csv_that_loads_with_pandas(tmp_path: Path):
    pd = pytest.importorskip("pandas")
    path = simulate_korean_file(tmp_path, PMTS, n_events=3000, record_length=512)
    assert main(["korean", str(path), "--out", str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out" / path.stem).glob("*.json"))) == 3
    table = pd.read_csv(tmp_path / "out" / f"{path.stem}.csv")
    assert list(table["serial"]) == [p[0] for p in PMTS]
    for column in ("theta", "phi", "gain", "gain_err", "relative_de", "relative_de_err", "transit_time_ns",
                   "tts_sigma_ns", "tts_fwhm_ns", "dark_rate_hz", "hamamatsu_angle"):
        assert column in table.columns
    assert table["gain"].notna().all()
