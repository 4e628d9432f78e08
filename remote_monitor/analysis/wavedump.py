"""Stream CAEN WaveDump files (ASCII or binary) in bounded memory, with clear errors for broken files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numba import njit

from remote_monitor.analysis.wavedump_writer import binary_event_dtype

_INCOMPLETE, _BAD_SAMPLE = 1, 2
_RECORD_RE = re.compile(rb"record\s*length\s*:\s*(\d+)", re.IGNORECASE)
_EVENT_RE = re.compile(rb"event\s*number\s*:\s*(\d+)", re.IGNORECASE)
_TTT_RE = re.compile(rb"trigger\s*time\s*stamp\s*:\s*(\d+)", re.IGNORECASE)


class WaveformFileError(ValueError):
    """A waveform file is malformed; names the file and where (line or byte) it broke."""

    def __init__(self, path: Path | str, where: str, reason: str) -> None:
        self.path, self.where, self.reason = str(path), where, reason
        super().__init__(f"{path}: {where}: {reason}")


@dataclass
class WaveformChunk:
    """Consecutive events of one channel."""

    channel: int
    samples: np.ndarray  # (n_events, record_length)
    event_numbers: np.ndarray
    trigger_time_tags: np.ndarray


@njit(cache=True)
def _parse_ascii_events(buf, pos, n_header, record_length, max_events, header_spans, header_info,
                        samples):  # pragma: no cover - compiled
    """Parse up to max_events events from buf starting at pos.

    Per header line: its byte span, a hash of its label (text before ':', case and spaces ignored) and the
    number after ':' (-1 if none). Returns (events parsed, byte after the last complete event, status,
    byte of the problem).
    """
    n = buf.shape[0]
    for ev in range(max_events):
        ev_start = pos
        if pos >= n:
            return ev, ev_start, 0, 0
        for h in range(n_header):
            end = pos
            while end < n and buf[end] != 10:
                end += 1
            if end >= n:
                return ev, ev_start, _INCOMPLETE, ev_start
            header_spans[ev, h, 0] = pos
            header_spans[ev, h, 1] = end
            label, value, i = 0, -1, pos
            while i < end and buf[i] != 58:  # ':'
                c = buf[i]
                if c not in {32, 9, 13}:
                    label = (label * 31 + (c | 32)) % 2305843009213693951
                i += 1
            if i < end:
                i += 1
                while i < end and buf[i] == 32:
                    i += 1
                while i < end and 48 <= buf[i] <= 57:
                    value = (0 if value < 0 else value * 10) + (buf[i] - 48)
                    i += 1
            else:
                label = -1  # no ':' at all: not a header line
            header_info[ev, h, 0] = label
            header_info[ev, h, 1] = value
            pos = end + 1
        for s in range(record_length):
            line_start = pos
            while pos < n and buf[pos] == 32:
                pos += 1
            value = 0
            digits = 0
            while pos < n and 48 <= buf[pos] <= 57:
                value = value * 10 + (buf[pos] - 48)
                digits += 1
                pos += 1
            while pos < n and (buf[pos] == 32 or buf[pos] == 13):
                pos += 1
            if pos >= n:
                return ev, ev_start, _INCOMPLETE, ev_start
            if buf[pos] != 10 or digits == 0:
                return ev, ev_start, _BAD_SAMPLE, line_start
            samples[ev, s] = value
            pos += 1
    return max_events, pos, 0, 0


class WaveDumpReader:
    """Iterate over a WaveDump file chunk by chunk; `.warnings` collects dropped truncated events."""

    def __init__(self, path: Path, record_length: int | None = None, header: bool | None = None,
                 chunk_events: int = 2048, channel: int | None = None) -> None:
        self.path = Path(path)
        self.binary = self.path.suffix.lower() == ".dat"
        self.header = True if header is None else header
        self.record_length = record_length
        self.chunk_events = max(1, chunk_events)
        self.channel = channel if channel is not None else _channel_from_name(self.path)
        self.warnings: list[str] = []
        self.events_read = 0
        if self.binary and not self.header and record_length is None:
            raise WaveformFileError(self.path, "file", "binary file without header needs record_length")

    def _fail(self, where: str, reason: str) -> WaveformFileError:
        return WaveformFileError(self.path, where, reason)

    def chunks(self) -> Iterator[WaveformChunk]:
        """Events in chunks of at most chunk_events."""
        self.warnings.clear()
        self.events_read = 0
        with open(self.path, "rb") as fh:
            if not fh.read(1):
                raise self._fail("byte 0", "empty file")
            fh.seek(0)
            yield from (self._binary_chunks(fh) if self.binary else self._ascii_chunks(fh))

    # ---- binary -----------------------------------------------------------------------------------
    def _binary_chunks(self, fh: BinaryIO) -> Iterator[WaveformChunk]:
        if self.header:
            first = np.frombuffer(fh.read(24), dtype="<u4")
            if first.size < 6:
                self.warnings.append(f"{self.path.name}: truncated event at byte 0 dropped (file shorter "
                                     "than one event header)")
                return
            size = int(first[0])
            if size <= 24 or (size - 24) % 2:
                raise self._fail("byte 0", f"event size field {size} is not 24 + 2 * record length")
            if self.record_length is not None and (size - 24) // 2 != self.record_length:
                raise self._fail("byte 0", f"record length {(size - 24) // 2} != expected {self.record_length}")
            self.record_length = (size - 24) // 2
            fh.seek(0)
        dtype = binary_event_dtype(int(self.record_length), self.header)  # type: ignore[arg-type]
        offset = 0
        while True:
            data = fh.read(dtype.itemsize * self.chunk_events)
            if not data:
                return
            n = len(data) // dtype.itemsize
            if len(data) % dtype.itemsize:
                self.warnings.append(f"{self.path.name}: truncated last event at byte {offset + n * dtype.itemsize} "
                                     f"dropped ({len(data) % dtype.itemsize} of {dtype.itemsize} bytes)")
            events = np.frombuffer(data, dtype=dtype, count=n)
            if self.header:
                bad = np.flatnonzero(events["size"] != dtype.itemsize)
                if bad.size:
                    at = offset + int(bad[0]) * dtype.itemsize
                    raise self._fail(f"byte {at}", f"event size field {int(events['size'][bad[0]])} != "
                                     f"{dtype.itemsize} of the first event (record length changed or corrupt)")
                numbers = events["counter"].astype(np.int64)
                tags = events["ttt"].astype(np.int64)
            else:
                numbers = np.arange(self.events_read, self.events_read + n, dtype=np.int64)
                tags = np.zeros(n, dtype=np.int64)
            offset += n * dtype.itemsize
            self.events_read += n
            if n:
                yield WaveformChunk(self.channel, events["samples"], numbers, tags)

    # ---- ASCII ------------------------------------------------------------------------------------
    def _ascii_layout(self, head: bytes) -> tuple[int, int, list[bytes]]:
        """Header line count, record length and header labels, from the first event."""
        lines = head.split(b"\n")
        labels: list[bytes] = []
        record_length = None
        for line in lines[:-1]:
            text = line.strip()
            if text.isdigit():
                break
            if b":" not in text:
                raise self._fail(f"line {len(labels) + 1}", f"expected a header line, found {text[:40]!r}")
            labels.append(text.split(b":", 1)[0].strip().lower())
            match = _RECORD_RE.search(text)
            if match:
                record_length = int(match.group(1))
        else:
            raise self._fail("line 1", "no complete event header found (not a WaveDump ASCII file?)")
        if record_length is None:
            raise self._fail("line 1", "no 'Record Length:' in the event header")
        if self.record_length is not None and record_length != self.record_length:
            raise self._fail("line 1", f"record length {record_length} != expected {self.record_length}")
        return len(labels), record_length, labels

    def _ascii_chunks(self, fh: BinaryIO) -> Iterator[WaveformChunk]:
        head = fh.read(4096)
        n_header, length, labels = self._ascii_layout(head)
        self.record_length = length
        fh.seek(0)
        block_bytes = max(1 << 16, self.chunk_events * (length + n_header) * 7)
        buf = b""
        line_base = 1  # line number of buf[0]
        eof = False
        spans = np.zeros((self.chunk_events, n_header, 2), dtype=np.int64)
        info = np.zeros((self.chunk_events, n_header, 2), dtype=np.int64)
        samples = np.zeros((self.chunk_events, length), dtype=np.uint16)
        self._expected_labels: np.ndarray | None = None
        while True:
            if not eof:
                more = fh.read(block_bytes)
                eof = not more
                buf += more
            arr = np.frombuffer(buf, dtype=np.uint8)
            n, end, status, where = _parse_ascii_events(arr, 0, n_header, length, self.chunk_events, spans, info,
                                                        samples)
            if status == _BAD_SAMPLE:
                line = line_base + int(np.count_nonzero(arr[:where] == 10))
                text = bytes(arr[where: where + 40]).split(b"\n")[0]
                hint = " (header in the wrong place: record length mismatch?)" if b":" in text else ""
                raise self._fail(f"line {line}", f"expected an ADC sample, found {text!r}{hint}")
            if n:
                yield self._ascii_chunk(arr, n, spans, info, samples, labels, line_base)
                line_base += int(np.count_nonzero(arr[:end] == 10))
                buf = buf[end:]
            elif status == _INCOMPLETE and eof:
                if buf.strip():
                    self.warnings.append(f"{self.path.name}: truncated last event at line {line_base} dropped "
                                         f"({len(buf)} bytes of an incomplete event)")
                return
            elif not buf and eof:
                return

    def _ascii_chunk(self, arr: np.ndarray, n: int, spans: np.ndarray, info: np.ndarray, samples: np.ndarray,
                     labels: list[bytes], line_base: int) -> WaveformChunk:
        """Check every event's header against the first one (vectorised) and pick event number and time tag."""
        if self._expected_labels is None:
            self._expected_labels = info[0, :, 0].copy()
        bad = np.argwhere(info[:n, :, 0] != self._expected_labels)
        if bad.size:
            ev, h = (int(x) for x in bad[0])
            start = int(spans[ev, h, 0])
            line = bytes(arr[start: spans[ev, h, 1]])
            at = line_base + int(np.count_nonzero(arr[:start] == 10))
            raise self._fail(f"line {at}", f"expected header {labels[h].decode(errors='replace')!r}, found "
                             f"{line[:40]!r} (record length mismatch or corrupt event)")

        def column(pattern: re.Pattern[bytes]) -> np.ndarray | None:
            index = next((i for i, label in enumerate(labels) if pattern.search(label + b":0")), None)
            return None if index is None else info[:n, index, 1]

        lengths = column(_RECORD_RE)
        if lengths is not None and np.any(lengths != self.record_length):
            ev = int(np.flatnonzero(lengths != self.record_length)[0])
            raise self._fail(f"event {self.events_read + ev}", f"record length {int(lengths[ev])} "
                             f"!= {self.record_length} of the first event")
        numbers = column(_EVENT_RE)
        tags = column(_TTT_RE)
        first = self.events_read
        self.events_read += n
        return WaveformChunk(
            self.channel, samples[:n].copy(),
            numbers.copy() if numbers is not None else np.arange(first, first + n, dtype=np.int64),
            tags.copy() if tags is not None else np.zeros(n, dtype=np.int64),
        )


def _channel_from_name(path: Path) -> int:
    match = re.match(r"wave_?(\d+)", path.name)
    return int(match.group(1)) if match else -1


def read_waveforms(path: Path, **kwargs: object) -> tuple[WaveformChunk, list[str]]:
    """All events of a file in one chunk (small files and tests), with the reader's warnings."""
    reader = WaveDumpReader(path, **kwargs)  # type: ignore[arg-type]
    chunks = list(reader.chunks())
    length = reader.record_length or 0
    if not chunks:
        empty = np.zeros((0, length), dtype=np.uint16)
        return WaveformChunk(reader.channel, empty, np.zeros(0, np.int64), np.zeros(0, np.int64)), reader.warnings
    return WaveformChunk(
        reader.channel,
        np.concatenate([c.samples for c in chunks]),
        np.concatenate([c.event_numbers for c in chunks]),
        np.concatenate([c.trigger_time_tags for c in chunks]),
    ), reader.warnings
