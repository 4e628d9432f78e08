"""Photoelectron physics of the simulated PMT: charges and times of each photoelectron, per event.

Charge of one photoelectron (definitions used by truth.json):
  * main peak (fraction 1 - f_under - f_back): a mixture of two Gamma (Polya) distributions of the same mean
    Q1 = gain * e with relative widths rel_width -/+ 0.05 (so the shape is NOT the fit's single Gamma);
    truth `gain` = Q1 / e, the mean of this main peak; `peak_shape="gamma"`: one Gamma of width rel_width;
    main peaks the fit's Gamma does not contain, each of mean Q1 and relative width rel_width (PEAK_SHAPES):
    "lognormal"; "gaussian" (cut at zero charge, its centre set so that its mean is Q1); "unequal_mixture"
    (70 % a Gamma of width rel_width - 0.05, 30 % one of rel_width + 0.10, about rel_width in all); "two_gains"
    (two Gammas of means 0.9 and 1.1 Q1: a light spot over two gain regions of the photocathode);
  * under-amplified (f_under): half exponential (mean 0.15 Q1), half uniform on 0..0.7 Q1 (`under_shape`
    "mixed"); "exponential": exponential of mean 0.3 Q1; "uniform": uniform on 0..Q1 (up to the peak);
  * elastic backscatter (f_back): uniform on 0..1.0 Q1;
The other shapes are for checking the fit on spectra the default does not make (`bench_gain.py --shapes`,
`--peaks`).
  truth `mean_charge_per_pe_gain` = mean over all photoelectrons / e.
Time of a direct photoelectron: Gaussian (TTS and laser jitter, sigma `tts_sigma_ns`); a late tail
(exponential, 6 ns) and late pulses (uniform 20..60 ns later) on top. Afterpulses and dark counts are added by
the stand (they are outside the charge window or rare inside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from remote_monitor.analysis.charges import AnalysisSettings, corrected_mv, window_charge_pc
from remote_monitor.analysis.units import NS_PER_SAMPLE, gain_to_pc
from remote_monitor.simulation.pulses import digitise, noise

_MONITOR = AnalysisSettings()  # the monitor's default extraction, which the twin integrates like
WINDOW_START = 60 + round(_MONITOR.fixed_window_start_ns / NS_PER_SAMPLE)  # trigger sample + fixed window start
WINDOW_LEN = round(_MONITOR.fixed_window_length_ns / NS_PER_SAMPLE)
BASELINE_SAMPLES = _MONITOR.baseline_samples  # the baseline: the mean of the first samples


PEAK_SPREAD = 0.05  # "polya_mixture": two Gammas of relative widths rel_width -/+ this
PEAK_SHAPES = ("polya_mixture", "gamma", "lognormal", "gaussian", "unequal_mixture", "two_gains")
TWO_GAINS = (0.9, 1.1)  # "two_gains": the two Gammas' means (/ Q1), half the photoelectrons each
MIXED_EXP_MEAN, MIXED_UNIFORM_TOP = 0.15, 0.7  # "mixed": half exponential of this mean, half uniform up to this (/ Q1)
EXP_MEAN = 0.3  # "exponential": its mean (/ Q1)
UNDER_MEAN = {"mixed": 0.5 * MIXED_EXP_MEAN + 0.5 * MIXED_UNIFORM_TOP / 2, "exponential": EXP_MEAN,
              "uniform": 0.5}  # / Q1, per under_shape


@dataclass(frozen=True)
class PmtPhysics:
    """Per-photoelectron response of the PMT under test."""

    rel_width: float = 0.32
    under_fraction: float = 0.12
    backscatter_fraction: float = 0.02
    tts_sigma_ns: float = 1.3
    late_tail_fraction: float = 0.04
    late_pulse_fraction: float = 0.03
    afterpulse_prob: float = 0.05
    dark_rate_hz: float = 3000.0
    under_shape: str = "mixed"
    peak_shape: str = "polya_mixture"

    def __post_init__(self) -> None:
        if self.under_shape not in UNDER_MEAN:
            raise ValueError(f"under_shape {self.under_shape!r}: one of {', '.join(UNDER_MEAN)}")
        if self.peak_shape not in PEAK_SHAPES:
            raise ValueError(f"peak_shape {self.peak_shape!r}: one of {', '.join(PEAK_SHAPES)}")


def pe_charges(rng: np.random.Generator, n: int, gain: float, phys: PmtPhysics) -> np.ndarray:
    """Charges in pC of n photoelectrons."""
    q1 = gain_to_pc(gain)
    if phys.peak_shape in ("polya_mixture", "gamma"):  # drawn as before the other shapes came (`_drawn_peak`), so
        # that a seed gives the demo, the tests and the saved benchmark spectra the same photoelectrons as then
        wide = rng.random(n) < 0.5
        spread = PEAK_SPREAD if phys.peak_shape == "polya_mixture" else 0.0
        rel = np.where(wide, phys.rel_width + spread, phys.rel_width - spread)
        k = 1.0 / rel**2
        q = rng.gamma(k, q1 / k)
    else:
        q = q1 * _drawn_peak(rng, n, phys)
    kind = rng.random(n)
    under = kind < phys.under_fraction
    half = rng.random(n) < 0.5
    if phys.under_shape == "mixed":
        q[under & half] = rng.exponential(MIXED_EXP_MEAN * q1, int(np.count_nonzero(under & half)))
        q[under & ~half] = rng.uniform(0.0, MIXED_UNIFORM_TOP * q1, int(np.count_nonzero(under & ~half)))
    elif phys.under_shape == "exponential":
        q[under] = rng.exponential(EXP_MEAN * q1, int(np.count_nonzero(under)))
    else:
        q[under] = rng.uniform(0.0, q1, int(np.count_nonzero(under)))
    back = (kind >= phys.under_fraction) & (kind < phys.under_fraction + phys.backscatter_fraction)
    q[back] = rng.uniform(0.0, q1, int(np.count_nonzero(back)))
    return q


def _drawn_peak(rng: np.random.Generator, n: int, phys: PmtPhysics) -> np.ndarray:
    """Charges (/ Q1) of n photoelectrons of the main peak (`_main_peak`), each from one of its parts."""
    parts = _main_peak(phys)
    which = rng.choice(len(parts), size=n, p=[w for w, _ in parts])
    q = np.empty(n)
    for i, (_, dist) in enumerate(parts):
        q[which == i] = dist.rvs(size=int(np.count_nonzero(which == i)), random_state=rng)
    return q


def _gamma(mean: float, rel: float) -> Any:
    from scipy import stats

    return stats.gamma(1 / rel**2, scale=mean * rel**2)


def _main_peak(phys: PmtPhysics) -> list[tuple[float, Any]]:
    """(weight, frozen scipy distribution) of the main peak's charge in units of Q1, its parts' weights adding to 1
    (each shape of mean 1 and relative width about rel_width, `PmtPhysics.peak_shape`)."""
    from scipy import stats
    from scipy.optimize import brentq

    r = phys.rel_width
    if phys.peak_shape == "lognormal":
        sigma = np.sqrt(np.log1p(r * r))
        return [(1.0, stats.lognorm(sigma, scale=np.exp(-sigma * sigma / 2)))]
    if phys.peak_shape == "gaussian":
        def cut(centre: float) -> Any:
            return stats.truncnorm(-centre / r, np.inf, loc=centre, scale=r)
        return [(1.0, cut(brentq(lambda c: cut(c).mean() - 1.0, 0.5, 1.0)))]
    if phys.peak_shape == "unequal_mixture":
        return [(0.7, _gamma(1.0, r - 0.05)), (0.3, _gamma(1.0, r + 0.10))]
    if phys.peak_shape == "two_gains":
        inner = np.sqrt((r * r - 0.01) / 1.01)  # (the two means' spread adds 0.1^2 to the relative variance)
        return [(0.5, _gamma(mean, inner)) for mean in TWO_GAINS]
    spread = PEAK_SPREAD if phys.peak_shape == "polya_mixture" else 0.0
    widths = (r - spread, r + spread) if spread else (r,)
    return [(1.0 / len(widths), _gamma(1.0, width)) for width in widths]


def _components(phys: PmtPhysics) -> list[tuple[float, Any]]:
    """(weight, frozen scipy distribution) of one photoelectron's charge in units of Q1: the distribution
    `pe_charges` draws from, part by part."""
    from scipy import stats

    main = 1.0 - phys.under_fraction - phys.backscatter_fraction
    parts: list[tuple[float, Any]] = [(main * weight, dist) for weight, dist in _main_peak(phys)]
    if phys.under_shape == "mixed":
        parts += [(0.5 * phys.under_fraction, stats.expon(scale=MIXED_EXP_MEAN)),
                  (0.5 * phys.under_fraction, stats.uniform(0.0, MIXED_UNIFORM_TOP))]
    elif phys.under_shape == "exponential":
        parts.append((phys.under_fraction, stats.expon(scale=EXP_MEAN)))
    else:
        parts.append((phys.under_fraction, stats.uniform(0.0, 1.0)))
    return [*parts, (phys.backscatter_fraction, stats.uniform(0.0, 1.0))]


def pe_charge_density(q_pc: np.ndarray, gain: float, phys: PmtPhysics) -> np.ndarray:
    """Probability density (per pC) of one photoelectron's charge: the distribution `pe_charges` draws from."""
    q1 = gain_to_pc(gain)
    return np.asarray(sum(w * d.pdf(q_pc / q1) for w, d in _components(phys))) / q1


