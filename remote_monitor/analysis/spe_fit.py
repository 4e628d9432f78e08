"""Single-photoelectron fit of a charge histogram with zfit: binned extended likelihood, Minuit, Hesse; which
minimisations to run and which minimum to keep (where they start: `spe_start`; one minimisation: `spe_minimize`).

Model "full" (default): the PMT response of `spe_response` / `spe_pdfs` (pedestal, Gamma main peak, under-amplified
photoelectrons, exact Poisson sum of n-PE convolutions, Gaussian noise). The headline gain is the mean of the
1-PE main peak / e. Each minimisation goes on to the minimum (`spe_minimize`). The under-amplified part has two
shapes: a Gamma (nominal; an exponential is one) and flat from 0 up to the peak (ALT_SHAPE), the issue's two
examples. Both are fitted, and the gain is their average weighted by their likelihoods (weight of the flat shape
1 / (1 + exp(NLL_flat - NLL_Gamma - f)), f the Gamma's head start from fitting the fluctuations, `_freedom`); the
systematic is the weighted spread sqrt(w (1 - w)) |gain_flat - gain_Gamma|, or sqrt(p (1 - p)) |...| where larger,
p the chance that the flat shape is the closer one given how much NLL_flat - NLL_Gamma itself scatters over
spectra like this one (Vuong's spread, `vuong_spread`), with a floor (SYST_FLOOR: for the shapes that neither
contains).
Where the data tell the shapes apart the better one takes the weight; where they cannot, the error says so.
(With the Gamma alone, spectra whose under-amplified photoelectrons are flat up to the peak read 1.2-3 % low with
pulls down to -9.) That second fit starts afresh, so it is also a second start: when it ends lower, the nominal
fit was in a local minimum and is repeated from there. Where the pedestal hides the under-amplified part
(`_profiled`), refits with Q1 held one Hesse error either side check the minimum (going on
from a lower one) and widen the statistical error to the profile likelihood where that is flatter. That error
is shown in two parts: the spectrum's statistics and what the prior on the under-amplified fraction adds
(`spe_minimize.under_prior_share`). A fit of a
growing point (`warm`) starts from the previous fit's minima, and keeps its errors and systematic while the
point grew by less than 25 %. Model "seed": the old system's two Gaussians (`spe_seed`), for comparison.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeGuard

import numpy as np

from remote_monitor.analysis.histogram import Histogram
from remote_monitor.analysis.spe_minimize import MU_QUARTER_PE, Outcome, clamp, minimize, with_errors
from remote_monitor.analysis.spe_model import BuiltModel, get_model
from remote_monitor.analysis.spe_response import (
    BOUNDS,
    NOMINAL_SHAPE,
    PARAM_NAMES,
    ResponseShape,
    n_pe_terms,
    occupancy_over_quarter_pe,
    response_counts,
    under_moments,
)
from remote_monitor.analysis.spe_result import (
    NO_SIGNAL_MU,
    SEPARATED_Q1,
    Minima,
    SpeFitResult,
    chi2_ndf,
    curve,
    minima_only,
)
from remote_monitor.analysis.spe_seed import _full_components, fit_seed
from remote_monitor.analysis.spe_start import fit_range, start_values
from remote_monitor.analysis.units import pc_to_gain

__all__ = ["SpeFitResult", "_full_components", "fit_spe"]

SYST_FLOOR = 0.005  # relative gain systematic never below 0.5 %: the fit's model does not contain every 1-PE shape
# (measured 2026-12-01 on 36 spectra of 1M events, 6 shape families x 3 gains x 0.1/0.3 PE, stat errors 0.1-0.8 %:
# biases -2.7 ... +0.8 %, rms 1.0 %; in 31 of them the flat shape's fit was worse by 3-560 in NLL (spread small);
# pulls -1.30 / 2.47 with a 0.2 % floor, -0.83 / 1.52 with 0.5 %)
UNDER_SHAPE = {"w", "u", "k_u"}  # parameters of the under-amplified part only
ALT_SHAPE = {"b": 1.0, "u": 0.3, "k_u": 1.0}  # the second shape: flat from 0 up to the peak (u, k_u then unused)
UNDER_RESTART = {"w": 0.25, "u": 0.3, "k_u": 1.5}  # a typical under-amplified part, as a second start
REFINE_STEP = 1 / 3  # a growing point's refit: Minuit's first steps a third of the kept errors (it starts near the
# minimum; 2026-12-02, five classes at 100k events refitted from 85k: 0.80-0.96 of the time, Q1 within 0.03 %)
ERRORS_KEPT_ABOVE = 0.8  # a growing point's Hesse errors and systematic are kept (scaled) until its events grow 25 %
FREEDOM_NLL = 0.5  # NLL: how much lower, on average, a free parameter puts a fit's minimum by fitting the spectrum's
# fluctuations (Wilks: chi2(1) / 2); the Gamma under-amplified shape has two the flat one lacks (`_freedom`)
LOCAL_MINIMUM_NLL = 0.5  # a second start lower by more than this: the first fit stopped in a local minimum
NOISY_PEAK = 0.14  # sigma0 / Q1 above this: the pedestal hides the under-amplified part (its mean is 0.2-0.5 Q1)
PROFILE_FLOOR = 0.02  # the smallest NLL rise per side used to widen an error (at most 5x Hesse's)
PROFILE_ESCAPES = 2  # a held refit lower than the nominal by more than PROFILE_TOLERANCE: go on from there, twice
PROFILE_TOLERANCE = 0.05  # NLL: below Minuit's tolerance a held refit is not lower (beyond it, widening would
# read a nominal fit that stopped short as a flat profile: 1 mV spectra got errors 5x Hesse's that way)
TIER_WARM_TAIL = 1e-4  # a search short of n-PE terms starts the next tier when this little is beyond its terms


def _restart_under_amplified(model: BuiltModel, counts: np.ndarray, nominal: Outcome) -> Outcome:
    """Of the nominal fit and the same fit started again with a typical under-amplified part (UNDER_RESTART), the
    lower minimum (both without Hesse). The under-amplified part's shape (u, k_u) has several minima a fraction of
    an NLL apart, with the gain up to 1 % apart, and which one Migrad reaches from the start depends on its path (on
    the benchmark's timing spectrum, a rounding difference of 1e-11 in the loss sent it to one 0.41 NLL higher,
    with Q1 0.9 % lower; this second start found one 0.58 NLL lower than that). Near a bound Minuit's parameter
    transformation also flattens the likelihood, so a fit can stop short of a lower minimum with the part
    switched on."""
    other = minimize(model, counts, {**nominal.values, **UNDER_RESTART}, {}, hesse=False)
    return other if other.nll < nominal.nll else nominal


def _complete(values: Any) -> TypeGuard[dict[str, float]]:
    """A usable start: a finite value for every parameter of the model."""
    return isinstance(values, dict) and all(isinstance(values.get(name), (int, float))
                                            and math.isfinite(values[name]) for name in PARAM_NAMES)


def _searched_nominal(model: BuiltModel, counts: np.ndarray, start: dict[str, float]) -> Outcome:
    """The nominal fit from the histogram's start values, continued when Minuit stopped early, and started again
    from a typical under-amplified part; the lower minimum with its Hesse errors."""
    nominal = minimize(model, counts, start, {}, hesse=False)
    if not nominal.valid:  # Minuit stopped early (flat directions of the under-amplified part): go on from there
        nominal = minimize(model, counts, nominal.values, {}, hesse=False)
    return with_errors(model, _restart_under_amplified(model, counts, nominal))


def _profiled(model: BuiltModel, counts: np.ndarray, nominal: Outcome, escapes: int = PROFILE_ESCAPES) -> Outcome:
    """Where the pedestal hides the under-amplified part (sigma0 > NOISY_PEAK Q1), the likelihood is flat and curved
    along it, and Hesse's parabola is no guide: two refits with Q1 held one Hesse error either side. When one
    ends lower than the nominal (by PROFILE_TOLERANCE), Minuit had stopped short and the fit goes on from there;
    else the statistical error of Q1 is widened to the profile likelihood's width (`_profile_width`) where that is
    wider than Hesse's (Hesse's kept where it is narrower: a too large error is safe)."""
    step = nominal.errors.get("q1", math.nan)
    if not (nominal.values["sigma0"] > NOISY_PEAK * nominal.values["q1"] and math.isfinite(step) and step > 0):
        return nominal
    held = [minimize(model, counts, {**nominal.values, "q1": q1}, {"q1": q1}, hesse=False)
            for q1 in (clamp("q1", nominal.values["q1"] - step), clamp("q1", nominal.values["q1"] + step))]
    lowest = min(held, key=lambda o: o.nll)
    if lowest.nll < nominal.nll - PROFILE_TOLERANCE and escapes > 0:
        again = minimize(model, counts, lowest.values, {}, hesse=True)
        if again.nll < nominal.nll:
            return _profiled(model, counts, again, escapes - 1)
    widened = max(step, _profile_width(step, [held_fit.nll - nominal.nll for held_fit in held]))
    return replace(nominal, errors={**nominal.errors, "q1": widened})


def _profile_width(step: float, rises: list[float]) -> float:
    """The width of the parabola through the profile likelihood's three points (the minimum and Q1 held `step`
    either side, rising by `rises`): step / sqrt(rise_low + rise_high), each rise at least PROFILE_FLOOR. Both
    sides, not the flatter one alone: the profile of a hidden under-amplified part is flat-bottomed and lopsided
    (a second shallow minimum on one side), and the flatter side's rise at one error, extrapolated as a
    parabola, widened errors up to 5x where the draws scatter like Hesse's (the ninth independent stand at 0.6 mV,
    21 draws of one point at 60k events: gains scatter 1.44 %, Hesse 1.50 % in the median; quoted errors with the
    flatter side 2.76 % in the median and up to 6.6 %, with both sides 2.19 %)."""
    return step / math.sqrt(sum(max(rise, PROFILE_FLOOR) for rise in rises))


@dataclass(frozen=True)
class _Search:
    """The nominal fit, the alternative-shape fit (None: not asked), and where the nominal errors come from:
    the Hesse errors and the number of events they were computed at (the nominal's own, or an earlier fit's,
    then `kept` is true)."""

    nominal: Outcome
    alternative: Outcome | None
    hesse_errors: dict[str, float]
    hesse_events: float
    kept: bool = False
    delta_nll: float = math.nan  # NLL(alternative) - NLL(nominal)
    nll_spread: float = math.nan  # how much delta_nll would scatter over spectra like this one (`vuong_spread`)


class _Kept(NamedTuple):
    """Errors of an earlier fit of a growing point that a refit keeps: the Hesse errors, the number of events
    they were computed at, and the under-amplified prior's share of Q1's (`spe_minimize.under_prior_share`)."""

    errors: dict[str, float]
    events: float
    under_prior_share: float


def _kept_errors(warm: dict[str, Any], n_events: float) -> _Kept | None:
    """The Hesse errors of an earlier fit of the same growing point and its number of events, if it had at least
    ERRORS_KEPT_ABOVE of n_events (a statistical error scales as 1 / sqrt(events) for the same spectrum shape)
    and both its minima; None: the errors are computed again."""
    errors_at = warm.get("errors_at") or {}
    errors, at = warm.get("errors"), errors_at.get("events")
    delta = (warm.get("shapes") or {}).get("delta_nll")
    if not (_complete(warm.get("nominal")) and _complete(warm.get("alternative")) and isinstance(errors, dict)
            and isinstance(at, (int, float)) and isinstance(delta, (int, float))):
        return None
    finite = {k: float(v) for k, v in errors.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if "q1" not in finite:  # (a parameter at a bound may have no Hesse error: it is left out)
        return None
    share = errors_at.get("under_prior_share")
    share = float(share) if isinstance(share, (int, float)) and 0 <= share <= 1 else 0.0
    return _Kept(finite, float(at), share) if ERRORS_KEPT_ABOVE * n_events <= at <= n_events else None


def _refined(model: BuiltModel, counts: np.ndarray, warm: Minima, kept: _Kept) -> _Search:
    """One minimisation from the earlier fit's nominal minimum, without Hesse: its errors scaled by
    sqrt(events then / now), its alternative minimum moved with the nominal gain (the same systematic), and the
    two shapes' likelihood difference scaled with the events (it grows in proportion for the same spectrum, all but
    the nominal's head start from the fluctuations, `_freedom`)."""
    errors, at = kept.errors, kept.events
    scaled = {k: v * math.sqrt(at / float(counts.sum())) for k, v in errors.items()}
    nominal = minimize(model, counts, warm["nominal"], {}, hesse=False,
                        steps={k: REFINE_STEP * v for k, v in scaled.items()})
    moved = nominal.values["q1"] - warm["nominal"]["q1"]
    alternative = {**warm["alternative"], "q1": warm["alternative"]["q1"] + moved}
    freedom = _freedom(nominal.values)  # (does not grow with the events)
    delta = freedom + (float(warm["shapes"]["delta_nll"]) - freedom) * float(counts.sum()) / at
    return _Search(replace(nominal, errors=scaled, under_prior_share=kept.under_prior_share),
                   Outcome(alternative, {}, True, math.nan), errors, at, kept=True, delta_nll=delta,
                   nll_spread=vuong_spread(model.shape, counts, nominal.values, alternative))


