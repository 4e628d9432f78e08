"""Read the Korean stand's DAQ ROOT files: tree `T` with ADC[8][RecordLength] (uint16/uint32), EventNumber,
TriggerTimeTag; three PMTs per file, serials, HVs and angles in the file name.

Streamed with uproot by entry ranges (bounded memory); the charge math is the WaveDump stand's fixed-window
math (baseline, trigger pulse start, window integral, pickup removal) with the stand's own constants from
configuration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remote_monitor.analysis import pickup
from remote_monitor.analysis.charges import (
    PICKUP_DECISION_EVENTS,
    lattice_dither,
    lattice_step_pc,
    pulse_start,
    rising_trigger,
    window_charge_pc,
)
from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE

_PMT_RE = re.compile(r"(?P<serial>[A-Za-z]{2}\d{3,5}[A-Za-z]?)_hv(?P<hv>\d+)_R(?P<r>[PM]?\d+)_T(?P<t>[PM]?\d+)")


@dataclass(frozen=True)
class KoreanSettings:
    """The Korean stand's channel map and constants."""

    trigger_channel: int = 0
    pmt_channels: tuple[int, ...] = (1, 2, 3)  # in the order the PMTs appear in the file name
    monitor_channel: int = 4  # monitor PMT for the detection-efficiency normalisation; -1: none
    pedestal_samples: tuple[int, ...] = (0, 40)  # [first, last) samples of the baseline
    signal_window_ns: tuple[float, float] = (300.0, 420.0)  # charge window after the trigger pulse start
    mv_per_adc: float = MV_PER_ADC
    ns_per_sample: float = NS_PER_SAMPLE
    pmt_polarity: int = -1
    trigger_threshold_mv: float = 100.0
    step_entries: int = 2000  # events per read (memory: step x 8 x record x 2 bytes)


@dataclass(frozen=True)
class KoreanPmt:
    serial: str
    hv: int
    r_deg: int  # the stand's rotation angle (signed)
    t_deg: int  # the stand's tilt angle (signed)
    channel: int

    @property
    def theta_phi(self) -> tuple[int, int]:
        """(theta, phi) in the monitor's convention: theta = |T|, phi = R (+180 for negative T)."""
        return abs(self.t_deg), (self.r_deg + (180 if self.t_deg < 0 else 0)) % 360

    @property
    def point(self) -> str:
        theta, phi = self.theta_phi
        return f"theta{theta}_phi{phi}"


def _signed(text: str) -> int:
    return -int(text[1:]) if text.startswith("M") else int(text.lstrip("P"))


def parse_korean_name(name: str, settings: KoreanSettings | None = None) -> list[KoreanPmt]:
    """The PMTs of a file from its name (`prd_EM2740A_hv1670_R00_T00_EL1635B_hv1840_RP45_TM20_...root`)."""
    s = settings or KoreanSettings()
    found = [m.groupdict() for m in _PMT_RE.finditer(Path(name).name)]
    if not found:
        raise ValueError(f"{name}: no '<SERIAL>_hv<HV>_R<angle>_T<angle>' in the file name")
    if len(found) > len(s.pmt_channels):
        raise ValueError(f"{name}: {len(found)} PMTs in the name but only channels {s.pmt_channels} configured")
    return [KoreanPmt(g["serial"], int(g["hv"]), _signed(g["r"]), _signed(g["t"]), ch)
            for g, ch in zip(found, s.pmt_channels, strict=False)]


def _mv(samples: np.ndarray, settings: KoreanSettings, polarity: int) -> np.ndarray:
    """Baseline-subtracted mV, pulses positive (float32 like the WaveDump path, so charges agree exactly)."""
    raw = samples.astype(np.float32)
    lo, hi = settings.pedestal_samples[0], settings.pedestal_samples[1]
    baseline = raw[:, lo:hi].mean(axis=1, keepdims=True)
    return (raw - baseline) * np.float32(settings.mv_per_adc * polarity)


BlockCallback = Callable[[np.ndarray, dict[int, np.ndarray]], None]


