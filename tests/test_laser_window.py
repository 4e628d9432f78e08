"""The charge window and the laser pulses: a window set for another stand's delay does not read as "no light"
alone, the point says where the PMT pulses arrive and which setting moves the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis.charges import AnalysisSettings
from remote_monitor.analysis.laser_window import (
    LEAD_NS,
    delay_histogram,
    laser_delay_ns,
    record_end_warning,
    window_miss,
    window_on_laser,
    window_warning,
)
from remote_monitor.analysis.wavedump_writer import write_binary
from remote_monitor.service.live import LiveFollowing
from remote_monitor.service.processing import fingerprint, point_sources, process_point
from remote_monitor.service.store import ResultsStore
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms
from remote_monitor.stand.config import Config, FitSettings
from remote_monitor.stand.layout import PointKey, channel_file


def test_laser_peak_is_found_over_noise_and_judged_against_the_window() -> None:
    rng = np.random.default_rng(1)
    delays = delay_histogram()
    delays.fill(np.concatenate([rng.normal(180.0, 2.0, 3000), rng.uniform(-100.0, 500.0, 6000)]))
    assert abs(laser_delay_ns(delays) - 180.0) < 2.0  # type: ignore[operator]
    warning = window_warning(delays, (300.0, 420.0), "fixed_window_start_ns")
    assert warning is not None and "arrive 180 ns" in warning
    assert window_miss(["dropped 3 event(s) not present in every channel", warning]) == warning
    assert window_warning(delays, (150.0, 270.0), "fixed_window_start_ns") is None
    assert window_on_laser((300.0, 420.0), 180.0, fixed=True) == (155.0, 275.0)  # starts LEAD_NS before them
    assert window_on_laser((321.0, 330.0), 180.0, fixed=False) == (175.5, 184.5)  # a time selection: centred
    flat = delay_histogram()
    flat.fill(rng.uniform(-100.0, 500.0, 20_000))  # noise and dark pulses only: nothing to judge by
    assert laser_delay_ns(flat) is None and window_warning(flat, (300.0, 420.0), "x") is None


def test_faint_laser_peak_over_many_noise_crossings_is_found_and_slopes_steps_and_pile_ups_are_not() -> None:
    # 1 mV noise over a 3 mV threshold: a third of the events' first pulse is a noise crossing, about 1100 per
    # 4 ns bin; 0.03 PE at 1e7 in 400k events adds a peak of some 4000-7000 (an independent stand's numbers)
    rng = np.random.default_rng(7)
    noise = rng.uniform(-90.0, 430.0, 140_000)
    delays = delay_histogram()
    delays.fill(np.concatenate([noise, rng.normal(60.0, 1.6, 6000)]))
    assert abs(laser_delay_ns(delays) - 60.0) < 1.0  # type: ignore[operator]
    assert window_warning(delays, (300.0, 420.0), "fixed_window_start_ns") is not None
    for dark in (noise,  # no light: noise crossings alone
                 np.concatenate([noise, rng.uniform(-10.0, 430.0, 40_000)]),  # a step up (the baseline's end)
                 rng.exponential(25.0, 200_000) - 90.0,  # first crossings piled up at the record's start
                 rng.uniform(-90.0, 430.0, 200_000) ** 2 / 430.0):  # a slope
        flat = delay_histogram()
        flat.fill(dark)
        assert laser_delay_ns(flat) is None
    few = delay_histogram()
    few.fill(rng.normal(60.0, 1.6, 40))  # fewer than PEAK_EVENTS: nothing to judge by
    assert laser_delay_ns(few) is None


def test_point_whose_window_misses_the_pulses_is_read_on_them_and_says_so(tmp_path: Path) -> None:
    sim = SimulationConfig(n_events=6000, record_length=260, include_reference=False, seed=4)
    waves = simulate_point_waveforms(np.random.default_rng(4), 6000, 260, 1.0e7, 0.3, sim)
    key = PointKey("WIN1", "261202_120000", "theta0_phi0")
    for channel, samples in waves.items():
        path = channel_file(tmp_path, key, channel, binary=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_binary(path, samples, channel)
    fit = FitSettings(min_events=200)
    good = process_point(key, point_sources(tmp_path, key), Config(fit=fit))
    assert good["status"] != "error", good["reason"]
    assert window_miss(good["warnings"]) is None and not any("moved" in w for w in good["warnings"])

    early = AnalysisSettings(fixed_window_start_ns=0.0)  # 0-120 ns: before the pulses
    moved = process_point(key, point_sources(tmp_path, key), Config(fit=fit, analysis=early))
    assert moved["status"] == good["status"] and moved["fit"]["gain"] == pytest.approx(good["fit"]["gain"], rel=0.02)
    note = next(w for w in moved["warnings"] if w.startswith("charge window moved onto the laser pulses"))
    assert "configured window 0-120 ns" in note, note
    arrive = float(note.split("arrive ")[1].split(" ns")[0])
    assert 300.0 <= arrive <= 420.0, note  # inside the default window, where the good point read them
    start = float(note.split("fixed_window_start_ns = ")[1].split(";")[0])  # what to set
    assert abs(start - (arrive - LEAD_NS)) <= 1.0, note  # (both rounded to 1 ns)
    assert good["charge_window_ns"][0] <= good["laser_delay_ns"] <= good["charge_window_ns"][1]  # (in the result)
    assert moved["laser_delay_ns"] == pytest.approx(arrive, abs=0.5)
    record_end = (260 - 61) * 2.0  # ns after the latest trigger pulse (sample 60 +- 1) of the 260-sample records
    assert moved["charge_window_ns"] == pytest.approx([start, min(start + 120.0, record_end)], abs=0.5)  # as used

    sources = point_sources(tmp_path, key)  # followed live, the final result comes from the full reading then
    for analysis, in_full in ((AnalysisSettings(), False), (early, True)):
        live = LiveFollowing(Config(fit=fit, analysis=analysis), ResultsStore(tmp_path / f"out{in_full}"))
        live.follow(key, sources, can_fit=False)
        assert (live.final_job(key, sources, fingerprint(sources)) is None) == in_full

    kept = AnalysisSettings(fixed_window_start_ns=0.0, move_window_to_laser=False)
    result = process_point(key, point_sources(tmp_path, key), Config(fit=fit, analysis=kept))
    assert result["status"] == "error" and "no light" in result["reason"], result["reason"]
    miss = window_miss(result["warnings"])
    assert miss is not None and result["reason"].startswith(miss) and "fixed_window_start_ns" in miss


@pytest.mark.parametrize(("length", "measured_to", "warned"), [(1024, 420.0, False), (260, 398.0, False),
                                                                (232, 342.0, True)])
def test_the_window_is_reported_as_measured_to_the_record_end(tmp_path: Path, length: int, measured_to: float,
                                                             warned: bool) -> None:
    # the trigger pulse starts at sample 60 +- 1, the default window is 300-420 ns after it and the laser pulses
    # start about 327 ns after it: a 260-sample record ends 75 ns after them (no warning: a pulse loses < 0.1 %
    # of its charge), a 232-sample one 15 ns after them (warned: a pulse loses a fifth of it)
    waves = simulate_point_waveforms(np.random.default_rng(5), 3000, length, 1.0e7, 0.3, SimulationConfig())
    key = PointKey("END1", "261203_080000", "theta0_phi0")
    for channel, samples in waves.items():
        path = channel_file(tmp_path, key, channel, binary=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_binary(path, samples, channel)
    result = process_point(key, point_sources(tmp_path, key), Config(fit=FitSettings(min_events=200)))
    assert result["charge_window_ns"] == [300.0, measured_to]
    cut = [w for w in result["warnings"] if w.startswith("charge window cut by the end of the records")]
    assert bool(cut) == warned, result["warnings"]
    if warned:
        after = float(cut[0].split("records ")[1].split(" ns after")[0])
        assert after == pytest.approx(measured_to - result["laser_delay_ns"], abs=1.0) and 10 <= after <= 20, cut


def test_record_end_warning_only_for_a_window_cut_close_after_the_pulses() -> None:
    assert record_end_warning((300.0, 420.0), (300.0, 420.0), 327.0) is None  # not cut
    assert record_end_warning((300.0, 420.0), (300.0, 398.0), 327.0) is None  # cut 71 ns after them
    assert record_end_warning((300.0, 420.0), (300.0, 398.0), None) is None  # no laser peak to judge by
    near = record_end_warning((300.0, 420.0), (300.0, 360.0), 327.0)
    assert near is not None and "33 ns after the laser pulses start" in near and "measured to 360 ns" in near
    before = record_end_warning((300.0, 420.0), (300.0, 310.0), 327.0)
    assert before is not None and "before the laser pulses" in before
