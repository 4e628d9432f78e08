"""`remote-monitor` command line: run, demo, simulate, reprocess, serve, keygen, submit."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from remote_monitor import __version__
from remote_monitor.stand.config import ConfigError, SchedulerSettings, load_config

log = logging.getLogger("remote_monitor")


def setup_logging(out_root: Path | None, verbose: bool = False) -> None:
    """Structured one-line logs to stderr and, with an output dir, to <out>/monitor.log."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if out_root is not None:
        out_root.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out_root / "monitor.log", encoding="utf-8"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        handlers=handlers,
        force=True,
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}") from None


def _add_simulation_args(p: argparse.ArgumentParser, events: int, record_length: int) -> None:
    p.add_argument("--serial", action="append", help="PMT serial number (repeatable)")
    p.add_argument("--events", type=int, default=events, help="events per point")
    p.add_argument("--record-length", type=int, default=record_length, help="samples per event")
    p.add_argument("--format", choices=("ascii", "binary"), default="ascii", dest="fmt")
    p.add_argument("--reference", action="store_true", help="also write the reference PMT (channel 4)")
    p.add_argument("--fault", action="append", default=[], metavar="KIND:POINT",
                   help="inject a fault, e.g. dead:theta20_phi90, low_gain:..., missing_channel:..., "
                        "truncated:..., garbage:...")
    p.add_argument("--seed", type=int, default=0)


def _add_scheduler_args(p: argparse.ArgumentParser) -> None:
    """Batch job options; each overrides the [scheduler] key of the same name."""
    p.add_argument("--scheduler", choices=("slurm", "pjm"), dest="kind", help="[scheduler] kind")
    p.add_argument("--partition", help="Slurm partition / PJM resource group (rscgrp)")
    p.add_argument("--account", help="Slurm account / PJM group")
    p.add_argument("--cpus", type=int, help="CPUs of the job")
    p.add_argument("--mem", dest="memory", help="memory of the job, e.g. 4G")
    p.add_argument("--time", help="time limit [D-]HH:MM:SS; the monitor job resubmits itself before it")
    p.add_argument("--mail-user", help="e-mail address for job events")
    p.add_argument("--mail-type", help="Slurm --mail-type (default FAIL)")
    p.add_argument("--python", help="absolute path of the interpreter in the job (default: this one)")
    p.add_argument("--setup", help="shell line run first in the job, e.g. 'module load python/3.11'")
    p.add_argument("--resubmit-margin", type=float, dest="resubmit_margin_seconds",
                   help="stop this many seconds before the time limit and resubmit (default 300)")


def _scheduler_settings(args: argparse.Namespace) -> SchedulerSettings:
    from dataclasses import fields, replace

    settings = load_config(args.config).scheduler
    given = {f.name: getattr(args, f.name) for f in fields(settings)
             if getattr(args, f.name, None) is not None}
    if getattr(args, "slurm", None) is not None:
        given["kind"] = "slurm"
    return replace(settings, **given)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remote-monitor", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate a PMT scan with faults, process it, write the report")
    p.add_argument("--workdir", type=Path, default=Path("demo"), help="where data/ and out/ go")
    _add_simulation_args(p, events=10000, record_length=512)

    p = sub.add_parser("simulate", help="write a simulated test-stand dataset (WaveDump files + truth)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--scan-id", help="YYMMDD_HHMMSS (default: now)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds between points (live scan)")
    p.add_argument("--chunks", type=int, default=1, help="write each file in this many pieces")
    _add_simulation_args(p, events=10000, record_length=1024)

    p = sub.add_parser("run", help="watch the data directory and keep the reports current")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)
    p.add_argument("--poll", type=float, help="use the polling observer every N s (GPFS/NFS/Lustre)")
    p.add_argument("--once", action="store_true", help="process what is there, then exit")
    p.add_argument("--serve", type=_host_port, metavar="[HOST:]PORT", help="also serve the reports")
    p.add_argument("--stop-after", type=float, metavar="SECONDS",
                   help="stop by itself after this long with exit code 75 (batch jobs: before the time limit)")
    p.add_argument("--grace", type=float, metavar="SECONDS",
                   help="on SIGTERM wait this long for the points in flight (default [monitor] grace_seconds)")

    p = sub.add_parser("serve", help="serve the reports read-only and accept POST /commands")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)

    p = sub.add_parser("keygen", help="write a new random command key (mode 0600)")
    p.add_argument("--key", type=Path, required=True)

    p = sub.add_parser("reprocess", help="process one scan directory now, or an archive as a batch job array")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--scan-dir", type=Path, help="<root>/wavedump_output_<id>/<SN>")
    group.add_argument("--batch", type=Path, metavar="ARCHIVE",
                       help="submit a job array (PJM: bulk job) with one task per PMT scan under ARCHIVE")
    group.add_argument("--slurm", type=Path, metavar="ARCHIVE", help="the same as --batch with --scheduler slurm")
    _add_scheduler_args(p)

    p = sub.add_parser("submit", help="start the monitor as a batch job (Slurm or PJM) and wait until it runs")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)
    p.add_argument("--poll", type=float, default=10.0, help="polling interval on the shared file system (s)")
    p.add_argument("--serve", metavar="[HOST:]PORT",
                   help="also serve from the job (reachable only on the compute node; prefer `serve` on the "
                        "login node)")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the job to run (default 120)")
    _add_scheduler_args(p)
    return parser


