"""Pickup removal: a sinusoidal pickup line on the PMT channel, fitted to the samples outside the charge window
(with a straight line for the baseline) and subtracted event by event.

A pickup line of a few MHz (switching supplies, the HV module) is not averaged out by a 120 ns window: with a
random phase per event it adds to every charge A K sin(phase), an arcsine-shaped spread that the fit's Gaussian
pedestal cannot describe. On an independently simulated stand (0.35 mV white noise, a slope per event, 3 MHz
pickup; 100k events at 0.1 PE, 1e7, 15 % under-amplified uniform up to the peak) the gain read: 0.2 mV pickup,
fit stuck at a limit (250k events: +15 % with chi2/ndf 315); 0.05 mV, -2.6 % (pull -3.4, chi2/ndf 2.4); with
the line removed -0.8 % and -0.9 % (pulls -0.7); without pickup -0.1 %.

The line's frequency is found once per point, from a first block of events: the frequency in PICKUP_BAND_MHZ at
which a sine and cosine fitted to each event's samples outside the window take the most variance beyond a
straight line. Its amplitude is what it takes above the median over the band (the noise's share). It is removed
where its spread of the charges is at least SIGNIFICANT of the pedestal's width (`decide`): a weaker line
hardly changes the pedestal's shape, and its fit, about as noisy as the window's own noise, would widen it.
The search starts at one period over the samples fitted, and a removal that widens the pedestal is not used.
Slow Gaussian noise (1/f, wander) that the sine follows as well is told from a line by the scatter of the
events' fitted sine powers (`PickupLine.steady`): it is removed the same way, and named for what it is.
Each event's line is fitted with the point's prior (`learn_prior`: the mean and the spread over the point's events
of the slope and of the sine's coefficients, less the fit's own noise), as the best linear estimate of the baseline
under the window (ridge regression) instead of least squares. Least squares extrapolated under the window a slope
and a sine phase that the samples hardly tell: on the stand above the pedestal was 0.236 pC wide after the removal
against 0.18 pC without pickup, and 600k events of a healthy PMT read -3.4 % (pull -4.7, "poor"); with the prior,
0.196 pC and -1.0 % (pull -0.8). Only events without a pulse outside the window are fitted (a laser peak outside a
misplaced window, a dark count, an afterpulse would be taken for the line); the others keep their charge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PICKUP_BAND_MHZ = (0.5, 20.0)  # below: the baseline's slow wander (taken out by the constant); above, a 120 ns
# window averages a line out (at 30 MHz to 8 % of its amplitude)
FREQUENCY_STEP_MHZ = 0.05
GUARD_BEFORE, GUARD_AFTER = 5, 15  # samples left out before the window and after it (pulse edges and tails)
MIN_FIT_SAMPLES = 40  # fewer samples outside the window: no fit
SIGNIFICANT = 0.45  # the line is removed when its charge spread (rms) is this fraction of the pedestal's width or
# more (its share of the pedestal's variance 20 %: the arcsine part's kurtosis then -0.06 of a Gaussian's)
SEARCH_EVENTS = 4000  # events used to find the frequency and decide
WIDER = 1.1  # ... unless its removal widens the pedestal by more than this (a line the fit cannot follow)
STEADY_LINE = 0.85  # `PickupLine.power_scatter` under this: a line of steady amplitude; at or above, noise (1 or more
# for Gaussian noise, about 0.07 of it statistical at SEARCH_EVENTS). Made here (4000 events, 0.35 mV white noise):
# 3 MHz lines of 0.2 mV 0.18, of 0.1 mV beside a drift 0.51; 1/f noise of 0.1 and 0.2 mV 1.21 and 1.11; white 1.04


@dataclass(frozen=True)
class Record:
    """How the PMT channel's charges are measured: the window's length, the flat baseline (the mean of the first
    baseline_samples), pC per ADC count and sample (negative: negative pulses), mV per ADC count, ns per sample,
    and the pulse threshold (mV below the baseline)."""

    window_length: int
    baseline_samples: int
    pc_per_adc_sample: float
    mv_per_adc: float
    ns_per_sample: float
    threshold_mv: float


@dataclass(frozen=True)
class CoefficientPrior:
    """What a point's events have of each baseline column (`BaselineShape.basis`): the mean coefficient and the
    penalty noise variance / coefficient variance (0: free, the constant), learnt from its events (`learn_prior`)."""

    mean: tuple[float, ...]
    penalty: tuple[float, ...]


@dataclass(frozen=True)
class BaselineShape:
    """The baseline fitted to each event outside its window: a straight line and a sine of `frequency_mhz`. With a
    `prior` the fit is the best linear estimate under it (ridge regression toward the point's mean line) instead
    of least squares: a slope or a sine phase that the samples hardly tell is not extrapolated under the window."""

    frequency_mhz: float
    prior: CoefficientPrior | None = None

    def basis(self, j: np.ndarray, length: int, ns_per_sample: float) -> np.ndarray:
        """Columns at the samples j: constant, slope (over the record), sine and cosine."""
        phase = 2 * math.pi * self.frequency_mhz * 1e-3 * ns_per_sample * j
        return np.column_stack([np.ones(len(j)), j / max(length, 1) - 0.5, np.sin(phase), np.cos(phase)])

    def window_weights(self, j: np.ndarray, inside: np.ndarray, length: int,
                       ns_per_sample: float) -> tuple[np.ndarray, float]:
        """(weights, offset): the fitted baseline's integral over the samples `inside` is samples[j] @ weights +
        offset (the fit is linear in the samples fitted)."""
        x = self.basis(j, length, ns_per_sample)
        g = self.basis(inside, length, ns_per_sample).sum(axis=0)
        if self.prior is None:
            return g @ np.linalg.pinv(x), 0.0
        mean = np.array(self.prior.mean)
        weights = g @ np.linalg.solve(x.T @ x + np.diag(self.prior.penalty), x.T)
        return weights, float(g @ mean - weights @ (x @ mean))


def learn_prior(samples: np.ndarray, j: np.ndarray, shape: BaselineShape, ns_per_sample: float) -> CoefficientPrior:
    """The prior of `shape`'s columns from events without a pulse at the samples j: each coefficient's mean and
    its spread over the events less the least-squares fit's own noise (the constant stays free)."""
    x = shape.basis(j, samples.shape[1], ns_per_sample)
    y = samples[:, j].astype(np.float64).T
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    noise = float(np.mean(np.sum((y - x @ coefficients) ** 2, axis=0))) / max(len(j) - x.shape[1], 1)
    fit_noise = noise * np.diag(np.linalg.inv(x.T @ x))
    spread = np.maximum(coefficients.var(axis=1) - fit_noise, 1e-6 * noise)
    penalty = noise / spread
    penalty[0] = 0.0
    return CoefficientPrior(tuple(coefficients.mean(axis=1).tolist()), tuple(penalty.tolist()))


@dataclass(frozen=True)
class PickupLine:
    """A pickup line found on a point: its baseline shape (frequency), mean amplitude, the spread it gives the
    charges (rms, pC), the pedestal's width without and with its removal (pC; the distance from the 16 %
    quantile of the charges to their median), and the scatter of the events' fitted sine powers (`power_scatter`:
    under STEADY_LINE a line, else slow noise that the sine follows as well, e.g. 1/f noise)."""

    shape: BaselineShape
    amplitude_mv: float
    spread_pc: float
    width_before_pc: float
    width_after_pc: float
    power_scatter: float

    @property
    def frequency_mhz(self) -> float:
        return self.shape.frequency_mhz

    @property
    def steady(self) -> bool:
        """Whether it is a line (steady amplitude, a phase of its own in each event) rather than slow noise."""
        return self.power_scatter < STEADY_LINE

    def describe(self) -> str:
        what = (f"pickup at {self.frequency_mhz:.2f} MHz" if self.steady else
                f"slow baseline noise, not a pickup line (the events' {self.frequency_mhz:.2f} MHz sines scatter "
                f"like noise: power scatter {self.power_scatter:.2f}; 1/f noise or wander),")
        return (f"{what} ({self.amplitude_mv:.2f} mV, charge spread {self.spread_pc:.3f} pC rms) removed event by "
                f"event: the pedestal's width went from {self.width_before_pc:.3f} to {self.width_after_pc:.3f} pC")


class Removal:
    """One channel's pickup removal, block by block as they are read: decided once, from the first block with at
    least `decision_events` triggered events (`decide`; blocks before it keep their charges), then applied to
    every block where a line was found (`corrected_charges`). `line`: the line found (None: none, or not decided
    yet)."""

    def __init__(self, record: Record, decision_events: int) -> None:
        self.record, self.decision_events = record, decision_events
        self.decided = False
        self.line: PickupLine | None = None

    def charges(self, charge_pc: np.ndarray, samples: np.ndarray, window_lo: np.ndarray,
                triggered: np.ndarray) -> np.ndarray:
        """The block's charges without the channel's pickup line (as measured where it has none)."""
        if not self.decided:
            if np.count_nonzero(triggered) < self.decision_events:
                return charge_pc
            self.line = decide(charge_pc[triggered], samples[triggered], window_lo[triggered], self.record)
            self.decided = True
        if self.line is None:
            return charge_pc
        return corrected_charges(charge_pc, samples, window_lo, self.record, self.line.shape)


def fit_samples(length: int, window_lo: int, window_length: int) -> np.ndarray:
    """Indices of the samples outside the window (and its guards) that the line is fitted to."""
    j = np.arange(length)
    return j[(j < window_lo - GUARD_BEFORE) | (j >= window_lo + window_length + GUARD_AFTER)]


def flat_baseline(samples: np.ndarray, record: Record) -> np.ndarray:
    """Each event's flat baseline (ADC counts): the mean of its first baseline_samples samples."""
    return samples[:, :min(record.baseline_samples, samples.shape[1])].astype(np.float64).mean(axis=1)


def quiet(samples: np.ndarray, base: np.ndarray, j: np.ndarray, record: Record) -> np.ndarray:
    """Events without a pulse at the samples j: none more than the threshold below their flat baseline `base`."""
    if len(j) == 0:
        return np.ones(len(samples), dtype=bool)
    lowest = samples[:, j].min(axis=1).astype(np.float64)
    return (base - lowest) * record.mv_per_adc <= record.threshold_mv


def lowest_frequency(j: np.ndarray, ns_per_sample: float) -> float:
    """The lowest frequency searched (MHz): PICKUP_BAND_MHZ's, or one period over the samples fitted where they
    span less (a slower sine is a curve that the straight line beside it and the noise also make: on the
    project's own stand, 260-sample records with the window at their end, 0.5 MHz took 1 mV of noise)."""
    span_ns = (float(j.max() - j.min()) + 1) * ns_per_sample if len(j) else 0.0
    return max(PICKUP_BAND_MHZ[0], 1e3 / span_ns) if span_ns > 0 else math.inf


def best_frequency(samples: np.ndarray, j: np.ndarray, ns_per_sample: float) -> tuple[float, float, float]:
    """(frequency MHz, mean amplitude in ADC counts, power scatter) of the line that takes the most variance from
    the samples at j beyond a straight line, over PICKUP_BAND_MHZ (one matrix product for all frequencies: sine and
    cosine made orthonormal to the straight line and to each other). The amplitude is that of the events' fitted
    sines, less the share of the variance the median frequency of the band takes (the noise's share at any
    frequency). The power scatter is var / mean^2 of the events' fitted sine powers: 1 or more where Gaussian noise
    makes them (exponential, or a sum of two), under 1 for a line whose amplitude is the same in every event."""
    y = samples[:, j].astype(np.float64)
    y -= y.mean(axis=1, keepdims=True)
    length = samples.shape[1]
    lowest = lowest_frequency(j, ns_per_sample)
    if not math.isfinite(lowest) or len(y) == 0:
        return math.nan, 0.0, math.nan
    start = math.ceil(lowest / FREQUENCY_STEP_MHZ - 1e-9) * FREQUENCY_STEP_MHZ  # on the grid of steps
    grid = np.arange(start, PICKUP_BAND_MHZ[1] + 1e-9, FREQUENCY_STEP_MHZ)
    if len(grid) == 0:
        return math.nan, 0.0, math.nan
    bases = []
    for f in grid:
        q, _ = np.linalg.qr(BaselineShape(float(f)).basis(j, length, ns_per_sample))
        bases.append(q[:, 2:])
    taken = ((y @ np.hstack(bases)) ** 2).reshape(len(y), len(grid), 2).sum(axis=(0, 2))
    best = int(np.argmax(taken))
    signal = max(1.0 - float(np.median(taken)) / taken[best], 0.0) if taken[best] > 0 else 0.0
    coefficients = np.linalg.lstsq(BaselineShape(float(grid[best])).basis(j, length, ns_per_sample), y.T,
                                   rcond=None)[0]  # (sine and cosine: rows 2 and 3)
    power = coefficients[2] ** 2 + coefficients[3] ** 2
    mean_power = float(np.mean(power))
    scatter = float(np.var(power)) / mean_power**2 if mean_power > 0 else math.nan
    return float(grid[best]), math.sqrt(signal * mean_power), scatter


def window_line_integral(samples: np.ndarray, base: np.ndarray, window_lo: np.ndarray, record: Record,
                         shape: BaselineShape) -> np.ndarray:
    """Per event, the integral over its window (samples [window_lo, window_lo + window_length), clipped to the
    record) of the baseline `shape` fitted to its samples outside the window, in ADC counts x samples (NaN:
    too few samples outside the window, or a pulse among them; `base`: the events' flat baselines)."""
    n, length = samples.shape
    out = np.full(n, np.nan)
    for lo in np.unique(window_lo):
        group = np.flatnonzero(window_lo == lo)
        j = fit_samples(length, int(lo), record.window_length)
        inside = np.arange(max(int(lo), 0), min(int(lo) + record.window_length, length))
        if len(j) < MIN_FIT_SAMPLES or len(inside) == 0:
            continue
        rows = group[quiet(samples[group], base[group], j, record)]
        weights, offset = shape.window_weights(j, inside, length, record.ns_per_sample)
        out[rows] = samples[np.ix_(rows, j)].astype(np.float64) @ weights + offset
    return out


def corrected_charges(charge_pc: np.ndarray, samples: np.ndarray, window_lo: np.ndarray, record: Record,
                      shape: BaselineShape) -> np.ndarray:
    """The window charges with the fitted baseline `shape` under the window in place of the flat one (as the
    charges were measured): charge + (flat baseline x window samples - line integral) x pc_per_adc_sample.
    Events whose line is not fitted (`window_line_integral`: NaN) keep their charge."""
    length = samples.shape[1]
    lo = np.clip(window_lo, 0, length)
    used = np.clip(window_lo + record.window_length, 0, length) - lo
    base = flat_baseline(samples, record)  # (once: the pulse search and the shift both use it)
    line = window_line_integral(samples, base, window_lo, record, shape)
    shift = (base * used - line) * record.pc_per_adc_sample
    return np.where(np.isfinite(shift), charge_pc + np.nan_to_num(shift), charge_pc)


def pedestal_width(charge_pc: np.ndarray) -> float:
    """Width of the pedestal from its low side: median minus the 16 % quantile of the charges (at the stand's
    occupancy the median lies in the pedestal, and the low side holds no photoelectrons)."""
    if len(charge_pc) == 0:
        return math.nan
    q16, q50 = np.percentile(charge_pc, [16, 50])
    return float(q50 - q16)


def charge_per_amplitude(shape: BaselineShape, length: int, window_lo: int, record: Record) -> float:
    """How much charge (in ADC counts x samples) a line of unit amplitude puts into a window at most, with the
    flat baseline subtracted: |sum over the window of e^(i w t) - window samples / baseline samples x sum over the
    baseline of e^(i w t)|."""
    inside = np.arange(max(window_lo, 0), min(window_lo + record.window_length, length))
    base = np.arange(min(record.baseline_samples, length))
    omega = 2 * math.pi * shape.frequency_mhz * 1e-3 * record.ns_per_sample
    phasor = np.exp(1j * omega * inside).sum() - len(inside) / max(len(base), 1) * np.exp(1j * omega * base).sum()
    return float(abs(phasor))


def decide(charge_pc: np.ndarray, samples: np.ndarray, window_lo: np.ndarray, record: Record) -> PickupLine | None:
    """The pickup line of a block of events (the first SEARCH_EVENTS without a pulse outside the window), when the
    spread it gives the charges (rms: amplitude x `charge_per_amplitude` / sqrt 2) is at least SIGNIFICANT of the
    pedestal's width and its removal does not widen the pedestal (WIDER); None otherwise (no line, a weak one,
    too few samples outside the window or too few events without a pulse there)."""
    length = samples.shape[1]
    if len(window_lo) == 0:
        return None
    j = fit_samples(length, int(window_lo.min()), int(window_lo.max() - window_lo.min()) + record.window_length)
    if len(j) < MIN_FIT_SAMPLES:
        return None
    take = np.flatnonzero(quiet(samples, flat_baseline(samples, record), j, record))[:SEARCH_EVENTS]
    if len(take) < 100:
        return None
    charge_pc, samples, window_lo = charge_pc[take], samples[take], window_lo[take]
    frequency, amplitude_adc, scatter = best_frequency(samples, j, record.ns_per_sample)
    if not math.isfinite(frequency):
        return None
    shape = BaselineShape(frequency)
    shape = BaselineShape(frequency, learn_prior(samples, j, shape, record.ns_per_sample))
    spread = (amplitude_adc * charge_per_amplitude(shape, length, int(np.median(window_lo)), record)
              * abs(record.pc_per_adc_sample) / math.sqrt(2))
    before = pedestal_width(charge_pc)
    if not (math.isfinite(before) and spread >= SIGNIFICANT * before):
        return None
    after = pedestal_width(corrected_charges(charge_pc, samples, window_lo, record, shape))
    if not after <= WIDER * before:  # the fit made it worse: not a line that the fit can follow
        return None
    return PickupLine(shape, amplitude_adc * record.mv_per_adc, spread, before, after, scatter)
