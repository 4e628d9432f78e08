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

from .mirror import Mirror, MirrorError
from .send_command import CommandError, drop_and_wait, post_and_wait, signed_command
from .status import StatusBoard, notify
from .tunnel import SshOptions, close_tunnel, open_tunnel, ssh_failure, wait_for_port


def _clock(ts: float | None) -> str:
    """HH:MM:SS for today, with the date for older times; "never" for None."""
    if not ts:
        return "never"
    moment = datetime.fromtimestamp(ts)
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now().date() else "%Y-%m-%d %H:%M:%S")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _poll(mirror: Mirror, interval: float) -> None:
    """One poll; prints what changed or why the last good copy is shown."""
    now = _clock(time.time())
    try:
        updated = mirror.poll_once()
        if updated:
            print(f"[{now}] updated {len(updated)} file(s)")
    except MirrorError as exc:
        what = "server unreachable" if mirror.unreachable else "server sends bad data"
        print(f"[{now}] {what} since {_clock(mirror.failing_since)}, showing last good copy from "
              f"{_clock(mirror.last_success)} ({exc}); next try in {mirror.next_delay(interval):g} s")


def _ssh_options(args: argparse.Namespace) -> SshOptions:
    return SshOptions(port=args.ssh_port, identity=args.identity, jump=args.jump, config=args.ssh_config,
                      options=tuple(args.ssh_option or ()), accept_new_host_key=args.accept_new_host_key)


def _open_tunnel(args: argparse.Namespace) -> subprocess.Popen:
    tunnel = open_tunnel(args.ssh, args.remote_port, args.local_port, options=_ssh_options(args))
    ready = wait_for_port(args.local_port, tunnel, timeout=args.timeout)
    if not ready and tunnel.poll() is not None:
        print(f"ssh tunnel to {args.ssh} failed: {ssh_failure(tunnel, args.ssh)}", file=sys.stderr)
    else:
        print(f"ssh tunnel to {args.ssh}: 127.0.0.1:{args.local_port} -> 127.0.0.1:{args.remote_port} on the "
              f"remote side{'' if ready else ' (not answering yet)'}")
    return tunnel


def _add_ssh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ssh", metavar="[USER@]HOST", help="reach the monitor through an ssh tunnel to HOST (an ssh "
                   "config alias works); the tunnel ends on HOST's loopback, where `remote-monitor serve` listens")
    p.add_argument("--ssh-port", type=int, metavar="PORT", help="ssh port of HOST (default: ssh config, or 22)")
    p.add_argument("--identity", metavar="FILE", help="private key for ssh (-i)")
    p.add_argument("--jump", metavar="[USER@]HOST[:PORT]", help="jump host(s) on the way (ssh -J)")
    p.add_argument("--ssh-config", metavar="FILE", help="ssh config file to use (ssh -F)")
    p.add_argument("--ssh-option", action="append", metavar="KEY=VALUE", help="more ssh -o options")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust an unknown host key on first use (StrictHostKeyChecking=accept-new)")
    p.add_argument("--remote-port", type=int, default=8765, help="the monitor's port on HOST (default 8765)")
    p.add_argument("--local-port", type=int, default=8765, help="local end of the tunnel (default 8765)")


def watch(args: argparse.Namespace) -> int:
    url = f"http://127.0.0.1:{args.local_port}/" if args.ssh else args.url
    mirror, board = Mirror(url, args.out, timeout=args.timeout, max_backoff=args.max_backoff), StatusBoard(args.out)
    index = Path(args.out) / "reports" / "index.html"
    tunnel: subprocess.Popen | None = None
    opened, shown = False, list[str]()
    try:
        if args.ssh:
            tunnel = _open_tunnel(args)
        while True:
            if tunnel is not None and tunnel.poll() is not None:
                print(f"ssh tunnel exited with code {tunnel.returncode}; reopening it")
                tunnel = _open_tunnel(args)
            _poll(mirror, args.interval)
            lines, alerts = board.update()
            if lines != shown:  # the status block only when something changed: no scrolling spam
                print("\n".join(lines))
                shown = lines
            for line in alerts:
                print(line)
            notify(alerts, bell=not args.no_bell)
            if not opened and not args.no_browser and index.is_file():
                webbrowser.open(index.absolute().as_uri())
                opened = True
            if args.once:
                return 0 if mirror.failures == 0 else 1
            time.sleep(mirror.next_delay(args.interval))
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError) as exc:  # no ssh, bad --ssh destination, output directory not writable
        print(f"local-viewer watch: error: {exc}", file=sys.stderr)
        return 2
    finally:
        mirror.close()
        if tunnel is not None:
            close_tunnel(tunnel)


