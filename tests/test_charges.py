"""Charge extraction: the stand's Pyrate math on hand-computable pulses, event alignment, missing channels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr

from remote_monitor.analysis.charges import (
    AnalysisSettings,
    ChannelMap,
    MissingChannelError,
    corrected_mv,
    extract_point_charges,
    lattice_dither,
    lattice_step_pc,
    pulse_start,
    window_charge_pc,
)
from remote_monitor.analysis.units import MV_PER_ADC, PC_PER_MV_SAMPLE
from remote_monitor.analysis.wavedump_writer import write_ascii, write_binary

N, LENGTH = 40, 300


def _point(tmp_path: Path, pmt_height_adc: int = 100, writer=write_ascii, suffix: str = "txt") -> dict[int, Path]:
    """Trigger pulse at sample 60; PMT: 8 samples of -pmt_height_adc at 222..229 (= 325 ns after trigger + 4 ns)."""
    trigger = np.full((N, LENGTH), 800, dtype=np.uint16)
    trigger[:, 60:80] += 6000
    pmt = np.full((N, LENGTH), 14000, dtype=np.uint16)
    pmt[:, 224:232] -= pmt_height_adc
    files = {}
    for ch, samples in ((0, trigger), (2, pmt)):
        files[ch] = tmp_path / f"wave{ch}.{suffix}"
        writer(files[ch], samples, ch)
    return files


def test_known_pulse_gives_the_hand_computed_charge(tmp_path: Path) -> None:
    # 8 samples x 100 ADC x (2000 mV / 16384) = 97.65625 mV*sample; x 2 ns / 50 ohm = 3.90625 pC
    expected = 8 * 100 * 2000 / 16384 * 2 / 50
    for mode in ("fixed_window", "leading_edge"):
        charges = extract_point_charges(_point(tmp_path), ChannelMap(), AnalysisSettings(mode=mode))
        assert charges.n_events == charges.n_selected == N
        # each charge is dithered within its lattice step (`lattice_dither`), evenly about the exact value
        step = MV_PER_ADC * PC_PER_MV_SAMPLE
        assert charges.pmt_charge_pc == pytest.approx(np.full(N, expected), abs=step / 2)
        assert np.mean(charges.pmt_charge_pc) == pytest.approx(expected, abs=step / 20)
    assert charges.pmt_minus_trigger_ns == pytest.approx(np.full(N, 328.0))


def test_the_dither_spreads_the_charge_lattice_evenly_over_the_bins() -> None:
    # a 60-sample window less 60 x the mean of 40 baseline samples reads charges in steps of half an ADC count
    # (0.00244 pC): a 0.05 pC bin holds 20 or 21 steps by turns, and 600k pedestal events alternate by 2-5 %
    step = lattice_step_pc(60, 40, MV_PER_ADC)
    assert step == pytest.approx(MV_PER_ADC * PC_PER_MV_SAMPLE / 2)
    n, sigma = 600_000, 0.18
    charges = np.round(np.random.default_rng(3).normal(0.0, sigma, n) / step) * step
    edges = np.arange(-0.5, 0.5 + 1e-9, 0.05)
    expected = n * np.diff(ndtr(edges / sigma))

    def chi2_ndf(values: np.ndarray) -> float:
        counts = np.histogram(values, edges)[0]
        return float(np.sum((counts - expected) ** 2 / expected) / len(expected))

    assert chi2_ndf(charges) > 3.0  # the lattice alone, as an independently simulated stand showed
    assert chi2_ndf(charges + lattice_dither(0, n, step)) < 1.6
    assert np.array_equal(lattice_dither(7, 5, step), lattice_dither(0, 12, step)[7:])  # the same in any blocks
    assert np.abs(lattice_dither(0, n, step)).max() <= step / 2


def test_ascii_and_binary_give_identical_charges(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = extract_point_charges(_point(tmp_path / "a"), ChannelMap(), AnalysisSettings())
    b = extract_point_charges(_point(tmp_path / "b", writer=write_binary, suffix="dat"), ChannelMap(),
                              AnalysisSettings())
    assert np.array_equal(a.pmt_charge_pc, b.pmt_charge_pc)


def test_selection_by_time_window_and_charge_range(tmp_path: Path) -> None:
    files = _point(tmp_path)
    late = AnalysisSettings(mode="leading_edge", time_window_ns=(330.0, 340.0))
    assert extract_point_charges(files, ChannelMap(), late).n_selected == 0
    narrow = AnalysisSettings(charge_range_pc=(-5.0, 3.0))
    assert extract_point_charges(files, ChannelMap(), narrow).n_selected == 0


def test_missing_channel_and_event_missing_in_one_channel(tmp_path: Path) -> None:
    files = _point(tmp_path)
    with pytest.raises(MissingChannelError, match="channel 2"):
        extract_point_charges({0: files[0]}, ChannelMap(), AnalysisSettings())
    with pytest.raises(MissingChannelError, match="channel 4"):
        extract_point_charges(files, ChannelMap(reference=4), AnalysisSettings())
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) - 100])  # PMT file cut inside its last event
    charges = extract_point_charges(files, ChannelMap(), AnalysisSettings(chunk_events=7))
    assert charges.n_events == N - 1
    assert any("truncated" in w for w in charges.warnings)
    assert "dropped 1 event(s) not present in every channel" in charges.warnings


def test_untriggered_events_are_dropped_and_counted(tmp_path: Path) -> None:
    files = _point(tmp_path)
    write_ascii(files[0], np.full((N, LENGTH), 800, dtype=np.uint16), 0)  # the trigger channel saw nothing
    charges = extract_point_charges(files, ChannelMap(), AnalysisSettings())
    assert charges.n_selected == 0 and any(f"{N} event(s) without a trigger" in w for w in charges.warnings)


def test_math_helpers() -> None:
    raw = np.array([[10000] * 40 + [10000 - 8192] + [10000] * 9], dtype=np.uint16)
    mv = corrected_mv(raw, -1)
    assert mv[0, 40] == pytest.approx(1000.0)
    assert list(pulse_start(mv, 3.0)) == [40]
    assert list(pulse_start(np.zeros((1, 10)), 3.0)) == [-1]
    assert window_charge_pc(mv, np.array([35]), 60)[0] == pytest.approx(40.0)  # clipped to the record


@pytest.mark.parametrize("mode", ["fixed_window", "leading_edge"])
def test_one_pass_kernels_equal_the_numpy_pyrate_math_bit_for_bit(tmp_path: Path, mode: str) -> None:
    from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms

    waves = simulate_point_waveforms(np.random.default_rng(5), 3000, 260, 1.0e7, 1.0,
                                     SimulationConfig(include_sipm=False, include_reference=True))
    files = {}
    for ch, samples in waves.items():
        files[ch] = tmp_path / f"wave{ch}.txt"
        write_ascii(files[ch], samples, ch)
    s = AnalysisSettings(mode=mode, pmt_threshold_mv=2.7, chunk_events=700)
    got = extract_point_charges(files, ChannelMap(reference=4), s)
    # the same selection done with the numpy reference functions over whole arrays
    trigger_start = pulse_start(corrected_mv(waves[0], +1, s.baseline_samples), s.trigger_threshold_mv)
    expected, vetoed = {}, {}
    for ch in (2, 4):
        mv = corrected_mv(waves[ch], -1, s.baseline_samples)
        start = pulse_start(mv, s.pmt_threshold_mv)
        if mode == "fixed_window":
            charge = window_charge_pc(mv, trigger_start + 150, 60)
            keep = np.ones(len(mv), dtype=bool)
        else:
            charge = window_charge_pc(mv, start - s.pre_samples, s.pre_samples + s.post_samples)
            dt = (start - trigger_start) * 2.0
            keep = (start >= 0) & (dt >= s.time_window_ns[0]) & (dt <= s.time_window_ns[1])
        length = 60 if mode == "fixed_window" else s.pre_samples + s.post_samples
        charge = charge + lattice_dither(0, len(mv), lattice_step_pc(length, s.baseline_samples, MV_PER_ADC))
        quiet = ~(np.abs(mv[:, :s.baseline_samples]) > s.baseline_veto_mv).any(axis=1)
        vetoed[ch] = np.count_nonzero(~quiet & (trigger_start >= 0))
        keep &= quiet & (trigger_start >= 0) & (charge >= s.charge_range_pc[0]) & (charge <= s.charge_range_pc[1])
        expected[ch] = charge[keep]
    assert got.n_events == 3000 and len(expected[2]) > 1000 and vetoed[2] > 0  # dark pulses among the baselines
    assert np.array_equal(got.pmt_charge_pc, expected[2])
    assert got.reference_charge_pc is not None and np.array_equal(got.reference_charge_pc, expected[4])


def test_channel_far_ahead_in_event_numbers_is_read_to_the_end(tmp_path: Path) -> None:
    """The trigger file has only events 300..599, the PMT file 0..599: the trigger is read ahead, held back
    while the PMT catches up, and must still be read to its end."""
    trigger = np.full((300, LENGTH), 800, dtype=np.uint16)
    trigger[:, 60:80] += 6000
    pmt = np.full((600, LENGTH), 14000, dtype=np.uint16)
    pmt[:, 224:232] -= 100
    files = {0: tmp_path / "wave0.txt", 2: tmp_path / "wave2.txt"}
    write_ascii(files[0], trigger, 0, first_event=300)
    write_ascii(files[2], pmt, 2)
    charges = extract_point_charges(files, ChannelMap(), AnalysisSettings(chunk_events=50))
    assert charges.n_events == charges.n_selected == 300
    assert "dropped 300 event(s) not present in every channel" in charges.warnings


def test_channels_arriving_in_chunks_of_different_sizes_give_the_charges_of_one_read(tmp_path: Path) -> None:
    """Each channel's chunks are measured as soon as every channel has them (the first events of a chunk
    taken, the rest left pending): the same charges, in the same order, as all events measured at once."""
    from remote_monitor.analysis.charges import ChargeAccumulator
    from remote_monitor.analysis.wavedump import read_waveforms

    rng = np.random.default_rng(3)
    trigger = np.full((N, LENGTH), 800, dtype=np.uint16)
    trigger[:, 60:80] += 6000
    pmt = (14000 - rng.integers(0, 300, size=(N, LENGTH))).astype(np.uint16)
    files = {ch: tmp_path / f"wave{ch}.txt" for ch in (0, 2)}
    for ch, samples in ((0, trigger), (2, pmt)):
        write_ascii(files[ch], samples, ch, first_event=7)
    settings = AnalysisSettings(baseline_veto_mv=math.inf)  # samples spread over 36 mV: every baseline would be vetoed
    whole = ChargeAccumulator(ChannelMap(), settings)
    for ch, path in files.items():
        whole.add(read_waveforms(path)[0], ch)
    expected = whole.take(final=True).pmt
    chunks = {ch: read_waveforms(path)[0] for ch, path in files.items()}
    acc = ChargeAccumulator(ChannelMap(), settings)
    measured, read, taken = [], {0: 0, 2: 0}, 0
    for sizes in ((3, 11), (11, 3), (9, 9), (17, 17)):  # events of channel 0 and channel 2 that arrive, in turn
        for ch, size in zip((0, 2), sizes, strict=True):
            c, part = chunks[ch], slice(read[ch], min(read[ch] + size, N))
            acc.add(type(c)(ch, c.samples[part], c.event_numbers[part], c.trigger_time_tags[part]), ch)
            read[ch] = part.stop
        block = acc.take()
        assert block.n_events == min(read.values()) - taken  # every event now in both channels
        taken += block.n_events
        measured.append(block.pmt)
    measured.append(acc.take(final=True).pmt)
    assert acc.n_events == N and acc.dropped == 0
    assert np.array_equal(np.concatenate(measured), expected) and len(expected) > N // 2


def test_integer_threshold_is_exactly_the_float_test() -> None:
    """The kernels compare raw samples with an integer cut; it must switch exactly where the stand's float32
    test (baseline-subtracted mV over threshold) does, for either polarity."""
    from remote_monitor.analysis.pulse_kernels import _integer_cut

    rng = np.random.default_rng(11)
    for _ in range(300):
        base = np.float32(rng.integers(0, 16384 * 40)) / np.float32(40)
        scale = np.float32(rng.choice([-1, 1]) * 2000.0 / 2**14)
        threshold = np.float32(rng.uniform(0.5, 200.0))
        cut = _integer_cut(base, scale, threshold)
        for sample in range(max(cut - 3, 0), min(cut + 4, 65535)):
            expected = (np.float32(sample) - base) * scale > threshold
            assert (sample <= cut if scale < 0 else sample >= cut) == expected, (base, scale, threshold, sample)


def test_integer_threshold_at_the_ends_of_the_range_equals_a_bisection() -> None:
    """Stepping from the float64 estimate finds the same cut as a bisection of the whole 16-bit range, also
    where no sample or every sample is over, for extreme scales and for thresholds that are not finite."""
    from remote_monitor.analysis.pulse_kernels import _integer_cut, _integer_cut_by_bisection

    bases = np.float32([0, 0.025, 14175.3, 16383, 65535, 65536, 70000.5, -3, 1e9, -1e9])
    scales = np.float32([2000 / 2**14, -2000 / 2**14, 7.8125, -7.8125, 1e-6, -1e-6, 1e3, -1e3, 1e-30, -1e-30])
    thresholds = np.float32([0, 3, 100, -5, 1e5, 1e-3, np.inf, -np.inf, 1e30])
    for base in bases:
        for scale in scales:
            for threshold in thresholds:
                cut = _integer_cut(base, scale, threshold)
                assert cut == _integer_cut_by_bisection(base, scale, threshold), (base, scale, threshold)
                assert (-1 <= cut <= 65535) if scale < 0 else (0 <= cut <= 65536)


def test_a_negative_nim_trigger_gives_the_same_charges_and_times_as_a_positive_one(tmp_path: Path) -> None:
    # the same simulated events (same seed: same PMT samples, same trigger times), once with positive trigger
    # and SiPM pulses and once with negative ones near the top of the range: the trigger is found either way,
    # and the SiPM's light-monitor charge is the same
    from remote_monitor.analysis.point_extras import ExtrasAccumulator
    from remote_monitor.analysis.pulse_times import TimingSettings
    from remote_monitor.simulation.stand import SimulationConfig, simulate_point_waveforms

    measured = {}
    for polarity in (+1, -1):
        cfg = SimulationConfig(trigger_polarity=polarity, sipm_polarity=polarity, mu=0.5)
        waves = simulate_point_waveforms(np.random.default_rng(4), 3000, 260, 1e7, 0.5, cfg)
        assert (np.median(waves[0]) > 8000) == (polarity < 0)  # the baseline sits where such a pulse has room
        files = {}
        for ch, samples in waves.items():
            files[ch] = tmp_path / f"wave{ch}_{polarity}.txt"
            write_ascii(files[ch], samples, ch)
        charges = extract_point_charges(files, ChannelMap(), AnalysisSettings())
        extras = ExtrasAccumulator(TimingSettings())
        extras.add(waves[0], waves[2], waves[1])
        measured[polarity] = charges, extras.times, extras.sipm_summary()
    (pos, pos_times, pos_sipm), (neg, neg_times, neg_sipm) = measured[+1], measured[-1]
    assert pos_sipm is not None and neg_sipm is not None and pos_sipm["charge_mean_pc"] > 10.0
    assert neg_sipm["charge_mean_pc"] == pytest.approx(pos_sipm["charge_mean_pc"], rel=1e-4)
    assert neg_sipm["occupancy"] == pos_sipm["occupancy"]
    assert pos.n_events == neg.n_events == pos.n_selected == neg.n_selected == 3000
    assert not any("without a trigger" in w for w in neg.warnings), neg.warnings
    assert np.array_equal(pos.pmt_charge_pc, neg.pmt_charge_pc)
    assert pos.laser_delay_ns == neg.laser_delay_ns is not None
    assert neg_times.laser_searched == pos_times.laser_searched == 3000
    assert len(neg_times.pmt_minus_trigger_ns()) > 500
    assert neg_times.pmt_minus_trigger_ns() == pytest.approx(pos_times.pmt_minus_trigger_ns(), abs=1e-3)
    assert neg_times.dark_counts == pos_times.dark_counts


def test_events_with_a_pulse_among_the_baseline_samples_are_left_out_and_said() -> None:
    """A dark pulse among the 40 baseline samples lowers the baseline's mean, and the event's charge reads -1.5
    times that pulse's: at 1 mV of noise those charges sit a few pedestal widths low, inside the fit. An
    independent stand at 1 mV with 40 kHz of dark pulses read the gain 9-11 % high (pulls 4.6, 5.8), now 2-6 %
    (pulls 0.6, 1.6)."""
    from remote_monitor.analysis.charges import ChargeAccumulator
    from remote_monitor.analysis.wavedump import WaveformChunk

    n = 200
    trigger = np.full((n, LENGTH), 800, dtype=np.uint16)
    trigger[:, 60:80] += 6000
    pmt = np.full((n, LENGTH), 14000, dtype=np.uint16)
    pmt[:, 224:232] -= 100  # a 12.2 mV laser pulse in the window of every event
    pmt[:5, 10:18] -= 100  # and in the first five a pulse among the baseline samples as well
    settings = AnalysisSettings()
    acc = ChargeAccumulator(ChannelMap(), settings)
    for ch, samples in ((0, trigger), (2, pmt)):
        acc.add(WaveformChunk(ch, samples, np.arange(n), np.zeros(n, dtype=np.int64)), ch)
    block = acc.take(final=True)
    expected = 8 * 100 * MV_PER_ADC * PC_PER_MV_SAMPLE
    assert len(block.pmt) == n - 5 and block.pmt == pytest.approx(expected, abs=0.01)
    assert any("left out 5 event(s) (2.5 %) with a baseline sample over 4.0 mV" in w for w in acc.warnings())
    kept = ChargeAccumulator(ChannelMap(), AnalysisSettings(baseline_veto_mv=math.inf))
    for ch, samples in ((0, trigger), (2, pmt)):
        kept.add(WaveformChunk(ch, samples, np.arange(n), np.zeros(n, dtype=np.int64)), ch)
    old = kept.take(final=True).pmt
    shifted = expected - 1.5 * expected  # the window less 60 x a mean lowered by 1/40 of the baseline's pulse
    assert len(old) == n and old[:5] == pytest.approx(shifted, abs=0.01)
    assert not any("baseline sample" in w for w in kept.warnings())


def test_the_baseline_veto_is_at_least_two_adc_counts() -> None:
    """8-bit samples of 2 Vpp are 7.8 mV a count: a baseline of 99 and 100 counts strays up to a count from its
    mean, and a 4 mV veto would leave out every event; two counts keep them (and still catch a real pulse)."""
    from remote_monitor.analysis.charges import ChargeAccumulator
    from remote_monitor.analysis.wavedump import WaveformChunk

    n = 100
    rng = np.random.default_rng(2)
    trigger = np.full((n, LENGTH), 10, dtype=np.uint16)
    trigger[:, 60:80] += 100  # 780 mV
    pmt = (100 - rng.integers(0, 2, size=(n, LENGTH))).astype(np.uint16)  # 99s and 100s
    pmt[:3, 10:14] -= 10  # a 78 mV pulse among the baseline samples of the first three
    acc = ChargeAccumulator(ChannelMap(), AnalysisSettings(adc_bits=8, sample_bytes=1))
    for ch, samples in ((0, trigger), (2, pmt)):
        acc.add(WaveformChunk(ch, samples, np.arange(n), np.zeros(n, dtype=np.int64)), ch)
    assert len(acc.take(final=True).pmt) > n - 10 and acc.busy_baselines == {2: 3}  # (a few out of charge range)
