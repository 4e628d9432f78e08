"""Checks of a fitted SPE spectrum shared by the fit's tests and the simulated scan's."""

from __future__ import annotations

from remote_monitor.analysis import spe_fit, spe_minimize, spe_start
from remote_monitor.analysis.histogram import Histogram
from remote_monitor.analysis.spe_model import get_model
from remote_monitor.analysis.units import MV_PER_ADC, PC_PER_MV_SAMPLE

BIN_PC = 20 * MV_PER_ADC * PC_PER_MV_SAMPLE / 2  # whole charge quanta per bin


def profile_rises(hist: Histogram, minimum: dict[str, float], step: float) -> list[float]:
    """NLL rise of refits with q1 held at the minimum's q1 -+ step (the other parameters free)."""
    start = spe_start.start_values(hist)
    lo, hi = spe_start.fit_range(hist, start)
    model = get_model(hist.edges[lo:hi + 1], spe_fit._terms_for(start, {"nominal": minimum}))
    counts = hist.counts[lo:hi].astype(float)
    best = spe_minimize.minimize(model, counts, minimum, {}, hesse=False)
    held = [{**best.values, "q1": best.values["q1"] + d} for d in (-step, step)]
    return [spe_minimize.minimize(model, counts, v, {"q1": v["q1"]}, hesse=False).nll - best.nll for v in held]