def _best_fit(model: BuiltModel, counts: np.ndarray, start: dict[str, float], second_start: bool,
              warm: Minima | None = None) -> _Search:
    """The nominal fit and the alternative-shape fit, started from the histogram's start values, or from `warm`
    (the minima of a fit of the same growing point with fewer events, `SpeFitResult.minima`; that fit did
    the search, so the nominal fit is one minimisation from there). When that fit had at least
    ERRORS_KEPT_ABOVE of the events, its errors and systematic are kept (`_refined`).

    The alternative (under-amplified part flat up to the peak, ALT_SHAPE) is a second start as well: when its minimum is
    lower than the nominal one, the nominal fit stopped in a local minimum (typically the under-amplified part
    switched off, w -> 0, and a wider main peak pulled down) and is repeated from there."""
    n_events = float(counts.sum())
    kept = _kept_errors(warm, n_events) if warm and second_start else None
    if warm and kept is not None:
        return _refined(model, counts, warm, kept)
    usable = {name: values for name, values in (warm or {}).items() if _complete(values)}
    if "nominal" in usable:
        nominal = minimize(model, counts, usable["nominal"], {}, hesse=True)
    else:
        nominal = _searched_nominal(model, counts, start)
    if not second_start or nominal.values["mu"] < NO_SIGNAL_MU:  # no photoelectrons: no shape to compare (on
        # a dead demo point the flat shape's fit from the start values wandered for 144 s to a NaN likelihood)
        return _Search(nominal, None, nominal.errors, n_events)
    alternative = _alternative_fit(model, counts, [usable.get("alternative", start), nominal.values])
    if alternative is not None and alternative.nll < nominal.nll - LOCAL_MINIMUM_NLL:
        again = minimize(model, counts, alternative.values, {}, hesse=True)
        if again.nll < nominal.nll:  # its Hesse errors, often at a bound (w = 0), are no smaller than the first
            errors = {k: max(v, nominal.errors.get(k, 0.0)) for k, v in again.errors.items()}
            share_of = again if again.errors.get("q1", 0.0) >= nominal.errors.get("q1", 0.0) else nominal
            nominal = replace(again, errors=errors, under_prior_share=share_of.under_prior_share)  # (Q1's error's own)
    nominal = _profiled(model, counts, nominal)
    if alternative is None:
        return _Search(nominal, None, nominal.errors, n_events)
    return _Search(nominal, alternative, nominal.errors, n_events, delta_nll=alternative.nll - nominal.nll,
                   nll_spread=vuong_spread(model.shape, counts, nominal.values, alternative.values))