def _simulation_config(args: argparse.Namespace, **extra: object) -> object:
    from remote_monitor.simulation.stand import SimulationConfig, parse_fault

    return SimulationConfig(
        n_events=args.events, record_length=args.record_length, fmt=args.fmt,
        include_reference=args.reference, seed=args.seed,
        faults=[parse_fault(f) for f in args.fault], **extra,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from remote_monitor.simulation.stand import simulate_scan

    cfg = _simulation_config(args, write_delay_s=args.delay, chunks_per_file=args.chunks)
    for serial in args.serial or ["SIM0001"]:
        truth = simulate_scan(args.data, serial, scan_id=args.scan_id, cfg=cfg)
        print(f"wrote scan {truth['scan_id']} of {serial} below {args.data}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from remote_monitor.demo import run_demo

    return run_demo(args.workdir, args.serial or ["SIM0001"], _simulation_config(args))


def cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from remote_monitor.service.monitor import run_monitor

    cfg = load_config(args.config)
    if args.poll is not None:
        cfg = replace(cfg, monitor=replace(cfg.monitor, poll_seconds=args.poll))
    if args.grace is not None:
        cfg = replace(cfg, monitor=replace(cfg.monitor, grace_seconds=args.grace))
    return run_monitor(cfg, args.data, args.out, once=args.once, serve=args.serve, stop_after=args.stop_after)


def cmd_serve(args: argparse.Namespace) -> int:
    from remote_monitor.service.http_server import serve

    serve(args.out, args.host, args.port)
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from remote_monitor.service.command_signing import generate_key_file

    generate_key_file(args.key)
    print(f"wrote {args.key} (mode 0600); copy it to the operators' laptops over a secure channel")
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    archive = args.batch or args.slurm
    if archive is not None:
        from remote_monitor.service.batch.jobs import submit_reprocess

        settings = _scheduler_settings(args)
        layout = load_config(args.config).layout
        job, tasks, script = submit_reprocess(archive, args.out, settings, config=args.config,
                                              layout=layout)
        print(f"submitted reprocessing job array {job} ({tasks} task(s), script {script})")
        return 0
    from remote_monitor.service.reprocess import reprocess_scan

    reprocess_scan(args.scan_dir, args.out, load_config(args.config))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from remote_monitor.service.batch.jobs import submit_monitor

    result = submit_monitor(args.data, args.out, _scheduler_settings(args), config=args.config,
                            poll=args.poll, serve=args.serve, wait=args.wait)
    stream = sys.stderr if result.state == "failed" else sys.stdout
    print(f"{'monitor job ' + result.job_id + ': ' if result.state != 'failed' else 'error: '}{result.message}",
          file=stream)
    return 1 if result.state == "failed" else 0


COMMANDS = {
    "demo": cmd_demo, "simulate": cmd_simulate, "run": cmd_run, "serve": cmd_serve,
    "keygen": cmd_keygen, "reprocess": cmd_reprocess, "submit": cmd_submit,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = getattr(args, "out", None) or (args.workdir / "out" if args.command == "demo" else None)
    setup_logging(out, args.verbose)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("%s", exc)
        print(f"remote-monitor {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. SchedulerError: sbatch missing or refusing the job
        print(f"remote-monitor {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
