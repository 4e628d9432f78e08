"""WaveDump readers: formats, header variants, streaming, and clear errors for broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis.wavedump import WaveDumpReader, WaveformFileError, read_waveforms
from remote_monitor.analysis.wavedump_writer import write_ascii, write_binary


@pytest.fixture
def samples() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 16384, size=(37, 50)).astype(np.uint16)


def test_ascii_and_binary_read_back_identical_samples(tmp_path: Path, samples: np.ndarray) -> None:
    write_ascii(tmp_path / "wave2.txt", samples, 2, first_event=5)
    write_binary(tmp_path / "wave2.dat", samples, 2, first_event=5)
    write_binary(tmp_path / "raw2.dat", samples, 2, header=False)
    a, wa = read_waveforms(tmp_path / "wave2.txt")
    b, wb = read_waveforms(tmp_path / "wave2.dat")
    c, _ = read_waveforms(tmp_path / "raw2.dat", header=False, record_length=50)
    assert wa == wb == []
    assert np.array_equal(a.samples, samples) and np.array_equal(b.samples, samples)
    assert np.array_equal(c.samples, samples)
    assert list(a.event_numbers) == list(b.event_numbers) == list(range(5, 42))
    assert a.channel == b.channel == 2


def test_streaming_in_small_chunks_equals_one_chunk(tmp_path: Path, samples: np.ndarray) -> None:
    for name, writer in (("wave0.txt", write_ascii), ("wave0.dat", write_binary)):
        writer(tmp_path / name, samples, 0)
        chunks = list(WaveDumpReader(tmp_path / name, chunk_events=4).chunks())
        assert [len(c.samples) for c in chunks] == [4] * 9 + [1]
        assert np.array_equal(np.concatenate([c.samples for c in chunks]), samples)


def test_chunk_buffers_are_reused_only_once_no_chunk_refers_to_them(tmp_path: Path, samples: np.ndarray) -> None:
    """A reader recycles the memory of chunks that are gone (no page faults per read), never of one still held."""
    for name, writer in (("wave0.txt", write_ascii), ("wave0.dat", write_binary)):
        writer(tmp_path / name, samples, 0)
        reader, held, i = WaveDumpReader(tmp_path / name, chunk_events=4), [], 0
        for chunk in reader.chunks():  # (not enumerate: it refers to the last chunk while asking for the next)
            assert np.array_equal(chunk.samples, samples[4 * i: 4 * i + 4])
            assert any(chunk.samples.base is buffer for buffer in reader._buffers)
            if i in (1, 2, 6):
                held.append((i, chunk))  # kept by the consumer: its buffer must stay as it is
            del chunk
            i += 1  # noqa: SIM113 - enumerate would hold the last chunk while the reader reads the next
        assert all(np.array_equal(c.samples, samples[4 * i: 4 * i + 4]) for i, c in held)
        assert len(reader._buffers) == len(held) + 1  # the 7 chunks not held were read into one buffer


def test_runs_of_one_width_with_pulses_of_other_widths_read_back_exactly(tmp_path: Path) -> None:
    """Baseline runs of one width (the fast path) broken by pulses of 1 to 5 digits (the line-by-line path),
    read whole and in chunks that end inside events."""
    rng = np.random.default_rng(5)
    samples = (14178 + rng.integers(-3, 4, size=(40, 260))).astype(np.uint16)
    for e in range(0, 40, 3):
        at = rng.integers(0, 250)
        samples[e, at:at + 8] = rng.choice([9000, 950, 42, 7, 16383], size=8)
    samples[7, -1], samples[8, 0] = 3, 99  # other widths at the very end and start of a record
    write_ascii(tmp_path / "wave2.txt", samples, 2)
    for chunk_events in (1, 3, 40):
        chunks = list(WaveDumpReader(tmp_path / "wave2.txt", chunk_events=chunk_events).chunks())
        assert np.array_equal(np.concatenate([c.samples for c in chunks]), samples)


HEADER_VARIANTS = {
    "compact": "Record Length:{n}\nBoardID:31\nChannel:2\nEvent Number:{e}\nPattern:0x0000\n"
               "Trigger Time Stamp:{t}\nDC offset (DAC):0x1999\n",
    "no pattern, no offset": "Record Length: {n}\nBoardID: 31\nChannel: 2\nEvent Number: {e}\n"
                             "Trigger Time Stamp: {t}\n",
    "x742 extra line": "Record Length: {n}\nBoardID: 31\nChannel: 2\nEvent Number: {e}\nPattern: 0x0000\n"
                       "Trigger Time Stamp: {t}\nDC offset (DAC): 0x1999\nStart Index Cell: 12\n",
}


@pytest.mark.parametrize("variant", HEADER_VARIANTS)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_header_variants_of_wavedump_versions(tmp_path: Path, samples: np.ndarray, variant: str, newline: str) -> None:
    text = "".join(HEADER_VARIANTS[variant].format(n=50, e=i, t=1000 * i) + "".join(f"{v}\n" for v in row)
                   for i, row in enumerate(samples))
    path = tmp_path / "wave2.txt"
    path.write_bytes(text.replace("\n", newline).encode())
    chunk, warnings = read_waveforms(path, chunk_events=8)
    assert warnings == []
    assert np.array_equal(chunk.samples, samples)
    assert list(chunk.trigger_time_tags[:3]) == [0, 1000, 2000]


@pytest.mark.parametrize("suffix", ["txt", "dat"])
def test_truncated_last_event_is_dropped_and_reported(tmp_path: Path, samples: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"wave2.{suffix}"
    (write_ascii if suffix == "txt" else write_binary)(path, samples, 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    chunk, warnings = read_waveforms(path, chunk_events=5)
    assert np.array_equal(chunk.samples, samples[:-1])
    assert len(warnings) == 1 and "truncated" in warnings[0] and ("line" in warnings[0] or "byte" in warnings[0])


def _ascii(tmp_path: Path, samples: np.ndarray) -> tuple[Path, list[bytes]]:
    path = tmp_path / "wave2.txt"
    write_ascii(path, samples, 2)
    return path, path.read_bytes().split(b"\n")


def test_garbage_line_names_file_and_line(tmp_path: Path, samples: np.ndarray) -> None:
    path, lines = _ascii(tmp_path, samples)
    lines[7 + 57 + 3] = b"#N/A"  # a sample line of the second event (line 68)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(WaveformFileError) as err:
        read_waveforms(path)
    assert err.value.where == "line 68" and str(path) in str(err.value) and "#N/A" in err.value.reason


def test_record_length_mismatch_is_an_error(tmp_path: Path, samples: np.ndarray) -> None:
    path, lines = _ascii(tmp_path, samples)
    del lines[7 + 10]  # the first event is one sample short: the next header appears among the samples
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(WaveformFileError, match="line 57.*record length"):
        read_waveforms(path)
    with pytest.raises(WaveformFileError, match="record length 50 != expected 64"):
        read_waveforms(tmp_path / "wave2.txt", record_length=64)


def test_empty_and_non_wavedump_files(tmp_path: Path) -> None:
    empty = tmp_path / "wave2.txt"
    empty.write_bytes(b"")
    with pytest.raises(WaveformFileError, match="empty file"):
        read_waveforms(empty)
    other = tmp_path / "wave3.txt"
    other.write_text("hello world\nthis is not a digitizer file\n")
    with pytest.raises(WaveformFileError, match="wave3.txt: line 1"):
        read_waveforms(other)


def test_binary_with_corrupt_event_size(tmp_path: Path, samples: np.ndarray) -> None:
    path = tmp_path / "wave2.dat"
    write_binary(path, samples, 2)
    data = bytearray(path.read_bytes())
    event = 24 + 2 * 50
    data[3 * event: 3 * event + 4] = (999).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(WaveformFileError, match=f"byte {3 * event}: event size field 999"):
        read_waveforms(path)
    with pytest.raises(WaveformFileError, match="needs record_length"):
        WaveDumpReader(tmp_path / "raw.dat", header=False)


@pytest.mark.parametrize("extra", [("unix_time",), ("string_of_time",), ("start_index_cell",),
                                   ("unix_time", "string_of_time")])
def test_extra_header_lines_of_stand_builds(tmp_path: Path, samples: np.ndarray, extra: tuple[str, ...]) -> None:
    path = tmp_path / "wave2.txt"
    write_ascii(path, samples, 2, board_id=31, first_event=1000, extra_header=extra)
    assert path.read_bytes().startswith(b"Record Length: 50\nBoardID: 31\n")
    chunk, warnings = read_waveforms(path, chunk_events=6)
    assert warnings == [] and np.array_equal(chunk.samples, samples)
    assert list(chunk.event_numbers) == list(range(1000, 1037))


@pytest.mark.parametrize("sample_bytes", [1, 2])
def test_binary_8_and_16_bit_samples(tmp_path: Path, samples: np.ndarray, sample_bytes: int) -> None:
    values = samples % 256 if sample_bytes == 1 else samples
    path = tmp_path / "wave2.dat"
    write_binary(path, values, 2, first_event=77, sample_bytes=sample_bytes)
    assert path.stat().st_size == 37 * (24 + 50 * sample_bytes)
    chunk, _ = read_waveforms(path, sample_bytes=sample_bytes, adc_bits=8 * sample_bytes, chunk_events=5)
    assert np.array_equal(chunk.samples, values) and chunk.event_numbers[0] == 77


def test_ascii_16_bit_samples_need_adc_bits_16(tmp_path: Path) -> None:
    path = tmp_path / "wave2.txt"
    write_ascii(path, np.full((3, 10), 65535, dtype=np.uint16), 2)
    assert read_waveforms(path, adc_bits=16)[0].samples.max() == 65535
    with pytest.raises(WaveformFileError, match=r"line 8: ADC sample 65535 above the 14-bit range"):
        read_waveforms(path)


@pytest.mark.parametrize("value", [16384, 70000, 99999999999999999999])
def test_ascii_sample_above_14_bit_is_an_error_not_wrapped(tmp_path: Path, samples: np.ndarray, value: int) -> None:
    path, lines = _ascii(tmp_path, samples)
    lines[7 + 50 + 7 + 4] = str(value).encode()  # sample 4 of the second event: line 69
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(WaveformFileError) as err:
        read_waveforms(path)
    assert err.value.where == "line 69" and "above the 14-bit range" in err.value.reason


def test_binary_sample_above_14_bit_is_an_error(tmp_path: Path, samples: np.ndarray) -> None:
    bad = samples.copy()
    bad[2, 3] = 20000
    path = tmp_path / "wave2.dat"
    write_binary(path, bad, 2)
    with pytest.raises(WaveformFileError, match=f"byte {2 * 124 + 24 + 3 * 2}: ADC sample 20000 above"):
        read_waveforms(path)


def test_record_length_changing_mid_file_names_the_line(tmp_path: Path, samples: np.ndarray) -> None:
    path = tmp_path / "wave2.txt"
    write_ascii(path, samples[:10], 2)
    write_ascii(path, np.zeros((2, 60), dtype=np.uint16), 2, first_event=10, mode="ab")
    with pytest.raises(WaveformFileError) as err:
        read_waveforms(path, chunk_events=4)
    assert err.value.where == f"line {10 * 57 + 1}" and "record length changes from 50 to '60'" in err.value.reason
    binary = tmp_path / "wave2.dat"
    write_binary(binary, samples[:10], 2)
    write_binary(binary, np.zeros((2, 60), dtype=np.uint16), 2, first_event=10, mode="ab")
    with pytest.raises(WaveformFileError, match=f"byte {10 * 124}: event size field 144 != 124"):
        read_waveforms(binary)


def test_reading_on_from_the_offset_of_a_growing_file(tmp_path: Path, samples: np.ndarray) -> None:
    for suffix, writer in (("txt", write_ascii), ("dat", write_binary)):
        path = tmp_path / f"wave2.{suffix}"
        writer(tmp_path / f"full.{suffix}", samples, 2)
        data = (tmp_path / f"full.{suffix}").read_bytes()
        reader = WaveDumpReader(path)
        got = []
        for cut in (0, 10, 700, 701, 2500, len(data) - 1, len(data)):
            path.write_bytes(data[:cut])
            got += [c.samples for c in reader.read_new()]
            assert reader.warnings == []
        assert np.array_equal(np.concatenate(got), samples)


def test_header_lines_spelled_unlike_the_first_events_are_read_by_label(tmp_path: Path, samples: np.ndarray) -> None:
    """Later events whose header lines differ from the first event's in case, spacing, CR or digits of the
    number (the template fast path does not apply) are read by their label; a foreign label is an error."""
    path, lines = _ascii(tmp_path, samples)
    second = 57  # first line of the second event
    assert lines[second].startswith(b"Record Length")
    lines[second] = b"record   LENGTH :  50\r"
    lines[second + 3] = lines[second + 3].replace(b"Event Number:", b"EVENT number :\t")
    path.write_bytes(b"\n".join(lines))
    chunk, _ = read_waveforms(path, chunk_events=3)
    assert np.array_equal(chunk.samples, samples) and np.array_equal(chunk.event_numbers, np.arange(len(samples)))
    lines[second + 1] = b"BoardXD: 31"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(WaveformFileError, match=f"line {second + 2}: expected header 'BoardID'"):
        read_waveforms(path)