def _alternative_fit(model: BuiltModel, counts: np.ndarray, starts: list[dict[str, float]]) -> Outcome | None:
    """The fit with the flat under-amplified shape (ALT_SHAPE) from the first of `starts` where Minuit does not
    stop on a NaN likelihood (a start far from the minimum can take it there: 1500 events at 0.6 PE whose first
    guess of Q1 was a quarter of the truth); None when it stops on NaN from every start."""
    from zfit.minimizers.strategy import FailMinimizeNaN

    for start in starts:
        try:
            return minimize(model, counts, start, ALT_SHAPE, hesse=False)
        except FailMinimizeNaN:
            continue
    return None


def _alternative_weight(delta_nll: float, freedom: float) -> float:
    """Likelihood weight of the alternative shape, NLL(alternative) - NLL(nominal) = delta_nll (0 if unknown), of which
    `freedom` is the nominal's head start from fitting the fluctuations (`_freedom`)."""
    if not math.isfinite(delta_nll):
        return 0.0
    return 1.0 / (1.0 + math.exp(min(delta_nll - freedom, 700.0)))


def _freedom(values: dict[str, float]) -> float:
    """How much lower the nominal fit's minimum lies than the flat shape's on average from fitting the spectrum's
    fluctuations alone: FREEDOM_NLL for each parameter that the flat shape holds (u, k_u) and the nominal fit left
    off its bounds (one at a bound fits no fluctuation). Without it the weights of drawn spectra followed the Gamma
    more than those of their expected spectra: over 100 draws of three classes (2026-12-05), NLL_flat - NLL_Gamma
    was 0.72 ± 0.17 higher than on the expected spectrum (0.13 ± 0.23, 0.02 ± 0.34, -0.25 ± 0.40 with this
    subtracted), and the gain at 0.5 PE / 1e7 / 1 mV read -0.27 ± 0.13 % where its expected spectrum reads -0.02 %
    (-0.10 ± 0.12 % with it)."""
    at_bound = set(_at_limit(values))
    return FREEDOM_NLL * sum(1 for name in set(ALT_SHAPE) - set(NOMINAL_SHAPE) if name not in at_bound)


def _peak_to_valley(p: dict[str, float], n_max: int) -> float | None:
    """Height of the 1-PE peak over the minimum between pedestal and peak, on a fine grid of the model."""
    q0, s0, q1 = p["q0"], p["sigma0"], p["q1"]
    if q1 <= SEPARATED_Q1 * s0:
        return None
    shape = ResponseShape(np.linspace(q0 - 4 * s0, q0 + 2 * q1, 601), n_max)
    density = _model_density(p, shape)
    d = density[int(np.searchsorted(shape.edges, q0 + s0)):]
    rising = np.flatnonzero(np.diff(d) > 0)
    if len(rising) == 0:
        return 1.0  # no valley: the 1-PE peak is not separated from the pedestal
    valley = float(d[rising[0]])
    return float(d[rising[0]:].max()) / valley if valley > 0 else None


def _at_limit(values: dict[str, float]) -> list[str]:
    """Names of fitted parameters within 0.1 % of the range from a bound (results are less trustworthy)."""
    out = []
    for name, v in values.items():
        if name in NOMINAL_SHAPE:  # held there
            continue
        lo, hi = BOUNDS[name]
        if min(v - lo, hi - v) < 1e-3 * (hi - lo):
            out.append(name)
    return out


def _terms_for(start: dict[str, float], warm: Minima | None) -> int:
    """n-PE terms for the start's occupancy, or a growing point's last fitted one if that was higher."""
    earlier = (warm or {}).get("nominal")
    mus = [start["mu"], *([earlier["mu"]] if _complete(earlier) else [])]
    return max(n_pe_terms(mu) for mu in mus)


