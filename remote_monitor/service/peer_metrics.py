"""What the other pre-calibration analyses report per point and per PMT, beside the gain: relative detection
efficiency, transit time and TTS, dark rate, pedestal, Hamamatsu angle; CSV columns and the scan summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from remote_monitor.analysis.dark_rate import pooled_dark_rate, quarter_pe_share
from remote_monitor.analysis.detection_efficiency import (
    CENTRE,
    EfficiencySettings,
    de_verdict,
    laser_occupancy,
    monitor_dark,
    monitor_value,
    quarter_pe_occupancy,
    raw_efficiency,
    uniformity,
    zero_pe_occupancy,
)
from remote_monitor.analysis.laser_window import delay_in_window, window_on_laser
from remote_monitor.analysis.peer_columns import de_left_out, peer_table
from remote_monitor.analysis.point_extras import Digitizer, ExtrasAccumulator
from remote_monitor.analysis.point_verdict import NO_USABLE_LIGHT, no_light
from remote_monitor.analysis.timing_fit import fit_timing, multi_photoelectron_note
from remote_monitor.analysis.timing_jitter import timing_core, tts_less_jitter
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import SCAN_POINTS


def new_accumulator(cfg: Config, digitizer: Digitizer | None = None) -> ExtrasAccumulator:
    d = digitizer or Digitizer(baseline_samples=cfg.analysis.baseline_samples,
                               trigger_threshold_mv=cfg.analysis.trigger_threshold_mv)
    return ExtrasAccumulator(cfg.timing, d, cfg.efficiency.sipm_window_ns, cfg.efficiency.sipm_occupancy_threshold_pc)


def wavedump_extras(files: dict[int, Path], cfg: Config) -> ExtrasAccumulator:
    """Stream the point's WaveDump files (trigger, PMT, SiPM) once more and fill the accumulator."""
    from remote_monitor.analysis.charges import ChargeAccumulator
    from remote_monitor.analysis.wavedump import WaveDumpReader

    ch, a = cfg.channels, cfg.analysis
    sipm = (ch.sipm,) if ch.sipm is not None and ch.sipm in files else ()
    align = ChargeAccumulator(ch, a, extra=sipm)
    readers = {c: WaveDumpReader(files[c], record_length=a.record_length, chunk_events=a.chunk_events, channel=c,
                                 sample_bytes=a.sample_bytes, adc_bits=a.adc_bits)
               for c in align.wanted if c in files}
    acc = new_accumulator(cfg)
    iters = {c: r.chunks() for c, r in readers.items()}
    finished: set[int] = set()
    while len(finished) < len(iters):
        for c, it in iters.items():
            chunk = None if c in finished else next(it, None)
            if chunk is None:
                finished.add(c)
            else:
                align.add(chunk, c)
        block = align.aligned(final=len(finished) == len(iters))
        if block is not None:
            acc.add(block[ch.trigger], block[ch.pmt], block.get(ch.sipm) if ch.sipm is not None else None)
    return acc


NO_MONITOR = "no light-monitor value"  # a point's DE left out for it: no SiPM channel or reference result to read
NOT_MEASURED = "not measured"  # the DE verdict of a scan whose centre point has no light-monitor value


def _monitor_dark(eff: EfficiencySettings, monitor: float | None, reference: dict[str, Any] | None) -> str | None:
    """Why the point's light monitor saw no usable light (a reference PMT without it says so itself), or None."""
    if eff.normalisation == "reference_occupancy" and reference and reference.get("status") in NO_USABLE_LIGHT:
        return f"reference PMT: {reference.get('reason')}"
    return monitor_dark(eff.normalisation, monitor, eff)


def _reference_mu(reference: dict[str, Any] | None) -> tuple[float, float] | None:
    """(occupancy, error) of a reference PMT that saw usable light, else None."""
    if not reference or reference.get("mu") is None or reference.get("status") in NO_USABLE_LIGHT:
        return None
    return reference["mu"], reference["mu_err"]


def _no_de(pmt_dark: str | None, occupancy: float | None, monitor_why: str | None, monitor: float | None,
           normalisation: str) -> str | None:
    """Why the point has no raw DE (occupancy / monitor needs light on both), or None."""
    if pmt_dark:
        return f"no usable light on the PMT: {pmt_dark}"
    if monitor_why:
        return monitor_why
    if occupancy is None:
        return "no PMT occupancy (no SPE fit)"
    return None if monitor else no_monitor_reason(normalisation)


def no_monitor_reason(normalisation: str) -> str:
    """Why a point that saw light has no raw DE when its light monitor gave no value (no SiPM channel, no
    reference result to read)."""
    return f"{NO_MONITOR} ({normalisation})"


