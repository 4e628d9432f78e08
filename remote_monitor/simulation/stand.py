"""The simulated test stand: realistic WaveDump data of a PMT scan (21 positions + HV check) with truth.

Physics: per event k ~ Poisson(mu) photoelectrons, total charge ~ Normal(k Q1, res Q1 sqrt(k)) with
Q1 = gain * e, one negative pulse (bi-exponential, rise ~2 ns, fall ~6 ns, integral exactly the charge)
325 ns after the trigger pulse (+ TTS jitter), on a baseline with Gaussian noise, digitised to 14 bit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE, gain_to_pc
from remote_monitor.analysis.wavedump_writer import ascii_bytes, binary_bytes
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
ADC_MAX = 16383
DARK_START_NS = 80.0  # dark pulses after the 40 baseline samples only (the SPE fit is not robust to them there)


@dataclass(frozen=True)
class Fault:
    kind: str
    point: str


def parse_fault(text: str) -> Fault:
    """'dead:theta20_phi90' -> Fault('dead', 'theta20_phi90')."""
    kind, sep, point = text.partition(":")
    if not sep or kind not in FAULT_KINDS:
        raise ValueError(f"fault must be KIND:POINT with KIND one of {', '.join(FAULT_KINDS)}, got {text!r}")
    return Fault(kind, validate_point(point))


@dataclass
class SimulationConfig:
    n_events: int = 10000
    record_length: int = 1024
    fmt: str = "ascii"  # or "binary"
    include_reference: bool = False
    include_sipm: bool = True
    pmt_channel: int = 2
    seed: int = 0
    noise_mv: float = 0.6
    mu: float = 1.0
    nominal_gain: float = 1.024e7  # centre of the default healthy band
    gain_spread: float = 0.004
    spe_resolution: float = 0.3
    hv_nominal: int = 1750
    hv_exponent: float = 7.0
    hv_offsets: tuple[int, ...] = (-100, -50, 0, 50, 100)
    faults: list[Fault] = field(default_factory=list)
    write_delay_s: float = 0.0
    chunks_per_file: int = 1
    tts_sigma_ns: float = 1.3  # Gaussian spread of the direct photoelectrons incl. laser jitter
    dark_rate_hz: float = 5000.0  # single-PE dark pulses, uniform in the record
    sipm_mu: float = 20.0  # SiPM photoelectrons per event at laser intensity 1
    laser_drift: float = 0.0  # rms of the laser intensity from point to point (seen by PMT and SiPM), e.g. 0.02
    de_slope: float = 0.1  # relative detection efficiency 1 - de_slope * theta / 50


def _pulse_shapes(t0_ns: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(first sample index, unit-sum bi-exponential shape per event over `width` samples)."""
    first = np.floor(t0_ns / NS_PER_SAMPLE).astype(np.int64) - 1
    t = (first[:, None] + np.arange(width)) * NS_PER_SAMPLE - t0_ns[:, None]
    shape = np.where(t > 0, np.exp(-np.clip(t, 0, None) / 6.0) - np.exp(-np.clip(t, 0, None) / 1.0), 0.0)
    return first, shape / shape.sum(axis=1, keepdims=True)


def _add_pulses(wave_mv: np.ndarray, t0_ns: np.ndarray, charge_pc: np.ndarray) -> None:
    """Add pulses whose integral (sum mV * 0.04 pC) equals charge_pc exactly (clipped to the record)."""
    width = 40
    first, shape = _pulse_shapes(t0_ns, width)
    idx = first[:, None] + np.arange(width)
    inside = (idx >= 0) & (idx < wave_mv.shape[1])
    rows = np.broadcast_to(np.arange(len(t0_ns))[:, None], idx.shape)
    np.add.at(wave_mv, (rows[inside], idx[inside]), (shape * (charge_pc / PC_PER_MV_SAMPLE)[:, None])[inside])


def _digitise(mv: np.ndarray, baseline_adc: float, polarity: int) -> np.ndarray:
    return np.clip(np.rint(baseline_adc + polarity * mv / MV_PER_ADC), 0, ADC_MAX).astype(np.uint16)


def _pmt_channel(rng: np.random.Generator, trig_ns: np.ndarray, n: int, length: int, gain: float, mu: float,
                 cfg: SimulationConfig) -> np.ndarray:
    mv = rng.normal(0.0, cfg.noise_mv, (n, length))
    k = rng.poisson(mu, n)
    hit = k > 0
    q1 = gain_to_pc(gain)
    charge = rng.normal(k[hit] * q1, cfg.spe_resolution * q1 * np.sqrt(k[hit]))
    t0 = trig_ns[hit] + PMT_DELAY_NS + rng.normal(0.0, cfg.tts_sigma_ns, hit.sum())
    pulses = np.zeros((int(hit.sum()), length))
    _add_pulses(pulses, t0, charge)
    mv[hit] += pulses
    span_ns = max(length * NS_PER_SAMPLE - DARK_START_NS, 0.0)
    side = rng.spawn(1)[0]  # dark pulses from a child stream: the signal's random numbers stay as they were
    n_dark = side.poisson(cfg.dark_rate_hz * span_ns * 1e-9, n)
    if n_dark.sum():
        rows = np.repeat(np.arange(n), n_dark)
        dark = np.zeros((len(rows), length))
        _add_pulses(dark, DARK_START_NS + side.uniform(0, span_ns, len(rows)),
                    np.abs(side.normal(q1, cfg.spe_resolution * q1, len(rows))))
        np.add.at(mv, rows, dark)
    return _digitise(mv, 14000, -1)


