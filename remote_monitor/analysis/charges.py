"""Charge extraction with the stand's Pyrate math: baseline, polarity, leading edge, charge windows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import numpy as np

from remote_monitor.analysis.units import MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE
from remote_monitor.analysis.wavedump import WaveDumpReader, WaveformChunk

PRE_SAMPLES_DEFAULT, POST_SAMPLES_DEFAULT = 10, 50


class MissingChannelError(ValueError):
    """A channel the analysis needs has no file."""


@dataclass(frozen=True)
class ChannelMap:
    """Digitizer channels of the stand (PMT under test on 2 or 3, reference PMT on 4)."""

    trigger: int = 0
    sipm: int | None = 1
    pmt: int = 2
    reference: int | None = None

    @property
    def required(self) -> list[int]:
        """Channels without which a point cannot be analysed."""
        return [self.trigger, self.pmt] + ([self.reference] if self.reference is not None else [])

    @property
    def expected(self) -> list[int]:
        """Channels the stand writes for every point (a point waits for all of them before processing)."""
        return sorted(self.required + ([self.sipm] if self.sipm is not None else []))


@dataclass(frozen=True)
class AnalysisSettings:
    """Pulse finding and selection, in the stand's units (mV, ns, pC)."""

    baseline_samples: int = 40
    trigger_threshold_mv: float = 100.0
    sipm_threshold_mv: float = 100.0
    pmt_threshold_mv: float = 3.0
    pre_samples: int = PRE_SAMPLES_DEFAULT
    post_samples: int = POST_SAMPLES_DEFAULT
    mode: str = "fixed_window"  # or "leading_edge"
    fixed_window_start_ns: float = 300.0
    fixed_window_length_ns: float = 120.0
    time_window_ns: tuple[float, float] = (321.0, 330.0)
    charge_range_pc: tuple[float, float] = (-5.0, 60.0)
    record_length: int | None = None
    chunk_events: int = 2048


@dataclass
class PointCharges:
    """Selected PMT charges of one point (for the SPE fit) and bookkeeping."""

    pmt_charge_pc: np.ndarray
    reference_charge_pc: np.ndarray | None
    n_events: int
    n_selected: int
    pmt_minus_trigger_ns: np.ndarray
    warnings: list[str] = field(default_factory=list)


def corrected_mv(samples: np.ndarray, polarity: int, baseline_samples: int = 40) -> np.ndarray:
    """Baseline-subtracted waveform in mV, sign flipped so that pulses are positive."""
    raw = samples.astype(np.float32)
    baseline = raw[:, :baseline_samples].mean(axis=1, keepdims=True)
    return (raw - baseline) * np.float32(MV_PER_ADC * polarity)


def pulse_start(mv: np.ndarray, threshold_mv: float) -> np.ndarray:
    """Index of the first sample over threshold per event (-1: no pulse)."""
    over = mv > threshold_mv
    return np.where(over.any(axis=1), over.argmax(axis=1), -1)


