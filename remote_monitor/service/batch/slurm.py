"""Slurm: sbatch (options as an argument list, never spliced into a shell), squeue, scancel."""

from __future__ import annotations

from pathlib import Path

from remote_monitor.service.batch.scheduler import JobRequest, JobState, Scheduler, SchedulerError, run_tool

# Pending reasons that do not go away by waiting (the job would stay queued for ever).
HOPELESS = {
    "PartitionTimeLimit": "the time limit is above the partition's maximum (use --time)",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "PartitionConfig": "the request does not fit the partition (CPUs, memory?)",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "InvalidAccount": "the account is not valid (use --account)",
    "InvalidQOS": "the QOS is not valid",
    "AccountNotAllowed": "the account may not use this partition",
    "QOSMaxWallDurationPerJobLimit": "the time limit is above the QOS maximum (use --time)",
    "AssocMaxWallDurationPerJobLimit": "the time limit is above your association's maximum (use --time)",
    "BadConstraints": "the constraints cannot be met",
    "MaxMemPerLimit": "more memory than allowed (use --mem)",
}
SLURMSTATES_RUNNING = {"RUNNING"}
SLURMSTATES_PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED"}


class Slurm(Scheduler):
    name = "slurm"
    task_variable = "SLURM_ARRAY_TASK_ID"

    def submit_command(self, script: Path, request: JobRequest) -> list[str]:
        args = ["sbatch", "--parsable", f"--job-name={request.name}", f"--output={request.log}",
                f"--time={request.time}", f"--cpus-per-task={request.cpus}", "--ntasks=1", "--nodes=1"]
        if request.memory:
            args.append(f"--mem={request.memory}")
        if request.partition:
            args.append(f"--partition={request.partition}")
        if request.account:
            args.append(f"--account={request.account}")
        if request.mail_user:
            args += [f"--mail-user={request.mail_user}", f"--mail-type={request.mail_type or 'FAIL'}"]
        if request.array:
            args.append(f"--array=0-{request.array - 1}")
        return [*args, *request.extra_args, str(script)]

    def submit(self, script: Path, request: JobRequest) -> str:
        command = self.submit_command(script, request)
        out = run_tool(command[0], command[1:], "sbatch")
        job_id = out.strip().split(";")[0]  # --parsable prints "jobid" or "jobid;cluster"
        if not job_id.isdigit():
            raise SchedulerError(f"sbatch printed no job id: {out.strip()!r}")
        return job_id

    def state(self, job_id: str) -> JobState:
        try:
            out = run_tool("squeue", ["-h", "-j", job_id, "-o", "%T|%r"], "squeue")
        except SchedulerError as exc:
            if "Invalid job id" in str(exc):
                return JobState("ended")
            raise
        lines = [line for line in out.splitlines() if line.strip()]
        if not lines:
            return JobState("ended")
        states = [line.split("|", 1) for line in lines]
        if any(s[0] in SLURMSTATES_RUNNING for s in states):
            return JobState("running")
        state, reason = states[0][0], states[0][1] if len(states[0]) > 1 else ""
        if state in SLURMSTATES_PENDING:
            hint = HOPELESS.get(reason)
            return JobState("pending", f"{reason}: {hint}" if hint else reason, hopeless=hint is not None)
        return JobState("ended" if state in {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                                             "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"} else "unknown",
                        state)

    def cancel(self, job_id: str) -> None:
        run_tool("scancel", [job_id], "scancel")