def command(args: argparse.Namespace) -> int:
    if not args.url and not args.inbox and not args.ssh:
        print("give --url URL (the monitor's endpoint), --ssh HOST or --inbox DIR", file=sys.stderr)
        return 2
    tunnel: subprocess.Popen | None = None
    try:
        if args.ssh:
            tunnel = _open_tunnel(args)
            args.url = f"http://127.0.0.1:{args.local_port}/"
        return _send(args)
    except (OSError, ValueError) as exc:
        print(f"local-viewer {args.action}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if tunnel is not None:
            close_tunnel(tunnel)


def _send(args: argparse.Namespace) -> int:
    try:
        cmd = signed_command(args.action, args.serial, args.scan, reason=args.reason, key_file=args.key,
                             points=args.points, issuer=args.issuer)
        receipt = (post_and_wait(cmd, args.url, args.wait) if args.url else drop_and_wait(cmd, args.inbox, args.wait))
    except (OSError, ValueError, CommandError) as exc:
        print(f"local-viewer {args.action}: error: {exc}", file=sys.stderr)
        return 2
    if receipt is None:
        print(f"no receipt within {args.wait:g} s for command {cmd['nonce']} (it stays queued until it expires "
              f"at {cmd['expires_at']}); is the monitor running?")
        return 2
    if receipt.get("status") == "accepted":
        print(f"accepted: {args.action} {args.serial} scan {args.scan}"
              + (f" points {', '.join(args.points)}" if args.points else ""))
        return 0
    print(f"rejected: {receipt.get('reason') or 'no reason given'}")
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="local-viewer", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("watch", help="mirror the reports, open them, print live status and alerts")
    w.add_argument("url", nargs="?", default="http://127.0.0.1:8765/")
    w.add_argument("--out", type=Path, default=Path.home() / "pmt-reports")
    w.add_argument("--interval", type=_positive, default=3.0, help="seconds between polls (default 3)")
    w.add_argument("--timeout", type=_positive, default=10.0, help="HTTP timeout in seconds (default 10)")
    w.add_argument("--max-backoff", type=_positive, default=60.0, help="longest wait between failing polls")
    _add_ssh_args(w)
    w.add_argument("--no-browser", action="store_true")
    w.add_argument("--no-bell", action="store_true")
    w.add_argument("--once", action="store_true", help="poll once and exit (1 if the server failed)")
    w.set_defaults(run=watch)
    for action in ("flag", "archive", "unflag"):
        c = sub.add_parser(action, help=f"send a signed {action} command")
        c.add_argument("serial")
        c.add_argument("--scan", required=True, help="scan id YYMMDD_HHMMSS")
        c.add_argument("--reason", required=action != "archive", default="scan complete and good")
        c.add_argument("--points", nargs="+", help="only these points (default: the whole scan)")
        c.add_argument("--key", type=Path, required=True, help="the monitor's command key file")
        target = c.add_mutually_exclusive_group()
        target.add_argument("--url", help="the monitor's HTTP endpoint")
        target.add_argument("--inbox", type=Path, help="write into this command inbox directory instead")
        c.add_argument("--issuer", help="who sends it (default user@host)")
        c.add_argument("--wait", type=_positive, default=30.0, help="seconds to wait for the receipt")
        c.add_argument("--timeout", type=_positive, default=10.0, help="seconds to wait for the ssh tunnel")
        _add_ssh_args(c)
        c.set_defaults(run=command, action=action)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