def _occupancy(eff: EfficiencySettings, fit: dict[str, Any], pmt_charges: np.ndarray | None
               ) -> tuple[float | None, float | None, str]:
    """(occupancy, error, the dark rate's key that counts in its units) of the configured kind: the fitted mu over a
    quarter PE, the fitted mu, or -ln of the share of empty events (its threshold, 3 pedestal widths, sits near a
    quarter PE)."""
    if eff.occupancy == "zero_pe" and pmt_charges is not None and fit.get("q0_pc") is not None:
        return (*zero_pe_occupancy(pmt_charges, fit["q0_pc"], fit["sigma0_pc"], eff.zero_pe_sigmas),
                "dark_rate_quarter_pe")
    share = quarter_pe_share(fit) if eff.occupancy == "quarter_pe" else None
    if share is not None and fit.get("mu") and fit.get("n_events"):
        return (*quarter_pe_occupancy(float(fit["mu"]) * share, fit.get("mu_quarter_pe_err"), int(fit["n_events"])),
                "dark_rate_quarter_pe")
    return fit.get("mu"), fit.get("mu_err"), "dark_rate"


def _window_length_ns(charge_window_ns: Sequence[float] | None) -> float | None:
    return float(charge_window_ns[1]) - float(charge_window_ns[0]) if charge_window_ns else None


def finish_extras(acc: ExtrasAccumulator, fit: dict[str, Any] | None, reference: dict[str, Any] | None,
                  pmt_charges: np.ndarray | None, cfg: Config, hist: dict[str, Any] | None = None,
                  laser_delay_ns: float | None = None, charge_window_ns: Sequence[float] | None = None
                  ) -> dict[str, Any]:
    """The point's extras from the filled accumulator, its SPE fit, its charge histogram and (for zero_pe) its
    charges. Raw DE only where the PMT and the light monitor both saw light (else None and raw_de_reason); the
    dark rate not corrected with the fit of a PMT without light (laser_delay_ns: see `point_verdict.no_light`).
    The occupancy of a lit PMT is the laser's: less its dark pulses in the charge window (`laser_occupancy`;
    occupancy_dark, the share taken off), where [efficiency] subtract_dark is on."""
    eff = cfg.efficiency
    fit = fit or {}
    occ, occ_err, dark_key = _occupancy(eff, fit, pmt_charges)
    sipm = acc.sipm_summary()
    mon, mon_err = monitor_value(eff.normalisation, sipm, _reference_mu(reference))
    pmt_dark = no_light(fit, hist, laser_delay_ns)
    window_ns = _window_length_ns(charge_window_ns)
    dark = acc.dark(fit, pmt_dark, window_ns or 0.0)
    occ_dark = None
    if eff.subtract_dark and not pmt_dark and occ is not None and occ_err is not None:
        occ, occ_err, occ_dark = laser_occupancy(occ, occ_err, dark.get(f"{dark_key}_hz"),
                                                 dark.get(f"{dark_key}_err_hz"), window_ns)
    why = _no_de(pmt_dark, occ, _monitor_dark(eff, mon, reference), mon, eff.normalisation)
    de, de_err = (None, None) if why else raw_efficiency(occ, occ_err, mon, mon_err)
    timing = fit_timing(acc.times.pmt_minus_trigger_ns()).to_dict()
    timing = tts_less_jitter(timing, acc.noise_jitter(timing_core(timing)))
    if timing["status"] == "ok" and (note := multi_photoelectron_note(fit.get("mu"))):
        timing["note"] = note
    return {"occupancy": occ, "occupancy_err": occ_err, "occupancy_dark": occ_dark,
            "monitor": mon, "monitor_err": mon_err,
            "normalisation": eff.normalisation, "sipm": sipm, "raw_de": de, "raw_de_err": de_err,
            **({"raw_de_reason": why} if why else {}),
            **({"light_monitor_missing": True} if why == no_monitor_reason(eff.normalisation) else {}),
            "timing": timing, "dark": dark, "pedestal": acc.pedestal()}


def laser_shift_ns(cfg: Config, result: dict[str, Any]) -> float:
    """How far the laser-pulse windows must move to hold the laser pulses (ns; 0 where the timing's window holds
    the measured delay, none was measured, or [analysis] move_window_to_laser is off): the timing window centred on
    the measured delay, as `laser_window.window_on_laser` places a time selection."""
    delay = result.get("laser_delay_ns")
    window = cfg.timing.laser_window_ns
    if delay is None or window[0] <= float(delay) <= window[1] or not cfg.analysis.move_window_to_laser:
        return 0.0
    return window_on_laser(window, float(delay), fixed=False)[0] - window[0]  # (centred on the pulses)


