"""The simulated test stand: realistic WaveDump data of a PMT scan (21 positions + HV check) with truth.

Per event k ~ Poisson(mu) photoelectrons (mu = laser occupancy x the point's relative detection efficiency),
each with its own charge and time (`spe_charge`: skewed Polya-mixture main peak, under-amplified and
backscattered photoelectrons, TTS with a late tail, late pulses), one pulse each (`pulses`: rise 6.9 ns,
FWHM 11.4 ns) PMT_DELAY_NS after the trigger pulse, plus afterpulses (0.5..1.9 us later) and dark counts
anywhere in the record, on band-limited noise with baseline wander and pickup, digitised to 14 bit with a DC
offset and clipping. The truth (truth.json) is described in docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from remote_monitor.analysis.spe_response import QUARTER_PE
from remote_monitor.analysis.units import ELEMENTARY_CHARGE_PC, NS_PER_SAMPLE
from remote_monitor.analysis.wavedump_writer import ascii_bytes, binary_bytes
from remote_monitor.simulation.pulses import ADC_MAX, add_pulses, digitise, noise
from remote_monitor.simulation.spe_charge import (
    PmtPhysics,
    event_pes,
    mean_charge_per_pe,
    pe_charges,
    pe_times,
    share_over,
)
from remote_monitor.stand.layout import (
    SCAN_POINTS,
    PointKey,
    channel_file,
    point_angles,
    scan_dir,
    validate_point,
)

FAULT_KINDS = ("dead", "low_gain", "missing_channel", "truncated", "garbage")
HEALTHY_BAND = (0.999e7, 1.049e7)
TRIGGER_START_SAMPLE = 60
PMT_DELAY_NS = 325.0
SIPM_DELAY_NS = 300.0

log = logging.getLogger("remote_monitor.simulation")


@dataclass(frozen=True)
class Fault:
    kind: str
    point: str


def parse_fault(text: str) -> Fault:
    """'dead:theta20_phi90' -> Fault('dead', 'theta20_phi90')."""
    kind, sep, point = text.partition(":")
    if not sep or kind not in FAULT_KINDS:
        raise ValueError(f"fault must be KIND:POINT with KIND one of {', '.join(FAULT_KINDS)}, got {text!r}")
    if validate_point(point).startswith("theta") and point not in SCAN_POINTS:
        raise ValueError(f"fault point {point!r} is not one of the 21 scan points the stand simulates")
    return Fault(kind, point)


@dataclass
class SimulationConfig:
    n_events: int = 10000
    record_length: int = 1024
    fmt: str = "ascii"  # or "binary"
    include_reference: bool = False
    include_sipm: bool = True
    pmt_channel: int = 2
    seed: int = 0
    noise_mv: float = 0.3  # rms of the band-limited white noise per sample
    mu: float = 0.2  # laser occupancy (PE per event) at theta0_phi0; the stand runs at 0.05..0.3
    occupancy: dict[str, float] = field(default_factory=dict)  # per-point override of the occupancy
    sipm_mu: float = 30.0  # photoelectrons per event on the SiPM (laser monitor)
    physics: PmtPhysics = field(default_factory=PmtPhysics)
    nominal_gain: float = 1.024e7  # centre of the default healthy band
    gain_spread: float = 0.004
    spe_resolution: float = 0.3
    hv_nominal: int = 1750
    hv_exponent: float = 7.0
    hv_offsets: tuple[int, ...] = (-100, -50, 0, 50, 100)
    faults: list[Fault] = field(default_factory=list)
    write_delay_s: float = 0.0  # pause between points, split evenly between the chunks of a file as well
    chunks_per_file: int = 1
    point_gap_s: float | None = None  # pause between points if different from write_delay_s
    trigger_polarity: int = +1  # +1: positive trigger pulses (the stand's), -1: negative (NIM)
    sipm_polarity: int = +1  # +1: positive SiPM pulses (the stand's), -1: negative
    laser_drift: float = 0.0  # rms of the laser intensity from point to point (seen by PMT and SiPM), e.g. 0.02


def _pmt_channel(rng: np.random.Generator, trig_ns: np.ndarray, length: int, gain: float, mu: float,
                 cfg: SimulationConfig) -> np.ndarray:
    """ADC samples of a PMT: laser photoelectrons, their afterpulses, dark counts, noise, digitiser."""
    n, phys = len(trig_ns), cfg.physics
    mv = noise(rng, n, length, cfg.noise_mv)
    rows = event_pes(rng, n, mu)
    t = trig_ns[rows] + PMT_DELAY_NS + pe_times(rng, len(rows), phys)
    after = rng.random(len(rows)) < phys.afterpulse_prob
    dark_rows = event_pes(rng, n, phys.dark_rate_hz * length * NS_PER_SAMPLE * 1e-9)
    all_rows = np.concatenate([rows, rows[after], dark_rows])
    all_t = np.concatenate([t, t[after] + rng.uniform(500.0, 1900.0, int(after.sum())),
                            rng.uniform(0.0, length * NS_PER_SAMPLE, len(dark_rows))])
    add_pulses(mv, all_rows, all_t, pe_charges(rng, len(all_rows), gain, phys))
    return digitise(mv, 14000 + float(rng.integers(-200, 200)), -1)


def _auxiliary_baseline(polarity: int) -> int:
    """ADC baseline of the trigger and SiPM channels: near the bottom of the range for positive pulses, near the
    top for negative ones."""
    return 800 if polarity > 0 else ADC_MAX - 800


def trigger_waveforms(rng: np.random.Generator, n_events: int, record_length: int,
                      polarity: int = +1) -> tuple[np.ndarray, np.ndarray]:
    """(50 % crossing time in ns, raw samples) of the trigger pulses: 800 mV, 2-sample linear rise; polarity +1
    a positive (TTL-like) pulse on a baseline near the bottom of the range, -1 a negative (NIM-like) one near
    the top."""
    start = TRIGGER_START_SAMPLE + rng.integers(-1, 2, n_events)
    rel = np.arange(record_length)[None, :] - start[:, None]
    trigger_mv = 800.0 * np.clip((rel + 1) / 2.0, 0, 1) * (rel < 20) + rng.normal(0, 1.0, (n_events, record_length))
    # crosses 50 % at its start sample
    return start * NS_PER_SAMPLE, digitise(trigger_mv, _auxiliary_baseline(polarity), polarity)


def pmt_waveforms(rng: np.random.Generator, trig_ns: np.ndarray, record_length: int, gain: float, mu: float,
                  cfg: SimulationConfig) -> np.ndarray:
    """Raw samples of a PMT looking at the laser pulses of the given trigger times."""
    return _pmt_channel(rng, trig_ns, record_length, gain, mu, cfg)


def simulate_point_waveforms(rng: np.random.Generator, n_events: int, record_length: int, gain: float, mu: float,
                             cfg: SimulationConfig, sipm_mu: float | None = None) -> dict[int, np.ndarray]:
    """Raw ADC samples (n_events, record_length) per channel for one scan point (no files)."""
    trig_ns, trigger = trigger_waveforms(rng, n_events, record_length, cfg.trigger_polarity)
    waves = {0: trigger, cfg.pmt_channel: _pmt_channel(rng, trig_ns, record_length, gain, mu, cfg)}
    if cfg.include_sipm:
        sipm = noise(rng, n_events, record_length, 1.5)
        sipm_mean = cfg.sipm_mu if sipm_mu is None else sipm_mu
        n_sipm = rng.poisson(sipm_mean if mu > 0 else 0.0, n_events)
        add_pulses(sipm, np.arange(n_events), trig_ns + SIPM_DELAY_NS, 2.0 * n_sipm * rng.normal(1, 0.1, n_events))
        waves[1] = digitise(sipm, _auxiliary_baseline(cfg.sipm_polarity), cfg.sipm_polarity)
    if cfg.include_reference:
        waves[4] = _pmt_channel(rng, trig_ns, record_length, 1e7, 0.5, cfg)
    return waves


def _gain_map(serial: str, cfg: SimulationConfig) -> dict[str, float]:
    """Smooth, deterministic gain variation over the PMT face (rms ~ gain_spread)."""
    rng = np.random.default_rng([cfg.seed, zlib.crc32(serial.encode())])
    phase, a, b = rng.uniform(0, 2 * math.pi), rng.normal(0, 1), rng.normal(0, 1)
    gains = {}
    for point in SCAN_POINTS:
        theta, phi = point_angles(point)  # type: ignore[misc]
        r = theta / 50.0
        f = a * r * math.cos(math.radians(phi) - phase) + b * (r * r - 0.5)
        gains[point] = cfg.nominal_gain * (1 + cfg.gain_spread * max(-1.5, min(1.5, f)))
    return gains


def _detection_efficiency(point: str) -> float:
    """Relative detection efficiency of a scan position (1 at theta0_phi0, falling towards the edge)."""
    theta = (point_angles(point) or (0, 0))[0]
    return 1.0 - 0.1 * (theta / 50.0)


def _point_truth(point: str, gains: dict[str, float], faults: dict[str, str], cfg: SimulationConfig) -> dict[str, Any]:
    """Truth of one point (keys documented in docs/architecture.md, section truth.json)."""
    fault = faults.get(point)
    if point.startswith("HV_"):
        hv = int(point[3:])
        gain = gains["theta0_phi0"] * (hv / cfg.hv_nominal) ** cfg.hv_exponent
    else:
        hv = None
        gain = gains[point]
    gain *= 0.85 if fault == "low_gain" else 1.0
    efficiency = 0.0 if fault == "dead" else _detection_efficiency(point)
    laser = 1.0 + cfg.laser_drift * float(np.random.default_rng([cfg.seed, zlib.crc32(point.encode())]).normal())
    mu = cfg.occupancy.get(point, cfg.mu * laser * efficiency) if fault != "dead" else 0.0
    if fault in ("dead", "missing_channel", "garbage"):
        expected = "error"
    elif hv is not None:
        expected = "healthy"  # HV points are judged by the HV fit, not by the band
    else:  # a truncated file still has good events: judged by their fit, with a warning
        expected = "healthy" if HEALTHY_BAND[0] <= gain <= HEALTHY_BAND[1] else "poor"
    phys = cfg.physics
    return {
        "gain": gain, "mean_charge_per_pe_gain": mean_charge_per_pe(gain, phys) / ELEMENTARY_CHARGE_PC,
        "mu": mu, "occupancy": mu, "sipm_occupancy": cfg.sipm_mu * laser if mu > 0 else 0.0,
        "detection_efficiency": efficiency, "transit_time_ns": PMT_DELAY_NS, "tts_sigma_ns": phys.tts_sigma_ns,
        "dark_rate_hz": phys.dark_rate_hz,
        "dark_rate_quarter_pe_hz": phys.dark_rate_hz * share_over(QUARTER_PE, phys),
        "hv": hv, "fault": fault, "expected_status": expected,
    }


def _write_point(paths: dict[int, Path], waves: dict[int, np.ndarray], cfg: SimulationConfig) -> None:
    """Write all channel files of a point together, piece by piece like the digitizer (pauses in between
    with cfg.chunks_per_file > 1), so the files of one point grow side by side."""
    n = len(next(iter(waves.values())))
    pieces = np.array_split(np.arange(n), max(1, cfg.chunks_per_file))
    for i, rows in enumerate(pieces):
        first = int(rows[0]) if len(rows) else 0
        blobs = {ch: binary_bytes(waves[ch][rows], ch, first_event=first) if cfg.fmt == "binary"
                 else ascii_bytes(waves[ch][rows], ch, first_event=first) for ch in paths}
        for ch, path in paths.items():
            with open(path, "wb" if i == 0 else "ab") as fh:
                fh.write(blobs[ch])
        if i < len(pieces) - 1 and cfg.write_delay_s:
            time.sleep(cfg.write_delay_s / max(1, cfg.chunks_per_file))


def _apply_file_fault(path: Path, kind: str | None, fmt: str) -> None:
    if kind == "truncated":
        with open(path, "r+b") as fh:
            fh.truncate(max(0, path.stat().st_size - (1500 if fmt == "ascii" else 700)))
    elif kind == "garbage":
        data = path.read_bytes()
        if fmt == "ascii":
            cut = data.index(b"\n", len(data) // 2) + 1
            path.write_bytes(data[:cut] + b"#N/A\n" + data[cut:])
        else:
            cut = len(data) // 2
            path.write_bytes(data[:cut] + b"\xff" * 24 + data[cut:])


def simulate_scan(data_root: Path, serial: str, scan_id: str | None = None, cfg: SimulationConfig | None = None,
                  points: list[str] | None = None) -> dict[str, Any]:
    """Write a whole scan (21 positions, then the HV check) in the stand's layout; returns the truth."""
    cfg = cfg or SimulationConfig()
    scan_id = scan_id or datetime.now().strftime("%y%m%d_%H%M%S")
    points = points or [*SCAN_POINTS, *(f"HV_{cfg.hv_nominal + o}" for o in cfg.hv_offsets)]
    faults = {f.point: f.kind for f in cfg.faults}
    gains = _gain_map(serial, cfg)
    b = cfg.hv_exponent
    truth: dict[str, Any] = {
        "serial": serial, "scan_id": scan_id, "seed": cfg.seed, "n_events": cfg.n_events,
        "gain_definition": ("gain = mean charge of the 1-PE main peak / e (under-amplified and backscattered "
                            "photoelectrons excluded); mean_charge_per_pe_gain = mean charge of all "
                            "photoelectrons / e"),
        "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "faults"},
        "faults": [dataclasses.asdict(f) for f in cfg.faults],
        "hv_at_1e7": cfg.hv_nominal * (1e7 / gains["theta0_phi0"]) ** (1 / b),
        "points": {},
    }
    rng = np.random.default_rng([cfg.seed, zlib.crc32(f"{serial}/{scan_id}".encode())])
    for i, point in enumerate(points):
        key = PointKey(serial, scan_id, point)
        info = _point_truth(point, gains, faults, cfg)
        truth["points"][point] = info
        waves = simulate_point_waveforms(rng, cfg.n_events, cfg.record_length, info["gain"], info["mu"], cfg,
                                         sipm_mu=info["sipm_occupancy"])
        if info["fault"] == "missing_channel":
            del waves[cfg.pmt_channel]
        paths = {ch: channel_file(data_root, key, ch, binary=cfg.fmt == "binary") for ch in waves}
        next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)
        _write_point(paths, waves, cfg)
        if cfg.pmt_channel in paths:
            _apply_file_fault(paths[cfg.pmt_channel], info["fault"], cfg.fmt)
        log.info("simulated %s", key.label)
        gap = cfg.write_delay_s if cfg.point_gap_s is None else cfg.point_gap_s
        if gap and i < len(points) - 1:
            time.sleep(gap)
    out = scan_dir(data_root, serial, scan_id) / "truth.json"
    tmp = out.with_name(".truth.json.tmp")
    tmp.write_text(json.dumps(truth, indent=1))
    os.replace(tmp, out)
    return truth
