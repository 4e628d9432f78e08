"""A second simulated stand, written without the project's simulator and with other conventions, so that the
analysis is checked on data its own model did not generate.

What differs from `remote_monitor.simulation`: a negative (NIM) trigger pulse at sample 50 of 520-sample
records; laser photoelectrons 180 ns after it (outside the default charge window: the monitor must find
them); a log-normal pulse shape; a Polya main peak (relative width 0.32) with 12 % exponential under-amplified
and 3 % uniform backscattered photoelectrons; late pulses (4 %, 8-60 ns late); 4 kHz dark counts; white noise,
10 MHz pickup (not averaged out by the 120 ns window: a non-Gaussian pedestal), optionally a second line of a few
MHz, and a per-event offset; its own binary WaveDump writer (board 31, first event number 1). Truth: the gain is
the main peak's mean charge / e.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

E_PC = 1.602176634e-7  # elementary charge in pC
NS = 2.0
MV_PER_ADC = 2000.0 / 16384
RECORD, TRIGGER_SAMPLE, LASER_DELAY_NS = 520, 50, 180.0
PULSE_SAMPLES = 45


def _pulse(t_ns: np.ndarray) -> np.ndarray:
    """Log-normal pulse (peak 9 ns after its start, FWHM about 12 ns)."""
    t = np.maximum(t_ns, 1e-6)
    return np.exp(-0.5 * (np.log(t / 9.0) / 0.38) ** 2)


_AREA_MV_NS = float(_pulse(np.arange(0.0, 200.0, 0.01)).sum() * 0.01)


def _pe_charges(rng: np.random.Generator, n: int, gain: float) -> np.ndarray:
    q1 = gain * E_PC
    q = q1 * rng.gamma(1 / 0.32**2, 0.32**2, n)
    kind = rng.random(n)
    under, back = kind < 0.12, (kind >= 0.12) & (kind < 0.15)
    q[under] = q1 * rng.exponential(0.25, int(under.sum()))
    q[back] = q1 * rng.uniform(0.0, 1.0, int(back.sum()))
    return q


def _pmt(rng: np.random.Generator, n: int, gain: float, mu: float, pickup: tuple[float, float]) -> np.ndarray:
    n_pe = rng.poisson(mu, n)
    rows = np.repeat(np.arange(n), n_pe)
    t = TRIGGER_SAMPLE * NS + LASER_DELAY_NS + rng.normal(0.0, 1.4, len(rows))
    late = rng.random(len(rows)) < 0.04
    t[late] += rng.uniform(8.0, 60.0, int(late.sum()))
    dark_rows = np.repeat(np.arange(n), rng.poisson(4e3 * RECORD * NS * 1e-9, n))
    rows = np.concatenate([rows, dark_rows])
    t = np.concatenate([t, rng.uniform(0.0, RECORD * NS, len(dark_rows))])
    height = np.concatenate([_pe_charges(rng, len(rows) - len(dark_rows), gain),
                             _pe_charges(rng, len(dark_rows), gain)]) * 50.0 / _AREA_MV_NS  # mV: Q = area / 50 ohm
    mv = rng.normal(0.0, 0.6, (n, RECORD))
    mv += 0.25 * np.sin(2 * np.pi * np.arange(RECORD) * NS / 100.0 + rng.uniform(0, 2 * np.pi, (n, 1)))
    mv += rng.normal(0.0, 0.15, (n, 1))
    amplitude_mv, frequency_mhz = pickup
    if amplitude_mv:  # a second pickup line, of a few MHz (not averaged out by the charge window)
        phase = 2 * np.pi * frequency_mhz * 1e-3 * np.arange(RECORD) * NS + rng.uniform(0, 2 * np.pi, (n, 1))
        mv += amplitude_mv * np.sin(phase)
    first = (t // NS).astype(np.int64)
    idx = first[:, None] + np.arange(PULSE_SAMPLES)
    shape = height[:, None] * _pulse(idx * NS - t[:, None])
    inside = idx < RECORD
    np.subtract.at(mv, (np.broadcast_to(rows[:, None], idx.shape)[inside], idx[inside]), shape[inside])
    return np.clip(np.rint(14500 + mv / MV_PER_ADC), 0, 16383).astype(np.uint16)


def _trigger(rng: np.random.Generator, n: int) -> np.ndarray:
    j = np.arange(RECORD)
    mv = (rng.normal(0.0, 1.0, (n, RECORD))
          - 800.0 * np.clip((j - TRIGGER_SAMPLE + 1) / 2.0, 0, 1) * (j < TRIGGER_SAMPLE + 30))
    return np.clip(np.rint(15500 + mv / MV_PER_ADC), 0, 16383).astype(np.uint16)


def _sipm(rng: np.random.Generator, n: int) -> np.ndarray:
    mv = rng.normal(0.0, 1.0, (n, RECORD))
    mv[:, TRIGGER_SAMPLE + 80: TRIGGER_SAMPLE + 90] += 2.0 * rng.poisson(25, n)[:, None]
    return np.clip(np.rint(1000 + mv / MV_PER_ADC), 0, 16383).astype(np.uint16)


def _write(fh, samples: np.ndarray, channel: int, first: int) -> None:
    dtype = np.dtype([("size", "<u4"), ("board", "<u4"), ("pattern", "<u4"), ("channel", "<u4"),
                      ("counter", "<u4"), ("ttt", "<u4"), ("samples", "<u2", (RECORD,))])
    events = np.zeros(len(samples), dtype)
    counter = np.arange(first, first + len(samples))
    events["size"], events["board"], events["channel"] = dtype.itemsize, 31, channel
    events["counter"], events["ttt"], events["samples"] = counter, (counter * 2000) % 2**31, samples
    fh.write(events.tobytes())


def write_point(folder: Path, point: str, gain: float, mu: float, n_events: int, seed: int,
                chunk: int = 50_000, pmt_channel: int = 2, pickup: tuple[float, float] = (0.0, 3.0)) -> None:
    """Binary files wave<CH>save_<point>.dat (trigger 0, SiPM 1, PMT pmt_channel) of one point in folder;
    pickup: (amplitude mV, frequency MHz) of a second pickup line on the PMT (none by default)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    channels = (0, 1, pmt_channel)
    handles = {ch: open(folder / f"wave{ch}save_{point}.dat", "wb") for ch in channels}  # noqa: SIM115
    try:
        for first in range(0, n_events, chunk):
            n = min(chunk, n_events - first)
            _write(handles[0], _trigger(rng, n), 0, first + 1)
            _write(handles[1], _sipm(rng, n), 1, first + 1)
            _write(handles[pmt_channel], _pmt(rng, n, gain, mu, pickup), pmt_channel, first + 1)
    finally:
        for fh in handles.values():
            fh.close()
