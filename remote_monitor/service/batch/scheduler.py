"""The small interface every batch scheduler implements: submit a script, ask a job's state, cancel it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class SchedulerError(RuntimeError):
    """The scheduler's commands are missing or refused the job."""


@dataclass(frozen=True)
class JobRequest:
    """What a job asks for. Empty strings mean the site's default."""

    name: str
    log: Path  # stdout+stderr of the job; %j / %A_%a (Slurm) are expanded by the scheduler
    time: str = "1-00:00:00"
    cpus: int = 1
    memory: str = "4G"
    partition: str = ""
    account: str = ""
    mail_user: str = ""
    mail_type: str = "FAIL"
    array: int = 0  # > 0: a job array (PJM bulk job) of this many tasks, numbered 0..array-1
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobState:
    """state: "pending", "running", "ended" or "unknown"; reason: the scheduler's word for why."""

    state: str
    reason: str = ""
    hopeless: bool = False  # pending for a reason that never resolves by itself (limits, bad account)


def time_seconds(text: str) -> int:
    """Seconds of a [D-]HH:MM:SS / MM:SS / MM time limit (Slurm's formats, PJM's HH:MM:SS)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if match is None:
        raise ValueError(f"time limit {text!r}: expected [D-]HH:MM:SS, HH:MM:SS, MM:SS or MM")
    days, first, second, third = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    elif third is not None:  # HH:MM:SS
        hours, minutes, seconds = int(first), int(second), int(third)
    elif second is not None:  # MM:SS
        hours, minutes, seconds = 0, int(first), int(second)
    else:  # MM
        hours, minutes, seconds = 0, int(first), 0
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def run_tool(tool: str, args: list[str], what: str) -> str:
    """Run a scheduler command (argument list, no shell); its stdout, or SchedulerError with its message."""
    exe = shutil.which(tool)
    if exe is None:
        raise SchedulerError(
            f"{tool} not found on PATH: run this on a cluster login node (or set [scheduler] kind), or start the "
            "monitor by hand with remote-monitor run --data DIR --out DIR")
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise SchedulerError(f"{what} failed: {tool} exited {done.returncode}: "
                             f"{done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


class Scheduler:
    """Base class; see slurm.Slurm and pjm.PJM."""

    name = ""
    task_variable = ""  # environment variable with the task number of an array job

    def directives(self, request: JobRequest) -> list[str]:  # noqa: ARG002  (Slurm takes none)
        """Lines for the head of the job script (PJM reads its options there)."""
        return []

    def submit(self, script: Path, request: JobRequest) -> str:
        raise NotImplementedError

    def submit_command(self, script: Path, request: JobRequest) -> list[str]:
        raise NotImplementedError

    def state(self, job_id: str) -> JobState:
        raise NotImplementedError

    def cancel(self, job_id: str) -> None:
        raise NotImplementedError

    def log_path(self, request: JobRequest, job_id: str) -> Path:
        """The job's log file once its id is known."""
        return Path(str(request.log).replace("%j", job_id).replace("%A", job_id))

