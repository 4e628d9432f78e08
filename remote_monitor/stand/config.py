"""Monitor configuration: one TOML file, validated at start with clear messages."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remote_monitor.analysis.charges import AnalysisSettings, ChannelMap
from remote_monitor.analysis.detection_efficiency import NORMALISATIONS, OCCUPANCIES, EfficiencySettings
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
    min_peak_to_valley: float = 1.0  # HV points whose peak-to-valley is at most this are left out of the HV fit;
    # 1.0: those without a valley between pedestal and 1-PE peak. (1.2 until 2026-12-05: two independent stands, one
    # with a 0.36 pC pedestal, one with 0.6 mV of noise, read 1.00-1.15 at their three lowest HVs, gains right within
    # their errors, and the HV at 1e7 was extrapolated from the two highest)


@dataclass(frozen=True)
class MonitorSettings:
    quiet_seconds: float = 2.0
    poll_seconds: float = 0.0  # 0: native (inotify) observer; > 0: polling observer for GPFS/NFS/Lustre
    workers: int = 1
    tick_seconds: float = 0.2
    incomplete_seconds: float = 30.0  # a point still missing a channel after this long is an error
    max_command_lifetime_seconds: float = 86400.0  # commands expiring later than this after issue are rejected
    inbox_max_files: int = 200  # POST /commands answers 429 while the inbox holds this many files
    receipts_keep: int = 1000  # newest receipts kept in each of commands/done and commands/rejected
    follow: bool = True  # read growing files as WaveDump writes them (provisional gain, fast final result)
    provisional_seconds: float = 5.0  # provisional fit of a point being acquired at most this often
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
    key_file: str = ""  # default <out>/private/monitor.key (outside the served reports/ and results/)


@dataclass(frozen=True)
class ReportSettings:
    reference_spectrum: str = ""  # JSON {"edges": [...], "counts": [...]} of a known good PMT


@dataclass(frozen=True)
class MailSettings:
    host: str = ""  # SMTP server; empty: hand the message to the local `sendmail`
    port: int = 0  # 0: 465 with ssl, 587 with starttls, 25 otherwise
    security: str = "starttls"  # starttls, ssl or none
    user: str = ""  # SMTP login; empty: no login
    password_file: str = ""  # file holding only the password (mode 0600); never on the command line
    sender: str = ""  # From: address; default <user>@<hostname>
    cafile: str = ""  # extra CA certificate to trust (a site CA or a self-signed server)
    sendmail: str = "/usr/sbin/sendmail"
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class NotifySettings:
    mail_to: tuple[str, ...] = ()  # e-mail recipients of notifications; empty: no e-mail
    webhook_url: str = ""  # Mattermost/Slack incoming webhook; empty: none
    scan_complete: bool = True  # rules: each can be switched off
    point_poor: bool = True
    point_error: bool = True
    trouble: bool = True  # disk full, stuck read, crash loop, repeated rejected commands
    gather_seconds: float = 2.0  # wait this long after an event for others to join it (digest)
    min_interval_seconds: float = 60.0  # at most one message per channel this often; the rest is a digest
    repeat_seconds: float = 21600.0  # the same event (kind, key) is told once in this time
    retry_seconds: float = 30.0  # first retry after a failed delivery; doubles up to retry_max_seconds
    retry_max_seconds: float = 1800.0
    stuck_seconds: float = 1800.0  # a point processing longer than this is a stuck read
    min_free_gb: float = 5.0  # free space on the output disk below this is trouble
    repeat_count: int = 3  # this many rejected commands or worker crashes within an hour are trouble


@dataclass(frozen=True)
class PublishSettings:
    dir: str = ""  # web-served folder that keeps a copy of index.html and every report; empty: none
    base_url: str = ""  # URL of that folder, e.g. https://www.example.org/~pmt/ (links in notifications)


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
    mail: MailSettings = field(default_factory=MailSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    timing: TimingSettings = field(default_factory=TimingSettings)
    efficiency: EfficiencySettings = field(default_factory=EfficiencySettings)
    korean: KoreanSettings = field(default_factory=KoreanSettings)

    def flag_root(self, data_root: Path) -> Path:
        return Path(self.areas.flag_dir) if self.areas.flag_dir else data_root.parent / "FLAG"

    def archive_root(self, data_root: Path) -> Path:
        return Path(self.areas.archive_dir) if self.areas.archive_dir else data_root.parent / "ARCHIVE"

    def key_path(self, out_root: Path) -> Path:
        return Path(self.areas.key_file) if self.areas.key_file else out_root / "private" / "monitor.key"


def _coerce(where: str, default: Any, value: Any, strings: bool = False) -> Any:
    """Check a TOML value against the type of the field's default and convert lists to tuples."""
    if strings:  # a list of strings (e-mail addresses)
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        value = tuple(value) if ok else value
    elif isinstance(default, bool):
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
    strings = {f.name for f in dataclasses.fields(cls) if f.type == "tuple[str, ...]"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"[{name}]: unknown key(s) {unknown}; known: {sorted(known)}")
    try:
        return dataclasses.replace(
            defaults,
            **{k: _coerce(f"[{name}] {k}", getattr(defaults, k), v, k in strings) for k, v in values.items()},
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
        raise ConfigError(f"[efficiency] normalisation must be one of {NORMALISATIONS}, "
                          f"got {cfg.efficiency.normalisation!r}")
    if cfg.efficiency.occupancy not in OCCUPANCIES:
        raise ConfigError(f"[efficiency] occupancy must be one of {OCCUPANCIES}, got {cfg.efficiency.occupancy!r}")
    if not cfg.analysis.baseline_veto_mv > 0:
        raise ConfigError(f"[analysis] baseline_veto_mv must be > 0 (inf keeps every event), got "
                          f"{cfg.analysis.baseline_veto_mv}")
    if cfg.analysis.mode not in ("fixed_window", "leading_edge"):
        raise ConfigError(f"[analysis] mode must be fixed_window or leading_edge, got {cfg.analysis.mode!r}")
    if cfg.fit.model not in ("full", "seed"):
        raise ConfigError(f"[fit] model must be full or seed, got {cfg.fit.model!r}")
    h_lo, h_hi = cfg.histogram.range_pc
    if cfg.histogram.n_bins < 10 or not h_lo < h_hi:
        raise ConfigError("[histogram] needs n_bins >= 10 and range_pc low < high")
    if cfg.monitor.quiet_seconds < 0 or cfg.monitor.poll_seconds < 0 or cfg.monitor.workers < 1:
        raise ConfigError("[monitor] quiet_seconds and poll_seconds must be >= 0, workers >= 1")
    m = cfg.monitor
    if m.max_command_lifetime_seconds <= 0 or m.inbox_max_files < 1 or m.receipts_keep < 1:
        raise ConfigError("[monitor] max_command_lifetime_seconds must be > 0, inbox_max_files and "
                          "receipts_keep >= 1")
    if cfg.monitor.grace_seconds < 0 or cfg.monitor.point_timeout_seconds <= 0:
        raise ConfigError("[monitor] grace_seconds must be >= 0 and point_timeout_seconds > 0")
    if cfg.scheduler.kind not in ("slurm", "pjm"):
        raise ConfigError(f"[scheduler] kind must be slurm or pjm, got {cfg.scheduler.kind!r}")
    _validate_sharing(cfg)


def _validate_sharing(cfg: Config) -> None:
    mail, notify, publish = cfg.mail, cfg.notify, cfg.publish
    if mail.security not in ("starttls", "ssl", "none"):
        raise ConfigError(f"[mail] security must be starttls, ssl or none, got {mail.security!r}")
    if not 0 <= mail.port < 65536:
        raise ConfigError(f"[mail] port must be 0 (default) or a TCP port, got {mail.port}")
    if mail.user and not mail.password_file:
        raise ConfigError("[mail] password_file is needed when user is set (the password is never in the config)")
    for address in notify.mail_to:
        if "@" not in address:
            raise ConfigError(f"[notify] mail_to: {address!r} is not an e-mail address")
    for key in ("gather_seconds", "min_interval_seconds", "repeat_seconds", "retry_seconds",
                "retry_max_seconds", "stuck_seconds", "min_free_gb"):
        if getattr(notify, key) < 0:
            raise ConfigError(f"[notify] {key} must be >= 0, got {getattr(notify, key)}")
    if notify.webhook_url and not notify.webhook_url.startswith(("http://", "https://")):
        raise ConfigError(f"[notify] webhook_url must start with http:// or https://, got {notify.webhook_url!r}")
    if publish.base_url and not publish.base_url.endswith("/"):
        raise ConfigError(f"[publish] base_url must end with '/', got {publish.base_url!r}")


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