def on_the_laser(cfg: Config, shift_ns: float) -> Config:
    """The configuration with the laser-pulse windows of the timing, the dark counting and the SiPM moved by
    shift_ns (a stand whose trigger comes at another time before the laser shifts all of them alike)."""
    def moved(window: tuple[float, float]) -> tuple[float, float]:
        return window[0] + shift_ns, window[1] + shift_ns

    timing = replace(cfg.timing, laser_window_ns=moved(cfg.timing.laser_window_ns),
                     dark_exclude_ns=moved(cfg.timing.dark_exclude_ns))
    efficiency = replace(cfg.efficiency, sipm_window_ns=moved(cfg.efficiency.sipm_window_ns))
    return replace(cfg, timing=timing, efficiency=efficiency)


def point_extras(sources: dict[str, Path], cfg: Config, result: dict[str, Any], charges: Any) -> dict[str, Any]:
    """Extras of a WaveDump point (called by processing after the SPE fit); where the laser pulses arrive outside
    the timing's window, the laser-pulse windows are moved onto them (`on_the_laser`), and the point says so."""
    files = {int(c): p for c, p in sources.items() if c.isdigit()}
    shift = laser_shift_ns(cfg, result)
    if abs(shift) >= 1.0:
        cfg = on_the_laser(cfg, shift)
        lo, hi = cfg.timing.laser_window_ns
        result["warnings"].append(f"timing, dark-count and SiPM windows moved onto the laser pulses by {shift:+.0f} "
                                  f"ns (searched at {lo:.0f}-{hi:.0f} ns after the trigger; [timing] laser_window_ns, "
                                  "dark_exclude_ns and [efficiency] sipm_window_ns set them)")
    acc = wavedump_extras(files, cfg)
    return finish_extras(acc, result.get("fit"), result.get("reference"),
                         getattr(charges, "pmt_charge_pc", None), cfg, result.get("histogram"),
                         delay_in_window(result.get("warnings", []), result.get("laser_delay_ns")),
                         result.get("charge_window_ns"))


def _unmonitored(point: dict[str, Any]) -> bool:
    """Whether a point's DE is left out for its light monitor's missing value alone (`finish_extras`; an error
    point is left out for its error)."""
    return point.get("status") != "error" and bool((point.get("peer") or {}).get("light_monitor_missing"))


def peer_summary(points: dict[str, dict[str, Any]], cfg: Config) -> dict[str, Any]:
    """Per PMT: uniformity of gain and relative DE over the 21 positions, pedestal drift, and the DE verdict;
    points whose DE means nothing (`peer_columns.de_left_out`: no light, error) are left out of the DE and
    listed in de_left_out."""
    scan = {p: v for p, v in points.items() if p in SCAN_POINTS}
    table = peer_table(scan)
    left_out = {p: why for p, v in sorted(scan.items()) if (why := de_left_out(v))}
    gain_u = uniformity({p: c["gain"] for p, c in table.items()})
    de_u = uniformity({p: c["relative_de"] for p, c in table.items()})
    base = [c["baseline_mv"] for c in table.values() if c["baseline_mv"] is not None]
    ped = [c["pedestal_pc"] for c in table.values() if c["pedestal_pc"] is not None]
    verdict, reason = de_verdict(de_u, cfg.efficiency)
    if verdict == "in progress" and CENTRE in left_out and _unmonitored(scan[CENTRE]):
        verdict, reason = NOT_MEASURED, (f"relative detection efficiency not measured: the centre point has "
                                         f"{left_out[CENTRE]}; [efficiency] normalisation = \"none\" takes the "
                                         "occupancies alone (a steady laser), or record the SiPM / a reference PMT")
    elif verdict == "in progress" and CENTRE in left_out:
        reason = f"relative detection efficiency needs the centre point, left out ({left_out[CENTRE]})"
    elif left_out:
        reason += f"; left out: {', '.join(left_out)}"
    return {"gain_uniformity": gain_u, "de_uniformity": de_u,
            "baseline_drift_mv": (max(base) - min(base)) if base else None,
            "pedestal_drift_pc": (max(ped) - min(ped)) if ped else None,
            "de_verdict": verdict, "de_reason": reason,
            "de_left_out": [{"point": p, "reason": why} for p, why in left_out.items()],
            "dark_rate": pooled_dark_rate({p: (v.get("peer") or {}).get("dark") or {}
                                           for p, v in sorted(scan.items())})}
