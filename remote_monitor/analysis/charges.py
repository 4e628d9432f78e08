"""Charge extraction with the stand's Pyrate math: baseline, polarity, leading edge, charge windows."""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import reduce
from pathlib import Path

import numpy as np

from remote_monitor.analysis import pickup, pulse_kernels
from remote_monitor.analysis.laser_window import (
    delay_histogram,
    laser_delay_ns,
    record_end_warning,
    window_on_laser,
    window_warning,
)
from remote_monitor.analysis.units import ADC_BITS, ADC_RANGE_V, MV_PER_ADC, NS_PER_SAMPLE, PC_PER_MV_SAMPLE
from remote_monitor.analysis.wavedump import WaveDumpReader, WaveformChunk

PRE_SAMPLES_DEFAULT, POST_SAMPLES_DEFAULT = 10, 50
PICKUP_DECISION_EVENTS = 1000  # triggered events of a block before the pickup decision is taken (once per point)
GOLDEN_RATIO = (math.sqrt(5.0) - 1.0) / 2.0  # the dither's sequence (`lattice_dither`)


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
    move_window_to_laser: bool = True  # a window that misses the laser peak is moved onto it, with a warning
    remove_pickup: bool = True  # a pickup line that widens the pedestal is removed event by event (`pickup`)
    baseline_veto_mv: float = 4.0  # events with a baseline sample this far from the baseline's mean (a pulse among
    # them) are left out: that pulse moves the event's charge by -1.5 times its own (inf: keep every event)
    charge_range_pc: tuple[float, float] = (-5.0, 60.0)
    record_length: int | None = None
    chunk_events: int = 4096
    sample_bytes: int = 2  # binary files: 2 (16-bit words, 14-bit ADCs) or 1 (8-bit samples)
    adc_bits: int = ADC_BITS  # samples above 2**adc_bits - 1 are a file error, not wrapped


BUSY_BASELINE_WARNING = 0.01  # a channel whose baseline veto leaves out more of the triggered events says so


def baseline_veto(veto_mv: float, mv_per_adc: float) -> float:
    """The veto in mV, at least two ADC counts: quantisation alone puts a sample up to a count from the mean (8-bit
    samples of 2 Vpp are 7.8 mV a count)."""
    return max(veto_mv, 2.0 * mv_per_adc)


def busy_baseline_warning(busy: int, triggered: int, veto_mv: float, prefix: str = "") -> str | None:
    """The warning of a channel whose baseline veto left out `busy` of `triggered` events (None: few enough)."""
    if busy <= BUSY_BASELINE_WARNING * max(triggered, 1):
        return None
    return (f"{prefix}left out {busy} event(s) ({100 * busy / max(triggered, 1):.1f} %) with a baseline sample over "
            f"{veto_mv} mV from the baseline's mean (a pulse there, or that much noise); [analysis] baseline_veto_mv")


@dataclass
class PointCharges:
    """Selected PMT charges of one point (for the SPE fit) and bookkeeping."""

    pmt_charge_pc: np.ndarray
    reference_charge_pc: np.ndarray | None
    n_events: int
    n_selected: int
    pmt_minus_trigger_ns: np.ndarray
    warnings: list[str] = field(default_factory=list)
    laser_delay_ns: float | None = None  # where the laser pulses start after the trigger (None: no peak)
    window_ns: tuple[float, float] | None = None  # the charge window (or time selection) the charges are from


# ---- the charge lattice: every charge dithered within the step its window and baseline allow ------------------
def lattice_step_pc(length: int, baseline_samples: int, mv_per_adc: float) -> float:
    """The step between the charges a window can read (pC): the sum of `length` samples less `length` times the
    mean of `baseline_samples` takes values one ADC count x gcd(length, baseline_samples) / baseline_samples
    apart (60 samples, 40: half a count, 0.00244 pC)."""
    n_base = max(baseline_samples, 1)
    return mv_per_adc * PC_PER_MV_SAMPLE * math.gcd(max(length, 1), n_base) / n_base


