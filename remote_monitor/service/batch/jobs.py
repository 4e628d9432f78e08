"""The monitor and reprocessing as batch jobs: write the job script into <out>/jobs/, submit it, and say
only what is true: running (the monitor logged its start), pending and why, or failed with the log's end."""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import remote_monitor
from remote_monitor.service.batch.scheduler import JobRequest, Scheduler, time_seconds
from remote_monitor.service.batch.schedulers import get_scheduler
from remote_monitor.service.store import atomic_write_bytes, atomic_write_json, read_json
from remote_monitor.stand.config import SchedulerSettings
from remote_monitor.stand.layout import DEFAULT_LAYOUT, Layout, iter_scans

EXIT_TIME_UP = 75  # remote-monitor run --stop-after: the job resubmits itself
STARTED_MARK = "watching "  # the monitor's log line once it watches the data


@dataclass(frozen=True)
class Submitted:
    job_id: str
    state: str  # "running", "pending" or "failed"
    message: str
    log: Path


def _python(settings: SchedulerSettings) -> str:
    python = settings.python or sys.executable
    if not Path(python).is_absolute():
        raise ValueError(f"[scheduler] python must be an absolute path, got {python!r}")
    return python


def _head(scheduler: Scheduler, request: JobRequest, title: str) -> list[str]:
    where = " and below" if scheduler.directives(request) else ""
    return ["#!/bin/bash", f"# {title}, written by remote-monitor; options on the {scheduler.name} command line{where}",
            *scheduler.directives(request)]


def _environment(settings: SchedulerSettings) -> list[str]:
    """The setup line, then the package's directory on PYTHONPATH (a source checkout works as a job too)."""
    package_root = Path(remote_monitor.__file__).resolve().parent.parent
    return ["set -u", *([settings.setup] if settings.setup else []),
            f"export PYTHONPATH={shlex.quote(str(package_root))}${{PYTHONPATH:+:$PYTHONPATH}}"]


def _request(settings: SchedulerSettings, name: str, log: Path, **extra: object) -> JobRequest:
    return replace(JobRequest(
        name=name, log=log, time=settings.time, cpus=settings.cpus, memory=settings.memory,
        partition=settings.partition, account=settings.account, mail_user=settings.mail_user,
        mail_type=settings.mail_type, extra_args=tuple(settings.extra_args)), **extra)  # type: ignore[arg-type]


def monitor_script(scheduler: Scheduler, request: JobRequest, settings: SchedulerSettings, run_args: list[str],
                   spec: Path) -> str:
    """The monitor job: run until the margin before the time limit, then submit the next job (exit 75)."""
    python = shlex.quote(_python(settings))
    stop_after = time_seconds(request.time) - settings.resubmit_margin_seconds
    if stop_after <= 0:
        raise ValueError(f"time limit {request.time} is not longer than [scheduler] resubmit_margin_seconds "
                         f"({settings.resubmit_margin_seconds:g} s)")
    run = " ".join(shlex.quote(a) for a in [*run_args, "--stop-after", f"{stop_after:g}"])
    return "\n".join([
        *_head(scheduler, request, "PMT live monitor job"), *_environment(settings),
        f"{python} -m remote_monitor.cli run {run} &",
        "pid=$!",
        "# scancel/pjdel signal every process of the job; the monitor finishes its points within its grace",
        "# time. This shell forwards the signal (duplicates within 2 s count once) and waits for the monitor.",
        "trap 'kill -TERM \"$pid\" 2>/dev/null' TERM INT",
        'while :; do wait "$pid"; rc=$?; kill -0 "$pid" 2>/dev/null || break; done',
        f'if [ "$rc" -eq {EXIT_TIME_UP} ]; then',
        '    echo "time limit near: submitting the next monitor job"',
        f"    exec {python} -m remote_monitor.service.batch.resubmit {shlex.quote(str(spec))}",
        "fi",
        'exit "$rc"', ""])


def submit_monitor(data: Path, out: Path, settings: SchedulerSettings, *, config: Path | None = None,
                   poll: float = 10.0, serve: str | None = None, wait: float = 120.0) -> Submitted:
    """Write <out>/jobs/monitor_job.sh and its resubmission spec, submit, wait until it really runs."""
    data, out = Path(data).absolute(), Path(out).absolute()
    if not data.is_dir():
        raise FileNotFoundError(f"--data {data}: no such directory")
    jobs = out / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    scheduler = get_scheduler(settings.kind)
    log = jobs / ("pmt-monitor-%j.log" if scheduler.name == "slurm" else "pmt-monitor.log")
    request = _request(settings, "pmt-monitor", log)
    run_args = ["--data", str(data), "--out", str(out), "--poll", f"{poll:g}"]
    if config is not None:
        run_args += ["--config", str(Path(config).absolute())]
    if serve:
        run_args += ["--serve", serve]
    script, spec = jobs / "monitor_job.sh", jobs / "monitor_job.json"
    atomic_write_bytes(script, monitor_script(scheduler, request, settings, run_args, spec).encode())
    script.chmod(0o755)
    atomic_write_json(spec, {"scheduler": scheduler.name, "script": str(script),
                             "request": {**asdict(request), "log": str(request.log)}})
    monitor_log = out / "monitor.log"
    offset = monitor_log.stat().st_size if monitor_log.exists() else 0
    job_id = scheduler.submit(script, request)
    return wait_until_running(scheduler, job_id, scheduler.log_path(request, job_id), monitor_log, offset, wait)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _started(monitor_log: Path, offset: int) -> bool:
    try:
        with open(monitor_log, "rb") as fh:
            fh.seek(offset)
            return STARTED_MARK.encode() in fh.read()
    except OSError:
        return False


