"""Read per-event pulse start and charge from Pyrate ROOT output (trees Tree_CH<n>) as an alternative input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from remote_monitor.analysis.charges import AnalysisSettings, ChannelMap, MissingChannelError, PointCharges
from remote_monitor.analysis.wavedump import WaveformFileError

BRANCHES = ("PulseStart", "PulseCharge")


def _first_per_event(values: np.ndarray) -> np.ndarray:
    """Pyrate may store one value or a list of pulses per event: keep the first pulse (NaN if none)."""
    if values.dtype != object:
        return values.astype(float)
    return np.array([float(v[0]) if len(v) else np.nan for v in values])


def _read_tree(path: Path, root_file: object, channel: int) -> tuple[np.ndarray, np.ndarray]:
    name = f"Tree_CH{channel}"
    if name not in root_file:  # type: ignore[operator]
        raise MissingChannelError(f"{path}: no tree {name} (channel {channel}) in the Pyrate file")
    tree = root_file[name]  # type: ignore[index]
    missing = [b for b in BRANCHES if b not in tree]
    if missing:
        raise WaveformFileError(path, name, f"missing branch(es) {', '.join(missing)}")
    arrays = tree.arrays(list(BRANCHES), library="np")
    return _first_per_event(arrays["PulseStart"]), _first_per_event(arrays["PulseCharge"])


def read_pyrate_charges(path: Path, channels: ChannelMap, settings: AnalysisSettings) -> PointCharges:
    """Charges of one point from a Pyrate ROOT file, with the same selection as the waveform path."""
    import uproot

    try:
        root_file = uproot.open(path)
    except Exception as exc:  # noqa: BLE001 - uproot raises several types for non-ROOT or damaged files
        raise WaveformFileError(path, "file", f"not a readable ROOT file ({type(exc).__name__}: {exc})") from None
    with root_file:
        trig_start, _ = _read_tree(path, root_file, channels.trigger)
        pmt_start, pmt_charge = _read_tree(path, root_file, channels.pmt)
        ref = _read_tree(path, root_file, channels.reference) if channels.reference is not None else None
    if len(trig_start) != len(pmt_start):
        raise WaveformFileError(path, f"Tree_CH{channels.pmt}",
                                f"{len(pmt_start)} events but {len(trig_start)} in Tree_CH{channels.trigger}")
    dt_ns = pmt_start - trig_start
    lo_q, hi_q = settings.charge_range_pc
    selected = np.isfinite(trig_start) & (pmt_charge >= lo_q) & (pmt_charge <= hi_q)
    if settings.mode == "leading_edge":
        selected &= (dt_ns >= settings.time_window_ns[0]) & (dt_ns <= settings.time_window_ns[1])
    ref_charge = None
    if ref is not None:
        ref_charge = ref[1][np.isfinite(ref[1]) & (ref[1] >= lo_q) & (ref[1] <= hi_q)]
    return PointCharges(
        pmt_charge_pc=pmt_charge[selected], reference_charge_pc=ref_charge, n_events=len(pmt_charge),
        n_selected=int(selected.sum()), pmt_minus_trigger_ns=dt_ns[np.isfinite(dt_ns)], warnings=[],
    )
