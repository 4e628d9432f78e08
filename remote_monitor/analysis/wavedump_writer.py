"""Write CAEN WaveDump files (ASCII and binary), as the digitizer does: used by the simulated stand and tests.

Header variants of the WaveDump builds met in practice can be written too: extra header lines
(`Unix Time:`, `String of time:`, x742 `Start Index Cell:`) and 8-bit binary samples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

_SAMPLE_TEXT = np.array([f"{v}\n".encode() for v in range(1 << 16)], dtype=object)

# extra header lines some WaveDump builds write after the standard seven ({e}: event number, {t}: time tag)
EXTRA_HEADER_LINES = {
    "unix_time": "Unix Time: {u}",
    "string_of_time": "String of time: 2026/11/25 10:15:{s:02d}",
    "start_index_cell": "Start Index Cell: {c}",
}


def _tags(n: int, trigger_time_tags: np.ndarray | None) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 1000 if trigger_time_tags is None else np.asarray(trigger_time_tags)


def _event_header(length: int, board_id: int, channel: int, number: int, tag: int, dc_offset: int,
                  extra: Sequence[str]) -> bytes:
    lines = [f"Record Length: {length}", f"BoardID: {board_id:2d}", f"Channel: {channel}",
             f"Event Number: {number}", "Pattern: 0x0000", f"Trigger Time Stamp: {tag}",
             f"DC offset (DAC): 0x{dc_offset:04X}"]
    lines += [EXTRA_HEADER_LINES[name].format(u=1764065700 + number // 1000, s=(number // 1000) % 60,
                                              c=(number * 37) % 1024) for name in extra]
    return ("\n".join(lines) + "\n").encode()


def ascii_bytes(samples: np.ndarray, channel: int, board_id: int = 0, first_event: int = 0,
                trigger_time_tags: np.ndarray | None = None, dc_offset: int = 0x1999,
                extra_header: Sequence[str] = ()) -> bytes:
    """Events (n_events, record_length) as WaveDump ASCII: 7 (+ extra) header lines + 1 sample per line."""
    samples = np.asarray(samples)
    n, length = samples.shape
    tags = _tags(n, trigger_time_tags)
    lines = np.empty((n, 1 + length), dtype=object)
    lines[:, 0] = [_event_header(length, board_id, channel, first_event + i, int(t), dc_offset, extra_header)
                   for i, t in enumerate(tags)]
    lines[:, 1:] = _SAMPLE_TEXT[np.clip(samples, 0, 0xFFFF).astype(np.int64)]
    return b"".join(lines.ravel())


def write_ascii(path: Path, samples: np.ndarray, channel: int, board_id: int = 0, first_event: int = 0,
                trigger_time_tags: np.ndarray | None = None, dc_offset: int = 0x1999, mode: str = "wb",
                extra_header: Sequence[str] = ()) -> None:
    """Write (mode "wb") or append ("ab") events as WaveDump ASCII."""
    with open(path, mode) as fh:
        fh.write(ascii_bytes(samples, channel, board_id, first_event, trigger_time_tags, dc_offset, extra_header))


def binary_event_dtype(record_length: int, header: bool = True, sample_bytes: int = 2) -> np.dtype:
    """numpy dtype of one binary WaveDump event (6 x uint32 header, then uint16 or uint8 samples)."""
    fields = [("size", "<u4"), ("board", "<u4"), ("pattern", "<u4"), ("channel", "<u4"),
              ("counter", "<u4"), ("ttt", "<u4")] if header else []
    return np.dtype([*fields, ("samples", "<u2" if sample_bytes == 2 else "u1", (record_length,))])


def binary_bytes(samples: np.ndarray, channel: int, header: bool = True, board_id: int = 0, first_event: int = 0,
                 trigger_time_tags: np.ndarray | None = None, sample_bytes: int = 2) -> bytes:
    """Events as binary WaveDump (the event size in bytes includes the 24-byte header)."""
    samples = np.asarray(samples)
    n, length = samples.shape
    events = np.zeros(n, dtype=binary_event_dtype(length, header, sample_bytes))
    if header:
        events["size"] = events.dtype.itemsize
        events["board"] = board_id
        events["channel"] = channel
        events["counter"] = np.arange(first_event, first_event + n)
        events["ttt"] = _tags(n, trigger_time_tags) & 0xFFFFFFFF
    events["samples"] = np.clip(samples, 0, 0xFFFF if sample_bytes == 2 else 0xFF)
    return events.tobytes()


def write_binary(path: Path, samples: np.ndarray, channel: int, header: bool = True, board_id: int = 0,
                 first_event: int = 0, trigger_time_tags: np.ndarray | None = None, mode: str = "wb",
                 sample_bytes: int = 2) -> None:
    """Write (mode "wb") or append ("ab") events as binary WaveDump."""
    with open(path, mode) as fh:
        fh.write(binary_bytes(samples, channel, header, board_id, first_event, trigger_time_tags, sample_bytes))
