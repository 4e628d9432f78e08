"""numba kernels that parse WaveDump ASCII bytes by offset: one pass, header checks and ADC range included."""

from __future__ import annotations

import numpy as np
from numba import njit

OK, INCOMPLETE, BAD_SAMPLE, BAD_HEADER, OUT_OF_RANGE, LENGTH_CHANGED = 0, 1, 2, 3, 4, 5
_MAX_DIGITS = 18
_U = np.uint64
_NEWLINES, _ONES, _HIGHS, _ZEROS = _U(0x0A0A0A0A0A0A0A0A), _U(0x0101010101010101), _U(0x8080808080808080), \
    _U(0x3030303030303030)
_OVER9, _NIBBLES, _ONE, _SEVEN, _EIGHT = _U(0x7676767676767676), _U(0x0F0F0F0F0F0F0F0F), _U(1), _U(7), _U(8)
_SIXTEEN, _THIRTYTWO, _56 = _U(16), _U(32), _U(56)
_MUL1, _MUL2, _MUL4 = _U(10 * 256 + 1), _U(100 * 65536 + 1), _U(10000 * (1 << 32) + 1)
_MASK2, _MASK4 = _U(0x00FF00FF00FF00FF), _U(0x0000FFFF0000FFFF)


def word_view(data: bytes | np.ndarray) -> np.ndarray:
    """words[k, i]: the 8 bytes of data starting at byte 8 * i + k, as a little-endian uint64 (no copy)."""
    cols = max(0, (len(data) - 7) // 8)
    if cols == 0:
        return np.zeros((8, 0), dtype="<u8")
    return np.ndarray((8, cols), dtype="<u8", buffer=data, strides=(1, 8))


@njit(cache=True, nogil=True)
def line_info(buf, start, end):  # pragma: no cover - compiled
    """(label hash, number) of a header line buf[start:end].

    The label is the text before the first ':' (case, spaces, tabs and CR ignored); the number is the
    first run of digits after ':' (-1 if none). A line without ':' has label -1."""
    label, i = 0, start
    while i < end and buf[i] != 58:  # ':'
        c = buf[i]
        if c != 32 and c != 9 and c != 13:  # noqa: PLR1714 - a set here is built per byte by numba
            label = label * 31 + (c | 32)  # wraps around: a hash
        i += 1
    if i >= end:
        return -1, -1
    return label, _number_after(buf, i + 1, end)


@njit(cache=True, nogil=True)
def _number_after(buf, i, end):  # pragma: no cover - compiled
    """The first run of digits in buf[i:end] after spaces and tabs (-1 if none)."""
    while i < end and (buf[i] == 32 or buf[i] == 9):
        i += 1
    value, digits = -1, 0
    while i < end and 48 <= buf[i] <= 57 and digits < _MAX_DIGITS:
        value = (0 if value < 0 else value * 10) + (buf[i] - 48)
        digits += 1
        i += 1
    return value


@njit(cache=True, nogil=True)
def _same_bytes(buf, pos, line, length):  # pragma: no cover - compiled
    """How many of the first `length` bytes of `line` buf repeats from pos on."""
    k, n = 0, buf.shape[0]
    while k < length and pos + k < n and buf[pos + k] == line[k]:
        k += 1
    return k


@njit(cache=True, nogil=True, inline="always")
def _digits_value(w, shift):  # pragma: no cover - compiled
    """The number written by the digits in the low bytes of the little-endian word w; shift = 8 x (8 - digits)
    moves them to the top, where three multiply-adds combine pairs, quadruples and octets of digits (SWAR)."""
    v = (w << shift) & _NIBBLES
    v = (v * _MUL1) >> _EIGHT
    v = ((v & _MASK2) * _MUL2) >> _SIXTEEN
    return ((v & _MASK4) * _MUL4) >> _THIRTYTWO


@njit(cache=True, nogil=True)
def _first_width(buf, pos):  # pragma: no cover - compiled
    """Digits of the sample line at pos (1..5), 0 if it is not plain digits and LF within 6 bytes."""
    for k in range(6):
        if pos + k >= buf.shape[0]:
            return 0
        c = buf[pos + k]
        if c == 10:
            return k  # 0: an empty line
        if c < 48 or c > 57:
            return 0
    return 0


@njit(cache=True, nogil=True)
def _fixed_width_run(buf, words, pos, s, record_length, max_adc, out):  # pragma: no cover - compiled
    """Parse sample lines from pos (sample s on) while they have the width of the first one (digits + LF) and
    stay within max_adc: their positions follow from that width, so each sample is decoded (SWAR) without
    waiting for the one before. Returns (next sample, its byte): where a line of another width, a CR, a
    non-digit or an out-of-range value starts (the caller parses that line one by one and names problems)."""
    width = _first_width(buf, pos)
    if width == 0:
        return s, pos
    stride = width + 1
    last = min(record_length, s + max(0, (8 * words.shape[1] - 1 - pos) // stride + 1))  # words[p & 7, p >> 3]
    shift = (_EIGHT - np.uint64(width)) * _EIGHT
    below = (_ONE << (np.uint64(width) * _EIGHT)) - _ONE  # the digit bytes
    newline_at = np.uint64(width) * _EIGHT
    for k in range(s, last):
        w = words[pos & 7, pos >> 3]
        d = w - _ZEROS
        v = _digits_value(w, shift)
        if ((d + _OVER9) | d) & _HIGHS & below or ((w >> newline_at) & _U(0xFF)) != 10 or v > max_adc:
            return k, pos
        out[k] = v
        pos += stride
    return last, pos


@njit(cache=True, nogil=True)
def parse_events(buf, words, pos, labels, template, template_lengths, length_line, number_line, ttt_line,
                 record_length, max_adc, samples, numbers, tags, starts):  # pragma: no cover - compiled
    """Parse whole events from buf[pos:] into samples/numbers/tags/starts (at most len(numbers) events).

    Every header line must carry the label of the first event's line; the record-length line its value.
    The first event's header lines (`header_template`) are the fast path: a line that repeats its
    template is taken as it is, one that repeats its label up to ':' has only its number read; any other
    line is checked by its label hash (case and spaces ignored).
    Returns (events parsed, byte after the last complete event, status, byte where the problem starts).
    An event cut by the end of buf is not counted (status INCOMPLETE): the caller reads on from there."""
    n = buf.shape[0]
    n_words = words.shape[1]
    max_adc = np.uint64(max_adc)
    n_header = labels.shape[0]
    for ev in range(numbers.shape[0]):
        ev_start = pos
        if pos >= n:
            return ev, ev_start, OK, 0
        starts[ev] = pos
        for h in range(n_header):
            line_length, label_length = template_lengths[h, 0], template_lengths[h, 1]
            same = _same_bytes(buf, pos, template[h], line_length)
            if same == line_length and h != number_line and h != ttt_line:  # noqa: PLR1714 - numba
                pos += line_length  # the first event's line again (its record length included)
                continue
            end = pos + min(same, line_length - 1)  # no LF before it (the template line ends with its LF)
            while end < n and buf[end] != 10:
                end += 1
            if end >= n:
                return ev, ev_start, INCOMPLETE, ev_start
            if same >= label_length:
                value = _number_after(buf, pos + label_length, end)
            else:
                label, value = line_info(buf, pos, end)
                if label != labels[h]:
                    return ev, ev_start, BAD_HEADER, pos
            if h == length_line and value != record_length:
                return ev, ev_start, LENGTH_CHANGED, pos
            if h == number_line:
                numbers[ev] = value
            if h == ttt_line:
                tags[ev] = value
            pos = end + 1
        s = 0
        while s < record_length:
            s, pos = _fixed_width_run(buf, words, pos, s, record_length, max_adc, samples[ev])
            if s == record_length:
                break
            if (pos >> 3) < n_words:  # one sample of another width: 8 bytes at once, digits then LF (SWAR)
                w = words[pos & 7, pos >> 3]
                x = w ^ _NEWLINES
                m = (x - _ONES) & ~x & _HIGHS
                low = m & (~m + _ONE)  # lowest byte that is a newline (its high bit)
                below = (low >> _SEVEN) - _ONE  # 0xFF in each byte before the newline
                width = ((below & _ONES) * _ONES) >> _56
                d = w - _ZEROS
                bad = ((d + _OVER9) | d) & _HIGHS & below
                if m != 0 and bad == 0 and 0 < width < 6:
                    v = _digits_value(w, (_EIGHT - width) * _EIGHT)
                    if v > max_adc:
                        return ev, ev_start, OUT_OF_RANGE, pos
                    samples[ev, s] = v
                    pos += np.int64(width) + 1
                    s += 1
                    continue
            line_start = pos
            while pos < n and buf[pos] == 32:
                pos += 1
            value = 0
            digits = 0
            while pos < n:
                c = buf[pos]
                if c < 48 or c > 57:
                    break
                if digits < _MAX_DIGITS:
                    value = value * 10 + (c - 48)
                digits += 1
                pos += 1
            while pos < n and (buf[pos] == 32 or buf[pos] == 13):
                pos += 1
            if pos >= n:
                return ev, ev_start, INCOMPLETE, ev_start
            if buf[pos] != 10 or digits == 0:
                return ev, ev_start, BAD_SAMPLE, line_start
            if value > max_adc:
                return ev, ev_start, OUT_OF_RANGE, line_start
            samples[ev, s] = value
            pos += 1
            s += 1
    return numbers.shape[0], pos, OK, 0


def header_template(names: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The first event's header lines for `parse_events`' fast path: the bytes of each line with its LF (rows,
    zero-padded) and per line (length with LF, length up to and including the first ':')."""
    template = np.zeros((len(names), max((len(n) + 1 for n in names), default=1)), dtype=np.uint8)
    lengths = np.zeros((len(names), 2), dtype=np.int64)
    for h, name in enumerate(names):
        template[h, :len(name) + 1] = np.frombuffer(name + b"\n", dtype=np.uint8)
        lengths[h] = len(name) + 1, name.index(b":") + 1
    return template, lengths


def header_layout(head: bytes) -> tuple[list[bytes], np.ndarray] | None:
    """Header lines of the first event (up to the first sample line) and their label hashes.

    None if head ends before the first sample line. Lines are returned without the line end."""
    lines: list[bytes] = []
    for line in head.split(b"\n")[:-1]:
        text = line.strip()
        if text.isdigit():
            arr = np.frombuffer(b"\n".join(lines) + b"\n", dtype=np.uint8)
            hashes, pos = [], 0
            for item in lines:
                hashes.append(line_info(arr, pos, pos + len(item))[0])
                pos += len(item) + 1
            return lines, np.array(hashes, dtype=np.int64)
        lines.append(line)
    return None