def lattice_dither(first_index: int, n: int, step_pc: float) -> np.ndarray:
    """Each event's offset within one lattice step (pC), from its index in the point (the golden-ratio sequence:
    even, and the same in every reprocessing). Without it a 0.05 pC bin holds 20 or 21 of the 0.00244 pC steps
    by turns, and the pedestal's bins alternate by 2-5 % (a fit's chi2/ndf read 4 at 600k events for 1.3)."""
    index = np.arange(first_index, first_index + n, dtype=np.float64)
    return ((index * GOLDEN_RATIO) % 1.0 - 0.5) * step_pc


# ---- the Pyrate math in numpy (reference for the numba kernels of pulse_kernels, used by the tests) -----------
def corrected_mv(samples: np.ndarray, polarity: int, baseline_samples: int = 40) -> np.ndarray:
    """Baseline-subtracted waveform in mV, sign flipped so that pulses are positive."""
    raw = samples.astype(np.float32)
    baseline = raw[:, :baseline_samples].mean(axis=1, keepdims=True)
    return (raw - baseline) * np.float32(MV_PER_ADC * polarity)


def rising_trigger(samples: np.ndarray, baseline_samples: int = 40) -> np.ndarray:
    """The trigger channel's raw samples with its pulses rising: a negative (NIM) trigger is mirrored, sample by
    sample, so that the positive-pulse trigger search finds it at the same sample and threshold in mV; a
    positive (TTL) one is returned as it is. The polarity is that of the larger median excursion from the
    baseline over the events of the block."""
    if samples.size == 0:
        return samples
    base = samples[:, :baseline_samples].mean(axis=1)
    up = np.median(samples.max(axis=1) - base)
    down = np.median(base - samples.min(axis=1))
    return samples if up >= down else samples.max() - samples


def pulse_start(mv: np.ndarray, threshold_mv: float) -> np.ndarray:
    """Index of the first sample over threshold per event (-1: no pulse)."""
    over = mv > threshold_mv
    return np.where(over.any(axis=1), over.argmax(axis=1), -1)