def cfd_offset_ns(fraction: float = 0.5) -> float:
    """Time from a pulse's start to its `fraction` constant-fraction crossing on the rising edge (continuous)."""
    t = np.linspace(0.0, 20.0, 200001)
    shape = np.exp(-t / 6.0) - np.exp(-t / 1.0)
    return float(t[np.argmax(shape >= fraction * shape.max())])


def trigger_waveforms(rng: np.random.Generator, n_events: int, record_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(50 % crossing time in ns, raw samples) of the trigger pulses: 800 mV, 2-sample linear rise."""
    start = TRIGGER_START_SAMPLE + rng.integers(-1, 2, n_events)
    rel = np.arange(record_length)[None, :] - start[:, None]
    trigger_mv = 800.0 * np.clip((rel + 1) / 2.0, 0, 1) * (rel < 20) + rng.normal(0, 1.0, (n_events, record_length))
    return start * NS_PER_SAMPLE, _digitise(trigger_mv, 800, +1)


def pmt_waveforms(rng: np.random.Generator, trig_ns: np.ndarray, record_length: int, gain: float, mu: float,
                  cfg: SimulationConfig) -> np.ndarray:
    """Raw samples of a PMT looking at the laser pulses of the given trigger times (with dark pulses)."""
    return _pmt_channel(rng, trig_ns, len(trig_ns), record_length, gain, mu, cfg)


def simulate_point_waveforms(rng: np.random.Generator, n_events: int, record_length: int, gain: float, mu: float,
                             cfg: SimulationConfig, sipm_mu: float | None = None) -> dict[int, np.ndarray]:
    """Raw ADC samples (n_events, record_length) per channel for one scan point (no files)."""
    trig_ns, trigger = trigger_waveforms(rng, n_events, record_length)
    waves = {0: trigger, cfg.pmt_channel: _pmt_channel(rng, trig_ns, n_events,
                                                                             record_length, gain, mu, cfg)}
    if cfg.include_sipm:
        sipm = rng.normal(0, 1.5, (n_events, record_length))
        sipm_pe = rng.spawn(1)[0].poisson(cfg.sipm_mu if sipm_mu is None else sipm_mu, n_events)
        _add_pulses(sipm, trig_ns + 300.0, 3.0 * sipm_pe * rng.normal(1, 0.05, n_events))
        waves[1] = _digitise(sipm, 800, +1)
    if cfg.include_reference:
        waves[4] = _pmt_channel(rng, trig_ns, n_events, record_length, 1e7, 0.8, cfg)
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


def _point_truth(point: str, gains: dict[str, float], faults: dict[str, str], cfg: SimulationConfig) -> dict[str, Any]:
    fault = faults.get(point)
    if point.startswith("HV_"):
        hv = int(point[3:])
        gain = gains["theta0_phi0"] * (hv / cfg.hv_nominal) ** cfg.hv_exponent
    else:
        hv = None
        gain = gains[point]
    gain *= 0.85 if fault == "low_gain" else 1.0
    theta = (point_angles(point) or (0, 0))[0]
    laser = 1.0 + cfg.laser_drift * float(np.random.default_rng([cfg.seed, zlib.crc32(point.encode())]).normal())
    de = 1.0 - cfg.de_slope * theta / 50.0
    mu = 0.0 if fault == "dead" else cfg.mu * laser * de
    if fault in ("dead", "missing_channel", "truncated", "garbage"):
        expected = "error"
    elif hv is not None:
        expected = "healthy"  # HV points are judged by the HV fit, not by the band
    else:
        expected = "healthy" if HEALTHY_BAND[0] <= gain <= HEALTHY_BAND[1] else "poor"
    return {"gain": gain, "mu": mu, "hv": hv, "fault": fault, "expected_status": expected,
            "occupancy": mu, "sipm_occupancy": cfg.sipm_mu * laser, "detection_efficiency": 0.0 if fault == "dead" else de,
            "transit_time_ns": PMT_DELAY_NS + cfd_offset_ns(), "tts_sigma_ns": cfg.tts_sigma_ns,
            "dark_rate_hz": cfg.dark_rate_hz}


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
        if cfg.write_delay_s and i < len(points) - 1:
            time.sleep(cfg.write_delay_s)
    out = scan_dir(data_root, serial, scan_id) / "truth.json"
    tmp = out.with_name(".truth.json.tmp")
    tmp.write_text(json.dumps(truth, indent=1))
    os.replace(tmp, out)
    return truth
