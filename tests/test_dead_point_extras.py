"""A point without light on the PMT or on the light monitor: no raw or relative DE (with the reason), a dark rate
not corrected with a fit that saw no light, a reference PMT without light that says so, and a scan summary whose
DE uniformity leaves such points out (an independent stand's dead point read relative DE 204 and made the DE
spread 19.8)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from remote_monitor.analysis.charges import ChannelMap
from remote_monitor.analysis.histogram import Histogram, fill_histogram
from remote_monitor.analysis.peer_columns import peer_table
from remote_monitor.analysis.point_verdict import NO_LIGHT
from remote_monitor.analysis.wavedump_writer import write_binary
from remote_monitor.service.peer_metrics import (
    finish_extras,
    new_accumulator,
    no_monitor_reason,
    peer_summary,
)
from remote_monitor.service.processing import fit_histogram, point_sources, process_point, reference_entry
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms
from remote_monitor.stand.config import Config, FitSettings
from remote_monitor.stand.layout import PointKey, channel_file

SIM = SimulationConfig(record_length=400, include_reference=True, seed=34)
CFG = Config(fit=FitSettings(min_events=200), channels=ChannelMap(reference=4))


def _processed(tmp_path: Path, mu: float, cfg: Config = CFG, seed: int = 1) -> dict[str, Any]:
    """One simulated point (PMT at mu PE; SiPM lit only with mu > 0; reference PMT always lit), processed."""
    waves = simulate_point_waveforms(np.random.default_rng(seed), 6000, 400, 1.0e7, mu, SIM)
    key = PointKey("DEAD34", "261205_140000", "theta40_phi180")
    for channel, samples in waves.items():
        path = channel_file(tmp_path, key, channel, binary=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_binary(path, samples, channel)
    return process_point(key, point_sources(tmp_path, key), cfg)


def test_a_point_without_light_has_no_de_and_an_uncorrected_dark_rate(tmp_path: Path) -> None:
    result = _processed(tmp_path, 0.0)
    assert result["status"] == "error" and result["reason"].startswith("no light"), result["reason"]
    peer = result["peer"]
    assert peer["raw_de"] is None and peer["raw_de_err"] is None
    assert peer["raw_de_reason"].startswith("no usable light on the PMT: no light"), peer["raw_de_reason"]
    dark = peer["dark"]
    assert dark["threshold_efficiency"] is None and dark["threshold_efficiency_from"] is None
    assert dark["dark_rate_hz"] == dark["dark_rate_raw_hz"]
    assert "not corrected for the threshold efficiency: no light" in dark["dark_rate_note"]
    assert result["reference"]["status"] == "ok" and result["reference"]["gain"] is not None  # it saw light


def test_a_sipm_window_that_misses_the_pulses_gives_no_de(tmp_path: Path) -> None:
    off = dataclasses.replace(CFG.efficiency, sipm_window_ns=(500.0, 600.0))  # the pulses come at 300 ns
    result = _processed(tmp_path, 0.2, dataclasses.replace(CFG, efficiency=off))
    peer = result["peer"]
    assert result["status"] != "error", result["reason"]
    assert peer["sipm"]["charge_mean_pc"] < 1.0  # noise: the lit window reads ~60 pC
    assert peer["raw_de"] is None
    assert peer["raw_de_reason"].startswith("no light on the monitor: SiPM mean charge"), peer["raw_de_reason"]
    lit = _processed(tmp_path / "lit", 0.2)["peer"]
    assert lit["raw_de"] is not None and "raw_de_reason" not in lit


def _hist(light: bool) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    charges = rng.normal(0, 0.15, 20_000)
    if light:
        charges[:4000] += rng.gamma(10, 0.16, 4000)
    return fill_histogram(charges, CFG.histogram.n_bins, *CFG.histogram.range_pc).to_dict()


def _hist_fit(light: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    hist = _hist(light)
    return fit_histogram(Histogram.from_dict(hist), CFG), hist


def test_a_reference_pmt_without_light_says_so_and_shows_no_gain() -> None:
    dark = reference_entry(*_hist_fit(light=False))
    assert dark["status"] == NO_LIGHT and dark["gain"] is None and dark["gain_err"] is None
    assert dark["reason"].startswith("no light"), dark["reason"]
    lit = reference_entry(*_hist_fit(light=True))
    assert lit["status"] == "ok" and lit["gain"] is not None and "reason" not in lit


def test_reference_normalisation_needs_light_on_the_reference() -> None:
    cfg = dataclasses.replace(CFG, efficiency=dataclasses.replace(CFG.efficiency, normalisation="reference_occupancy"))
    fit = {"status": "ok", "gain": 1e7, "gain_err": 1e5, "mu": 0.2, "mu_err": 0.005, "q1_pc": 1.6,
           "sigma1_pc": 0.5, "sigma0_pc": 0.15}
    dead_ref = {"status": NO_LIGHT, "reason": "no SPE signal (occupancy 0.001 PE): laser or fibre problem?",
                "gain": None, "mu": 0.0006, "mu_err": 0.0009}
    out = finish_extras(new_accumulator(cfg), fit, dead_ref, None, cfg, _hist(light=True))
    assert out["raw_de"] is None and out["raw_de_reason"].startswith("reference PMT: no SPE signal")
    faint_ref = {"status": "ok", "gain": 1e7, "gain_err": 5e6, "mu": 0.0006, "mu_err": 0.0009}  # an old entry
    assert finish_extras(new_accumulator(cfg), fit, faint_ref, None, cfg, _hist(light=True))["raw_de"] is None
    lit_ref = {"status": "ok", "gain": 1e7, "gain_err": 1e5, "mu": 0.08, "mu_err": 0.004}
    assert finish_extras(new_accumulator(cfg), fit, lit_ref, None, cfg, _hist(light=True))["raw_de"] == \
        pytest.approx(0.2 / 0.08)


def test_a_failed_fit_does_not_correct_the_dark_rate() -> None:
    dark = new_accumulator(CFG).dark({"status": "failed", "reason": "Minuit failed"})
    assert dark["threshold_efficiency_from"] is None
    assert dark["dark_rate_note"] == "not corrected for the threshold efficiency: SPE fit failed"


def _point(status: str, raw_de: float, reason: str = "") -> dict[str, Any]:
    return {"status": status, "reason": reason, "fit": {"gain": None if status == "error" else 1e7},
            "peer": {"raw_de": raw_de, "raw_de_err": 0.01 * raw_de}}


SIDE = ["theta50_phi0", "theta50_phi90", "theta50_phi180", "theta50_phi270"]
DEAD = "no light: only 0.00 % of events above the pedestal (laser, fibre or dead PMT?)"


def test_scan_summary_leaves_an_error_point_out_of_the_de_uniformity() -> None:
    """As stored by the independent stand (before the fix): the dead point kept a raw DE of 0.486 where the
    lit ones had 0.0024."""
    points = {"theta0_phi0": _point("healthy", 0.0024), **{p: _point("healthy", 0.0023) for p in SIDE},
              "theta40_phi180": _point("error", 0.486, DEAD)}
    summary = peer_summary(points, Config())
    assert summary["de_uniformity"]["n_points"] == 5
    assert summary["de_uniformity"]["spread"] == pytest.approx(0.1 / 2.32, rel=1e-6)
    assert summary["de_verdict"] == "pass", summary["de_reason"]
    assert summary["de_reason"].endswith("; left out: theta40_phi180")
    assert summary["de_left_out"] == [{"point": "theta40_phi180", "reason": DEAD}]
    assert peer_table(points)["theta40_phi180"]["relative_de"] is None


def test_a_scan_without_a_light_monitor_says_its_de_is_not_measured() -> None:
    """A stand that records no SiPM (the seventh independent stand: trigger and PMT only): the DE verdict was
    "in progress" for good; it is "not measured", with the way to a DE without a monitor."""
    fit = {"status": "ok", "gain": 1e7, "gain_err": 1e5, "mu": 0.2, "mu_err": 0.005, "q1_pc": 1.6,
           "sigma1_pc": 0.5, "sigma0_pc": 0.15}
    peer = finish_extras(new_accumulator(CFG), fit, None, None, CFG, _hist(light=True))  # no SiPM samples added
    assert peer["raw_de"] is None and peer["raw_de_reason"] == no_monitor_reason("sipm_charge")
    no_monitor = {"status": "healthy", "fit": fit, "peer": peer}
    summary = peer_summary(dict.fromkeys(("theta0_phi0", *SIDE), no_monitor), Config())
    assert summary["de_verdict"] == "not measured"
    assert 'normalisation = "none"' in summary["de_reason"] and "sipm_charge" in summary["de_reason"]
    failed_centre = {"theta0_phi0": {**no_monitor, "status": "error", "reason": "fit failed"}}
    failed = peer_summary({**dict.fromkeys(SIDE, no_monitor), **failed_centre}, Config())
    assert failed["de_verdict"] == "in progress" and "left out (fit failed)" in failed["de_reason"]


def test_scan_summary_with_the_centre_left_out_says_why() -> None:
    points = {"theta0_phi0": _point("error", 0.486, DEAD), **{p: _point("healthy", 0.0023) for p in SIDE}}
    summary = peer_summary(points, Config())
    assert summary["de_verdict"] == "in progress"
    assert summary["de_reason"] == f"relative detection efficiency needs the centre point, left out ({DEAD})"
    assert all(c["relative_de"] is None for c in peer_table(points).values())