def window_charge_pc(mv: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
    """Charge in pC of samples [start, start + length) per event, clipped to the record (summed in float64 in
    sample order, like the numba kernel)."""
    n, record = mv.shape
    lo = np.clip(start, 0, record)
    hi = np.clip(start + length, 0, record)
    if n == 0 or record == 0 or length <= 0:
        return np.zeros(n)
    index = lo[:, None] + np.arange(length)[None, :]
    window = np.where(index < hi[:, None], mv[np.arange(n)[:, None], np.minimum(index, record - 1)], 0.0)
    return np.cumsum(window.astype(np.float64), axis=1)[:, -1] * PC_PER_MV_SAMPLE


class ChargeAccumulator:
    """Aligns the channels' events by event number and measures them, block by block.

    Used for a whole file (`extract_point_charges`) and for files still being written (the follower):
    `add` the chunks read, then `take` returns the charges of every event now present in all channels.
    Events that can no longer appear in every channel are dropped and counted."""

    def __init__(self, channels: ChannelMap, settings: AnalysisSettings, extra: tuple[int, ...] = ()) -> None:
        """extra: more channels to align (e.g. the SiPM for the detection efficiency), not measured by take()."""
        self.channels, self.settings = channels, settings
        self.wanted = [channels.trigger, channels.pmt] + ([channels.reference] if channels.reference is not None
                                                          else []) + list(extra)
        self.pending: dict[int, list[WaveformChunk]] = {ch: [] for ch in self.wanted}
        self.n_events = self.n_untriggered = self.dropped = 0
        self.delays = delay_histogram()  # PMT minus trigger (ns): where the laser pulses are (`laser_window`)
        self.record_end_ns: float | None = None  # the earliest end of a record after its trigger pulse (ns)
        self.mv_per_adc = ADC_RANGE_V / 2**settings.adc_bits * 1000.0
        self.veto_mv = baseline_veto(settings.baseline_veto_mv, self.mv_per_adc)  # the baseline veto applied
        self.pickups: dict[int, pickup.Removal] = {}  # each PMT channel's pickup removal (`_without_pickup`)
        self.busy_baselines: dict[int, int] = {}  # each PMT channel's triggered events left out for their baseline

    def add(self, chunk: WaveformChunk, channel: int) -> None:
        if len(chunk.event_numbers):
            self.pending[channel].append(chunk)

    def pending_events(self, channel: int) -> int:
        return sum(len(c.event_numbers) for c in self.pending[channel])

    def resume_point(self, channel: int, reader: WaveDumpReader) -> tuple[int, int]:
        """(byte offset, events before it) from which a new reader would see exactly the pending events too."""
        merged = self._merged(channel)
        if merged is None or merged.offsets is None or not len(merged.offsets):
            return reader.offset, reader.events_read
        return int(merged.offsets.min()), reader.events_read - len(merged.offsets)

    def _merged(self, channel: int) -> WaveformChunk | None:
        chunks = self.pending[channel]
        if not chunks:
            return None
        if len(chunks) > 1:
            offsets = [c.offsets for c in chunks if c.offsets is not None]
            chunks[:] = [WaveformChunk(channel, np.concatenate([c.samples for c in chunks]),
                                       np.concatenate([c.event_numbers for c in chunks]),
                                       np.concatenate([c.trigger_time_tags for c in chunks]),
                                       np.concatenate(offsets) if len(offsets) == len(chunks) else None)]
        return chunks[0]

    def _in_step(self) -> int:
        """How many events every channel has pending, when all channels' pending events are numbered
        consecutively from the same first number (the usual case: their first events then match); else 0."""
        first, fewest = None, None
        for ch in self.wanted:
            chunks = self.pending[ch]
            if not chunks:
                return 0
            numbers = np.concatenate([c.event_numbers for c in chunks]) if len(chunks) > 1 else chunks[0].event_numbers
            if (first is not None and numbers[0] != first) or not np.all(np.diff(numbers) == 1):
                return 0
            first, fewest = numbers[0], len(numbers) if fewest is None else min(fewest, len(numbers))
        return int(fewest or 0)

    def _first_events(self, channel: int, n: int) -> np.ndarray:
        """Samples of the first n pending events of a channel (a view when its first chunk holds them all);
        the rest stays pending."""
        chunks = self.pending[channel]
        if len(chunks[0].event_numbers) < n:
            self._merged(channel)
        c = chunks[0]
        rest = WaveformChunk(channel, c.samples[n:], c.event_numbers[n:], c.trigger_time_tags[n:],
                             None if c.offsets is None else c.offsets[n:])
        chunks[0:1] = [rest] if len(rest.event_numbers) else []
        return c.samples[:n]

    def aligned(self, final: bool) -> dict[int, np.ndarray] | None:
        """Samples per channel of the events now present in every wanted channel (None if there are none)."""
        in_step = 0 if final else self._in_step()
        if in_step:
            return {ch: self._first_events(ch, in_step) for ch in self.wanted}
        merged = {ch: self._merged(ch) for ch in self.wanted}
        present = [c for c in merged.values() if c is not None]
        if len(present) < len(merged):
            if final and present:
                self.dropped += len(reduce(np.union1d, [c.event_numbers for c in present]))
                for chunks in self.pending.values():
                    chunks.clear()
            return None
        first = present[0].event_numbers
        if all(np.array_equal(c.event_numbers, first) for c in present[1:]) and np.all(np.diff(first) > 0):
            for chunks in self.pending.values():
                chunks.clear()
            return {ch: c.samples for ch, c in merged.items()}  # type: ignore[union-attr]
        limit = np.inf if final else min(int(c.event_numbers.max()) for c in present)
        ready = [c.event_numbers[c.event_numbers <= limit] for c in present]
        common = reduce(np.intersect1d, ready)
        self.dropped += len(reduce(np.union1d, ready)) - len(common)
        block: dict[int, np.ndarray] = {}
        for ch, c in merged.items():
            assert c is not None
            later = c.event_numbers > limit
            _, first_index = np.unique(c.event_numbers, return_index=True)
            keep = first_index[np.isin(c.event_numbers[first_index], common)]
            block[ch] = c.samples[keep]
            self.pending[ch] = [WaveformChunk(ch, c.samples[later], c.event_numbers[later], c.trigger_time_tags[later],
                                              None if c.offsets is None else c.offsets[later])] if later.any() else []
        return block if len(common) else None

    def take(self, final: bool = False) -> BlockCharges:
        """Charges of the events present in every channel now (with final=True: the rest is dropped)."""
        block = self.aligned(final)
        if block is None:
            return BlockCharges.empty(self.channels.reference is not None)
        s = self.settings
        trig = rising_trigger(block[self.channels.trigger], s.baseline_samples)
        trigger_start = np.empty(len(trig), dtype=np.int64)
        pulse_kernels.trigger_starts(trig, s.baseline_samples, self.mv_per_adc, s.trigger_threshold_mv, trigger_start)
        triggered = trigger_start >= 0
        first = self.n_events
        self.n_events += len(trig)
        self.n_untriggered += int(np.count_nonzero(~triggered))
        if triggered.any():
            end = (trig.shape[1] - int(trigger_start[triggered].max())) * NS_PER_SAMPLE
            self.record_end_ns = end if self.record_end_ns is None else min(self.record_end_ns, end)
        charge, dt_ns, selected = self._channel(self.channels.pmt, block[self.channels.pmt], trigger_start, first)
        ref = None
        if self.channels.reference is not None:
            ref_charge, _, ref_selected = self._channel(self.channels.reference, block[self.channels.reference],
                                                        trigger_start, first)
            ref = ref_charge[ref_selected & triggered]
        dt_ns = dt_ns[triggered & ~np.isnan(dt_ns)]
        self.delays.fill(dt_ns)
        return BlockCharges(charge[selected & triggered], ref, dt_ns, len(trig))

    def _channel(self, channel: int, samples: np.ndarray, trigger_start: np.ndarray,
                 first_index: int) -> tuple[np.ndarray, ...]:
        """(charge pC, PMT-minus-trigger ns, selected) of a PMT channel (the one under test, the reference), in one
        numba pass (and, in the fixed window, without its pickup line where it has one: `_without_pickup`), each
        charge dithered within its lattice step (`lattice_dither`; first_index: the block's first event)."""
        s = self.settings
        leading = s.mode != "fixed_window"
        if leading:
            length = s.pre_samples + s.post_samples
            window_lo = trigger_start
        else:
            length = round(s.fixed_window_length_ns / NS_PER_SAMPLE)
            window_lo = trigger_start + round(s.fixed_window_start_ns / NS_PER_SAMPLE)
        start = np.empty(len(samples), dtype=np.int64)
        charge = np.empty(len(samples), dtype=np.float64)
        quiet = np.empty(len(samples), dtype=np.bool_)
        pulse_kernels.pmt_features(samples, s.baseline_samples, self.mv_per_adc, s.pmt_threshold_mv, window_lo,
                                   length, leading, s.pre_samples, PC_PER_MV_SAMPLE, start, charge,
                                   self.veto_mv, quiet)
        if not leading and s.remove_pickup:
            charge = self._without_pickup(channel, samples, window_lo, length, charge, trigger_start >= 0)
        charge += lattice_dither(first_index, len(charge), lattice_step_pc(length, s.baseline_samples,
                                                                           self.mv_per_adc))
        dt_ns = np.where(start >= 0, (start - trigger_start) * NS_PER_SAMPLE, np.nan)
        in_time = np.ones(len(samples), dtype=bool)
        if leading:
            lo, hi = s.time_window_ns
            in_time = (start >= 0) & (dt_ns >= lo) & (dt_ns <= hi)
        lo_q, hi_q = s.charge_range_pc
        self.busy_baselines[channel] = (self.busy_baselines.get(channel, 0)
                                        + int(np.count_nonzero(~quiet & (trigger_start >= 0))))
        return charge, dt_ns, quiet & in_time & (charge >= lo_q) & (charge <= hi_q)

    def _without_pickup(self, channel: int, samples: np.ndarray, window_lo: np.ndarray, length: int,
                        charge: np.ndarray, triggered: np.ndarray) -> np.ndarray:
        """The channel's charges with its pickup line removed (`pickup.Removal`: decided from its first block of
        PICKUP_DECISION_EVENTS triggered events; blocks before that one keep their charges)."""
        if channel not in self.pickups:
            s = self.settings
            record = pickup.Record(length, s.baseline_samples, -self.mv_per_adc * PC_PER_MV_SAMPLE, self.mv_per_adc,
                                   NS_PER_SAMPLE, s.pmt_threshold_mv)
            self.pickups[channel] = pickup.Removal(record, PICKUP_DECISION_EVENTS)
        return self.pickups[channel].charges(charge, samples, window_lo, triggered)

    def warnings(self) -> list[str]:
        out = [("" if channel == self.channels.pmt else "reference PMT: ") + line.describe()
               for channel, removal in self.pickups.items() if (line := removal.line) is not None]
        triggered = self.n_events - self.n_untriggered
        out += [w for channel, busy in self.busy_baselines.items()
                if (w := busy_baseline_warning(busy, triggered, self.veto_mv,
                                               "" if channel == self.channels.pmt else "reference PMT: "))]
        if self.dropped:
            out.append(f"dropped {self.dropped} event(s) not present in every channel")
        if self.n_untriggered:
            out.append(f"dropped {self.n_untriggered} event(s) without a trigger pulse over "
                       f"{self.settings.trigger_threshold_mv} mV")
        configured, setting = charge_window(self.settings)
        misses = window_warning(self.delays, configured, setting)
        cut = record_end_warning(configured, self.window_ns(), laser_delay_ns(self.delays))
        return out + ([misses] if misses else []) + ([cut] if cut else [])

    def window_ns(self) -> tuple[float, float]:
        """Where the charges were measured (ns after the trigger): the fixed window cut where the records end
        (the leading-edge mode's time selection as configured)."""
        (lo, hi), _ = charge_window(self.settings)
        if self.settings.mode != "fixed_window" or self.record_end_ns is None:
            return lo, hi
        return lo, max(lo, min(hi, self.record_end_ns))


def charge_window(s: AnalysisSettings) -> tuple[tuple[float, float], str]:
    """Where the laser pulses must start (ns after the trigger) to be measured, and the setting that moves it:
    the fixed window, or the leading-edge mode's time selection."""
    if s.mode == "fixed_window":
        return (s.fixed_window_start_ns, s.fixed_window_start_ns + s.fixed_window_length_ns), "fixed_window_start_ns"
    return (float(s.time_window_ns[0]), float(s.time_window_ns[1])), "time_window_ns"


def settings_on_laser(settings: AnalysisSettings, delay_ns: float) -> AnalysisSettings:
    """The same settings with the charge window (fixed mode) or the time selection (leading-edge mode) placed on
    laser pulses that start delay_ns after the trigger (`laser_window.window_on_laser`)."""
    window, _ = charge_window(settings)
    if settings.mode == "fixed_window":
        return replace(settings, fixed_window_start_ns=window_on_laser(window, delay_ns, fixed=True)[0])
    return replace(settings, time_window_ns=window_on_laser(window, delay_ns, fixed=False))


@dataclass
class BlockCharges:
    """Selected charges of a block of aligned events."""

    pmt: np.ndarray
    reference: np.ndarray | None
    dt_ns: np.ndarray
    n_events: int

    @classmethod
    def empty(cls, reference: bool) -> BlockCharges:
        return cls(np.zeros(0), np.zeros(0) if reference else None, np.zeros(0), 0)


def make_readers(files: dict[int, Path], channels: ChannelMap, settings: AnalysisSettings) -> dict[int, WaveDumpReader]:
    """One reader per channel the analysis uses (missing required channels are an error)."""
    missing = [ch for ch in channels.required if ch not in files]
    if missing:
        raise MissingChannelError(f"missing channel(s) {missing}: no file for "
                                  + ", ".join(f"channel {c}" for c in missing))
    wanted = [channels.trigger, channels.pmt] + ([channels.reference] if channels.reference is not None else [])
    return {ch: WaveDumpReader(files[ch], record_length=settings.record_length, chunk_events=settings.chunk_events,
                               channel=ch, sample_bytes=settings.sample_bytes, adc_bits=settings.adc_bits)
            for ch in wanted}


def read_blocks(readers: dict[int, WaveDumpReader], acc: ChargeAccumulator, final: bool = True,
                fresh: bool = False) -> Iterator[BlockCharges]:
    """Read the channel files in parallel threads (the numba parsers release the GIL), each file read on as
    soon as its last chunk is in (up to two chunks ahead of the events present in every channel), while the
    events present in every channel are measured; yields the charges block by block.

    fresh=True reads every file from its start (`chunks`), otherwise from each reader's offset (`read_new`)."""
    iters = {ch: (r.chunks() if fresh else r.read_new(final=final)) for ch, r in readers.items()}
    limit = 2 * max(r.chunk_events for r in readers.values())
    with ThreadPoolExecutor(max_workers=len(iters), thread_name_prefix="reader") as pool:
        reading = {ch: pool.submit(next, it, None) for ch, it in iters.items()}
        unfinished = set(iters)
        try:
            while reading:
                done, _ = wait(reading.values(), return_when=FIRST_COMPLETED)
                for ch in [ch for ch, future in reading.items() if future in done]:
                    chunk = reading.pop(ch).result()
                    if chunk is None:
                        unfinished.discard(ch)
                    else:
                        acc.add(chunk, ch)
                idle = sorted(unfinished - reading.keys())
                due = [ch for ch in idle if acc.pending_events(ch) < limit] or ([] if reading else idle)
                reading.update({ch: pool.submit(next, iters[ch], None) for ch in due})
                yield acc.take(final=final and not reading)
        finally:  # on an error or an early stop: let running reads end, then close the files
            wait(reading.values())
            for it in iters.values():
                it.close()  # type: ignore[attr-defined]


def extract_point_charges(files: dict[int, Path], channels: ChannelMap, settings: AnalysisSettings) -> PointCharges:
    """Read the channel files of one point in parallel and return the selected charges."""
    readers = make_readers(files, channels, settings)
    acc = ChargeAccumulator(channels, settings)
    blocks = list(read_blocks(readers, acc, final=True, fresh=True))
    warnings = [w for r in readers.values() for w in r.warnings] + acc.warnings()
    pmt = np.concatenate([b.pmt for b in blocks]) if blocks else np.zeros(0)
    ref = None
    if channels.reference is not None:
        ref = np.concatenate([b.reference for b in blocks if b.reference is not None]) if blocks else np.zeros(0)
    return PointCharges(
        pmt_charge_pc=pmt,
        reference_charge_pc=ref,
        n_events=acc.n_events,
        n_selected=len(pmt),
        pmt_minus_trigger_ns=np.concatenate([b.dt_ns for b in blocks]) if blocks else np.zeros(0),
        warnings=warnings,
        laser_delay_ns=laser_delay_ns(acc.delays),
        window_ns=acc.window_ns(),
    )
