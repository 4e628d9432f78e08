"""The subcommands of `remote-monitor`: each cmd_* takes the parsed arguments and returns the exit code.

The parser is in cli.py; heavy modules are imported inside each command, so that `--help` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from remote_monitor.stand.config import SchedulerSettings, load_config


def _scheduler_settings(args: argparse.Namespace) -> SchedulerSettings:
    from dataclasses import fields, replace

    settings = load_config(args.config).scheduler
    given = {f.name: getattr(args, f.name) for f in fields(settings)
             if getattr(args, f.name, None) is not None}
    if getattr(args, "slurm", None) is not None:
        given["kind"] = "slurm"
    return replace(settings, **given)


def _simulation_config(args: argparse.Namespace, **extra: Any) -> Any:
    from remote_monitor.simulation.stand import SimulationConfig, parse_fault

    return SimulationConfig(
        n_events=args.events, record_length=args.record_length, fmt=args.fmt,
        include_reference=args.reference, seed=args.seed,
        faults=[parse_fault(f) for f in args.fault], **extra,
    )


def _bars(args: argparse.Namespace, simulate_total: int | None = None, process_total: int | None = None) -> Any:
    """Progress bars on an interactive terminal (not with -v, where every log line shows)."""
    from remote_monitor.progress import progress_bars

    return progress_bars(sys.stderr.isatty() and not args.verbose, simulate_total, process_total)


def _points_per_scan(cfg: Any) -> int:
    from remote_monitor.stand.layout import SCAN_POINTS

    return len(SCAN_POINTS) + len(cfg.hv_offsets)


def cmd_simulate(args: argparse.Namespace) -> int:
    from remote_monitor.simulation.stand import simulate_scan

    cfg = _simulation_config(args, write_delay_s=args.delay, chunks_per_file=args.chunks)
    serials = args.serial or ["SIM0001"]
    with _bars(args, simulate_total=len(serials) * _points_per_scan(cfg)):
        for serial in serials:
            truth = simulate_scan(args.data, serial, scan_id=args.scan_id, cfg=cfg)
            print(f"wrote scan {truth['scan_id']} of {serial} below {args.data}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from remote_monitor.demo import run_demo

    cfg = _simulation_config(args)
    serials = args.serial or ["SIM0001"]
    with _bars(args, simulate_total=len(serials) * _points_per_scan(cfg)):
        return run_demo(args.workdir, serials, cfg, workers=args.workers)


def cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from remote_monitor.service.monitor import run_monitor

    cfg = load_config(args.config)
    if args.poll is not None:
        cfg = replace(cfg, monitor=replace(cfg.monitor, poll_seconds=args.poll))
    if args.publish is not None:
        cfg = replace(cfg, publish=replace(cfg.publish, dir=str(args.publish)))
    if args.grace is not None:
        cfg = replace(cfg, monitor=replace(cfg.monitor, grace_seconds=args.grace))
    if args.once:
        with _bars(args):
            return run_monitor(cfg, args.data, args.out, once=args.once, serve=args.serve, stop_after=args.stop_after)
    return run_monitor(cfg, args.data, args.out, once=args.once, serve=args.serve, stop_after=args.stop_after)


def cmd_share(args: argparse.Namespace) -> int:
    from remote_monitor.service import mailer
    from remote_monitor.service.publish import page_name
    from remote_monitor.service.store import ResultsStore

    cfg = load_config(args.config)
    bad = [a for a in args.to if "@" not in a]
    if bad:
        raise ValueError(f"not an e-mail address: {', '.join(bad)}")
    base = cfg.publish.base_url
    url = base + page_name(args.serial, args.scan) if base else None
    msg = mailer.share_message(ResultsStore(args.out), cfg, args.serial, args.scan, args.to, url=url)
    try:
        mailer.send_message(cfg.mail, msg)
    except mailer.MailError as exc:
        print(f"remote-monitor share: not sent: {exc}", file=sys.stderr)
        return 1
    print(f"sent {msg['Subject']!r} to {', '.join(args.to)}")
    return 0


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
    from remote_monitor.service.reprocess import reprocess_scan, scan_points_on_disk

    cfg = load_config(args.config)
    with _bars(args, process_total=len(scan_points_on_disk(args.scan_dir.absolute(), cfg.layout))):
        reprocess_scan(args.scan_dir, args.out, cfg)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from remote_monitor.service.batch.jobs import submit_monitor

    result = submit_monitor(args.data, args.out, _scheduler_settings(args), config=args.config,
                            poll=args.poll, serve=args.serve, wait=args.wait)
    stream = sys.stderr if result.state == "failed" else sys.stdout
    print(f"{'monitor job ' + result.job_id + ': ' if result.state != 'failed' else 'error: '}{result.message}",
          file=stream)
    return 1 if result.state == "failed" else 0


def cmd_export(args: argparse.Namespace) -> int:
    from remote_monitor.report.campaign import export_campaign
    from remote_monitor.service.store import ResultsStore

    if not (args.out / "results").is_dir():
        raise ValueError(f"{args.out}: no results/ directory (give the monitor's --out directory)")
    cfg = load_config(args.config)
    written = export_campaign(ResultsStore(args.out), args.to or args.out / "campaign", cfg.gain.healthy_band,
                              cfg.gain.target, tuple(args.formats), cfg=cfg)
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_korean(args: argparse.Namespace) -> int:
    from remote_monitor.service.korean import write_korean_results

    cfg = load_config(args.config)
    for path in args.files:
        for r in write_korean_results(path, args.out, cfg):
            fit = r["fit"] or {}
            print(f"{path.name}: {r['serial']} {r['point']} {r['status']} gain {fit.get('gain')}")
    return 0


COMMANDS = {
    "demo": cmd_demo, "simulate": cmd_simulate, "run": cmd_run, "serve": cmd_serve,
    "keygen": cmd_keygen, "reprocess": cmd_reprocess, "submit": cmd_submit, "share": cmd_share,
    "export": cmd_export, "korean": cmd_korean,
}
