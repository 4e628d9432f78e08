"""The stand's directory layout: scan points, serial numbers, scan ids and file names."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

THETAS = (10, 20, 30, 40, 50)
PHIS = (0, 90, 180, 270)
SCAN_POINTS: tuple[str, ...] = ("theta0_phi0", *tuple(f"theta{t}_phi{p}" for t in THETAS for p in PHIS))
HV_DIR = "wavesave_HV_CHECK"
SCAN_DIR_PREFIX = "wavedump_output_"

# every pattern is used with fullmatch (a trailing newline does not pass, unlike with `$`)
SERIAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SCAN_ID_RE = re.compile(r"\d{6}_\d{6}")
POINT_RE = re.compile(r"theta(?P<theta>\d+)_phi(?P<phi>\d+)|HV_(?P<hv>-?\d+)")
_NAME_PART = re.compile(r"[A-Za-z0-9_.-]*")
ROOT_SOURCE = "root"  # source name of a Pyrate ROOT file; waveform files are named by channel number


class LayoutError(ValueError):
    """A name in the data or a command does not fit the stand's layout."""


def validate_serial(serial: object) -> str:
    """Return the serial number if it is a plain name, else raise LayoutError."""
    if not isinstance(serial, str) or not SERIAL_RE.fullmatch(serial):
        raise LayoutError(f"invalid serial number {serial!r}: only letters, digits, '_' and '-'")
    return serial


def validate_scan_id(scan_id: object) -> str:
    """Return the scan id (YYMMDD_HHMMSS) if well formed, else raise LayoutError."""
    if not isinstance(scan_id, str) or not SCAN_ID_RE.fullmatch(scan_id):
        raise LayoutError(f"invalid scan id {scan_id!r}: expected YYMMDD_HHMMSS")
    return scan_id


def validate_point(point: object) -> str:
    """Return the point id if it is a scan position (theta 0..90, phi 0..359: the 21 points of the WaveDump
    stand, or the Korean stand's positions) or an HV point, else raise LayoutError."""
    m = POINT_RE.fullmatch(point) if isinstance(point, str) else None
    if m is None:
        raise LayoutError(f"invalid point {point!r}")
    if m["theta"] is not None and not (int(m["theta"]) <= 90 and int(m["phi"]) < 360):
        raise LayoutError(f"{point!r} is not a position on the PMT (theta 0..90, phi 0..359)")
    return str(point)


@dataclass(frozen=True)
class Layout:
    """Names of the stand's folders and files (configurable in [layout]); defaults are the stand's."""

    scan_dir_prefix: str = SCAN_DIR_PREFIX  # <data>/<prefix><YYMMDD_HHMMSS>/<SN>/
    point_dir_prefix: str = "wavesave_"  # .../<prefix><point>/ for the 21 scan points
    hv_dir: str = HV_DIR  # .../<hv_dir>/ for the HV check
    file_prefix: str = "wave"  # <file_prefix><CH><file_infix><point>.txt|.dat
    file_infix: str = "save_"
    korean_dir_prefix: str = "korean_"  # <data>/<prefix><YYMMDD_HHMMSS>/<Korean DAQ file>.root

    def __post_init__(self) -> None:
        for name in ("scan_dir_prefix", "point_dir_prefix", "hv_dir", "file_prefix", "file_infix",
                     "korean_dir_prefix"):
            value = getattr(self, name)
            if not _NAME_PART.fullmatch(value) or ".." in value or (name != "file_infix" and not value):
                raise LayoutError(f"layout {name} = {value!r}: only letters, digits, '_', '-', '.' (no '..')")

    @cached_property
    def file_re(self) -> re.Pattern[str]:
        point = r"theta\d+_phi\d+|HV_-?\d+"
        return re.compile(
            rf"{re.escape(self.file_prefix)}(?P<ch>\d+){re.escape(self.file_infix)}(?P<point>{point})"
            rf"\.(?:txt|dat)|pyrate_(?P<rpoint>{point})\.root"
        )


DEFAULT_LAYOUT = Layout()


@dataclass(frozen=True, order=True)
class PointKey:
    """One scan point (or HV point) of one scan of one PMT."""

    serial: str
    scan_id: str
    point: str

    @property
    def kind(self) -> str:
        return "hv" if self.point.startswith("HV_") else "scan"

    @property
    def label(self) -> str:
        return f"{self.serial}/{self.scan_id}/{self.point}"


def point_angles(point: str) -> tuple[int, int] | None:
    """(theta, phi) in degrees of a scan point, None for an HV point."""
    m = POINT_RE.fullmatch(point)
    if not m or m["theta"] is None:
        return None
    return int(m["theta"]), int(m["phi"])


