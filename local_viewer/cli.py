"""`local-viewer`: mirror and watch the monitor's reports; send signed flag/archive/unflag commands."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import webbrowser
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from remote_monitor.cli_common import (
    DEFAULT_URL,
    ENV,
    GuidedParser,
    HelpFormatter,
    add_global_options,
    examples,
    guarded,
    http_url,
    port,
    positive,
    resolve_globals,
    user_config_path,
    user_defaults,
    version_string,
)

from .mirror import Mirror, MirrorError
from .send_command import CommandError, drop_and_wait, post_and_wait, signed_command
from .status import StatusBoard, notify
from .terminal import say, terminal_safe
from .tunnel import SshOptions, close_tunnel, open_tunnel, ssh_failure, wait_for_port


def _clock(ts: float | None) -> str:
    """HH:MM:SS for today, with the date for older times; "never" for None."""
    if not ts:
        return "never"
    moment = datetime.fromtimestamp(ts)
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now().date() else "%Y-%m-%d %H:%M:%S")


def _poll(mirror: Mirror, interval: float) -> None:
    """One poll; prints what changed or why the last good copy is shown."""
    now = _clock(time.time())
    try:
        updated = mirror.poll_once()
        if updated:
            say(f"[{now}] updated {len(updated)} file(s)")
    except MirrorError as exc:
        what = "server unreachable" if mirror.unreachable else "server sends bad data"
        say(f"[{now}] {what} since {_clock(mirror.failing_since)}, showing last good copy from "
              f"{_clock(mirror.last_success)} ({exc}); next try in {mirror.next_delay(interval):g} s")


def _ssh_options(args: argparse.Namespace) -> SshOptions:
    return SshOptions(port=args.ssh_port, identity=args.identity, jump=args.jump, config=args.ssh_config,
                      options=tuple(args.ssh_option or ()), accept_new_host_key=args.accept_new_host_key)


def _open_tunnel(args: argparse.Namespace) -> subprocess.Popen[str]:
    tunnel = open_tunnel(args.ssh, args.remote_port, args.local_port, options=_ssh_options(args))
    ready = wait_for_port(args.local_port, tunnel, timeout=args.timeout)
    if not ready and tunnel.poll() is not None:
        say(f"ssh tunnel to {args.ssh} failed: {ssh_failure(tunnel, args.ssh)}", file=sys.stderr)
    else:
        say(f"ssh tunnel to {args.ssh}: 127.0.0.1:{args.local_port} -> 127.0.0.1:{args.remote_port} on the "
            f"remote side{'' if ready else ' (not answering yet)'}")
    return tunnel


def _add_ssh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ssh", metavar="[USER@]HOST", help="reach the monitor through an ssh tunnel to HOST (an ssh "
                   "config alias works); the tunnel ends on HOST's loopback, where `remote-monitor serve` listens "
                   f"(watch: default ${ENV['ssh']} or viewer.toml)")
    p.add_argument("--ssh-port", type=port, metavar="PORT", help="ssh port of HOST (default: ssh config, or 22)")
    p.add_argument("--identity", metavar="FILE", help="private key for ssh (-i)")
    p.add_argument("--jump", metavar="[USER@]HOST[:PORT]", help="jump host(s) on the way (ssh -J)")
    p.add_argument("--ssh-config", metavar="FILE", help="ssh config file to use (ssh -F)")
    p.add_argument("--ssh-option", action="append", metavar="KEY=VALUE", help="more ssh -o options")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust an unknown host key on first use (StrictHostKeyChecking=accept-new)")
    p.add_argument("--remote-port", type=port, default=8765, help="the monitor's port on HOST")
    p.add_argument("--local-port", type=port, default=8765, help="local end of the tunnel")


def watch(args: argparse.Namespace) -> int:
    url = f"http://127.0.0.1:{args.local_port}/" if args.ssh else args.url
    mirror, board = Mirror(url, args.out, timeout=args.timeout, max_backoff=args.max_backoff), StatusBoard(args.out)
    index = Path(args.out) / "reports" / "index.html"
    tunnel: subprocess.Popen[str] | None = None
    opened, shown = False, list[str]()
    try:
        if args.ssh:
            tunnel = _open_tunnel(args)
        while True:
            if tunnel is not None and tunnel.poll() is not None:
                say(f"ssh tunnel exited with code {tunnel.returncode}; reopening it")
                tunnel = _open_tunnel(args)
            _poll(mirror, args.interval)
            lines, alerts = board.update()
            if lines != shown:  # the status block only when something changed: no scrolling spam
                say("\n".join(lines))
                shown = lines
            for line in alerts:
                say(line)
            notify([terminal_safe(a) for a in alerts], bell=not args.no_bell)
            for line in mirror.skipped:
                say(f"skipped {line}")
            mirror.skipped = []
            if not opened and not args.no_browser and index.is_file():
                webbrowser.open(index.absolute().as_uri())
                opened = True
            if args.once:
                return 0 if mirror.failures == 0 else 1
            time.sleep(mirror.next_delay(args.interval))
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError) as exc:  # no ssh, bad --ssh destination, output directory not writable
        say(f"local-viewer watch: error: {exc}", file=sys.stderr)
        return 2
    finally:
        mirror.close()
        if tunnel is not None:
            close_tunnel(tunnel)


def command(args: argparse.Namespace) -> int:
    tunnel: subprocess.Popen[str] | None = None
    try:
        if args.ssh:
            tunnel = _open_tunnel(args)
            args.url = f"http://127.0.0.1:{args.local_port}/"
        return _send(args)
    finally:
        if tunnel is not None:
            close_tunnel(tunnel)


def _send(args: argparse.Namespace) -> int:
    try:
        cmd = signed_command(args.action, args.serial, args.scan, reason=args.reason, key_file=args.key,
                             points=args.points, issuer=args.issuer)
        receipt = (post_and_wait(cmd, args.url, args.wait) if args.url else drop_and_wait(cmd, args.inbox, args.wait))
    except (OSError, ValueError, CommandError) as exc:
        say(f"local-viewer {args.action}: error: {exc}", file=sys.stderr)
        return 2
    if receipt is None:
        say(f"no receipt within {args.wait:g} s for command {cmd['nonce']} (it stays queued until it expires "
              f"at {cmd['expires_at']}); is the monitor running?")
        return 2
    if receipt.get("status") == "accepted":
        say(f"accepted: {args.action} {args.serial} scan {args.scan}"
              + (f" points {', '.join(args.points)}" if args.points else ""))
        return 0
    say(f"rejected: {receipt.get('reason') or 'no reason given'}")
    return 1


WATCH_EXAMPLES = examples(
    "local-viewer watch                                   # the monitor on this machine (default URL)",
    "local-viewer watch --url http://monitor.lab:8765/   # or the URL as the first argument",
    "local-viewer watch --ssh op@login.cluster            # through an ssh tunnel to the monitor's port",
    "PMT_MONITOR_URL=http://monitor.lab:8765/ local-viewer watch --once --no-browser",
)
COMMAND_EXAMPLES = {
    "flag": examples("local-viewer flag EA0042 --scan 261125_101500 --reason 'HV cable loose'",
                     "local-viewer flag EA0042 --scan 261125_101500 --points theta10_phi90 --reason 'no SPE peak'"),
    "archive": examples("local-viewer archive EA0042 --scan 261125_101500"),
    "unflag": examples("local-viewer unflag EA0042 --scan 261125_101500 --reason 'cable fixed, data fine'"),
}
DEFAULTS_NOTE = (f"Defaults for --key, --url and --ssh come from ${ENV['key']}, ${ENV['url']}, ${ENV['ssh']}, "
                 "else from key/url/ssh in ~/.config/pmt-monitor/viewer.toml (or --config FILE).")


def build_parser() -> argparse.ArgumentParser:
    parser = GuidedParser(prog="local-viewer", description=__doc__ + "\n\n" + DEFAULTS_NOTE,
                          formatter_class=HelpFormatter, epilog=WATCH_EXAMPLES)
    parser.add_argument("--version", action="version", version=version_string("local-viewer"))
    sub = parser.add_subparsers(dest="what", required=True, metavar="COMMAND", parser_class=GuidedParser)
    w = sub.add_parser("watch", help="mirror the reports, open them, print live status and alerts",
                       description="Mirror the monitor's reports and results into --out, open the index in the "
                                   "browser once, and print a status line per scan and an alert per bad point. "
                                   "When the monitor is unreachable the last good copy stays readable.",
                       formatter_class=HelpFormatter, epilog=WATCH_EXAMPLES)
    w.add_argument("url", nargs="?", type=http_url, default=None, metavar="URL",
                   help=f"the monitor's URL (same as --url; default ${ENV['url']}, viewer.toml or {DEFAULT_URL})")
    w.add_argument("--url", dest="url_option", type=http_url, default=None, metavar="URL",
                   help="the monitor's URL")
    w.add_argument("--out", type=Path, default=Path.home() / "pmt-reports", help="where the mirror goes")
    w.add_argument("--interval", type=positive, default=3.0, help="seconds between polls")
    w.add_argument("--timeout", type=positive, default=10.0, help="HTTP timeout in seconds")
    w.add_argument("--max-backoff", type=positive, default=60.0, help="longest wait between failing polls (s)")
    _add_ssh_args(w)
    w.add_argument("--no-browser", action="store_true", help="do not open the index in the browser")
    w.add_argument("--no-bell", action="store_true", help="no terminal bell / desktop notification on alerts")
    w.add_argument("--once", action="store_true", help="poll once and exit (1 if the server failed)")
    w.set_defaults(run=watch)
    for action in ("flag", "archive", "unflag"):
        c = sub.add_parser(action, help=f"send a signed {action} command",
                           description=f"Send a signed {action} command for one scan (or some of its points) "
                                       "to the monitor and wait for its receipt (accepted or rejected, with the "
                                       "reason). " + DEFAULTS_NOTE,
                           formatter_class=HelpFormatter, epilog=COMMAND_EXAMPLES[action])
        c.add_argument("serial", help="PMT serial number, e.g. EA0042")
        c.add_argument("--scan", required=True, help="scan id YYMMDD_HHMMSS")
        c.add_argument("--reason", required=action != "archive",
                       default="scan complete and good" if action == "archive" else None,
                       help="why (shown in the report and the receipt)")
        c.add_argument("--points", nargs="+", help="only these points (default: the whole scan)")
        c.add_argument("--key", type=Path, default=None,
                       help=f"the monitor's command key file (default ${ENV['key']} or viewer.toml)")
        target = c.add_mutually_exclusive_group()
        target.add_argument("--url", type=http_url, help=f"the monitor's HTTP endpoint (default ${ENV['url']}, "
                                                         f"viewer.toml or {DEFAULT_URL})")
        target.add_argument("--inbox", type=Path, help="write into this command inbox directory instead")
        c.add_argument("--issuer", help="who sends it (default user@host)")
        c.add_argument("--wait", type=positive, default=30.0, help="seconds to wait for the receipt")
        c.add_argument("--timeout", type=positive, default=10.0, help="seconds to wait for the ssh tunnel")
        _add_ssh_args(c)
        c.set_defaults(run=command, action=action)
    add_global_options(parser, sub, config_help="user config with key, url, ssh defaults "
                                                "(default ~/.config/pmt-monitor/viewer.toml)")
    return parser


def _apply_defaults(args: argparse.Namespace) -> None:
    """Fill key, url and ssh from the environment and the user config where the command line left them."""
    defaults = user_defaults(args.config)
    if args.run is watch:
        args.url = args.url_option or args.url or defaults.get("url") or DEFAULT_URL
        args.ssh = args.ssh or defaults.get("ssh")
        return
    if args.key is None and defaults.get("key"):
        args.key = Path(defaults["key"]).expanduser()
    if args.key is None:
        raise ValueError(f"no command key: give --key FILE, set ${ENV['key']} or key = \"...\" in "
                         f"{args.config or user_config_path()}")
    if not args.url and not args.inbox:
        args.url = http_url(defaults.get("url") or DEFAULT_URL)


def main(argv: Sequence[str] | None = None) -> int:
    args = resolve_globals(build_parser().parse_args(argv))

    def run() -> int:
        _apply_defaults(args)
        return int(args.run(args))

    return guarded("local-viewer", args.what, run, args.verbose, (CommandError, MirrorError))


if __name__ == "__main__":
    sys.exit(main())