def share_over(fraction_of_q1: float, phys: PmtPhysics) -> float:
    """Share of the photoelectrons whose charge exceeds this fraction of Q1 (the same at every gain)."""
    return float(sum(w * d.sf(fraction_of_q1) for w, d in _components(phys)))


def mean_charge_per_pe(gain: float, phys: PmtPhysics) -> float:
    """Mean charge of one photoelectron in pC, under-amplified and backscattered ones included."""
    return gain_to_pc(gain) * float(sum(w * d.mean() for w, d in _components(phys)))


def pe_times(rng: np.random.Generator, n: int, phys: PmtPhysics) -> np.ndarray:
    """Arrival times (ns, relative to the mean direct time) of n photoelectrons."""
    t = rng.normal(0.0, phys.tts_sigma_ns, n)
    u = rng.random(n)
    tail = u < phys.late_tail_fraction
    t[tail] += rng.exponential(6.0, int(np.count_nonzero(tail)))
    late = (u >= phys.late_tail_fraction) & (u < phys.late_tail_fraction + phys.late_pulse_fraction)
    t[late] += rng.uniform(20.0, 60.0, int(np.count_nonzero(late)))
    return t


def event_pes(rng: np.random.Generator, n_events: int, mu: float) -> np.ndarray:
    """Event index of every photoelectron, Poisson(mu) per event."""
    k = rng.poisson(max(mu, 0.0), n_events)
    return np.repeat(np.arange(n_events), k)