def point_hv(point: str) -> int | None:
    """High voltage in volts of an HV point, None for a scan point."""
    m = POINT_RE.fullmatch(point)
    return int(m["hv"]) if m and m["hv"] is not None else None


def point_dir_name(point: str, layout: Layout = DEFAULT_LAYOUT) -> str:
    return layout.hv_dir if point.startswith("HV_") else f"{layout.point_dir_prefix}{point}"


def scan_dir(data_root: Path, serial: str, scan_id: str, layout: Layout = DEFAULT_LAYOUT) -> Path:
    """Directory holding one scan of one PMT."""
    return data_root / f"{layout.scan_dir_prefix}{validate_scan_id(scan_id)}" / validate_serial(serial)


def channel_file(data_root: Path, key: PointKey, channel: int, binary: bool = False,
                 layout: Layout = DEFAULT_LAYOUT) -> Path:
    """Path of the waveform file of one channel of one point."""
    ext = "dat" if binary else "txt"
    return (
        scan_dir(data_root, key.serial, key.scan_id, layout)
        / point_dir_name(key.point, layout)
        / f"{layout.file_prefix}{channel}{layout.file_infix}{key.point}.{ext}"
    )


def parse_source_file(path: Path, data_root: Path, layout: Layout = DEFAULT_LAYOUT) -> tuple[PointKey, str] | None:
    """(point, source) of a waveform file (source = channel number as text) or a Pyrate ROOT file
    (source = ROOT_SOURCE) below data_root; None if the path is not one."""
    try:
        parts = path.absolute().relative_to(data_root.absolute()).parts
    except ValueError:
        return None
    if len(parts) != 4 or not parts[0].startswith(layout.scan_dir_prefix):
        return None
    scan_id, serial = parts[0][len(layout.scan_dir_prefix):], parts[1]
    m = layout.file_re.fullmatch(parts[3])
    if not (SCAN_ID_RE.fullmatch(scan_id) and SERIAL_RE.fullmatch(serial) and m):
        return None
    point = m["point"] or m["rpoint"]
    if parts[2] != point_dir_name(point, layout):
        return None
    if point.startswith("theta") and point not in SCAN_POINTS:
        return None
    return PointKey(serial, scan_id, point), (m["ch"] if m["ch"] is not None else ROOT_SOURCE)


@dataclass(frozen=True, order=True)
class KoreanFile:
    """One Korean-stand DAQ ROOT file (three PMTs, one position each) of one scan."""

    scan_id: str
    path: str

    @property
    def label(self) -> str:
        return f"korean/{self.scan_id}/{Path(self.path).name}"


def parse_korean_source(path: Path, data_root: Path, layout: Layout = DEFAULT_LAYOUT) -> KoreanFile | None:
    """The Korean file `<data>/<korean_dir_prefix><scan id>/<name>.root`, None if the path is not one."""
    try:
        parts = path.absolute().relative_to(data_root.absolute()).parts
    except ValueError:
        return None
    if len(parts) != 2 or not parts[0].startswith(layout.korean_dir_prefix) or not parts[1].endswith(".root"):
        return None
    scan_id = parts[0][len(layout.korean_dir_prefix):]
    if not SCAN_ID_RE.fullmatch(scan_id) or not _NAME_PART.fullmatch(parts[1]):
        return None
    return KoreanFile(scan_id, str(data_root.absolute() / parts[0] / parts[1]))


def is_regular_data_file(path: Path, data_root: Path) -> bool:
    """True for a regular file inside data_root (a symlink counts if its target is one inside data_root).

    FIFOs, devices, sockets, directories, dangling or looping symlinks and symlinks leaving the data tree
    are never read; a file that vanishes between listing and stat is simply not there."""
    try:
        real = Path(os.path.realpath(path, strict=True))
        mode = os.stat(real).st_mode
    except (OSError, RuntimeError, ValueError):
        return False
    return stat.S_ISREG(mode) and real.is_relative_to(os.path.realpath(data_root))


def iter_scans(data_root: Path, layout: Layout = DEFAULT_LAYOUT) -> list[tuple[str, str, Path]]:
    """All (serial, scan_id, directory) below data_root, oldest scan first."""
    found = []
    for scan_root in sorted(data_root.glob(f"{layout.scan_dir_prefix}*")):
        scan_id = scan_root.name[len(layout.scan_dir_prefix):]
        if not SCAN_ID_RE.fullmatch(scan_id) or not scan_root.is_dir():
            continue
        for sn_dir in sorted(scan_root.iterdir()):
            if sn_dir.is_dir() and SERIAL_RE.fullmatch(sn_dir.name):
                found.append((sn_dir.name, scan_id, sn_dir))
    return sorted(found, key=lambda s: (s[1], s[0]))
