"""Fuzzing both readers: whatever the bytes, a reader returns events or raises WaveformFileError naming the
file and a position; never another exception, never a hang (bounded examples, per-example deadline)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remote_monitor.analysis.wavedump import WaveDumpReader, WaveformFileError
from remote_monitor.analysis.wavedump_writer import ascii_bytes, binary_bytes

_SAMPLES = np.random.default_rng(2).integers(0, 16384, size=(4, 12)).astype(np.uint16)
VALID = {"txt": ascii_bytes(_SAMPLES, 2, first_event=3, extra_header=("unix_time",)),
         "dat": binary_bytes(_SAMPLES, 2, first_event=3)}
INTERESTING = [b"\n", b"\r\n", b":", b" ", b"Record Length: 99999999999\n", b"Record Length: 0\n",
               b"Event Number: -1\n", b"99999999999999999999999\n", b"\x00", b"\xff\xff\xff\x7f", b"16384\n",
               b"Record Length: 12\n"]

edits = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "cut", "duplicate"]),
                           st.floats(0, 1), st.integers(0, 255), st.sampled_from(INTERESTING)), max_size=6)


def _mutate(data: bytes, ops: list[tuple[str, float, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, where, byte, text in ops:
        at = int(where * len(buf))
        if op == "flip" and buf:
            buf[min(at, len(buf) - 1)] = byte
        elif op == "insert":
            buf[at:at] = text
        elif op == "delete":
            del buf[at: at + byte % 16 + 1]
        elif op == "cut":
            del buf[at:]
        elif op == "duplicate":
            buf[at:at] = buf[at: at + byte * 4]
    return bytes(buf)


def _read_all(path: Path, **kwargs: object) -> None:
    reader = WaveDumpReader(path, chunk_events=3, **kwargs)  # type: ignore[arg-type]
    for chunk in reader.chunks():
        assert chunk.samples.shape[1] == reader.record_length


def _check(data: bytes, suffix: str, **kwargs: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"wave2.{suffix}"
        path.write_bytes(data)
        error = None
        try:
            _read_all(path, **kwargs)
        except WaveformFileError as exc:
            error = exc
        assert error is None or (str(path) in str(error) and error.where)


FUZZ = settings(max_examples=150, deadline=30000,  # a hang, not a slow shared machine (5 s failed under load 12)
                suppress_health_check=[HealthCheck.too_slow])
for _fmt, _data in VALID.items():  # load the compiled parsers before the deadline applies
    _check(_data, _fmt)


@FUZZ
@given(fmt=st.sampled_from(["txt", "dat"]), ops=edits)
def test_mutated_files_give_events_or_a_waveform_file_error(fmt: str, ops: list) -> None:
    _check(_mutate(VALID[fmt], ops), fmt)


@FUZZ
@given(fmt=st.sampled_from(["txt", "dat"]), data=st.binary(max_size=600), sample_bytes=st.sampled_from([1, 2]))
def test_random_bytes_give_events_or_a_waveform_file_error(fmt: str, data: bytes, sample_bytes: int) -> None:
    _check(data, fmt, sample_bytes=sample_bytes)
