"""Write CAEN WaveDump files (ASCII and binary), as the digitizer does: used by the simulated stand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_SAMPLE_TEXT = np.array([f"{v}\n".encode() for v in range(1 << 16)], dtype=object)


def _tags(n: int, trigger_time_tags: np.ndarray | None) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 1000 if trigger_time_tags is None else np.asarray(trigger_time_tags)


def ascii_bytes(samples: np.ndarray, channel: int, board_id: int = 0, first_event: int = 0,
                trigger_time_tags: np.ndarray | None = None, dc_offset: int = 0x1999) -> bytes:
    """Events (n_events, record_length) as WaveDump ASCII: 7 header lines + 1 sample per line."""
    samples = np.asarray(samples)
    n, length = samples.shape
    tags = _tags(n, trigger_time_tags)
    lines = np.empty((n, 7 + length), dtype=object)
    lines[:, 0] = f"Record Length: {length}\n".encode()
    lines[:, 1] = f"BoardID: {board_id:2d}\n".encode()
    lines[:, 2] = f"Channel: {channel}\n".encode()
    lines[:, 3] = [f"Event Number: {first_event + i}\n".encode() for i in range(n)]
    lines[:, 4] = b"Pattern: 0x0000\n"
    lines[:, 5] = [f"Trigger Time Stamp: {int(t)}\n".encode() for t in tags]
    lines[:, 6] = f"DC offset (DAC): 0x{dc_offset:04X}\n".encode()
    lines[:, 7:] = _SAMPLE_TEXT[np.clip(samples, 0, 0xFFFF).astype(np.int64)]
    return b"".join(lines.ravel())


def write_ascii(path: Path, samples: np.ndarray, channel: int, board_id: int = 0, first_event: int = 0,
                trigger_time_tags: np.ndarray | None = None, dc_offset: int = 0x1999, mode: str = "wb") -> None:
    """Write (mode "wb") or append ("ab") events as WaveDump ASCII."""
    with open(path, mode) as fh:
        fh.write(ascii_bytes(samples, channel, board_id, first_event, trigger_time_tags, dc_offset))


def binary_event_dtype(record_length: int, header: bool = True) -> np.dtype:
    """numpy dtype of one binary WaveDump event (6 x uint32 header, then uint16 samples)."""
    fields = [("size", "<u4"), ("board", "<u4"), ("pattern", "<u4"), ("channel", "<u4"),
              ("counter", "<u4"), ("ttt", "<u4")] if header else []
    return np.dtype([*fields, ("samples", "<u2", (record_length,))])


def binary_bytes(samples: np.ndarray, channel: int, header: bool = True, board_id: int = 0, first_event: int = 0,
                 trigger_time_tags: np.ndarray | None = None) -> bytes:
    """Events as binary WaveDump (the event size in bytes includes the 24-byte header)."""
    samples = np.asarray(samples)
    n, length = samples.shape
    events = np.zeros(n, dtype=binary_event_dtype(length, header))
    if header:
        events["size"] = events.dtype.itemsize
        events["board"] = board_id
        events["channel"] = channel
        events["counter"] = np.arange(first_event, first_event + n)
        events["ttt"] = _tags(n, trigger_time_tags) & 0xFFFFFFFF
    events["samples"] = np.clip(samples, 0, 0xFFFF)
    return events.tobytes()


def write_binary(path: Path, samples: np.ndarray, channel: int, header: bool = True, board_id: int = 0,
                 first_event: int = 0, trigger_time_tags: np.ndarray | None = None, mode: str = "wb") -> None:
    """Write (mode "wb") or append ("ab") events as binary WaveDump."""
    with open(path, mode) as fh:
        fh.write(binary_bytes(samples, channel, header, board_id, first_event, trigger_time_tags))