def event_charges(rng: np.random.Generator, n_events: int, mu: float, gain: float, phys: PmtPhysics,
                  pedestal_pc: np.ndarray) -> np.ndarray:
    """Charge-level twin of the waveform path (for the benchmark): per-event sum of the photoelectron charges
    plus the pedestal `pedestal_pc` (one charge per event, of noise-only records from the same noise model and
    the same window integration; resampled with replacement when shorter). Dark counts are included at their
    rate: in the window they add their charge, in the baseline samples they lower the baseline, which takes
    WINDOW_LEN / BASELINE_SAMPLES of their charge off the event (far below the pedestal)."""
    rows = event_pes(rng, n_events, mu)
    dark_rows = event_pes(rng, n_events, phys.dark_rate_hz * WINDOW_LEN * NS_PER_SAMPLE * 1e-9)
    all_rows = np.concatenate([rows, dark_rows])
    q = pe_charges(rng, len(all_rows), gain, phys)
    total = np.bincount(all_rows, weights=q, minlength=n_events)
    base_rows = event_pes(rng, n_events, phys.dark_rate_hz * BASELINE_SAMPLES * NS_PER_SAMPLE * 1e-9)
    base_q = pe_charges(rng, len(base_rows), gain, phys) * (WINDOW_LEN / BASELINE_SAMPLES)
    total -= np.bincount(base_rows, weights=base_q, minlength=n_events)
    if len(pedestal_pc) >= n_events:
        return total + pedestal_pc[:n_events]
    return total + rng.choice(pedestal_pc, n_events)


def pedestal_charges(rng: np.random.Generator, noise_mv: float, n: int) -> np.ndarray:
    """Charges of n noise-only records (the stand's noise model and 14-bit digitiser) integrated by the
    monitor's own extraction (baseline over 40 samples, 120 ns fixed window): one pedestal per event."""
    out = []
    for m in np.diff(np.linspace(0, n, n // 25_000 + 2).astype(int)):
        raw = digitise(noise(rng, int(m), WINDOW_START + WINDOW_LEN, noise_mv), 14000, -1)
        out.append(window_charge_pc(corrected_mv(raw, -1, BASELINE_SAMPLES), np.full(int(m), WINDOW_START), WINDOW_LEN))
    return np.concatenate(out)
