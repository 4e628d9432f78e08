"""Monitor configuration: one TOML file, validated at start with clear messages."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remote_monitor.analysis.charges import AnalysisSettings, ChannelMap
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
    grace_seconds: float = 20.0  # on SIGTERM: wait this long for points in flight, then abandon them
    point_timeout_seconds: float = 300.0  # a point taking longer (stuck read) is abandoned, worker replaced


@dataclass(frozen=True)
class SchedulerSettings:
    kind: str = "slurm"  # "slurm" or "pjm"
    partition: str = ""  # Slurm --partition, PJM resource group (-L rscgrp=)
    account: str = ""  # Slurm --account, PJM group (-g)
    cpus: int = 2
    memory: str = "4G"
    time: str = "1-00:00:00"  # [D-]HH:MM:SS; the job resubmits itself before it runs out
    mail_user: str = ""
    mail_type: str = "FAIL"
    python: str = ""  # interpreter on the compute node; default: the one that ran `submit`
    setup: str = ""  # one shell line run first in the job, e.g. "module load python/3.11"
    resubmit_margin_seconds: float = 300.0  # stop this long before the time limit and resubmit
    extra_args: tuple[str, ...] = ()  # more sbatch/pjsub options, as given


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
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    areas: AreaSettings = field(default_factory=AreaSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

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
    elif isinstance(default, tuple) and not default and isinstance(value, list) and all(
            isinstance(v, str) for v in value):
        ok, value = True, tuple(value)
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
    if cfg.analysis.mode not in ("fixed_window", "leading_edge"):
        raise ConfigError(f"[analysis] mode must be fixed_window or leading_edge, got {cfg.analysis.mode!r}")
    if cfg.fit.model not in ("full", "seed"):
        raise ConfigError(f"[fit] model must be full or seed, got {cfg.fit.model!r}")
    h_lo, h_hi = cfg.histogram.range_pc
    if cfg.histogram.n_bins < 10 or not h_lo < h_hi:
        raise ConfigError("[histogram] needs n_bins >= 10 and range_pc low < high")
    if cfg.monitor.quiet_seconds < 0 or cfg.monitor.poll_seconds < 0 or cfg.monitor.workers < 1:
        raise ConfigError("[monitor] quiet_seconds and poll_seconds must be >= 0, workers >= 1")
    if cfg.monitor.grace_seconds < 0 or cfg.monitor.point_timeout_seconds <= 0:
        raise ConfigError("[monitor] grace_seconds must be >= 0 and point_timeout_seconds > 0")
    if cfg.scheduler.kind not in ("slurm", "pjm"):
        raise ConfigError(f"[scheduler] kind must be slurm or pjm, got {cfg.scheduler.kind!r}")


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
    defaults = Config()
    sections: dict[str, type] = {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; known: {sorted(sections)}")
    try:
        cfg = Config(**{name: _section(name, sections[name], raw[name]) for name in raw})
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg
