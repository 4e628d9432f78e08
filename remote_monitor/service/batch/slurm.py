"""Start the monitor as a Slurm job and reprocess an archive as a job array (sbatch with argument lists)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from remote_monitor.service.store import atomic_write_bytes
from remote_monitor.stand.config import load_config
from remote_monitor.stand.layout import DEFAULT_LAYOUT, iter_scans


class SlurmUnavailableError(RuntimeError):
    """sbatch is not available here."""


def _sbatch(sbatch: str, args: list[str]) -> str:
    exe = shutil.which(sbatch)
    if exe is None:
        raise SlurmUnavailableError(
            f"{sbatch} not found on PATH: run this on a cluster login node, or start the monitor by hand "
            "with remote-monitor run --data DIR --out DIR")
    done = subprocess.run([exe, "--parsable", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sbatch failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]  # --parsable prints "jobid" or "jobid;cluster"


def _script(name: str) -> str:
    return str(resources.files("remote_monitor.service.batch").joinpath(name))


def submit_monitor(data: Path, out: Path, config: Path | None = None, time: str = "7-00:00:00", cpus: int = 2,
                   mem: str = "4G", poll: float = 10, extra_sbatch_args: Sequence[str] = (),
                   sbatch: str = "sbatch") -> str:
    """Submit monitor_job.sh; returns the job id."""
    args = [f"--time={time}", f"--cpus-per-task={cpus}", f"--mem={mem}", *extra_sbatch_args,
            _script("monitor_job.sh"), "--data", str(Path(data).absolute()), "--out", str(Path(out).absolute()),
            "--poll", str(poll)]
    if config is not None:
        args += ["--config", str(Path(config).absolute())]
    return _sbatch(sbatch, args)


def submit_reprocess_array(archive_root: Path, out: Path, config: Path | None = None, time: str = "04:00:00",
                           extra_sbatch_args: Sequence[str] = (), sbatch: str = "sbatch") -> str:
    """One array task per PMT scan found under archive_root; returns the job id."""
    layout = load_config(Path(config)).layout if config is not None else DEFAULT_LAYOUT
    scans = [str(folder.absolute()) for _, _, folder in iter_scans(Path(archive_root), layout)]
    if not scans:
        raise ValueError(f"{archive_root}: no PMT scans (wavedump_output_*/<SN>) found")
    task_list = Path(out).absolute() / "slurm" / "reprocess_tasks.txt"
    atomic_write_bytes(task_list, ("\n".join(scans) + "\n").encode())
    args = [f"--time={time}", f"--array=0-{len(scans) - 1}", *extra_sbatch_args, _script("reprocess_array.sh"),
            str(task_list), "--out", str(Path(out).absolute())]
    if config is not None:
        args += ["--config", str(Path(config).absolute())]
    return _sbatch(sbatch, args)