def _sized_search(edges: np.ndarray, counts: np.ndarray, start: dict[str, float], systematic: bool,
                  warm: Minima | None) -> tuple[int, _Search]:
    """`_best_fit` with enough n-PE terms for the fitted occupancy: the start's occupancy comes from the
    pedestal's share of the events, which an unresolved spectrum (1-PE peak inside the pedestal's width) hides,
    and a model short of terms cannot hold the spectrum's upper tail, so its minimum has too low an occupancy
    and too high a gain (0.5e7 / 1 mV / 2.5 PE: start 0.56 PE, 8 terms, fitted 1.76 PE and Q1 +12 %, 88 NLL
    above the minimum with 18 terms). When the fitted occupancy needs more terms, the search is repeated with
    them (a few tiers at most, `spe_response.TERM_TIERS`): from the minima of the tier before where those hold
    (`_tier_start`), else with the whole search again."""
    n_max = _terms_for(start, warm)
    while True:
        search = _best_fit(get_model(edges, n_max), counts, start, systematic, warm)
        needed = n_pe_terms(search.nominal.values["mu"])
        if needed <= n_max:
            return n_max, search
        warm = _tier_start(search, n_max) or warm
        n_max = needed


def _tier_start(search: _Search, n_max: int) -> Minima | None:
    """The minima of a search with too few (n_max) n-PE terms as the start of the next tier's, when the
    missing terms hold a negligible part of the events even at twice its fitted occupancy (TIER_WARM_TAIL): its
    minima then lie next to the larger model's, and the next tier is one minimisation from each instead of the
    whole search again (at 0.3 PE the start's occupancy, from the pedestal's share, read 0.16 and asked for 5
    terms, the fit 0.29 and 8: the search twice took 6.6 s, from the minima 4.9 s). None where the short model
    may have bent its minimum to hold the upper tail (an unresolved 2.5 PE spectrum with 8 terms fitted 1.76 PE;
    from there the 12-term fit stopped at 2.06 PE, with a new search at 2.5 PE). Without errors, so that
    nothing of it is kept as if from an earlier fit of the point (`_kept_errors`)."""
    from scipy.stats import poisson

    if poisson.sf(n_max, 2.0 * search.nominal.values["mu"]) > TIER_WARM_TAIL:
        return None
    return minima_only(_minima(search))


