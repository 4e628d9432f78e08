"""The result of an SPE fit (JSON-safe dict for the store and the report) and shared fit-quality helpers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from remote_monitor.analysis.histogram import Histogram

# Q1 below this many pedestal widths: the 1-PE peak has no valley of its own (no peak-to-valley) and the gain rests
# on the model's shape alone: 0.5e7 at 1 mV noise (Q1 1.6-1.7 widths) read -4.5 ... +13 % with errors of 0.2-1 % in
# `bench_gain.py` (2026-12-01)
SEPARATED_Q1 = 2.0
NO_SIGNAL_MU = 0.01  # a fitted occupancy below this: no photoelectrons (a dead point or no light)

# Parameter values at the fit's "nominal" and "alternative" minima, the Hesse "errors" of the nominal one and
# "errors_at": {"events": n}, the events they were computed at (a fit of a growing point may keep them), and
# "shapes": {"delta_nll": NLL(alternative) - NLL(nominal), "nll_spread": how much that would scatter over spectra
# like this one (Vuong's, `spe_fit.vuong_spread`)}
Minima = dict[str, dict[str, float]]


def minima_only(minima: Minima | None) -> Minima | None:
    """The "nominal" and "alternative" minima without the errors: a fit started from them computes its own."""
    return {k: v for k, v in minima.items() if k in ("nominal", "alternative")} if minima else minima


@dataclass
class SpeFitResult:
    """Gain = mean of the 1-PE main peak / e (headline); gain_err = its three parts combined: gain_err_stat (the
    spectrum's statistics), gain_err_under_prior (what the prior on the under-amplified fraction adds to Hesse's
    error; the two together are Hesse's, or the profile's) and gain_err_syst (the 1-PE shape: two shapes' spread,
    with a floor)."""

    status: str  # ok | failed | too_few_events
    reason: str
    model: str
    gain: float | None = None
    gain_err: float | None = None
    gain_err_stat: float | None = None
    gain_err_syst: float | None = None
    gain_err_under_prior: float | None = None
    q0_pc: float | None = None
    sigma0_pc: float | None = None
    q1_pc: float | None = None  # main-peak mean
    q1_err_pc: float | None = None
    peak_pc: float | None = None  # most probable 1-PE charge
    sigma1_pc: float | None = None  # Q1 width
    spe_resolution: float | None = None  # sigma1 / q1
    mean_pe_charge_pc: float | None = None  # mean charge per PE including under-amplified ones
    mean_charge_per_pe_gain: float | None = None
    under_amplified_fraction: float | None = None
    under_amplified_mean_pc: float | None = None  # mean charge of an under-amplified photoelectron
    under_amplified_shape: float | None = None  # its Gamma shape (1: exponential)
    mu: float | None = None
    mu_err: float | None = None
    mu_quarter_pe: float | None = None  # photoelectrons per event over a quarter of Q1 (`spe_response.share_over`)
    mu_quarter_pe_err: float | None = None  # its Hesse error, the fitted shape's share included
    peak_to_valley: float | None = None
    chi2_ndf: float | None = None
    n_events: int = 0
    converged: bool = False
    at_limit: list[str] = field(default_factory=list)
    fit_seconds: float | None = None
    curve: dict[str, Any] | None = None
    minima: Minima | None = None

    def hesse_error(self) -> float:
        """The gain error Hesse (or the profile) gave: the statistical and under-amplified prior's parts together
        (a part the fit does not give counts 0)."""
        return math.hypot(self.gain_err_stat or 0.0, self.gain_err_under_prior or 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: non-finite floats become None."""
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value
        return clean(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeFitResult:
        return cls(**data)


def chi2_ndf(expected: np.ndarray, counts: np.ndarray, n_par: int) -> float | None:
    """Pearson chi2 per degree of freedom over bins expecting at least 5 counts."""
    use = expected >= 5
    ndf = int(use.sum()) - n_par
    if ndf <= 0:
        return None
    return float(np.sum((counts[use] - expected[use]) ** 2 / expected[use]) / ndf)


def curve(hist: Histogram, total: np.ndarray, components: dict[str, np.ndarray]) -> dict[str, Any]:
    """The fitted curve as the report draws it: bin centres, total and named components."""
    def r(a: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in a]
    return {"x": r(hist.centres), "total": r(total), "components": {k: r(v) for k, v in components.items()}}
