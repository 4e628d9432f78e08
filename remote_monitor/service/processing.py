"""One scan point from its files to a result dict: charges -> histogram -> SPE fit -> status."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remote_monitor.report.curves import compact_fit
from remote_monitor.service.store import now_iso
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import (
    DEFAULT_LAYOUT,
    ROOT_SOURCE,
    Layout,
    PointKey,
    is_regular_data_file,
    parse_source_file,
    point_angles,
    point_dir_name,
    point_hv,
    scan_dir,
)
from remote_monitor.stand.provenance import point_provenance

if TYPE_CHECKING:
    from remote_monitor.analysis.spe_result import Minima


def point_sources(data_root: Path, key: PointKey, layout: Layout = DEFAULT_LAYOUT) -> dict[str, Path]:
    """The files of one point that exist now: channel number (as str) -> path, or 'root' -> Pyrate file."""
    folder = scan_dir(data_root, key.serial, key.scan_id, layout) / point_dir_name(key.point, layout)
    found: dict[str, Path] = {}
    for path in sorted(folder.glob(f"*{key.point}.*")):
        parsed = parse_source_file(path, data_root, layout)
        if parsed is not None and parsed[0] == key and is_regular_data_file(path, data_root):
            found.setdefault(parsed[1], path)
    return found


PMT_CHANNELS = (2, 3)  # the PMT under test is on one of these


def pmt_channel_for(cfg: Config, sources: dict[str, Path]) -> tuple[Config, str | None]:
    """The configuration for a point's files, and a note when it differs: where the configured PMT channel
    (2 or 3) has no file and the other one has, the PMT under test is read from that one."""
    ch = cfg.channels
    other = next((c for c in PMT_CHANNELS if c != ch.pmt), None)
    if ROOT_SOURCE in sources or str(ch.pmt) in sources or other is None or str(other) not in sources \
            or other in (ch.trigger, ch.sipm, ch.reference):
        return cfg, None
    return replace(cfg, channels=replace(ch, pmt=other)), (
        f"PMT under test read from channel {other}: the configured [channels] pmt = {ch.pmt} has no file")


def missing_sources(sources: dict[str, Path], cfg: Config, expected: bool = False) -> list[int]:
    """Required (or, with expected=True, all expected) channels without a file; none with a Pyrate file.
    A PMT under test on the other PMT channel counts (`pmt_channel_for`)."""
    if ROOT_SOURCE in sources:
        return []
    cfg, _ = pmt_channel_for(cfg, sources)
    wanted = cfg.channels.expected if expected else cfg.channels.required
    return [ch for ch in wanted if str(ch) not in sources]


def fingerprint(sources: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Path, size and mtime of each source file: a point is reprocessed only when this changes."""
    prints = {}
    for name, path in sorted(sources.items()):
        try:
            st = path.stat()
        except OSError:
            continue  # deleted between listing and stat: not part of the point (any more)
        prints[name] = {"path": str(path), "size": st.st_size, "mtime": st.st_mtime}
    return prints


def classify(fit: dict[str, Any], cfg: Config, kind: str = "scan", hist: dict[str, Any] | None = None,
             laser_delay_ns: float | None = None) -> tuple[str, str]:
    """(status, reason) of a point: see analysis/point_verdict.py."""
    from remote_monitor.analysis.point_verdict import classify as verdict

    return verdict(fit, cfg.gain.healthy_band, kind, hist, laser_delay_ns)


def judge(result: dict[str, Any], fit: dict[str, Any], cfg: Config, kind: str) -> None:
    """Put the fit and the point's status and reason into result (which holds histogram, events, warnings).

    An error shows no gain; a truncated file whose complete events were fitted is a warning, not an error."""
    from remote_monitor.analysis.laser_window import delay_in_window, window_miss
    from remote_monitor.analysis.point_verdict import without_gain

    miss = window_miss(result.get("warnings", []))
    on_laser = delay_in_window(result.get("warnings", []), result.get("laser_delay_ns"))
    result["status"], result["reason"] = classify(fit, cfg, kind, result["histogram"], on_laser)
    if result["status"] == "error" and miss:  # "no light" because the pulses are outside the window: that first
        result["reason"] = f"{miss}. In the window: {result['reason']}"
    if result["status"] == "error" and fit:
        fit = without_gain(fit)
    result["fit"] = compact_fit(fit, result["histogram"])  # no x, rounded, spans: ~4x smaller
    if any("truncated" in w.lower() for w in result.get("warnings", [])):
        result["reason"] += f" (from the {result.get('events')} complete events of a truncated file)"


def fit_histogram(hist: Any, cfg: Config, warm: Minima | None = None) -> dict[str, Any]:
    """The configured SPE fit of a filled Histogram, as a dict (warm: see `spe_fit.fit_spe`)."""
    from remote_monitor.analysis.spe_fit import fit_spe

    return fit_spe(hist, model=cfg.fit.model, n_pe_max=cfg.fit.n_pe_max, exponential=cfg.fit.exponential,
                   min_events=cfg.fit.min_events, warm=warm).to_dict()


