"""Is the laser pulse inside the charge window? The PMT-minus-trigger time of each event's first pulse over
threshold peaks where the laser photoelectrons arrive. A charge window set for another stand's delay (or a
changed cable) integrates noise only, and the point reads as "no light" although the PMT sees the laser: the
point then says where the pulses are and which setting places the window there."""

from __future__ import annotations

import numpy as np

from remote_monitor.analysis.histogram import Histogram

DELAY_RANGE_NS = (-2048.0, 2048.0)  # PMT minus trigger: a 1024-sample record either way
DELAY_BIN_NS = 4.0
PEAK_EVENTS = 50  # at least this many events in the peak bin over the level it stands on ...
PEAK_OVER_LEVEL = 2.0  # ... at least this many times that level ...
PEAK_SIGMAS = 5.0  # ... and this many Poisson errors of it above it
SIDE_BINS = (3, 12)  # the level: the higher median of the bins this far from the peak on either side (the laser
# peak's own spread, TTS and late pulses, stays within 2 bins). Noise crossings and dark pulses lie under the peak:
# at 1 mV noise each event's first pulse over 3 mV is a noise crossing in one event of three, about 1100 events
# per bin against a laser peak of 4400-7400 (0.03 PE, 400k events), which a peak 10 times the median missed.
_WARNING_PREFIX = "charge window misses the laser pulses"
RECORD_AFTER_LASER_NS = 60.0  # less record after the laser pulses cuts their charge: a pulse of the simulated
# stand's shape (rise 7 ns, fall 9.5 ns) loses 0.2 % of its charge 60 ns after its 50 % time, 1.6 % at 40 ns
LEAD_NS = 25.0  # a fixed window moved onto the laser starts this long before the pulses (the stand's: 27 ns)


def delay_histogram() -> Histogram:
    """An empty histogram of PMT-minus-trigger times (ns)."""
    lo, hi = DELAY_RANGE_NS
    return Histogram.empty(int((hi - lo) / DELAY_BIN_NS), lo, hi)


def _levels(counts: np.ndarray) -> np.ndarray:
    """Per bin, the level it stands on: the higher of the medians of the bins SIDE_BINS away on its left and on
    its right (a slope or a step in the times is no peak then); NaN where either side lies outside the record
    (the occupied bins), so a pile-up at the record's start is no peak either."""
    near, far = SIDE_BINS
    levels = np.full(len(counts), np.nan)
    occupied = np.flatnonzero(counts)
    if len(occupied) == 0:
        return levels
    first, last = int(occupied[0]), int(occupied[-1])
    for i in range(first + near, last - near + 1):
        left = counts[max(i - far, first):i - near + 1]
        right = counts[i + near:min(i + far, last) + 1]
        levels[i] = max(float(np.median(left)), float(np.median(right)))
    return levels


def laser_delay_ns(delays: Histogram) -> float | None:
    """Centre of the laser peak of the PMT-minus-trigger times, or None when no bin stands out (no light, too
    few events): the bin with the most events over its level (`_levels`) that has PEAK_EVENTS over it,
    PEAK_OVER_LEVEL times it and PEAK_SIGMAS Poisson errors of it; with its neighbours, weighted by their events
    over that level."""
    counts = delays.counts.astype(float)
    level = _levels(counts)
    excess = counts - level
    standing = (excess >= PEAK_EVENTS) & (counts >= PEAK_OVER_LEVEL * level) & (
        excess >= PEAK_SIGMAS * np.sqrt(np.maximum(level, 1.0)))
    if not standing.any():
        return None
    i = int(np.argmax(np.where(standing, excess, -np.inf)))
    near = slice(i - 1, i + 2)
    return float(np.average(delays.centres[near], weights=np.maximum(counts[near] - level[i], 0.0)))


def window_warning(delays: Histogram, window_ns: tuple[float, float], setting: str) -> str | None:
    """A warning when the laser peak lies outside the window [lo, hi] ns after the trigger (None: inside, or
    no peak to judge by); `setting` names the configuration key that moves the window."""
    delay = laser_delay_ns(delays)
    lo, hi = window_ns
    if delay is None or lo <= delay <= hi:
        return None
    return (f"{_WARNING_PREFIX}: the PMT pulses arrive {delay:.0f} ns after the trigger, the charge window is "
            f"{lo:.0f}-{hi:.0f} ns; set [analysis] {setting}")


def record_end_warning(window_ns: tuple[float, float], measured_ns: tuple[float, float],
                       delay_ns: float | None) -> str | None:
    """A warning when the end of the records cut the charge window (window_ns as configured, measured_ns as
    measured) less than RECORD_AFTER_LASER_NS after the laser pulses start: their charge is then partly lost."""
    if delay_ns is None or measured_ns[1] >= window_ns[1] or measured_ns[1] - delay_ns >= RECORD_AFTER_LASER_NS:
        return None
    where = (f"{measured_ns[1] - delay_ns:.0f} ns after the laser pulses start" if measured_ns[1] > delay_ns
             else "before the laser pulses")
    return (f"charge window cut by the end of the records {where} (they arrive {delay_ns:.0f} ns after the "
            f"trigger, the window {window_ns[0]:.0f}-{window_ns[1]:.0f} ns is measured to {measured_ns[1]:.0f} ns): "
            "part of their charge is lost and the gain reads low; a longer record or an earlier trigger in it "
            "keeps it")


def window_miss(warnings: list[str]) -> str | None:
    """The window warning among a point's warnings (what window_warning wrote), or None."""
    return next((w for w in warnings if w.startswith(_WARNING_PREFIX)), None)


def delay_in_window(warnings: list[str], delay_ns: float | None) -> float | None:
    """The laser delay where the charge window holds the laser pulses, None where it misses them (a point's
    warnings hold `window_miss`'s: its charges cannot show that light) or no peak was found."""
    return None if window_miss(warnings) else delay_ns


def window_on_laser(window_ns: tuple[float, float], delay_ns: float, fixed: bool) -> tuple[float, float]:
    """The window [lo, hi] ns after the trigger, of the same length, moved onto laser pulses that start delay_ns
    after the trigger: a fixed charge window starts LEAD_NS before them, a leading-edge time selection is
    centred on them."""
    lo, hi = window_ns
    start = delay_ns - LEAD_NS if fixed else delay_ns - (hi - lo) / 2
    return start, start + (hi - lo)


def moved_warning(window_ns: tuple[float, float], moved_ns: tuple[float, float], delay_ns: float,
                  setting: str) -> str:
    """What a point whose charge window was moved onto the laser pulses says (not a window_miss); `setting`
    names the configuration key that places the window there."""
    value = f"{moved_ns[0]:.0f}" if setting == "fixed_window_start_ns" else f"[{moved_ns[0]:.1f}, {moved_ns[1]:.1f}]"
    return (f"charge window moved onto the laser pulses: they arrive {delay_ns:.0f} ns after the trigger, the "
            f"configured window {window_ns[0]:.0f}-{window_ns[1]:.0f} ns misses them; the charges are from "
            f"{moved_ns[0]:.0f}-{moved_ns[1]:.0f} ns (to keep it there: [analysis] {setting} = {value}; "
            "move_window_to_laser = false keeps the configured window)")
