"""Does the quoted error of the occupancy over a quarter PE (the detection efficiency's default occupancy) cover
its scatter over repeated draws?

For each noise level, `--draws` spectra of the same simulated point (the project's charge-level stand: Polya main
peak, 12 % under-amplified and 2 % backscattered photoelectrons, dark counts, the stand's noise) are fitted as the
monitor fits them. Prints the scatter of the fitted occupancy over a quarter PE, the median quoted error (the
fit's Hesse error with the fitted share's movement, `spe_minimize.MU_QUARTER_PE`), the counting error alone
(`detection_efficiency.empty_share_error`) and the ratios scatter / quoted and scatter / counting, each measured
in this run. Not a test; prints measured numbers.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np

from remote_monitor.analysis.detection_efficiency import empty_share_error, quarter_pe_occupancy
from remote_monitor.analysis.spe_fit import fit_spe
from remote_monitor.analysis.units import NS_PER_SAMPLE
from remote_monitor.simulation.spe_charge import (
    WINDOW_LEN,
    PmtPhysics,
    event_charges,
    pedestal_charges,
    share_over,
)

sys.path.insert(0, str(Path(__file__).parent))
from bench_gain import histogram  # the gain benchmark's bins (whole charge quanta)

GAIN = 1e7


def one_draw(seed: int, n_events: int, mu: float, noise_mv: float) -> tuple[float, float, float]:
    """(occupancy over a quarter PE, the error the DE uses, the counting error) of one drawn point."""
    rng = np.random.default_rng(seed)
    charges = event_charges(rng, n_events, mu, GAIN, PmtPhysics(), pedestal_charges(rng, noise_mv, n_events))
    fit = fit_spe(histogram(charges, GAIN, mu))
    if fit.mu_quarter_pe is None:
        raise RuntimeError(f"draw {seed}: {fit.reason}")
    value, err = quarter_pe_occupancy(fit.mu_quarter_pe, fit.mu_quarter_pe_err, n_events)
    return value, err, empty_share_error(math.exp(-value), n_events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=80_000)
    parser.add_argument("--mu", type=float, default=0.07, help="photoelectrons per event (all, dark included)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.3, 0.6], help="noise levels, mV")
    parser.add_argument("--draws", type=int, default=24)
    args = parser.parse_args()
    phys = PmtPhysics()
    dark = phys.dark_rate_hz * WINDOW_LEN * NS_PER_SAMPLE * 1e-9
    print(f"{args.draws} draws of {args.events} events at {args.mu} PE (+ {dark:.5f} dark), gain {GAIN:.0e}; truth "
          f"over a quarter PE: {(args.mu + dark) * share_over(0.25, phys):.5f} PE")
    for noise in args.noise:
        draws = [one_draw(1000 + i, args.events, args.mu, noise) for i in range(args.draws)]
        values, quoted, counting = (np.array(column) for column in zip(*draws, strict=True))
        scatter = statistics.stdev(values)
        print(f"noise {noise} mV: mean {values.mean():.5f}, scatter {scatter:.5f} "
              f"({100 * scatter / values.mean():.2f} %), "
              f"quoted {np.median(quoted):.5f}, counting {np.median(counting):.5f}; scatter / quoted "
              f"{scatter / np.median(quoted):.2f}, scatter / counting {scatter / np.median(counting):.2f} "
              f"(a scatter from {args.draws} draws is known to {100 / math.sqrt(2 * (args.draws - 1)):.0f} %)",
              flush=True)


if __name__ == "__main__":
    main()
