"""The batch systems the monitor can submit to, by the name [scheduler] kind gives."""

from __future__ import annotations

from remote_monitor.service.batch.pjm import PJM
from remote_monitor.service.batch.scheduler import Scheduler
from remote_monitor.service.batch.slurm import Slurm

SCHEDULERS: dict[str, type[Scheduler]] = {"slurm": Slurm, "pjm": PJM}


def get_scheduler(kind: str) -> Scheduler:
    """The scheduler named in [scheduler] kind."""
    if kind not in SCHEDULERS:
        raise ValueError(f"[scheduler] kind must be one of {sorted(SCHEDULERS)}, got {kind!r}")
    return SCHEDULERS[kind]()
