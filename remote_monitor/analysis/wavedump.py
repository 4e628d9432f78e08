"""Read CAEN WaveDump files (ASCII or binary) by byte offset, in bounded memory and linear time.

A reader keeps the byte offset after the last complete event, so the same reader follows a file that
WaveDump is still writing (`read_new`) or streams a finished one (`chunks`). Every problem with the
bytes of a file is a `WaveformFileError` naming the file and the line (ASCII) or byte (binary)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remote_monitor.analysis import wavedump_ascii as kernels
from remote_monitor.analysis.units import ADC_BITS
from remote_monitor.analysis.wavedump_writer import binary_event_dtype

MAX_RECORD_LENGTH = 1 << 22
READ_BYTES = 64 << 20  # upper bound of one read (chunk_events events are read at a time below it)
MAX_EVENT_BYTES = 256 << 20
_HEAD_BYTES = 1 << 16
_KEPT_BUFFERS = 8  # chunk buffers kept for reuse per reader (chunks pending alignment hold a few)
_RECORD_RE = re.compile(rb"^\s*record\s*length\s*:", re.IGNORECASE)
_EVENT_RE = re.compile(rb"^\s*event\s*number\s*:", re.IGNORECASE)
_TTT_RE = re.compile(rb"^\s*trigger\s*time\s*stamp\s*:", re.IGNORECASE)


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
    offsets: np.ndarray | None = None  # byte offset of each event in its file (None: not known)


@dataclass
class _AsciiLayout:
    labels: np.ndarray
    template: np.ndarray
    template_lengths: np.ndarray
    names: list[bytes]
    record_length: int
    length_line: int
    number_line: int
    ttt_line: int
    first_event_bytes: int


class WaveDumpReader:
    """Events of one channel file, read from `offset` on; `.warnings` collects dropped truncated events."""

    def __init__(self, path: Path, record_length: int | None = None, header: bool | None = None,
                 chunk_events: int = 2048, channel: int | None = None, sample_bytes: int = 2,
                 adc_bits: int = ADC_BITS) -> None:
        self.path = Path(path)
        self.binary = self.path.suffix.lower() == ".dat"
        self.header = True if header is None else header
        self.record_length = record_length
        self.chunk_events = max(1, chunk_events)
        self.channel = channel if channel is not None else _channel_from_name(self.path)
        self.sample_bytes = sample_bytes
        self.max_adc = (1 << adc_bits) - 1
        self.warnings: list[str] = []
        self.events_read = 0
        self.offset = 0
        self._ascii: _AsciiLayout | None = None
        self._buffers: list[np.ndarray] = []
        if sample_bytes not in (1, 2):
            raise WaveformFileError(self.path, "file", f"sample_bytes must be 1 or 2, got {sample_bytes}")
        if self.binary and not self.header and record_length is None:
            raise WaveformFileError(self.path, "file", "binary file without header needs record_length")

    def _fail(self, where: str, reason: str) -> WaveformFileError:
        return WaveformFileError(self.path, where, reason)

    # ---- public -----------------------------------------------------------------------------------
    def chunks(self) -> Iterator[WaveformChunk]:
        """All events from the start of the file; a truncated last event is dropped with a warning."""
        self.warnings.clear()
        self.events_read = self.offset = 0
        yield from self.read_new(final=True)

    def read_new(self, final: bool = False) -> Iterator[WaveformChunk]:
        """The complete events written since the last call (from `offset` to the current end of file).

        With final=True the bytes left after the last complete event are reported as a truncated event."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise self._fail("file", f"cannot open: {exc.strerror or exc}") from None
        try:
            yield from self._read(fd, final)
        finally:
            os.close(fd)

    # ---- reading ----------------------------------------------------------------------------------
    @contextmanager
    def _reading_at(self, offset: int) -> Iterator[None]:
        """A failed read (I/O error, offset out of range, no memory) as a WaveformFileError naming the byte."""
        try:
            yield
        except (OSError, OverflowError, MemoryError) as exc:
            raise self._fail(f"byte {offset}", f"read failed: {exc}") from None

    def _pread(self, fd: int, size: int, offset: int) -> bytes:
        with self._reading_at(offset):
            return os.pread(fd, size, offset)

    def _read(self, fd: int, final: bool) -> Iterator[WaveformChunk]:
        if self.offset == 0 and not self._pread(fd, 1, 0):
            if final:
                raise self._fail("byte 0", "empty file")
            return
        if self.binary:
            yield from self._binary(fd, final)
        else:
            yield from self._ascii_events(fd, final)

    def _pread_into(self, fd: int, buffer: np.ndarray, offset: int) -> int:
        """Read into a reused buffer (no fresh pages to fault in per read); the number of bytes read."""
        with self._reading_at(offset):
            return os.preadv(fd, [buffer.data], offset)

    def _unused_buffer(self, size: int) -> np.ndarray:
        """A buffer of `size` bytes that no chunk still refers to. Chunks are views into it (binary: the bytes
        read; ASCII: the parsed samples), so a buffer is reused only once every view of it is gone (its
        reference count tells); a reused buffer's pages are not faulted in again, which costs more than
        reading into them."""
        for buffer in self._buffers:
            if len(buffer) == size and sys.getrefcount(buffer) <= 3:  # the list, this loop, the call's argument
                return buffer
        buffer = np.empty(size, dtype=np.uint8)
        if len(self._buffers) < _KEPT_BUFFERS:
            self._buffers.append(buffer)
        return buffer

    def _truncated(self, what: str, left: int, of: int | None = None) -> None:
        total = f" of {of}" if of else ""
        self.warnings.append(f"{self.path.name}: truncated last event at {what} dropped ({left}{total} bytes "
                             "of an incomplete event)")

    # ---- binary -----------------------------------------------------------------------------------
    def _binary_dtype(self, fd: int) -> np.dtype | None:
        if self.header:
            head = self._pread(fd, 24, 0)
            if len(head) < 24:
                return None
            first = np.frombuffer(head, dtype="<u4")
            size = int(first[0])
            length, rest = divmod(size - 24, self.sample_bytes)
            if size <= 24 or rest or length > MAX_RECORD_LENGTH:
                raise self._fail("byte 0", f"event size field {size} is not 24 + {self.sample_bytes} x record "
                                 "length")
            if self.record_length is not None and length != self.record_length:
                raise self._fail("byte 0", f"record length {length} != expected {self.record_length}")
            self.record_length = length
        if not 0 < int(self.record_length or 0) <= MAX_RECORD_LENGTH:
            raise self._fail("file", f"record length {self.record_length} out of range")
        return binary_event_dtype(int(self.record_length), self.header,  # type: ignore[arg-type]
                                  self.sample_bytes)

    def _binary(self, fd: int, final: bool) -> Iterator[WaveformChunk]:
        dtype = self._binary_dtype(fd)
        if dtype is None:
            if final:
                self._truncated("byte 0", os.fstat(fd).st_size, 24)
            return
        per_read = max(1, min(self.chunk_events, READ_BYTES // dtype.itemsize))
        while True:
            buffer = self._unused_buffer(dtype.itemsize * per_read)
            data = buffer[:self._pread_into(fd, buffer, self.offset)]
            n = len(data) // dtype.itemsize
            if n == 0:
                if final and len(data):
                    self._truncated(f"byte {self.offset}", len(data), dtype.itemsize)
                return
            events = data[:n * dtype.itemsize].view(dtype)
            samples = events["samples"]
            if self.header:
                bad = np.flatnonzero(events["size"] != dtype.itemsize)
                if bad.size:
                    at = self.offset + int(bad[0]) * dtype.itemsize
                    raise self._fail(f"byte {at}", f"event size field {int(events['size'][bad[0]])} != "
                                     f"{dtype.itemsize} of the first event (record length changed or corrupt)")
                numbers = events["counter"].astype(np.int64)
                tags = events["ttt"].astype(np.int64)
            else:
                numbers = np.arange(self.events_read, self.events_read + n, dtype=np.int64)
                tags = np.zeros(n, dtype=np.int64)
            if samples.size and int(samples.max()) > self.max_adc:
                ev, s = np.argwhere(samples > self.max_adc)[0]
                at = self.offset + int(ev) * dtype.itemsize + (24 if self.header else 0) + int(s) * self.sample_bytes
                raise self._fail(f"byte {at}", f"ADC sample {int(samples[ev, s])} above the "
                                 f"{self.max_adc.bit_length()}-bit range (max {self.max_adc})")
            offsets = self.offset + np.arange(n, dtype=np.int64) * dtype.itemsize
            self.offset += n * dtype.itemsize
            self.events_read += n
            left = len(data) % dtype.itemsize
            yield WaveformChunk(self.channel, samples, numbers, tags, offsets)
            del buffer, data, events, samples  # the chunk alone refers to its buffer now (reused once it is gone)
            if n < per_read:
                if final and left:
                    self._truncated(f"byte {self.offset}", left, dtype.itemsize)
                return

    # ---- ASCII ------------------------------------------------------------------------------------
    def _ascii_layout(self, fd: int, final: bool) -> _AsciiLayout | None:
        head = self._pread(fd, _HEAD_BYTES, 0)
        found = kernels.header_layout(head)
        if found is None:
            if len(head) == _HEAD_BYTES or final:
                first = head.split(b"\n")[0].strip()
                if b":" not in first:
                    raise self._fail("line 1", f"expected a header line, found {first[:40]!r}")
                raise self._fail("line 1", "no complete event header found (not a WaveDump ASCII file?)")
            return None
        names, labels = found
        for i, name in enumerate(names):
            if b":" not in name:
                raise self._fail(f"line {i + 1}", f"expected a header line, found {name.strip()[:40]!r}")
        index = {key: next((i for i, n in enumerate(names) if rx.match(n)), -1)
                 for key, rx in (("length", _RECORD_RE), ("number", _EVENT_RE), ("ttt", _TTT_RE))}
        if index["length"] < 0:
            raise self._fail("line 1", "no 'Record Length:' in the event header")
        text = names[index["length"]].split(b":", 1)[1].strip()
        length = int(text) if text.isdigit() and len(text) < 9 else -1
        if not 0 < length <= MAX_RECORD_LENGTH:
            raise self._fail(f"line {index['length'] + 1}", f"record length {text[:20]!r} out of range")
        if self.record_length is not None and length != self.record_length:
            raise self._fail("line 1", f"record length {length} != expected {self.record_length}")
        event_bytes = sum(len(n) + 1 for n in names) + 6 * length
        template, template_lengths = kernels.header_template(names)
        return _AsciiLayout(labels, template, template_lengths, names, length, index["length"], index["number"],
                            index["ttt"], event_bytes)

    def _ascii_events(self, fd: int, final: bool) -> Iterator[WaveformChunk]:
        if self._ascii is None:
            self._ascii = self._ascii_layout(fd, final)
            if self._ascii is None:
                return
        lay = self._ascii
        self.record_length = lay.record_length
        events = max(1, min(self.chunk_events, READ_BYTES // lay.first_event_bytes))
        read_size = int(events * lay.first_event_bytes * 1.05) + 4096
        buffer = np.empty(0, dtype=np.uint8)  # reused: parse_events copies the samples out of it
        while True:
            if len(buffer) < read_size:
                buffer = np.empty(read_size, dtype=np.uint8)
            got = self._pread_into(fd, buffer[:read_size], self.offset)
            if not got:
                return
            buf = buffer[:got]
            samples = self._unused_buffer(events * lay.record_length * 2).view(np.uint16).reshape(
                events, lay.record_length)
            numbers = np.full(events, -1, dtype=np.int64)
            tags = np.zeros(events, dtype=np.int64)
            starts = np.zeros(events, dtype=np.int64)
            n, end, status, where = kernels.parse_events(
                buf, kernels.word_view(buf), 0, lay.labels, lay.template, lay.template_lengths, lay.length_line,
                lay.number_line, lay.ttt_line, lay.record_length, self.max_adc, samples, numbers, tags, starts)
            if status not in (kernels.OK, kernels.INCOMPLETE):
                self._raise_ascii(buf, status, where, n)
            if n:
                if lay.number_line < 0:
                    numbers[:n] = np.arange(self.events_read, self.events_read + n)
                offsets = starts[:n] + self.offset
                self.offset += end
                self.events_read += n
                yield WaveformChunk(self.channel, samples[:n], numbers[:n], tags[:n], offsets)
                del samples  # the chunk alone refers to its buffer now (reused once it is gone)
                continue
            if got == read_size and read_size < MAX_EVENT_BYTES:  # one event longer than a read
                read_size *= 2
                continue
            if final and buf.tobytes().strip():
                self._truncated(f"line {self._line_at(buf, 0)}", got)
            return

    def _line_at(self, buf: np.ndarray, where: int) -> int:
        lay = self._ascii
        assert lay is not None
        before = self.events_read * (len(lay.names) + lay.record_length)
        return before + 1 + int(np.count_nonzero(buf[:where] == 10))

    def _raise_ascii(self, buf: np.ndarray, status: int, where: int, n: int) -> None:
        lay = self._ascii
        assert lay is not None
        line = f"line {self._line_at(buf, where)}"
        text = bytes(buf[where: where + 60]).split(b"\n")[0].strip()
        if status == kernels.BAD_SAMPLE:
            hint = " (header in the wrong place: record length mismatch?)" if b":" in text else ""
            raise self._fail(line, f"expected an ADC sample, found {text[:40]!r}{hint}")
        if status == kernels.OUT_OF_RANGE:
            raise self._fail(line, f"ADC sample {text[:20].decode(errors='replace')} above the "
                             f"{self.max_adc.bit_length()}-bit range (max {self.max_adc})")
        if status == kernels.LENGTH_CHANGED:
            value = text.split(b":", 1)[-1].strip()[:20].decode(errors="replace")
            raise self._fail(line, f"record length changes from {lay.record_length} to {value!r} "
                             f"(event {self.events_read + n})")
        index = self._header_index(buf, where)
        expected = lay.names[index].strip().split(b":")[0].decode(errors="replace") if index >= 0 else "?"
        raise self._fail(line, f"expected header {expected!r}, found {text[:40]!r} (record length mismatch "
                         "or corrupt event)")

    def _header_index(self, buf: np.ndarray, where: int) -> int:
        """Which header line of its event the line at byte `where` should have been."""
        lay = self._ascii
        assert lay is not None
        line = self._line_at(buf, where) - 1
        index = line % (len(lay.names) + lay.record_length)
        return index if index < len(lay.names) else -1


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
