"""Where the SPE fit starts and which bins it fits, read off the histogram alone: the pedestal's centre and
width, the occupancy from the pedestal's share of the events, the 1-PE peak's position (`start_values`), and the
fit range in whole steps of bins, so that similar points share one model (`fit_range`).
"""

from __future__ import annotations

import math

import numpy as np

from remote_monitor.analysis.histogram import Histogram
from remote_monitor.analysis.spe_response import NOMINAL_SHAPE

__all__ = ["fit_range", "start_values"]

PEAK_RISE = 5.0  # the 1-PE peak's start: a rise of this many standard deviations above the valley before it
BIN_STEP = 64  # the fit range is a whole number of BIN_STEP bins, so that few models (graphs) are built
LO_STEP = 8  # ... and starts on a multiple of LO_STEP bins
PEDESTAL_SIGMAS = 5.0  # the fit range starts this many pedestal widths below the pedestal (`fit_range`)


def start_values(hist: Histogram) -> dict[str, float]:
    """Starting point from the histogram: pedestal position and width, occupancy from the pedestal's share of the
    events, the 1-PE peak's position (or the mean charge per photoelectron where no peak shows)."""
    x, c = hist.centres, hist.counts.astype(float)
    total = c.sum()
    i_peak = int(np.argmax(c * (np.abs(x) < 1.0))) if np.any(np.abs(x) < 1.0) else int(np.argmax(c))
    bin_width = float(hist.edges[1] - hist.edges[0])
    q0 = _pedestal_centre(x, c, i_peak, max(_left_width(x, c, float(x[i_peak])), 1.5 * bin_width))
    s0 = _left_width(x, c, q0)
    pedestal = min(max(2 * _below(hist.edges, c, q0, s0) / total, 0.02), 0.995)
    mu = max(-math.log(pedestal), 0.02)
    mean = float((c * (x - q0)).sum() / total)
    q1 = 1.1 * mean / mu
    above = x > q0 + 3 * s0
    if mu < 1.0 and c[above].sum() > 50:  # a visible 1-PE peak: its position is the better start
        smooth = np.convolve(c, np.ones(5) / 5, mode="same")
        peak = _peak_beyond_valley(x, smooth, q0 + s0)
        if peak is None:  # no valley (the peak a shoulder of the pedestal): the highest point above 3 widths
            peak = float(x[above][np.argmax(smooth[above])])
        q1 = 1.1 * (peak - q0)
    q1 = min(max(q1, 3 * s0, 0.1), 40.0)
    return {"mu": mu, "q0": q0, "sigma0": s0, "q1": q1, "r1": 0.33, "w": 0.15, "u": 0.35, "k_u": 1.5, **NOMINAL_SHAPE}


def _pedestal_centre(x: np.ndarray, c: np.ndarray, i_peak: int, width: float) -> float:
    """The pedestal's centre: the vertex of a parabola fitted to the log counts within `width` (a first guess of
    the pedestal's width) of its highest bin (exact for a Gaussian); that bin's centre where fewer than three
    bins are there or the vertex lies further than `width` (or the parabola opens upwards)."""
    near = (np.abs(x - x[i_peak]) <= width) & (c > 0)
    if near.sum() < 3:
        return float(x[i_peak])
    a, b, _ = np.polyfit(x[near] - x[i_peak], np.log(c[near]), 2, w=np.sqrt(c[near]))
    shift = -b / (2 * a) if a < 0 else math.inf
    return float(x[i_peak] + shift) if abs(shift) <= width else float(x[i_peak])


def _left_width(x: np.ndarray, c: np.ndarray, q0: float) -> float:
    """The pedestal's width from its left side (photoelectrons lie right of it), within 0.02-2 pC."""
    left = x < q0
    left_n = c[left].sum()
    s0 = math.sqrt(float((c[left] * (x[left] - q0) ** 2).sum() / left_n)) if left_n > 0 else 0.2
    return min(max(s0, 0.02), 2.0)


def _below(edges: np.ndarray, c: np.ndarray, q0: float, s0: float) -> float:
    """Events below the pedestal's centre: whole bins, and the Gaussian share of the bin that holds q0 (its
    highest bin's centre was taken before: with the centre near a bin edge, the pedestal's share of the events
    read 0.77 or 0.98 for 0.90, and the start's occupancy 0.23 or 0.02 for 0.1 PE)."""
    from scipy.special import ndtr

    k = int(np.clip(np.searchsorted(edges, q0) - 1, 0, len(c) - 1))
    lo, hi = (ndtr((e - q0) / s0) for e in (edges[k], edges[k + 1]))
    share = (0.5 - lo) / (hi - lo) if hi > lo else 0.5
    return float(c[:k].sum() + share * c[k])


def _peak_beyond_valley(x: np.ndarray, smooth: np.ndarray, begin: float) -> float | None:
    """Position of the 1-PE peak: the highest point of the spectrum (`smooth`: means of 5 bins) beyond the valley
    that follows the pedestal (the first minimum from `begin` on); None when nothing there rises PEAK_RISE
    standard deviations above the valley. The highest point above 3 pedestal widths alone can be the pedestal's
    falling edge: at 0.1 PE, 2e7 and 0.3 mV in 4 of 6 draws; Q1 then started at a sixth of the truth, and on a
    600k-event point the fit ended at 15 times the gain."""
    i = int(np.searchsorted(x, begin))
    while i + 1 < len(smooth) and smooth[i + 1] <= smooth[i]:
        i += 1
    if i + 1 >= len(smooth):
        return None
    top = i + int(np.argmax(smooth[i:]))
    rise = smooth[top] - smooth[i]
    return float(x[top]) if rise > PEAK_RISE * math.sqrt(max(smooth[i], 1.0) / 5) else None


def fit_range(hist: Histogram, start: dict[str, float]) -> tuple[int, int]:
    """Bins [lo, hi) that hold the data: from PEDESTAL_SIGMAS pedestal widths below the pedestal (down to
    LO_STEP bins lower) to 30 % past the 99.99 % quantile, in whole BIN_STEPs (so that similar points share one
    model and its traced graphs). Not lower: a pulse in the baseline samples puts an event far below the
    pedestal (-L/B of its charge), where the Gaussian pedestal gives it no probability; a few hundred of those
    in a 600k-event point widened the fitted pedestal and moved the gain by 1-2 % (either way)."""
    edges, c = hist.edges, hist.counts
    lo = int(np.searchsorted(edges, start["q0"] - PEDESTAL_SIGMAS * start["sigma0"])) - 1
    lo = max(0, (lo // LO_STEP) * LO_STEP)
    cumulative = np.cumsum(c)
    end = int(np.searchsorted(cumulative, 0.9999 * cumulative[-1])) + 1
    end = int(np.searchsorted(edges, edges[end] + 0.3 * (edges[end] - start["q0"])))
    hi = min(len(c), lo + BIN_STEP * math.ceil((end - lo) / BIN_STEP))
    return lo, hi
