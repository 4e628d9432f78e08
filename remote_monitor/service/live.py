"""Points while they are acquired: follow their files, publish a provisional gain every few seconds, and
give the final result from the running histogram as soon as the files are quiet (no full re-read).

The monitor calls `follow` while a point's files change (it may return a provisional fit job),
`provisional_finished` with that job's result, `final_job` when the files are quiet and `done` once the final
result is recorded. Fits run in the monitor's worker processes."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from remote_monitor.analysis.laser_window import window_miss
from remote_monitor.analysis.wavedump import WaveformFileError
from remote_monitor.service.follower import PointFollower
from remote_monitor.service.store import ResultsStore, atomic_write_json, now_iso, read_json
from remote_monitor.stand.config import Config
from remote_monitor.stand.layout import ROOT_SOURCE, PointKey

if TYPE_CHECKING:
    from remote_monitor.analysis.spe_result import Minima

log = logging.getLogger("remote_monitor")


def _fit(summary_hist: dict[str, Any], cfg: Config, warm: Minima | None) -> dict[str, Any]:
    from remote_monitor.analysis.histogram import Histogram
    from remote_monitor.service.processing import fit_histogram

    lo, hi = cfg.histogram.range_pc
    hist = Histogram.empty(cfg.histogram.n_bins, lo, hi)  # exact edges: to_dict rounds them to 6 digits
    hist.counts[:] = np.asarray(summary_hist["counts"], dtype=np.int64)
    return fit_histogram(hist, cfg, warm=warm)


def result_from_summary(key: PointKey, prints: dict[str, Any], summary: dict[str, Any], cfg: Config,
                        provisional: bool, warm: dict[str, Minima | None] | None = None) -> dict[str, Any]:
    """A point's result from its running histogram (what `processing.process_point` gives after a full read).

    warm: the minima of the point's previous provisional fit per histogram ("pmt", "reference"); the fits
    start there (`spe_fit.fit_spe`), so that the final result comes seconds sooner than a fresh search.
    Provisional fits compute their errors (Hesse, alternative shape); the final fit keeps those of the last
    provisional fit, scaled, when that fit had at least `spe_fit.ERRORS_KEPT_ABOVE` of the events (one
    minimisation)."""
    from remote_monitor.analysis.spe_result import minima_only
    from remote_monitor.service.processing import base_result, judge, reference_entry, window_fields

    warm = {name: minima_only(m) if provisional else m for name, m in (warm or {}).items()}
    started = time.perf_counter()
    result = base_result(key, {} if provisional else prints)
    result.update(events=summary["n_events"], selected_events=summary["n_selected"],
                  warnings=list(summary["warnings"]), histogram=summary["histogram"],
                  **window_fields(summary["charge_window_ns"], summary["laser_delay_ns"]))
    result["fit"] = fit = _fit(summary["histogram"], cfg, warm.get("pmt"))
    if summary.get("reference") is not None:
        result["reference"] = reference_entry(_fit(summary["reference"], cfg, warm.get("reference")),
                                              summary["reference"])
    if provisional:
        gain = fit.get("gain") if fit.get("status") == "ok" else None
        result["status"] = "acquiring"
        result["acquiring"] = {"events": summary["n_events"], "gain": gain, "gain_err": fit.get("gain_err"),
                               "fit_status": fit.get("status"), "updated_at": now_iso()}
        result["reason"] = (f"acquiring: {summary['n_events']} events, provisional gain {gain:.4g} ± "
                            f"{fit.get('gain_err') or 0:.2g}" if gain is not None else
                            f"acquiring: {summary['n_events']} events, no provisional gain yet ({fit.get('status')})")
    else:
        judge(result, fit, cfg, key.kind)
        result["followed"] = True
    result["processed_at"] = now_iso()
    result["processing_seconds"] = round(time.perf_counter() - started, 3)
    return result


class LiveFollowing:
    """Followers of the points being acquired, their provisional fits and saved states."""

    def __init__(self, cfg: Config, store: ResultsStore) -> None:
        self.cfg = cfg
        self.store = store
        self.state_dir = store.out_root / "state" / "follow"
        self.followers: dict[PointKey, PointFollower] = {}
        self.broken: set[PointKey] = set()
        self._last_fit: dict[PointKey, tuple[float, int]] = {}
        self._provisional: set[PointKey] = set()  # provisional fits in a worker
        self._minima: dict[PointKey, dict[str, Minima | None]] = {}  # of the last provisional fit, per histogram

    @property
    def enabled(self) -> bool:
        return self.cfg.monitor.follow

    def _state_path(self, key: PointKey) -> Path:
        return self.state_dir / f"{key.serial}_{key.scan_id}_{key.point}.json"

    def _follower(self, key: PointKey, sources: dict[str, Path]) -> PointFollower | None:
        if key in self.broken or ROOT_SOURCE in sources:
            return None
        files = {int(ch): path for ch, path in sources.items()}
        from remote_monitor.service.processing import pmt_channel_for

        cfg, note = pmt_channel_for(self.cfg, sources)
        follower = self.followers.get(key)
        if follower is not None and follower.files == {ch: files.get(ch) for ch in follower.files} and \
                follower.cfg.channels == cfg.channels:  # (a configured PMT file that appeared later is read)
            return follower
        try:
            follower = PointFollower(files, cfg, (note,) if note else ())
        except (WaveformFileError, ValueError):  # a required channel has no file yet
            return None
        saved = read_json(self._state_path(key))
        if saved is not None and follower.restore(saved):
            log.info("%s: resumed at %d events from the saved state", key.label, follower.n_events)
        self.followers[key] = follower
        self._last_fit.setdefault(key, (time.monotonic(), follower.n_events))  # first fit after a while
        return follower

    def follow(self, key: PointKey, sources: dict[str, Path], can_fit: bool) -> tuple[Any, ...] | None:
        """Read what was written since the last look; every provisional_seconds a provisional fit job
        (function, *args) for a worker, whose result goes to `provisional_finished`.

        can_fit False: the workers are busy with final results, which go first (no provisional fit now)."""
        if not self.enabled:
            return None
        follower = self._follower(key, sources)
        if follower is None:
            return None
        try:
            follower.update()
        except (WaveformFileError, OSError) as exc:
            log.info("%s: not followed any more (%s); processed when quiet", key.label, exc)
            self.broken.add(key)
            self.followers.pop(key, None)
            return None
        last_time, last_events = self._last_fit.get(key, (0.0, -1))
        due = time.monotonic() - last_time >= self.cfg.monitor.provisional_seconds
        if not (can_fit and due and follower.n_events != last_events and key not in self._provisional):
            return None
        self._last_fit[key] = (time.monotonic(), follower.n_events)
        self._provisional.add(key)
        self._save(key, follower)
        return result_from_summary, key, {}, follower.summary(), follower.cfg, True, self._minima.get(key)

    def _save(self, key: PointKey, follower: PointFollower) -> None:
        try:
            atomic_write_json(self._state_path(key), follower.state())
        except OSError as exc:
            log.warning("%s: follower state not saved: %s", key.label, exc)

    def final_job(self, key: PointKey, sources: dict[str, Path], prints: dict[str, Any]) -> tuple[Any, ...] | None:
        """(function, args) giving the final result from the running histogram; None: process in full."""
        if not self.enabled:
            return None
        follower = self._follower(key, sources) if key in self.followers or self._state_path(key).exists() else None
        if follower is None:
            return None
        try:
            follower.update(final=True)
        except (WaveformFileError, OSError):
            self.done(key)
            return None  # the full processing gives the error result with its reason
        summary = follower.summary()
        if self.cfg.analysis.move_window_to_laser and window_miss(summary["warnings"]):
            self.done(key)
            return None  # the full processing reads the point again with the window on the laser pulses
        return result_from_summary, key, prints, summary, follower.cfg, False, self._minima.get(key)

    def provisional_finished(self, key: PointKey, result: dict[str, Any] | None) -> dict[str, Any] | None:
        """A provisional fit came back (None: it failed or was not started); the result to show, or None
        when the point is final by now."""
        self._provisional.discard(key)
        if result is None:
            log.info("%s: no provisional fit this time", key.label)
            return None
        follower = self.followers.get(key)
        if follower is None or follower.finalized:
            return None
        self._minima[key] = {"pmt": (result["fit"] or {}).get("minima"),
                             "reference": (result.get("reference") or {}).get("minima")}
        return result

    def done(self, key: PointKey) -> None:
        """The final result of the point is recorded: forget it and its saved state."""
        self.followers.pop(key, None)
        self.broken.discard(key)
        self._last_fit.pop(key, None)
        self._provisional.discard(key)
        self._minima.pop(key, None)
        self._state_path(key).unlink(missing_ok=True)
