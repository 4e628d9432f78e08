"""Monitor configuration: one TOML file, validated at start with clear messages."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remote_monitor.analysis.charges import AnalysisSettings, ChannelMap
from remote_monitor.analysis.detection_efficiency import NORMALISATIONS, EfficiencySettings
from remote_monitor.analysis.korean_root import KoreanSettings
from remote_monitor.analysis.pulse_times import TimingSettings
from remote_monitor.stand.layout import Layout, LayoutError


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or has a wrong value."""


@dataclass(frozen=True)
class HistogramSettings:
    n_bins: int = 560
    range_pc: tuple[float, float] = (-3.0, 25.0)


@dataclass(frozen=True)
class FitSettings:
    model: str = "full"
    n_pe_max: int = 6
    exponential: bool = False
    min_events: int = 500


@dataclass(frozen=True)
class GainSettings:
    target: float = 1e7
    healthy_band: tuple[float, float] = (0.999e7, 1.049e7)


@dataclass(frozen=True)
class HVSettings:
    offsets: tuple[int, ...] = (-100, -50, 0, 50, 100)


@dataclass(frozen=True)
class MonitorSettings:
    quiet_seconds: float = 2.0
    poll_seconds: float = 0.0  # 0: native (inotify) observer; > 0: polling observer for GPFS/NFS/Lustre
    workers: int = 1
    tick_seconds: float = 0.2
    incomplete_seconds: float = 30.0  # a point still missing a channel after this long is an error


@dataclass(frozen=True)
class AreaSettings:
    flag_dir: str = ""  # default <data>/../FLAG
    archive_dir: str = ""  # default <data>/../ARCHIVE
    key_file: str = ""  # default <out>/monitor.key


@dataclass(frozen=True)
class ReportSettings:
    reference_spectrum: str = ""  # JSON {"edges": [...], "counts": [...]} of a known good PMT


@dataclass(frozen=True)
class Config:
    layout: Layout = field(default_factory=Layout)
    channels: ChannelMap = field(default_factory=ChannelMap)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    histogram: HistogramSettings = field(default_factory=HistogramSettings)
    fit: FitSettings = field(default_factory=FitSettings)
    gain: GainSettings = field(default_factory=GainSettings)
    hv: HVSettings = field(default_factory=HVSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    areas: AreaSettings = field(default_factory=AreaSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    timing: TimingSettings = field(default_factory=TimingSettings)
    efficiency: EfficiencySettings = field(default_factory=EfficiencySettings)
    korean: KoreanSettings = field(default_factory=KoreanSettings)

    def flag_root(self, data_root: Path) -> Path:
        return Path(self.areas.flag_dir) if self.areas.flag_dir else data_root.parent / "FLAG"

    def archive_root(self, data_root: Path) -> Path:
        return Path(self.areas.archive_dir) if self.areas.archive_dir else data_root.parent / "ARCHIVE"

    def key_path(self, out_root: Path) -> Path:
        return Path(self.areas.key_file) if self.areas.key_file else out_root / "monitor.key"


def _coerce(where: str, default: Any, value: Any) -> Any:
    """Check a TOML value against the type of the field's default and convert lists to tuples."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int) and default is not None:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)
        if ok and default and len(default) == 2 and isinstance(default[0], float):
            ok = len(value) == 2
            value = tuple(float(v) for v in value)
        elif ok:
            value = tuple(value)
    else:  # optional int (None default): channel numbers, record length
        ok = (isinstance(value, int) and not isinstance(value, bool)) or value is None
    if not ok:
        raise ConfigError(f"{where}: expected a value like {default!r}, got {value!r}")
    return value


def _section(name: str, cls: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table")
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"[{name}]: unknown key(s) {unknown}; known: {sorted(known)}")
    try:
        return dataclasses.replace(
            defaults,
            **{k: _coerce(f"[{name}] {k}", getattr(defaults, k), v) for k, v in values.items()},
        )
    except LayoutError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def _validate(cfg: Config) -> None:
    ch = cfg.channels
    if ch.pmt not in (2, 3):
        raise ConfigError(f"[channels] pmt must be 2 or 3, got {ch.pmt}")
    used = [c for c in (ch.trigger, ch.sipm, ch.pmt, ch.reference) if c is not None]
    if len(used) != len(set(used)):
        raise ConfigError(f"[channels] every channel must be different, got {used}")
    lo, hi = cfg.gain.healthy_band
    if not 0 < lo < hi:
        raise ConfigError(f"[gain] healthy_band must be 0 < low < high, got {cfg.gain.healthy_band}")
    if cfg.efficiency.normalisation not in NORMALISATIONS:
        raise ConfigError(f"[efficiency] normalisation must be one of {NORMALISATIONS}, got {cfg.efficiency.normalisation!r}")
    if cfg.efficiency.occupancy not in ("spe_fit", "zero_pe"):
        raise ConfigError(f"[efficiency] occupancy must be spe_fit or zero_pe, got {cfg.efficiency.occupancy!r}")
    if cfg.analysis.mode not in ("fixed_window", "leading_edge"):
        raise ConfigError(f"[analysis] mode must be fixed_window or leading_edge, got {cfg.analysis.mode!r}")
    if cfg.fit.model not in ("full", "seed"):
        raise ConfigError(f"[fit] model must be full or seed, got {cfg.fit.model!r}")
    h_lo, h_hi = cfg.histogram.range_pc
    if cfg.histogram.n_bins < 10 or not h_lo < h_hi:
        raise ConfigError("[histogram] needs n_bins >= 10 and range_pc low < high")
    if cfg.monitor.quiet_seconds < 0 or cfg.monitor.poll_seconds < 0 or cfg.monitor.workers < 1:
        raise ConfigError("[monitor] quiet_seconds and poll_seconds must be >= 0, workers >= 1")


def load_config(path: Path | None) -> Config:
    """Read and validate a TOML configuration; None gives the defaults."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    sections = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; known: {sorted(sections)}")
    try:
        cfg = Config(**{name: _section(name, type(sections[name]()), raw[name]) for name in raw})
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg
