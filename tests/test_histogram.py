"""The numba histogram agrees with numpy's, ignores NaN and out-of-range values, and round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from remote_monitor.analysis.histogram import Histogram, fill_histogram


def test_matches_numpy_histogram_and_ignores_nan_and_outside() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(1.0, 3.0, 100_000), [np.nan, np.inf, -np.inf, 25.0, -3.0]])
    hist = fill_histogram(values, 560, -3.0, 25.0)
    finite = values[np.isfinite(values) & (values < 25.0)]
    expected, edges = np.histogram(finite, bins=560, range=(-3.0, 25.0))
    assert np.array_equal(hist.counts, expected)
    assert np.allclose(hist.edges, edges)
    assert hist.total == int(expected.sum())
    assert Histogram.from_dict(hist.to_dict()).counts.tolist() == hist.counts.tolist()


def test_bad_binning_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="hi > lo"):
        fill_histogram(np.zeros(3), 10, 1.0, 1.0)


def test_running_histogram_filled_in_pieces_equals_one_fill() -> None:
    values = np.random.default_rng(4).normal(2.0, 4.0, 50_000)
    running = Histogram.empty(560, -3.0, 25.0)
    for piece in np.array_split(values, 7):
        running.fill(piece)
    assert np.array_equal(running.counts, fill_histogram(values, 560, -3.0, 25.0).counts)
    assert running.total == fill_histogram(values, 560, -3.0, 25.0).total > 0