def _window(settings: KoreanSettings) -> tuple[int, int]:
    """The charge window's first sample after the trigger pulse start, and its length (samples)."""
    s = settings
    return (round(s.signal_window_ns[0] / s.ns_per_sample),
            round((s.signal_window_ns[1] - s.signal_window_ns[0]) / s.ns_per_sample))


def pickup_removal(settings: KoreanSettings, threshold_mv: float) -> pickup.Removal | None:
    """A PMT channel's pickup removal, as the WaveDump path's (`charges.ChargeExtractor`); None where the baseline
    does not start at the record's first sample (the line's fit takes the flat baseline from there)."""
    s = settings
    if s.pedestal_samples[0] != 0:
        return None
    pc_per_adc_sample = s.pmt_polarity * s.mv_per_adc * PC_PER_MV_SAMPLE * s.ns_per_sample / NS_PER_SAMPLE
    record = pickup.Record(_window(s)[1], s.pedestal_samples[1], pc_per_adc_sample, s.mv_per_adc, s.ns_per_sample,
                           threshold_mv)
    return pickup.Removal(record, PICKUP_DECISION_EVENTS)


def read_korean_charges(path: Path, settings: KoreanSettings, channels: list[int],
                        on_block: BlockCallback | None = None, baseline_veto_mv: float = math.inf,
                        pickups: dict[int, pickup.Removal] | None = None,
                        ) -> tuple[dict[int, np.ndarray], int, int, dict[int, int]]:
    """Window charges (pC) of the given ADC channels for triggered events, streamed by entry ranges; an event
    with a pedestal sample more than baseline_veto_mv from the pedestal's mean (a pulse there) is left out of
    that channel's charges, as in the WaveDump path (`charges.AnalysisSettings.baseline_veto_mv`). `pickups`: the
    channels whose pickup line is removed (`pickup_removal`; each keeps the line it found).

    on_block(trigger samples, {channel: samples}) sees every raw block (for timing and dark pulses).
    Returns (charges per channel, events read, events without trigger, triggered events left out per channel)."""
    import uproot

    s = settings
    start_off, length = _window(s)
    scale = s.ns_per_sample / NS_PER_SAMPLE  # window_charge_pc assumes the CAEN 2 ns samples
    step = lattice_step_pc(length, s.pedestal_samples[1] - s.pedestal_samples[0], s.mv_per_adc)
    out: dict[int, list[np.ndarray]] = {ch: [] for ch in channels}
    busy = dict.fromkeys(channels, 0)
    n_events = n_untriggered = 0
    with uproot.open(path) as f:
        tree = f["T"]
        for arrays in tree.iterate(["ADC"], step_size=s.step_entries, library="np"):
            adc = arrays["ADC"]
            trig = rising_trigger(adc[:, s.trigger_channel, :], s.pedestal_samples[1])
            tstart = pulse_start(_mv(trig, s, +1), s.trigger_threshold_mv)
            ok = tstart >= 0
            dither = lattice_dither(n_events, len(adc), step) * scale  # as the WaveDump path (`charges`)
            n_events += len(adc)
            n_untriggered += int(np.count_nonzero(~ok))
            for ch in channels:
                mv = _mv(adc[:, ch, :], s, s.pmt_polarity)
                quiet = ~(np.abs(mv[:, s.pedestal_samples[0]:s.pedestal_samples[1]]) > baseline_veto_mv).any(axis=1)
                busy[ch] += int(np.count_nonzero(ok & ~quiet))
                q = window_charge_pc(mv, tstart + start_off, length) * scale
                if pickups and ch in pickups:
                    q = pickups[ch].charges(q, adc[:, ch, :], tstart + start_off, ok)
                q += dither
                out[ch].append(q[ok & quiet])
            if on_block is not None:
                on_block(trig, {ch: adc[:, ch, :] for ch in channels})
    return {ch: np.concatenate(v) if v else np.zeros(0) for ch, v in out.items()}, n_events, n_untriggered, busy
