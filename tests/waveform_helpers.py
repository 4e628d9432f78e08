"""Hand-made digitiser rows shared by the tests of the pulse timing."""

from __future__ import annotations

import numpy as np

from remote_monitor.analysis.units import MV_PER_ADC


def trigger_row(n_samples: int, at: float) -> np.ndarray:
    """ADC row of a positive trigger pulse on a baseline of 800 counts: a linear edge from 0 to 800 mV over two
    samples (half height at sample `at`), 20 samples long."""
    s = np.arange(n_samples, dtype=float)
    return 800 + np.clip((s - at + 1) / 2, 0, 1) * (s < at + 20) * 800 / MV_PER_ADC