def wait_until_running(scheduler: Scheduler, job_id: str, log: Path, monitor_log: Path | None, offset: int,
                       wait: float) -> Submitted:
    """Poll the scheduler until the job runs (and the monitor logged its start), ends, or cannot start."""
    deadline = time.monotonic() + wait
    state = scheduler.state(job_id)
    hopeless_polls = 0  # Slurm may show a passing reason (PartitionConfig) before the lasting one
    while time.monotonic() < deadline:
        hopeless_polls = hopeless_polls + 1 if state.state == "pending" and state.hopeless else 0
        if hopeless_polls >= 3:
            scheduler.cancel(job_id)
            return Submitted(job_id, "failed", f"job {job_id} cannot start: pending ({state.reason}); "
                             "cancelled it", log)
        if state.state == "ended":
            return Submitted(job_id, "failed", f"job {job_id} ended before the monitor was running; last lines "
                             f"of {log}:\n{_tail(log)}", log)
        if state.state == "running" and (monitor_log is None or _started(monitor_log, offset)):
            return Submitted(job_id, "running", f"job {job_id} is running; job log {log}", log)
        time.sleep(1.0)
        state = scheduler.state(job_id)
    if state.state == "running":
        return Submitted(job_id, "running", f"job {job_id} is running but the monitor has not logged its start "
                         f"within {wait:g} s; see {log}", log)
    return Submitted(job_id, "pending", f"job {job_id} is queued, not running yet ({state.state}"
                     f"{': ' + state.reason if state.reason else ''}); job log will be {log}", log)


def resubmit(spec_path: Path) -> str:
    """Submit the monitor job again from its spec (called by the job itself near its time limit)."""
    spec = read_json(spec_path)
    if spec is None:
        raise FileNotFoundError(f"{spec_path}: no job spec")
    request = JobRequest(**{**spec["request"], "log": Path(spec["request"]["log"]),
                            "extra_args": tuple(spec["request"]["extra_args"])})
    return get_scheduler(spec["scheduler"]).submit(Path(spec["script"]), request)


def reprocess_script(scheduler: Scheduler, request: JobRequest, settings: SchedulerSettings, task_list: Path,
                     out: Path, config: Path | None) -> str:
    """One task per line of task_list: the scan directory it reprocesses."""
    python = shlex.quote(_python(settings))
    args = ["--out", str(out), *(["--config", str(config)] if config is not None else [])]
    return "\n".join([
        *_head(scheduler, request, "PMT reprocessing job array"), *_environment(settings),
        f'task="${{{scheduler.task_variable}:?not an array task}}"',
        f'scan_dir="$(sed -n "$((task + 1))p" {shlex.quote(str(task_list))})"',
        f'exec {python} -m remote_monitor.cli reprocess --scan-dir "$scan_dir" '
        + " ".join(shlex.quote(a) for a in args), ""])


def submit_reprocess(archive: Path, out: Path, settings: SchedulerSettings, *, config: Path | None = None,
                     layout: Layout = DEFAULT_LAYOUT) -> tuple[str, int, Path]:
    """A job array (PJM bulk job) with one task per PMT scan under archive; (job id, tasks, script)."""
    out = Path(out).absolute()
    scans = [str(folder.absolute()) for _, _, folder in iter_scans(Path(archive), layout)]
    if not scans:
        raise ValueError(f"{archive}: no PMT scans ({layout.scan_dir_prefix}<id>/<SN>) found")
    jobs = out / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    task_list = jobs / "reprocess_tasks.txt"
    atomic_write_bytes(task_list, ("\n".join(scans) + "\n").encode())
    scheduler = get_scheduler(settings.kind)
    log = jobs / ("pmt-reprocess-%A_%a.log" if scheduler.name == "slurm" else "pmt-reprocess.log")
    request = _request(settings, "pmt-reprocess", log, array=len(scans), cpus=1)
    script = jobs / "reprocess_job.sh"
    config = Path(config).absolute() if config is not None else None
    atomic_write_bytes(script, reprocess_script(scheduler, request, settings, task_list, out, config).encode())
    script.chmod(0o755)
    return scheduler.submit(script, request), len(scans), script


def main(argv: list[str] | None = None) -> int:
    """`python -m remote_monitor.service.batch.resubmit SPEC` (see resubmit.py)."""
    args = sys.argv[1:] if argv is None else argv
    job_id = resubmit(Path(args[0]))
    sys.stdout.write(f"submitted the next monitor job {job_id}\n")
    return 0

