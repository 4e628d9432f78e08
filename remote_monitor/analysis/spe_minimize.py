"""One minimisation of the SPE model with zfit's Minuit, to the minimum: parameters set and held as asked
(`minimize`), Hesse's errors at the minimum, and Migrad continued while Hesse's covariance says the minimum lies
further than EDM_LIMIT (`with_errors`). What to minimise from where, and which minimum to keep, is `spe_fit`'s.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from remote_monitor.analysis.spe_model import BuiltModel
from remote_monitor.analysis.spe_response import BOUNDS, NOMINAL_SHAPE, PARAM_NAMES, occupancy_over_quarter_pe

__all__ = ["EDM_LIMIT", "MU_QUARTER_PE", "Outcome", "clamp", "hesse_covariance", "linear_error", "minimize",
           "propagated_error", "under_prior_share", "with_errors"]

EDM_LIMIT = 0.02  # NLL: the minimum is further than this (over 0.2 sigma in some direction): Migrad goes on
CONVERGE_ROUNDS = 3  # at most this many continuations
MU_QUARTER_PE = "mu_quarter_pe"  # the errors' key of the occupancy over a quarter PE (`propagated_error`)


def clamp(name: str, value: float) -> float:
    """The value moved 1e-6 of the range inside the parameter's bounds (Minuit's transformation is singular on them)."""
    lo, hi = BOUNDS[name]
    return min(max(value, lo + 1e-6 * (hi - lo)), hi - 1e-6 * (hi - lo))


@dataclass(frozen=True)
class Outcome:
    """One minimisation: best values, Hesse errors (if asked), Minuit's verdict and the NLL at the minimum; `result`:
    zfit's fit result, from which the Hesse errors can still be computed (`with_errors`); `under_prior_share`:
    the part of Q1's Hesse variance that is the under-amplified fraction's prior (`under_prior_share`)."""

    values: dict[str, float]
    errors: dict[str, float]
    valid: bool
    nll: float
    result: Any = None
    under_prior_share: float = 0.0


def _fresh_offset(loss: Any) -> None:
    """zfit subtracts a constant from the NLL, computed once at the loss's first evaluation; a loss reused for
    another histogram kept the first histogram's constant, so a fit's last digits (and, near a tie between two
    minima, its result) depended on what the process had fitted before. Recomputed for every fit."""
    options = getattr(loss, "_options", None)
    if isinstance(options, dict) and options.get("subtr_const") is True:
        options.pop("subtr_const_value", None)
        loss.is_precompiled = False


def hesse_covariance(result: Any, params: list[Any]) -> np.ndarray | None:
    """The Hesse covariance of `params` from a fit result, asked for under the key that `result.hesse` stored it
    with (Minuit's Hesse, no weight correction: zfit's default key differs, weight correction 'asymptotic', and
    Minuit's Hesse, 0.3 s, ran a second time); None where Hesse gave none (it failed, or a parameter was held)."""
    try:
        return np.asarray(result.covariance(params=params, method="minuit_hesse", weightcorr=False), dtype=float)
    except Exception:  # noqa: BLE001 - no covariance to give
        return None


def distance_to_minimum(model: BuiltModel, result: Any, floating: list[Any]) -> float:
    """Hesse's estimate of how far (in NLL) the minimum lies from where Migrad stopped: g^T C g / 2, with the
    gradient the minimiser uses (`model.compiled`; zfit's own `loss.gradient` traced a second graph, 0.6 s per
    model, for the same values) and the Hesse covariance (`hesse_covariance`; NaN when Hesse gave none)."""
    cov = hesse_covariance(result, floating)
    if cov is None:
        return math.nan
    try:
        grad = model.compiled.gradient(floating)
    except Exception:  # noqa: BLE001 - no gradient: nothing to check with
        return math.nan
    return 0.5 * float(grad @ cov @ grad)


def _continued(result: Any, floating: list[Any]) -> Any:
    """Migrad continued in the result's own Minuit, after its Hesse: seeded with Hesse's covariance, it sees the
    true distance to the minimum. (A fresh Migrad, which builds its own estimate again, crept there: on a 0.1 PE
    spectrum stopped 0.08 NLL short, three fresh ones each gained 0.004; continued, one reached the minimum.)"""
    import zfit
    from zfit.result import FitResult

    minuit = result.info["minuit"]  # (the result's Hesse ran in this Minuit)
    minuit.migrad()
    zfit.param.set_values(floating, np.asarray(minuit.values))
    return FitResult.from_minuit(loss=result.loss, params=floating, minuit=minuit, minimizer=result.minimizer,
                                 valid=minuit.valid)


def _converged(model: BuiltModel, result: Any, floating: list[Any]) -> tuple[Any, dict[Any, Any]]:
    """The fit result with its Hesse errors, Migrad continued from where it stopped while Hesse's covariance says
    the minimum lies more than EDM_LIMIT away. Migrad with strategy 0 judges convergence by its own running
    estimate of the covariance; in the narrow curved valleys of these spectra that estimate can be far off, and
    Migrad stopped short, with Hesse errors up to 2.5x the true ones (a 0.1 PE, 1e7, 0.3 mV spectrum: 0.2 NLL
    above the minimum, 'EDM' 9 with the Hesse covariance, Q1 error 1.4 % where 0.57 % at the minimum)."""
    import zfit

    errors = result.hesse(name="hesse")
    for _ in range(CONVERGE_ROUNDS):
        if not distance_to_minimum(model, result, floating) > EDM_LIMIT:
            break
        further = _continued(result, floating)
        if not float(further.fmin) < float(result.fmin):
            zfit.param.set_values(floating, result)  # back to the better point
            break
        result, errors = further, further.hesse(name="hesse")
    return result, errors


def minimize(model: BuiltModel, counts: np.ndarray, start: dict[str, float], fixed: dict[str, float],
              hesse: bool, steps: dict[str, float] | None = None) -> Outcome:
    """The extended binned likelihood fit with zfit's Minuit, from `start`, with `fixed` parameters held (and
    the nominal shape's, NOMINAL_SHAPE, unless `fixed` holds them otherwise); `steps`: Minuit's first step
    sizes (default: zfit's), given only for a start at a known nearby minimum, which then has the looser
    tolerance (`spe_model.NEAR_TOL`). Every call sets each parameter's value, floating and step size, so a cached
    model carries nothing over from the fit before (also when that one raised)."""
    fixed = {**NOMINAL_SHAPE, **fixed}
    for name in PARAM_NAMES:
        param = model.params[name]
        param.set_value(clamp(name, fixed.get(name, start[name])))
        param.floating = name not in fixed
        step = (steps or {}).get(name)
        param.stepsize = step if step is not None and math.isfinite(step) and step > 0 else None
    model.yield_.set_value(float(counts.sum()))
    model.counts.assign(counts)
    loss = model.loss
    _fresh_offset(loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = (model.near_minimizer if steps else model.minimizer).minimize(loss)
    outcome = _read(model, result, {})
    return with_errors(model, outcome) if hesse else outcome


def under_prior_share(model: BuiltModel, result: Any) -> float:
    """The share of Q1's Hesse variance that comes from the prior on the under-amplified fraction w (the model's
    Gaussian constraint, `BuiltModel.under_prior`): the fitted Q1 moves by C(q1, w) / s^2 per unit of the
    prior's centre (s its width), so the prior contributes C(q1, w)^2 / s^2 of C(q1, q1); the rest is the
    spectrum's own statistics. Where the spectrum hardly tells w (its under-amplified part under the pedestal or
    the main peak) most of a Hesse error can be the prior's, which more events shrink only as far as the
    spectrum comes to tell w, and which repeated draws of one PMT do not show (its true w stays put). 0 when
    Hesse gave no covariance of the two."""
    cov = hesse_covariance(result, [model.params["q1"], model.params["w"]])
    if cov is None or not (np.all(np.isfinite(cov)) and cov[0, 0] > 0):
        return 0.0
    return float(min(cov[0, 1] ** 2 / (model.under_prior[1] ** 2 * cov[0, 0]), 1.0))


def linear_error(values: dict[str, float], cov: np.ndarray, names: list[str],
                 quantity: Callable[[dict[str, float]], float]) -> float:
    """Error of a quantity of the parameters: sqrt(g^T C g), g its gradient by central differences (steps of a
    thousandth of each error), C the covariance `cov` of `names` with every error larger than half its parameter's
    range (BOUNDS) brought down to that, its correlations kept. A flat direction's Hesse error can run past the
    parameter's whole range: on the ninth independent stand the centre point's under-amplified shape k_u had
    +-11 in [0.5, 4], and its occupancy over a quarter PE read +-9.8 % where the stand's points scatter by 2.8 %
    around the truth (3.8 % with the cap). Drawing the parameters from the covariance inside their bounds instead
    read 5.3 % there, and 1.2x the linear error on the project's stand at 0.3 mV, whose draws scatter by 0.86 of
    the linear error (`benchmarks/bench_occupancy.py`)."""
    sigma = np.sqrt(np.diag(cov))
    half_range = np.array([(BOUNDS[n][1] - BOUNDS[n][0]) / 2 for n in names])
    scale = np.minimum(1.0, half_range / sigma)
    capped = cov * np.outer(scale, scale)
    gradient = np.empty(len(names))
    for i, name in enumerate(names):
        step = 1e-3 * sigma[i]
        gradient[i] = (quantity({**values, name: values[name] + step})
                       - quantity({**values, name: values[name] - step})) / (2 * step)
    variance = float(gradient @ capped @ gradient)
    return math.sqrt(variance) if variance >= 0 else math.nan


def propagated_error(model: BuiltModel, result: Any, values: dict[str, float], errors: dict[str, float],
                     quantity: Callable[[dict[str, float]], float]) -> float:
    """Hesse error of a quantity of the parameters (`linear_error` with the Hesse covariance of the floating
    parameters that have an error); NaN without a covariance."""
    names = [name for name in PARAM_NAMES if name in errors and errors[name] > 0]
    cov = hesse_covariance(result, [model.params[n] for n in names])
    if cov is None or not np.all(np.isfinite(cov)):
        return math.nan
    return linear_error(values, cov, names, quantity)


def _read(model: BuiltModel, result: Any, errors: dict[Any, Any]) -> Outcome:
    """The model's parameter values (where the fit left them) and the Hesse errors in `errors`, as an outcome;
    with them the error of the occupancy over a quarter PE (MU_QUARTER_PE, `propagated_error`: the fitted
    shape's share over a quarter PE moves against the fitted mu, which a counting error leaves out)."""
    values = {name: float(model.params[name].value()) for name in PARAM_NAMES}
    errs = {name: float(result.params[model.params[name]]["hesse"]["error"])
            for name in PARAM_NAMES if model.params[name] in errors}
    share = under_prior_share(model, result) if "q1" in errs and "w" in errs else 0.0
    if "mu" in errs:
        errs[MU_QUARTER_PE] = propagated_error(model, result, values, errs, occupancy_over_quarter_pe)
    return Outcome(values, errs, bool(result.valid), float(result.fmin), result, share)


def with_errors(model: BuiltModel, outcome: Outcome) -> Outcome:
    """Hesse errors at an outcome's minimum, Migrad going on from there while Hesse's covariance says the minimum
    lies further (`_converged`). Hesse runs once per fit, at the lower of its starts, not at each of them."""
    floating = list(outcome.result.params)
    for name in PARAM_NAMES:  # back where this minimisation ended, held ones too (a later one moved them)
        model.params[name].set_value(outcome.values[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, errors = _converged(model, outcome.result, floating)
    return _read(model, result, errors)
