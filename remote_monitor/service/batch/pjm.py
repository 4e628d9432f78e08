"""Fujitsu PJM (Fugaku-type systems, Sukap): pjsub with #PJM directives in the script, pjstat, pjdel.

Syntax as in the Fugaku user guide (Job Execution: bulk jobs, pjsub options, pjstat):
  #PJM -L "rscgrp=small"   #PJM -L "elapse=01:00:00"   #PJM -L "node=1"   #PJM -g group
  #PJM -o file  #PJM -e file  #PJM -j  #PJM --name name  #PJM -m e --mail-list addr
  pjsub --bulk --sparam "0-9" run.sh    (sub jobs see their number in ${PJM_BULKNUM})
  pjsub prints "[INFO] PJM 0000 pjsub Job 12345 submitted."; pjstat JOBID lists
  JOB_ID JOB_NAME MD ST USER ...   with ST one of ACC QUE RNA RUN RNO EXT CCL HLD ERR RJT ...
"""

from __future__ import annotations

import re
from pathlib import Path

from remote_monitor.service.batch.scheduler import (
    JobRequest,
    JobState,
    Scheduler,
    SchedulerError,
    run_tool,
    time_seconds,
)

_SAFE = re.compile(r"[A-Za-z0-9_.@+,:/=%-]+")
_SUBMITTED = re.compile(r"Job (\d+) submitted")
PENDING = {"ACC", "QUE", "RNA", "HLD", "RSM", "SPP", "SPD"}
RUNNING = {"RUN", "RNE", "RNO", "RNP"}
ENDED = {"EXT", "CCL", "ERR", "RJT", "END"}


def _safe(what: str, value: str) -> str:
    """A directive value must not be able to end the directive or add another one."""
    if not _SAFE.fullmatch(value):
        raise ValueError(f"PJM {what} {value!r}: only letters, digits and _ . @ + , : / = % - are allowed "
                         "(#PJM directives cannot quote spaces)")
    return value


def elapse(time: str) -> str:
    """PJM's elapse=HH:MM:SS (hours may exceed 24) from a [D-]HH:MM:SS time limit."""
    total = time_seconds(time)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


class PJM(Scheduler):
    name = "pjm"
    task_variable = "PJM_BULKNUM"

    def directives(self, request: JobRequest) -> list[str]:
        lines = ['#PJM -L "node=1"', f'#PJM -L "elapse={elapse(request.time)}"',
                 f"#PJM --name {_safe('job name', request.name)}",
                 f"#PJM -o {_safe('log path', str(request.log))}", "#PJM -j"]
        if request.partition:
            lines.insert(0, f'#PJM -L "rscgrp={_safe("resource group", request.partition)}"')
        if request.account:
            lines.append(f"#PJM -g {_safe('group', request.account)}")
        if request.mail_user:
            when = "b,e" if "BEGIN" in request.mail_type.upper() else "e"
            lines.append(f"#PJM -m {when}")
            lines.append(f"#PJM --mail-list {_safe('mail address', request.mail_user)}")
        return lines

    def submit_command(self, script: Path, request: JobRequest) -> list[str]:
        args = ["pjsub"]
        if request.array:
            args += ["--bulk", "--sparam", f"0-{request.array - 1}"]
        return [*args, *request.extra_args, str(script)]

    def submit(self, script: Path, request: JobRequest) -> str:
        command = self.submit_command(script, request)
        out = run_tool(command[0], command[1:], "pjsub")
        match = _SUBMITTED.search(out)
        if match is None:
            raise SchedulerError(f"pjsub printed no job id: {out.strip()!r}")
        return match.group(1)

    def state(self, job_id: str) -> JobState:
        out = run_tool("pjstat", [job_id], "pjstat")
        states = []
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 4 and re.fullmatch(rf"{job_id}(\[\d+\])?", fields[0]):
                states.append(fields[3])
        if not states:
            return JobState("ended")
        if any(s in RUNNING for s in states):
            return JobState("running", states[0])
        if any(s in PENDING for s in states):
            return JobState("pending", states[0])
        return JobState("ended" if states[0] in ENDED else "unknown", states[0])

    def cancel(self, job_id: str) -> None:
        run_tool("pjdel", [job_id], "pjdel")

    def log_path(self, request: JobRequest, job_id: str) -> Path:  # noqa: ARG002  (one fixed log per job)
        return request.log
