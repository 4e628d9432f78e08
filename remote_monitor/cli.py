"""`remote-monitor` command line: run, demo, simulate, reprocess, serve, keygen, submit."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from remote_monitor import __version__
from remote_monitor.stand.config import ConfigError, load_config

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

    p = sub.add_parser("serve", help="serve the reports read-only and accept POST /commands")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)

    p = sub.add_parser("keygen", help="write a new random command key (mode 0600)")
    p.add_argument("--key", type=Path, required=True)

    p = sub.add_parser("reprocess", help="process one scan directory now, or an archive as a Slurm array")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--scan-dir", type=Path, help="<root>/wavedump_output_<id>/<SN>")
    group.add_argument("--slurm", type=Path, metavar="ARCHIVE", help="submit a job array over ARCHIVE")

    p = sub.add_parser("submit", help="start the monitor as a Slurm job")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)
    p.add_argument("--time", default="7-00:00:00")
    p.add_argument("--poll", type=float, default=10.0)

    p = sub.add_parser("korean", help="process Korean-stand DAQ ROOT files (3 PMTs each): JSON per PMT + CSV")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)
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
    return run_monitor(cfg, args.data, args.out, once=args.once, serve=args.serve)


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
    if args.slurm is not None:
        from remote_monitor.service.batch.slurm import submit_reprocess_array

        job = submit_reprocess_array(args.slurm, args.out, config=args.config)
        print(f"submitted reprocessing job array {job}")
        return 0
    from remote_monitor.service.reprocess import reprocess_scan

    reprocess_scan(args.scan_dir, args.out, load_config(args.config))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from remote_monitor.service.batch.slurm import submit_monitor

    job = submit_monitor(args.data, args.out, config=args.config, time=args.time, poll=args.poll)
    print(f"submitted monitor job {job}")
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
    "keygen": cmd_keygen, "reprocess": cmd_reprocess, "submit": cmd_submit,
    "korean": cmd_korean,
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
    except RuntimeError as exc:  # e.g. SlurmUnavailableError
        print(f"remote-monitor {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
