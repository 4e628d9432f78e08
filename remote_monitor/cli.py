"""`remote-monitor` command line: run, demo, simulate, reprocess, serve, keygen, submit, export.

Start with `remote-monitor demo` (simulated PMT scan with faults -> report), then `run --data --out`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from remote_monitor.cli_commands import COMMANDS
from remote_monitor.cli_common import (
    ENV,
    GuidedParser,
    HelpFormatter,
    add_global_options,
    examples,
    guarded,
    port,
    positive,
    positive_int,
    resolve_globals,
    version_string,
)
from remote_monitor.service.log_file import LogFile
from remote_monitor.stand.config import ConfigError

log = logging.getLogger("remote_monitor")


def setup_logging(out_root: Path | None, verbose: bool = False) -> None:
    """Structured one-line logs to stderr and, with an output dir, to <out>/monitor.log."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if out_root is not None:
        out_root.mkdir(parents=True, exist_ok=True)
        handlers.append(LogFile(out_root / "monitor.log"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        handlers=handlers,
        force=True,
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, number = text.rpartition(":")
    return host or "127.0.0.1", port(number)


def _add_simulation_args(p: argparse.ArgumentParser, events: int, record_length: int, fmt: str = "ascii") -> None:
    p.add_argument("--serial", action="append", help="PMT serial number (repeatable; default SIM0001)")
    p.add_argument("--events", type=int, default=events, help="events per point")
    p.add_argument("--record-length", type=int, default=record_length, help="samples per event")
    p.add_argument("--format", choices=("ascii", "binary"), default=fmt, dest="fmt",
                   help="WaveDump output format")
    p.add_argument("--reference", action="store_true", help="also write the reference PMT (channel 4)")
    p.add_argument("--fault", action="append", default=[], metavar="KIND:POINT",
                   help="inject a fault (repeatable), e.g. dead:theta20_phi90, low_gain:..., missing_channel:..., "
                        "truncated:..., garbage:... (default: none; the demo without --fault injects dead, "
                        "low_gain, truncated and missing_channel at four points)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")


#: help for options defined without one (shared names; kept here so every option has help)
OPTION_HELP = {
    "--data": "the stand's data root (holds wavedump_output_<scan id>/<serial>/...)",
    "--out": "output directory: results/, reports/, monitor.log, commands/",
    "--config": "monitor configuration TOML (see stand/monitor.example.toml; default: built-in settings)",
    "--time": "Slurm time limit of the job",
    "--poll": "seconds between polls of the data directory (polling observer)",
    "--host": "address to listen on (127.0.0.1: reach it through an ssh tunnel)",
    "--port": "TCP port (0: any free port)",
    "--key": f"command key file (default ${ENV['key']})",
}
EXAMPLES = {
    "demo": examples("remote-monitor demo", "remote-monitor demo --workdir /tmp/demo --serial EA0001 --serial EA0002",
                     "remote-monitor demo --events 2000 --fault dead:theta20_phi90"),
    "simulate": examples("remote-monitor simulate --data /tmp/stand --serial EA0001",
                         "remote-monitor simulate --data /tmp/stand --delay 5 --chunks 4   # a live scan"),
    "run": examples("remote-monitor run --data /data/stand --out /data/monitor --serve 8765",
                    "remote-monitor run --data /gpfs/stand --out ~/monitor --poll 10 --config monitor.toml",
                    "remote-monitor run --data /tmp/stand --out /tmp/out --once   # process what is there, exit"),
    "serve": examples("remote-monitor serve --out /data/monitor --port 8765"),
    "keygen": examples("remote-monitor keygen --key /data/monitor/monitor.key"),
    "reprocess": examples("remote-monitor reprocess --scan-dir ARCHIVE/wavedump_output_261120_090000/EA0042 "
                          "--out /tmp/re",
                          "remote-monitor reprocess --slurm /data/ARCHIVE --out /data/reprocessed "
                          "--config monitor.toml"),
    "submit": examples("remote-monitor submit --data /gpfs/stand --out ~/monitor --time 2-00:00:00",
                       "remote-monitor submit --data /gpfs/stand --out ~/monitor --scheduler pjm --partition small"),
    "share": examples("remote-monitor share EA0042 --to shift@example.org --out /data/monitor --config monitor.toml",
                      "remote-monitor share EA0042 --scan 261125_101500 --to a@example.org b@example.org "
                      "--out /data/monitor"),
    "korean": examples("remote-monitor korean prd_EM2740A_hv1670_R00_T00_*.root --out /tmp/korean"),
    "export": examples("remote-monitor export --out /data/monitor                 # into /data/monitor/campaign",
                       "remote-monitor export --out /data/monitor --to ~/campaign --format csv root"),
}
DESCRIPTIONS = {
    "demo": "Simulate a PMT scan (21 positions + HV check) with injected faults, process it with the monitor, "
            "print each point against the simulation's truth and the path of the HTML report.",
    "simulate": "Write a simulated test-stand dataset (WaveDump files in the stand's layout + truth.json).",
    "run": "Watch the data directory, process each scan point as soon as its files are complete, keep the "
           "results and the HTML reports current; optionally serve them.",
    "serve": "Serve <out>/reports and results read-only over HTTP and accept signed POST /commands.",
    "keygen": "Write a new random command key (mode 0600) for signing flag/archive/unflag commands.",
    "reprocess": "Process one scan directory now, or submit a batch job array (Slurm; PJM bulk job) over an "
                 "archive, one task per PMT scan.",
    "submit": "Start the monitor as a batch job (Slurm, or PJM with --scheduler pjm) and wait until it runs; "
              "the job resubmits itself before its time limit.",
    "share": "E-mail a PMT's report as an attachment, with its verdict, points done, poor and error points with "
             "their reasons, mean gain and HV at 1e7 in the message ([mail] settings of the configuration).",
    "korean": "Process Korean-stand DAQ ROOT files (tree T, ADC[8][N], three PMTs per file; serials, HVs and "
              "angles from the file name): one result JSON per PMT and a CSV.",
    "export": "Campaign outputs over every PMT and scan in <out>/results: campaign_points (one row per point) "
              "and campaign_pmts (one row per PMT scan, with the verdict) as CSV and Parquet, and campaign.root "
              "with each point's charge histogram (TH1D) and fitted curves (TGraph) for ROOT users.",
}


def _guide(sub: argparse._SubParsersAction[Any]) -> None:
    """Description, examples and the defaults layout on every subcommand; help on every option."""
    for name, child in sub.choices.items():
        child.description = child.description or DESCRIPTIONS.get(name)
        child.epilog = child.epilog or EXAMPLES.get(name)
        child.formatter_class = HelpFormatter
        for action in child._actions:
            if action.help is None and action.option_strings:
                action.help = OPTION_HELP.get(action.option_strings[-1], "")


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


def build_parser() -> argparse.ArgumentParser:
    parser = GuidedParser(prog="remote-monitor", description=__doc__, formatter_class=HelpFormatter,
                          epilog=EXAMPLES["demo"] + "\n" + EXAMPLES["run"].split("\n", 1)[1])
    parser.add_argument("--version", action="version", version=version_string("remote-monitor"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=GuidedParser)

    p = sub.add_parser("demo", help="simulate a PMT scan with faults, process it, write the report")
    p.add_argument("--workdir", type=Path, default=Path("demo"), help="where data/ and out/ go")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes fitting points (default: the machine's cores, at most 4)")
    _add_simulation_args(p, events=120000, record_length=260, fmt="binary")  # the stand's record, 0.3 PE

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
    p.add_argument("--poll", type=positive, help="use the polling observer every N s (GPFS/NFS/Lustre)")
    p.add_argument("--once", action="store_true", help="process what is there, then exit")
    p.add_argument("--serve", type=_host_port, metavar="[HOST:]PORT", help="also serve the reports")
    p.add_argument("--stop-after", type=float, metavar="SECONDS",
                   help="stop by itself after this long with exit code 75 (batch jobs: before the time limit)")
    p.add_argument("--grace", type=float, metavar="SECONDS",
                   help="on SIGTERM wait this long for the points in flight (default [monitor] grace_seconds)")
    p.add_argument("--publish", type=Path, metavar="DIR",
                   help="keep a copy of index.html and every report in DIR (a web-served folder)")

    p = sub.add_parser("share", help="e-mail a PMT's report with a summary of its verdict ([mail] settings)")
    p.add_argument("serial", metavar="SN", help="PMT serial number, e.g. EA0042")
    p.add_argument("--scan", metavar="ID", help="scan id (default: the PMT's newest scan)")
    p.add_argument("--to", nargs="+", required=True, metavar="ADDR", help="recipients")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)

    p = sub.add_parser("serve", help="serve the reports read-only and accept POST /commands")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8765)

    p = sub.add_parser("keygen", help="write a new random command key (mode 0600)")
    p.add_argument("--key", type=Path, required=ENV["key"] not in os.environ,
                   default=os.environ.get(ENV["key"]) or None)

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
    p = sub.add_parser("korean", help="process Korean-stand DAQ ROOT files (3 PMTs each): JSON per PMT + CSV")
    p.add_argument("files", type=Path, nargs="+", help="Korean DAQ ROOT files (prd_<SN>_hv<V>_R<r>_T<t>_...root)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path)

    p = sub.add_parser("export", help="campaign tables (CSV/Parquet) and ROOT histograms over all PMTs")
    p.add_argument("--out", type=Path, required=True, help="the monitor's output directory (holds results/)")
    p.add_argument("--to", type=Path, help="where the files go (default: <out>/campaign)")
    p.add_argument("--format", nargs="+", choices=("csv", "parquet", "root"), default=["csv", "parquet", "root"],
                   dest="formats", help="which outputs")
    _guide(sub)
    add_global_options(parser, sub, config_help=OPTION_HELP["--config"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = resolve_globals(build_parser().parse_args(argv))

    def run() -> int:
        out = getattr(args, "out", None) or (args.workdir / "out" if args.command == "demo" else None)
        setup_logging(out, args.verbose)
        return COMMANDS[args.command](args)

    return guarded("remote-monitor", args.command, run, args.verbose, (ConfigError,))


if __name__ == "__main__":
    sys.exit(main())