def _split_statistical(q1_err: float, under_prior_share: float) -> tuple[float, float]:
    """Q1's Hesse error (or its profile widening) split into the spectrum's statistics and the under-amplified
    prior's part (`spe_minimize.under_prior_share`, in [0, 1] as computed and as kept), which add in quadrature
    to it again."""
    return q1_err * math.sqrt(1.0 - under_prior_share), q1_err * math.sqrt(under_prior_share)


def _fit_full(hist: Histogram, systematic: bool, warm: Minima | None) -> SpeFitResult:
    t0 = time.perf_counter()
    start = start_values(hist)
    lo, hi = fit_range(hist, start)
    counts = hist.counts[lo:hi].astype(float)
    n_max, search = _sized_search(hist.edges[lo:hi + 1], counts, start, systematic, warm)
    nominal = search.nominal
    values, errors, valid = nominal.values, nominal.errors, nominal.valid
    limits = _at_limit(values)
    shape_only = bool(limits) and set(limits) <= UNDER_SHAPE and math.isfinite(errors.get("q1", math.nan))
    valid = valid or shape_only  # only the under-amplified shape at a bound: the gain and its error stand
    q1, shape_spread, shapes = _shape_average(search)
    q1_stat = errors.get("q1", math.nan)
    syst = max(SYST_FLOOR * q1, shape_spread)
    stat, under_prior = _split_statistical(q1_stat, nominal.under_prior_share)
    parts = response_counts(values, ResponseShape(hist.edges, n_max), float(counts.sum()))
    total = np.sum(list(parts.values()), axis=0)
    shown = {k: v for k, v in parts.items() if k in ("pedestal", "under-amplified") or v.max() > 0.5}
    k = 1.0 / values["r1"] ** 2
    theta = values["q1"] / k
    under_mean = under_moments(values)[0]
    mean_pe = (1 - values["w"]) * q1 + values["w"] * under_mean
    return SpeFitResult(
        status="ok", reason=_reason(search, valid, limits, shapes, systematic), model="full",
        gain=pc_to_gain(q1), gain_err=pc_to_gain(math.hypot(q1_stat, syst)), gain_err_stat=pc_to_gain(stat),
        gain_err_under_prior=pc_to_gain(under_prior), gain_err_syst=pc_to_gain(syst), q0_pc=values["q0"],
        sigma0_pc=values["sigma0"], q1_pc=q1,
        q1_err_pc=math.hypot(q1_stat, syst), peak_pc=max(k - 1, 0.0) * theta, sigma1_pc=values["r1"] * values["q1"],
        spe_resolution=values["r1"], mean_pe_charge_pc=mean_pe, mean_charge_per_pe_gain=pc_to_gain(mean_pe),
        under_amplified_fraction=values["w"], under_amplified_mean_pc=under_mean,
        under_amplified_shape=values["k_u"], mu=values["mu"], mu_err=errors.get("mu"),
        mu_quarter_pe=float(occupancy_over_quarter_pe(values)), mu_quarter_pe_err=errors.get(MU_QUARTER_PE),
        peak_to_valley=_peak_to_valley(values, n_max),
        chi2_ndf=chi2_ndf(total[lo:hi], counts, len(PARAM_NAMES) - len(NOMINAL_SHAPE)), n_events=int(hist.counts.sum()),
        converged=valid, at_limit=limits, fit_seconds=round(time.perf_counter() - t0, 3),
        curve=curve(hist, total, shown),
        minima=_minima(search),
    )


