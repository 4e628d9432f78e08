"""Charge histograms filled with a numba kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit


@dataclass
class Histogram:
    """Counts in bins with the given edges (len(edges) == len(counts) + 1)."""

    edges: np.ndarray
    counts: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def to_dict(self) -> dict[str, Any]:
        return {"edges": [round(float(e), 6) for e in self.edges], "counts": [int(c) for c in self.counts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        return cls(np.asarray(data["edges"], dtype=float), np.asarray(data["counts"], dtype=np.int64))

    @classmethod
    def empty(cls, n_bins: int, lo: float, hi: float) -> Histogram:
        """No counts yet, n_bins equal bins on [lo, hi)."""
        if n_bins < 1 or not hi > lo:
            raise ValueError(f"histogram needs n_bins >= 1 and hi > lo, got {n_bins}, {lo}, {hi}")
        return cls(np.linspace(lo, hi, n_bins + 1), np.zeros(n_bins, dtype=np.int64))

    def fill(self, values: np.ndarray) -> None:
        """Add values (running histogram of a point being acquired); same binning rule as fill_histogram."""
        _fill(np.ascontiguousarray(values, dtype=np.float64), len(self.counts), float(self.edges[0]),
              float(self.edges[-1]), self.counts)


@njit(cache=True, nogil=True)
def _fill(values, n_bins, lo, hi, counts):  # pragma: no cover - compiled
    scale = n_bins / (hi - lo)
    for v in values:
        if v >= lo and v < hi:  # NaN fails both comparisons
            i = int((v - lo) * scale)
            if i >= n_bins:
                i = n_bins - 1
            counts[i] += 1


def fill_histogram(values: np.ndarray, n_bins: int, lo: float, hi: float) -> Histogram:
    """Histogram of values in n_bins equal bins on [lo, hi); values outside and NaN are ignored."""
    hist = Histogram.empty(n_bins, lo, hi)
    hist.fill(values)
    return hist