def reference_entry(fit: dict[str, Any], hist: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a point's result keeps of the reference PMT's SPE fit. Where its spectrum shows no usable light (judged
    as the point's PMT is, `point_verdict.no_light`), the status says so (NO_LIGHT, or TOO_BRIGHT where nearly
    every event holds photoelectrons, with the reason) and the gain is moved to rejected_gain, as an error
    point's."""
    from remote_monitor.analysis.point_verdict import NO_LIGHT, TOO_BRIGHT, no_light, too_bright, without_gain

    entry = {k: fit.get(k) for k in ("gain", "gain_err", "status", "mu", "mu_err", "minima")}
    why = no_light(fit, hist)
    if not why:
        return entry
    return {**without_gain(entry), "status": TOO_BRIGHT if too_bright(hist) else NO_LIGHT, "reason": why}


def _fit_charges(charges: Any, cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    from remote_monitor.analysis.histogram import fill_histogram

    lo, hi = cfg.histogram.range_pc
    hist = fill_histogram(charges, cfg.histogram.n_bins, lo, hi)
    return fit_histogram(hist, cfg), hist.to_dict()


def _read_charges(sources: dict[str, Path], cfg: Config) -> Any:
    from remote_monitor.analysis.charges import extract_point_charges

    if ROOT_SOURCE in sources:
        from remote_monitor.analysis.pyrate_root import read_pyrate_charges

        return read_pyrate_charges(sources[ROOT_SOURCE], cfg.channels, cfg.analysis)
    files = {int(ch): path for ch, path in sources.items()}
    return _on_laser(files, cfg, extract_point_charges(files, cfg.channels, cfg.analysis))


def _on_laser(files: dict[int, Path], cfg: Config, charges: Any) -> Any:
    """The charges again with the window on the laser pulses, when the configured window misses them (and
    [analysis] move_window_to_laser); the point says so in a warning."""
    from remote_monitor.analysis.charges import charge_window, extract_point_charges, settings_on_laser
    from remote_monitor.analysis.laser_window import moved_warning, window_miss

    miss = window_miss(charges.warnings)
    if not (miss and cfg.analysis.move_window_to_laser and charges.laser_delay_ns is not None):
        return charges
    moved = settings_on_laser(cfg.analysis, charges.laser_delay_ns)
    again = extract_point_charges(files, cfg.channels, moved)
    (window, setting), (moved_window, _) = charge_window(cfg.analysis), charge_window(moved)
    again.warnings.append(moved_warning(window, moved_window, charges.laser_delay_ns, setting))
    return again


def _peer_extras(sources: dict[str, Path], cfg: Config, result: dict[str, Any], charges: Any) -> dict[str, Any] | None:
    """Detection efficiency, timing, dark rate, pedestal (service/peer_metrics.py); None when not computable."""
    from remote_monitor.service.peer_metrics import point_extras

    if ROOT_SOURCE in sources:
        return None
    try:
        return point_extras(sources, cfg, result, charges)
    except Exception as exc:  # noqa: BLE001  (these extras must never cost the point its gain)
        result["warnings"].append(f"no timing/DE/dark rate: {type(exc).__name__}: {exc}")
        return None


def window_fields(window_ns: Sequence[float] | None, laser_delay_ns: float | None) -> dict[str, Any]:
    """The result's fields for where the charges were integrated (ns after the trigger: the configured window, or
    the one moved onto the laser) and where the laser pulses arrived; None where unknown (Pyrate input gives
    charges, not waveforms; no laser peak)."""
    return {"charge_window_ns": [round(float(v), 1) for v in window_ns] if window_ns else None,
            "laser_delay_ns": round(float(laser_delay_ns), 1) if laser_delay_ns is not None else None}


def base_result(key: PointKey, source_files: dict[str, Any]) -> dict[str, Any]:
    """A point's result before analysis: identity, position, no events, no fit."""
    angles = point_angles(key.point)
    return {
        "serial": key.serial, "scan_id": key.scan_id, "point": key.point, "kind": key.kind,
        "theta": angles[0] if angles else None, "phi": angles[1] if angles else None, "hv": point_hv(key.point),
        "events": 0, "selected_events": 0, "fit": None, "histogram": None, "reference": None, "warnings": [],
        "charge_window_ns": None, "laser_delay_ns": None, "source_files": source_files,
    }


def process_point(key: PointKey, sources: dict[str, Path], cfg: Config) -> dict[str, Any]:
    """Full analysis of one point; never raises for bad data: the result says 'error' and why."""
    from remote_monitor.analysis.charges import MissingChannelError
    from remote_monitor.analysis.wavedump import WaveformFileError

    started = time.perf_counter()
    result = base_result(key, fingerprint(sources))
    result["provenance"] = point_provenance(cfg, sources)
    cfg, channel_note = pmt_channel_for(cfg, sources)
    missing = missing_sources(sources, cfg)
    try:
        if missing:
            raise MissingChannelError(f"missing channel(s) {missing} for {key.label}: no regular file (FIFOs, "
                                      "devices and symlinks out of the data tree are never read)")
        charges = _read_charges(sources, cfg)
    except (WaveformFileError, MissingChannelError, OSError, ValueError) as exc:
        result.update(status="error", reason=str(exc))
    else:
        result.update(events=charges.n_events, selected_events=charges.n_selected,
                      **window_fields(charges.window_ns, charges.laser_delay_ns))
        result["warnings"] = list(charges.warnings) + ([channel_note] if channel_note else [])
        fit, result["histogram"] = _fit_charges(charges.pmt_charge_pc, cfg)
        judge(result, fit, cfg, key.kind)
        if charges.reference_charge_pc is not None:
            result["reference"] = reference_entry(*_fit_charges(charges.reference_charge_pc, cfg))
        result["peer"] = _peer_extras(sources, cfg, result, charges)
    result["processed_at"] = now_iso()
    result["processing_seconds"] = round(time.perf_counter() - started, 3)
    return result