class _FlatShape(NamedTuple):
    """The flat under-amplified shape's likelihood weight and its chance of being the closer shape."""

    weight: float
    chance: float


def _shape_average(search: _Search) -> tuple[float, float, _FlatShape]:
    """(Q1, the shapes' spread, the flat shape's weight and chance): the two under-amplified shapes' Q1 averaged
    with their likelihood weights (`_alternative_weight`); their spread sqrt(w (1 - w)) |difference|, or
    sqrt(p (1 - p)) |difference| where that is larger, p the chance that the flat shape is the closer one given how
    much the likelihood difference itself would scatter over spectra like this one (`_flat_chance`); the
    nominal's Q1 alone without the alternative fit."""
    values, alternative = search.nominal.values, search.alternative
    if alternative is None:
        return values["q1"], 0.0, _FlatShape(0.0, 0.0)
    freedom = _freedom(values)
    flat = _FlatShape(_alternative_weight(search.delta_nll, freedom),
                      _flat_chance(search.delta_nll - freedom, search.nll_spread))
    difference = alternative.values["q1"] - values["q1"]
    spread = max(math.sqrt(p * (1 - p)) for p in flat) * abs(difference)
    return values["q1"] + flat.weight * difference, spread, flat


def _flat_chance(margin: float, ranking_spread: float) -> float:
    """The chance that the flat shape is the closer one, Phi(-margin / s), where margin is the Gamma's lead in NLL
    beyond its head start and s the spread that lead would have over spectra like this one (Vuong; 0 or unknown:
    no chance beyond the likelihood weight's)."""
    if not (math.isfinite(margin) and math.isfinite(ranking_spread) and ranking_spread > 0):
        return 0.0
    return 0.5 * math.erfc(margin / (math.sqrt(2.0) * ranking_spread))


def vuong_spread(shape: ResponseShape, counts: np.ndarray, nominal: dict[str, float],
                 alternative: dict[str, float]) -> float:
    """How much the two shapes' NLL difference would scatter over spectra like this one (Vuong 1989): sqrt(N) times
    the standard deviation, over the spectrum's events, of the log ratio of the two fitted shapes' probabilities of
    each event's bin (NaN where a filled bin has probability 0 in either)."""
    filled = counts > 0
    with np.errstate(divide="ignore"):
        logs = [np.log(_bin_probabilities(values, shape)[filled]) for values in (alternative, nominal)]
    ratio, weights = logs[0] - logs[1], counts[filled]
    if not np.all(np.isfinite(ratio)):
        return math.nan
    mean = float(np.sum(weights * ratio) / np.sum(weights))
    return math.sqrt(float(np.sum(weights * (ratio - mean) ** 2)))