def window_charge_pc(mv: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
    """Charge in pC of samples [start, start + length) per event, clipped to the record."""
    n, record = mv.shape
    cumulative = np.zeros((n, record + 1), dtype=np.float64)
    np.cumsum(mv, axis=1, out=cumulative[:, 1:])
    lo = np.clip(start, 0, record)
    hi = np.clip(start + length, 0, record)
    rows = np.arange(n)
    return (cumulative[rows, hi] - cumulative[rows, lo]) * PC_PER_MV_SAMPLE


def _channel_charges(mv: np.ndarray, trigger_start: np.ndarray, s: AnalysisSettings) -> tuple[np.ndarray, ...]:
    """(charge pC, PMT-minus-trigger ns, time-selected) of a PMT channel."""
    start = pulse_start(mv, s.pmt_threshold_mv)
    dt_ns = np.where(start >= 0, (start - trigger_start) * NS_PER_SAMPLE, np.nan)
    if s.mode == "fixed_window":
        window_start = trigger_start + round(s.fixed_window_start_ns / NS_PER_SAMPLE)
        charge = window_charge_pc(mv, window_start, round(s.fixed_window_length_ns / NS_PER_SAMPLE))
        in_time = np.ones(len(mv), dtype=bool)
    else:
        charge = window_charge_pc(mv, start - s.pre_samples, s.pre_samples + s.post_samples)
        lo, hi = s.time_window_ns
        in_time = (start >= 0) & (dt_ns >= lo) & (dt_ns <= hi)
    lo_q, hi_q = s.charge_range_pc
    return charge, dt_ns, in_time & (charge >= lo_q) & (charge <= hi_q)


def _aligned(readers: dict[int, WaveDumpReader], dropped: list[int]) -> Iterator[dict[int, np.ndarray]]:
    """Samples of the same events from every channel, streamed; events missing in a channel are dropped."""
    iters = {ch: r.chunks() for ch, r in readers.items()}
    pending: dict[int, WaveformChunk | None] = dict.fromkeys(readers)
    exhausted: set[int] = set()
    while True:
        for ch, it in iters.items():
            if ch not in exhausted:
                chunk = next(it, None)
                if chunk is None:
                    exhausted.add(ch)
                else:
                    old = pending[ch]
                    pending[ch] = chunk if old is None else WaveformChunk(
                        ch, np.concatenate([old.samples, chunk.samples]),
                        np.concatenate([old.event_numbers, chunk.event_numbers]),
                        np.concatenate([old.trigger_time_tags, chunk.trigger_time_tags]))
        done = len(exhausted) == len(iters)
        present = [c for c in pending.values() if c is not None and len(c.event_numbers)]
        if len(present) < len(pending):
            if done:  # what is left exists in some channels only
                dropped[0] += len(reduce(np.union1d, [c.event_numbers for c in present])) if present else 0
                return
            continue
        limit = np.inf if done else min(int(c.event_numbers.max()) for c in present)
        ready_numbers = [c.event_numbers[c.event_numbers <= limit] for c in present]
        common = reduce(np.intersect1d, ready_numbers)
        dropped[0] += len(reduce(np.union1d, ready_numbers)) - len(common)
        block: dict[int, np.ndarray] = {}
        for ch, c in pending.items():
            assert c is not None
            ready = c.event_numbers <= limit
            keep = np.isin(c.event_numbers, common) & ready
            order = np.argsort(c.event_numbers[keep], kind="stable")
            block[ch] = c.samples[keep][order]
            pending[ch] = WaveformChunk(ch, c.samples[~ready], c.event_numbers[~ready], c.trigger_time_tags[~ready])
        if len(common):
            yield block
        if done:
            return


def extract_point_charges(files: dict[int, Path], channels: ChannelMap, settings: AnalysisSettings) -> PointCharges:
    """Stream the channel files of one point in lock step and return the selected charges."""
    missing = [ch for ch in channels.required if ch not in files]
    if missing:
        raise MissingChannelError(f"missing channel(s) {missing}: no file for "
                                  + ", ".join(f"channel {c}" for c in missing))
    wanted = [channels.trigger, channels.pmt] + ([channels.reference] if channels.reference is not None else [])
    readers = {ch: WaveDumpReader(files[ch], record_length=settings.record_length,
                                  chunk_events=settings.chunk_events, channel=ch) for ch in wanted}
    dropped = [0]
    charges, ref_charges, times = [], [], []
    n_events = n_untriggered = 0
    for block in _aligned(readers, dropped):
        trigger_mv = corrected_mv(block[channels.trigger], +1, settings.baseline_samples)
        trigger_start = pulse_start(trigger_mv, settings.trigger_threshold_mv)
        triggered = trigger_start >= 0
        n_events += len(trigger_start)
        n_untriggered += int(np.count_nonzero(~triggered))
        pmt_mv = corrected_mv(block[channels.pmt], -1, settings.baseline_samples)
        charge, dt_ns, selected = _channel_charges(pmt_mv, trigger_start, settings)
        selected &= triggered
        charges.append(charge[selected])
        times.append(dt_ns[triggered & ~np.isnan(dt_ns)])
        if channels.reference is not None:
            ref_mv = corrected_mv(block[channels.reference], -1, settings.baseline_samples)
            ref_charge, _, ref_selected = _channel_charges(ref_mv, trigger_start, settings)
            ref_charges.append(ref_charge[ref_selected & triggered])
    warnings = [w for r in readers.values() for w in r.warnings]
    if dropped[0]:
        warnings.append(f"dropped {dropped[0]} event(s) not present in every channel")
    if n_untriggered:
        warnings.append(f"dropped {n_untriggered} event(s) without a trigger pulse over "
                        f"{settings.trigger_threshold_mv} mV")
    pmt = np.concatenate(charges) if charges else np.zeros(0)
    return PointCharges(
        pmt_charge_pc=pmt,
        reference_charge_pc=np.concatenate(ref_charges) if channels.reference is not None and ref_charges else None,
        n_events=n_events,
        n_selected=len(pmt),
        pmt_minus_trigger_ns=np.concatenate(times) if times else np.zeros(0),
        warnings=warnings,
    )
