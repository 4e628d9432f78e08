"""Following growing WaveDump files: only complete events, alignment by event number, rewritten files,
resume after a restart; the running histogram always equals a full read of the finished files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remote_monitor.analysis.charges import extract_point_charges
from remote_monitor.analysis.histogram import fill_histogram
from remote_monitor.analysis.wavedump_writer import ascii_bytes, binary_bytes
from remote_monitor.service.follower import PointFollower
from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms
from remote_monitor.stand.config import Config

N, LENGTH = 600, 260
CFG = Config()


@pytest.fixture(scope="module")
def waves() -> dict[int, np.ndarray]:
    return simulate_point_waveforms(np.random.default_rng(7), N, LENGTH, 1.0e7, 1.0,
                                    SimulationConfig(include_sipm=False))


def _bytes(fmt: str, samples: np.ndarray, ch: int, first: int) -> bytes:
    if fmt == "txt":
        return ascii_bytes(samples, ch, board_id=31, first_event=first)
    return binary_bytes(samples, ch, board_id=31, first_event=first)


def _full_counts(files: dict[int, Path]) -> tuple[np.ndarray, int]:
    charges = extract_point_charges(files, CFG.channels, CFG.analysis)
    lo, hi = CFG.histogram.range_pc
    return fill_histogram(charges.pmt_charge_pc, CFG.histogram.n_bins, lo, hi).counts, charges.n_events


def _files(tmp_path: Path, fmt: str) -> dict[int, Path]:
    return {ch: tmp_path / f"wave{ch}.{fmt}" for ch in (0, 2)}


@pytest.mark.parametrize("fmt", ["txt", "dat"])
def test_growing_files_cut_anywhere_give_the_full_read_result(tmp_path: Path, waves: dict, fmt: str) -> None:
    files = _files(tmp_path, fmt)
    data = {ch: _bytes(fmt, waves[ch], ch, 5) for ch in files}
    for path in files.values():
        path.write_bytes(b"")
    follower = PointFollower(files, CFG)
    rng = np.random.default_rng(1)
    written = dict.fromkeys(files, 0)
    for ch, path in files.items():  # WaveDump has just started: about one event per file
        path.write_bytes(data[ch][:2000])
        written[ch] = 2000
    follower.update()
    while any(written[ch] < len(data[ch]) for ch in files):
        for ch, path in files.items():  # channels grow unevenly, cut in the middle of lines and events
            step = int(rng.integers(1, len(data[ch]) // 5))
            with open(path, "ab") as fh:
                fh.write(data[ch][written[ch]: written[ch] + step])
            written[ch] = min(len(data[ch]), written[ch] + step)
        follower.update()
        assert follower.n_events <= N
    follower.update(final=True)
    counts, n_events = _full_counts(files)
    assert follower.n_events == n_events == N
    assert np.array_equal(follower.pmt.counts, counts) and counts.sum() > 0.9 * N
    assert follower.warnings() == [] and follower.rewrites == 0


def test_events_missing_in_one_channel_are_dropped_and_counted(tmp_path: Path, waves: dict) -> None:
    files = _files(tmp_path, "txt")
    keep = np.ones(N, dtype=bool)
    keep[[3, 100, 101, 599]] = False
    files[0].write_bytes(_bytes("txt", waves[0], 0, 0))
    pmt = b"".join(_bytes("txt", waves[2][i: i + 1], 2, i) for i in np.flatnonzero(keep))
    files[2].write_bytes(pmt[: len(pmt) // 2])
    follower = PointFollower(files, CFG)
    follower.update()
    files[2].write_bytes(pmt)
    follower.update(final=True)
    counts, n_events = _full_counts(files)
    assert follower.n_events == n_events == N - 4
    assert np.array_equal(follower.pmt.counts, counts)
    assert "dropped 4 event(s) not present in every channel" in follower.warnings()


def test_rewritten_or_shrunk_file_is_read_from_scratch(tmp_path: Path, waves: dict) -> None:
    files = _files(tmp_path, "txt")
    for ch, path in files.items():
        path.write_bytes(_bytes("txt", waves[ch], ch, 0))
    follower = PointFollower(files, CFG)
    follower.update()
    assert follower.n_events == N
    for ch, path in files.items():  # WaveDump restarted the point: fewer, different events
        path.write_bytes(_bytes("txt", waves[ch][::-1][:200], ch, 0))
    follower.update(final=True)
    counts, n_events = _full_counts(files)
    assert follower.rewrites == 1 and follower.n_events == n_events == 200
    assert np.array_equal(follower.pmt.counts, counts)
    # rewritten with the same length but other samples: detected by content, not size
    for ch, path in files.items():
        path.write_bytes(_bytes("txt", waves[ch][200:400], ch, 0))
    follower.update(final=True)
    assert follower.rewrites == 2 and np.array_equal(follower.pmt.counts, _full_counts(files)[0])


@pytest.mark.parametrize("fmt", ["txt", "dat"])
def test_resume_from_saved_state_after_a_restart(tmp_path: Path, waves: dict, fmt: str) -> None:
    files = _files(tmp_path, fmt)
    data = {ch: _bytes(fmt, waves[ch], ch, 0) for ch in files}
    files[0].write_bytes(data[0][: len(data[0]) * 2 // 3])  # the trigger channel is ahead: pending events
    files[2].write_bytes(data[2][: len(data[2]) // 3 + 17])
    first = PointFollower(files, CFG)
    first.update()
    state = first.state()
    assert 0 < first.n_events < N
    for ch in files:
        files[ch].write_bytes(data[ch])
    resumed = PointFollower(files, CFG)
    assert resumed.restore(state)
    assert resumed.n_events == first.n_events
    assert first.acc.delays.total > 0 and np.array_equal(resumed.acc.delays.counts, first.acc.delays.counts)
    resumed.update(final=True)
    counts, n_events = _full_counts(files)
    assert resumed.n_events == n_events == N and np.array_equal(resumed.pmt.counts, counts)
    whole = PointFollower(files, CFG)  # the laser-timing histogram too: as if read in one go
    whole.update(final=True)
    assert np.array_equal(resumed.acc.delays.counts, whole.acc.delays.counts)
    # a state of files that were rewritten meanwhile is refused
    files[2].write_bytes(_bytes(fmt, waves[2][::-1], 2, 0))
    assert not PointFollower(files, CFG).restore(state)


def test_final_result_from_the_running_histogram_equals_full_processing(tmp_path: Path, waves: dict) -> None:
    from remote_monitor.service.live import result_from_summary
    from remote_monitor.service.processing import fingerprint, process_point
    from remote_monitor.stand.layout import PointKey

    files = _files(tmp_path, "txt")
    for ch, path in files.items():
        path.write_bytes(_bytes("txt", waves[ch], ch, 0))
    follower = PointFollower(files, CFG)
    follower.update(final=True)
    key = PointKey("SN1", "261129_100000", "theta0_phi0")
    sources = {str(ch): p for ch, p in files.items()}
    followed = result_from_summary(key, fingerprint(sources), follower.summary(), CFG, provisional=False)
    full = process_point(key, sources, CFG)
    for field in ("status", "events", "selected_events", "histogram", "source_files", "charge_window_ns",
                  "laser_delay_ns"):
        assert followed[field] == full[field], field
    assert full["charge_window_ns"] is not None and full["laser_delay_ns"] is not None
    timing = ("fit_seconds",)  # how long the fit took: the only field allowed to differ
    assert ({k: v for k, v in followed["fit"].items() if k not in timing}
            == {k: v for k, v in full["fit"].items() if k not in timing})


def test_provisional_fits_compute_their_errors_and_the_final_fit_keeps_the_last_ones(tmp_path: Path,
                                                                                     waves: dict) -> None:
    """A provisional fit started from the previous one's minima computes its own errors; the final fit keeps
    the last provisional fit's errors (scaled) when that fit had at least 80 % of the events."""
    from remote_monitor.service.live import result_from_summary
    from remote_monitor.stand.layout import PointKey

    key = PointKey("SN1", "261129_100000", "theta0_phi0")
    files = _files(tmp_path, "dat")
    for ch, path in files.items():
        path.write_bytes(_bytes("dat", waves[ch][:540], ch, 0))
    follower = PointFollower(files, CFG)
    follower.update(final=False)
    first = result_from_summary(key, {}, follower.summary(), CFG, provisional=True)
    warm = {"pmt": first["fit"]["minima"]}
    again = result_from_summary(key, {}, follower.summary(), CFG, provisional=True, warm=warm)
    assert first["fit"]["status"] == again["fit"]["status"] == "ok"
    assert "scaled" not in again["fit"]["reason"]  # the same events, yet its own Hesse and alternative fit
    for ch, path in files.items():
        with path.open("ab") as fh:
            fh.write(_bytes("dat", waves[ch][540:], ch, 540))
    follower.update(final=True)
    final = result_from_summary(key, {}, follower.summary(), CFG, provisional=False,
                                warm={"pmt": again["fit"]["minima"]})
    at = again["fit"]["minima"]["errors_at"]["events"]
    assert f"of the fit at {at:.0f} events, scaled" in final["fit"]["reason"]
    assert final["fit"]["minima"]["errors_at"]["events"] == at
    ratio = final["fit"]["gain_err_stat"] / again["fit"]["gain_err_stat"]  # scaled by sqrt(events then / now)
    assert ratio == pytest.approx((540 / 600) ** 0.5, rel=0.02)
