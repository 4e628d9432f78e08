"""Write the Korean stand's DAQ ROOT format (tree `T`: ADC[8][RecordLength] uint16, EventNumber,
TriggerTimeTag) with uproot, chunk by chunk, from the same simulated events as the WaveDump stand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import uproot

N_ADC_CHANNELS = 8


def korean_file_name(pmts: list[tuple[str, int, int, int]], tag: str = "run0001") -> str:
    """`prd_<SERIAL>_hv<HV>_R<phi>_T<theta>_..._<tag>.root`; signs as P/M like the stand's files (R00 T00,
    RP45 TM20)."""
    def angle(value: int) -> str:
        return f"{value:02d}" if value == 0 else ("P" if value > 0 else "M") + f"{abs(value):02d}"
    parts = [f"{serial}_hv{hv}_R{angle(r)}_T{angle(t)}" for serial, hv, r, t in pmts]
    return "prd_" + "_".join(parts) + f"_{tag}.root"


def write_korean_root(path: Path, blocks: Iterator[dict[int, np.ndarray]], record_length: int,
                      compression: bool = False) -> int:
    """Write blocks of {ADC channel: samples (n, record_length)} as tree `T`; returns the events written.

    Channels not in a block stay at zero (unused digitizer inputs)."""
    n_written = 0
    opts = {} if compression else {"compression": None}
    with uproot.recreate(path, **opts) as out:
        tree = out.mktree("T", {"ADC": np.dtype((np.uint16, (N_ADC_CHANNELS, record_length))),
                                "EventNumber": np.uint32, "TriggerTimeTag": np.uint64}, title="Korean stand DAQ")
        for block in blocks:
            n = len(next(iter(block.values())))
            adc = np.zeros((n, N_ADC_CHANNELS, record_length), dtype=np.uint16)
            for ch, samples in block.items():
                adc[:, ch, :] = samples
            numbers = np.arange(n_written, n_written + n, dtype=np.uint32)
            data = {"ADC": adc, "EventNumber": numbers, "TriggerTimeTag": numbers.astype(np.uint64) * 1000}
            tree.extend(data)
            n_written += n
    return n_written


def simulate_korean_blocks(rng: np.random.Generator, n_events: int, record_length: int,
                           pmts: list[tuple[float, float]], monitor: tuple[float, float] | None = (1e7, 0.8),
                           chunk_events: int = 5000, cfg: Any = None) -> Iterator[dict[int, np.ndarray]]:
    """Simulated events of the Korean stand in chunks: ADC 0 trigger, 1.. the PMTs (gain, mu), then the
    monitor PMT; the same generator as the WaveDump stand."""
    from remote_monitor.simulation.stand import SimulationConfig, pmt_waveforms, trigger_waveforms

    cfg = cfg or SimulationConfig()
    done = 0
    while done < n_events:
        n = min(chunk_events, n_events - done)
        trig_ns, trigger = trigger_waveforms(rng, n, record_length)
        block = {0: trigger}
        for i, (gain, mu) in enumerate(pmts):
            block[1 + i] = pmt_waveforms(rng, trig_ns, record_length, gain, mu, cfg)
        if monitor is not None:
            block[1 + len(pmts)] = pmt_waveforms(rng, trig_ns, record_length, monitor[0], monitor[1], cfg)
        done += n
        yield block


def simulate_korean_file(folder: Path, pmts: list[tuple[str, int, int, int, float, float]], n_events: int,
                         record_length: int = 1024, seed: int = 0, wavedump_dir: Path | None = None,
                         chunk_events: int = 5000) -> Path:
    """Write a Korean ROOT file of PMTs (serial, hv, R, T, gain, mu) and, if wavedump_dir is given, the same
    events as binary WaveDump files per PMT (wavedump_dir/<serial>/wave0.dat trigger, wave2.dat PMT)."""
    from remote_monitor.analysis.wavedump_writer import binary_bytes

    path = folder / korean_file_name([p[:4] for p in pmts])
    handles = {}
    if wavedump_dir is not None:
        for serial, *_ in pmts:
            (wavedump_dir / serial).mkdir(parents=True, exist_ok=True)
            handles[serial] = (open(wavedump_dir / serial / "wave0.dat", "wb"),  # noqa: SIM115
                               open(wavedump_dir / serial / "wave2.dat", "wb"))  # noqa: SIM115
    first = [0]

    def tee(blocks: Iterator[dict[int, np.ndarray]]) -> Iterator[dict[int, np.ndarray]]:
        for block in blocks:
            for i, (serial, *_) in enumerate(pmts):
                if serial in handles:
                    handles[serial][0].write(binary_bytes(block[0], 0, first_event=first[0]))
                    handles[serial][1].write(binary_bytes(block[1 + i], 2, first_event=first[0]))
            first[0] += len(block[0])
            yield block

    rng = np.random.default_rng(seed)
    try:
        write_korean_root(path, tee(simulate_korean_blocks(rng, n_events, record_length, [p[4:] for p in pmts],
                                                           chunk_events=chunk_events)), record_length)
    finally:
        for fh in (h for pair in handles.values() for h in pair):
            fh.close()
    return path
