from pathlib import Path

import pytest

from remote_monitor.stand.layout import (
    ROOT_SOURCE,
    SCAN_POINTS,
    LayoutError,
    PointKey,
    channel_file,
    iter_scans,
    parse_source_file,
    point_angles,
    point_hv,
    validate_point,
    validate_serial,
)


def test_scan_points_are_the_stands_21_positions():
    assert len(SCAN_POINTS) == 21 and len(set(SCAN_POINTS)) == 21
    assert SCAN_POINTS[0] == "theta0_phi0"
    assert {point_angles(p) for p in SCAN_POINTS[1:]} == {
        (t, p) for t in (10, 20, 30, 40, 50) for p in (0, 90, 180, 270)
    }
    assert point_hv("HV_1750") == 1750 and point_hv("theta10_phi90") is None


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".hidden", "", "a b", "x" * 65, "a\\b", "é"])
def test_serials_with_path_tricks_are_rejected(bad):
    with pytest.raises(LayoutError):
        validate_serial(bad)


@pytest.mark.parametrize("bad", ["theta95_phi0", "theta10_phi360", "../theta0_phi0", "HV_x"])
def test_points_outside_the_scan_are_rejected(bad):
    with pytest.raises(LayoutError):
        validate_point(bad)


def test_channel_file_round_trips_through_parse(tmp_path: Path):
    key = PointKey("EA0001", "261125_101500", "theta30_phi180")
    for binary in (False, True):
        path = channel_file(tmp_path, key, 2, binary=binary)
        assert path.relative_to(tmp_path).parts == (
            "wavedump_output_261125_101500", "EA0001", "wavesave_theta30_phi180",
            f"wave2save_theta30_phi180.{'dat' if binary else 'txt'}",
        )
        assert parse_source_file(path, tmp_path) == (key, "2")
    hv = PointKey("EA0001", "261125_101500", "HV_1800")
    assert channel_file(tmp_path, hv, 0).parent.name == "wavesave_HV_CHECK"
    root_file = channel_file(tmp_path, hv, 0).parent / "pyrate_HV_1800.root"
    assert parse_source_file(root_file, tmp_path) == (hv, ROOT_SOURCE)


@pytest.mark.parametrize("rel", [
    "wavedump_output_261125_101500/EA1/wavesave_theta0_phi0/notes.txt",
    "wavedump_output_261125_101500/EA1/wavesave_theta10_phi0/wave2save_theta0_phi0.txt",
    "wavedump_output_261125_101500/EA1/wavesave_theta60_phi0/wave2save_theta60_phi0.txt",
    "wavedump_output_bad/EA1/wavesave_theta0_phi0/wave2save_theta0_phi0.txt",
    "wavedump_output_261125_101500/.x/wavesave_theta0_phi0/wave2save_theta0_phi0.txt",
    "elsewhere/EA1/wavesave_theta0_phi0/wave2save_theta0_phi0.txt",
])
def test_files_outside_the_layout_are_ignored(tmp_path: Path, rel: str):
    assert parse_source_file(tmp_path / rel, tmp_path) is None
    assert parse_source_file(Path("/other") / rel, tmp_path) is None


def test_iter_scans_orders_oldest_first(tmp_path: Path):
    for scan_id, sn in [("261125_120000", "B2"), ("261124_090000", "A1"), ("261125_120000", "A1")]:
        (tmp_path / f"wavedump_output_{scan_id}" / sn).mkdir(parents=True)
    (tmp_path / "wavedump_output_junk" / "A1").mkdir(parents=True)
    assert [(sn, s) for sn, s, _ in iter_scans(tmp_path)] == [
        ("A1", "261124_090000"), ("A1", "261125_120000"), ("B2", "261125_120000"),
    ]