def _bin_probabilities(values: dict[str, float], shape: ResponseShape) -> np.ndarray:
    """The fitted model's probability of each bin of the fit range (normalised over the range)."""
    density = _model_density(values, shape)
    return density / density.sum()


def _model_density(values: dict[str, float], shape: ResponseShape) -> np.ndarray:
    """The fitted model's share of the events in each bin of `shape`, all its parts summed."""
    return np.sum(list(response_counts(values, shape, 1.0).values()), axis=0)


def _reason(search: _Search, valid: bool, limits: list[str], flat: _FlatShape, systematic: bool) -> str:
    """What the operator reads about the fit: converged or not, parameters at a limit, the flat shape's weight,
    errors kept from an earlier fit, and why there is no second shape."""
    reason = "fit converged" if valid else "Minuit did not converge"
    if limits:
        reason += f"; at a limit: {', '.join(limits)}"
    if flat.weight >= 0.01:
        reason += f"; under-amplified part flat up to the peak with weight {flat.weight:.2f}"
    if flat.chance >= 0.01 and abs(flat.chance - 0.5) < abs(flat.weight - 0.5):
        reason += f"; the flat shape the closer one with chance {flat.chance:.2f} (Vuong): in the systematic"
    if search.kept:
        reason += f"; errors and systematic of the fit at {search.hesse_events:.0f} events, scaled"
    if systematic and search.alternative is None:
        reason += ("; no photoelectrons: no second shape fitted" if search.nominal.values["mu"] < NO_SIGNAL_MU else
                   "; the flat under-amplified shape's fit failed (NaN likelihood): systematic at its floor")
    return reason


def _minima(search: _Search) -> Minima:
    """The search's minima, errors and shapes' likelihood difference, for a later fit of the same growing point."""
    alternative = {} if search.alternative is None else {"alternative": search.alternative.values}
    return {"nominal": search.nominal.values, **alternative, "errors": search.hesse_errors,
            "errors_at": {"events": search.hesse_events, "under_prior_share": search.nominal.under_prior_share},
            "shapes": {"delta_nll": search.delta_nll, "nll_spread": search.nll_spread}}


def fit_spe(hist: Histogram, model: str = "full", n_pe_max: int = 6, exponential: bool = False,  # noqa: ARG001
            min_events: int = 500, systematic: bool = True,
            warm: Minima | None = None) -> SpeFitResult:
    """Fit the SPE spectrum; never raises: failures come back as status 'failed' with the reason.

    warm: `minima` of an earlier fit of the same point with fewer events (a growing point): the fits start there
    instead of at the histogram's start values (full model only).

    n_pe_max and exponential are accepted for old configs: the number of n-PE terms now follows the
    occupancy, and the under-amplified term is always part of the model."""
    n_events = int(hist.counts.sum())
    if model not in ("full", "seed"):
        return SpeFitResult("failed", f"unknown SPE model {model!r} (full or seed)", model, n_events=n_events)
    if n_events < min_events:
        return SpeFitResult("too_few_events", f"{n_events} events in the histogram, need {min_events}",
                            model, n_events=n_events)
    try:
        return fit_seed(hist) if model == "seed" else _fit_full(hist, systematic, warm)
    except Exception as exc:  # noqa: BLE001 - a fit must never stop the monitor; the point shows the reason instead
        return SpeFitResult("failed", f"{type(exc).__name__}: {exc}", model, n_events=n_events)


def fit_details(result: SpeFitResult) -> dict[str, Any]:
    """The numbers an operator checks next to the gain (for logs and the benchmark)."""
    keys = ("gain", "gain_err_stat", "gain_err_syst", "mu", "spe_resolution", "under_amplified_fraction",
            "peak_to_valley", "chi2_ndf", "at_limit", "fit_seconds")
    return {k: getattr(result, k) for k in keys}
