"""Fast generation of real-scale WaveDump points for the benchmarks (not the slow per-point simulator).

A pool of simulated events (trigger, PMT) is written once as text/binary and tiled with fresh event
numbers and time tags, so a 600k-event, 3-channel point of ~2.7 GB ASCII is written in seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from remote_monitor.analysis.wavedump_writer import _SAMPLE_TEXT, binary_event_dtype
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms

CHANNELS = (0, 1, 2)  # trigger, reference PMT, PMT under test: all three files are read by the analysis
BENCH_CHANNELS = {"trigger": 0, "sipm": None, "pmt": 2, "reference": 1}
POOL = 4096


def pool_waveforms(record_length: int, seed: int = 1, occupancy: float = 1.0) -> dict[int, np.ndarray]:
    """POOL simulated events per channel (the reference PMT reuses the PMT pulses in another order)."""
    waves = simulate_point_waveforms(np.random.default_rng(seed), POOL, record_length, 1.0e7, occupancy,
                                     SimulationConfig(include_sipm=False))
    return {0: waves[0], 1: waves[2][::-1].copy(), 2: waves[2]}


def _ascii_bodies(samples: np.ndarray) -> list[bytes]:
    return [b"".join(_SAMPLE_TEXT[row.astype(np.int64)]) for row in samples]


class PointWriter:
    """Appends events of one point (all channels) to files, in ASCII (.txt) or binary (.dat)."""

    def __init__(self, folder: Path, record_length: int, fmt: str, seed: int = 1,
                 paths: dict[int, Path] | None = None, occupancy: float = 1.0) -> None:
        self.folder, self.length, self.fmt = folder, record_length, fmt
        self.pool = pool_waveforms(record_length, seed, occupancy)
        self.bodies = {ch: _ascii_bodies(s) for ch, s in self.pool.items()} if fmt == "txt" else {}
        self.paths = paths or {ch: folder / f"wave{ch}.{fmt}" for ch in CHANNELS}
        self.written = 0
        for path in self.paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")

    def _ascii(self, ch: int, first: int, n: int) -> bytes:
        parts = []
        for e in range(first, first + n):
            parts.append(f"Record Length: {self.length}\nBoardID: 31\nChannel: {ch}\nEvent Number: {e}\n"
                         f"Pattern: 0x0000\nTrigger Time Stamp: {(e * 1000) & 0xFFFFFFFF}\n"
                         "DC offset (DAC): 0x1999\n".encode())
            parts.append(self.bodies[ch][e % POOL])
        return b"".join(parts)

    def _binary(self, ch: int, first: int, n: int) -> bytes:
        events = np.zeros(n, dtype=binary_event_dtype(self.length))
        numbers = np.arange(first, first + n)
        events["size"] = events.dtype.itemsize
        events["board"], events["channel"] = 31, ch
        events["counter"], events["ttt"] = numbers, (numbers * 1000) & 0xFFFFFFFF
        events["samples"] = self.pool[ch][numbers % POOL]
        return events.tobytes()

    def append(self, n: int) -> None:
        """Write the next n events to every channel file (flushed, as WaveDump does per buffer)."""
        for ch, path in self.paths.items():
            data = (self._ascii if self.fmt == "txt" else self._binary)(ch, self.written, n)
            with open(path, "ab") as fh:
                fh.write(data)
        self.written += n

    def write(self, n_events: int, block: int = 8192) -> dict[int, Path]:
        for n in _blocks(n_events, block):
            self.append(n)
        return self.paths


def _blocks(total: int, block: int) -> Iterator[int]:
    while total > 0:
        yield min(block, total)
        total -= block
