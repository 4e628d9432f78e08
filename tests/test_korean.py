"""Korean-stand ROOT files: name parsing, and the same gains as the same events written as WaveDump."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis.charges import AnalysisSettings, ChannelMap, extract_point_charges
from remote_monitor.analysis.korean_root import KoreanSettings, parse_korean_name
from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE
from remote_monitor.cli import main
from remote_monitor.service.korean import process_korean_file
from remote_monitor.service.processing import _fit_charges
from remote_monitor.simulation.korean_writer import (
    korean_file_name,
    simulate_korean_blocks,
    simulate_korean_file,
    write_korean_root,
)
from remote_monitor.stand.config import Config

PMTS = [("EM2740A", 1670, 0, 0, 1.0e7, 0.5), ("EL1635B", 1840, 45, -20, 1.2e7, 0.8),
        ("EK0042C", 1700, 90, 30, 0.8e7, 1.0)]


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


def _with_pickup(blocks: list[dict[int, np.ndarray]], channel: int, amplitude_mv: float,
                 rng: np.random.Generator) -> list[dict[int, np.ndarray]]:
    """The blocks with a 3.7 MHz line of random phase per event added to one channel's samples."""
    out = []
    for block in blocks:
        samples = block[channel]
        t = np.arange(samples.shape[1]) * NS_PER_SAMPLE
        phase = rng.uniform(0, 2 * np.pi, (len(samples), 1))
        line = amplitude_mv / MV_PER_ADC * np.sin(2 * np.pi * 3.7e-3 * t + phase)
        out.append({**block, channel: np.rint(samples + line).astype(samples.dtype)})
    return out


def test_korean_file_loses_its_pickup_line_as_wavedump_files_do(tmp_path: Path):
    """A pickup line of a few MHz widens the pedestal of a window charge and skews the gain (an independent
    Korean-format stand: 0.11 mV at 3.7 MHz, +2.9 % where its pedestal went from 0.38 to 0.23 pC without it); the
    Korean path removes it as the WaveDump path does, and says so."""
    rng = np.random.default_rng(11)
    blocks = list(simulate_korean_blocks(rng, 8000, 512, [(1e7, 0.1)], monitor=None, chunk_events=2000))
    cfg = Config(korean=KoreanSettings(step_entries=2000, monitor_channel=-1))
    clean = tmp_path / korean_file_name([("EM2740A", 1670, 0, 0)], "clean")
    noisy = tmp_path / korean_file_name([("EM2740A", 1670, 0, 0)], "pickup")
    write_korean_root(clean, iter(blocks), 512)
    write_korean_root(noisy, iter(_with_pickup(blocks, 1, 0.3, rng)), 512)
    [without_line] = process_korean_file(clean, cfg)
    [removed] = process_korean_file(noisy, cfg)
    [kept] = process_korean_file(noisy, Config(korean=cfg.korean, analysis=AnalysisSettings(remove_pickup=False)))
    assert any(w.startswith("pickup at 3.7") for w in removed["warnings"])
    assert not any("pickup" in w for w in without_line["warnings"] + kept["warnings"])
    widths = [r["fit"]["sigma0_pc"] for r in (without_line, removed, kept)]
    assert widths[1] < 1.1 * widths[0] and widths[2] > 1.3 * widths[0], widths
