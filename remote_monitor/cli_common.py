"""What both command lines (`remote-monitor`, `local-viewer`) share: help layout, one-line usage errors,
global options accepted before or after the subcommand, defaults from the environment and a user config,
argument types that catch typos early, and one error wrapper so that no user mistake ends in a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from remote_monitor import __version__

#: environment variables that give defaults (they win over the user config file)
ENV = {"key": "PMT_MONITOR_KEY", "url": "PMT_MONITOR_URL", "ssh": "PMT_MONITOR_SSH"}
DEFAULT_URL = "http://127.0.0.1:8765/"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default (when it has one worth showing) and keeps the epilog examples as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return "\n\n".join(super(HelpFormatter, self)._fill_text(part, width, indent) for part in text.split("\n\n"))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default == [] or default is argparse.SUPPRESS \
                or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class GuidedParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the command and how to get help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def examples(*lines: str) -> str:
    """An epilog 'examples:' block."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def user_config_path() -> Path:
    """~/.config/pmt-monitor/viewer.toml (or under $XDG_CONFIG_HOME)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "pmt-monitor" / "viewer.toml"


def user_defaults(path: Path | None = None) -> dict[str, str]:
    """key, url and ssh defaults: environment variables over the user config file; missing ones absent.

    A broken config file is reported as one line on stderr and ignored (the command line still works).
    """
    path = path or user_config_path()
    found: dict[str, str] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            found = {k: str(data[k]) for k in ENV if data.get(k)}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            print(f"warning: ignoring {path}: {exc}", file=sys.stderr)
    for name, var in ENV.items():
        if os.environ.get(var):
            found[name] = os.environ[var]
    return found


def http_url(text: str) -> str:
    """An http(s) URL with a host: a typo such as 'htp:/host' is a usage error, not 'server unreachable'."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL with a host: {text!r} (e.g. {DEFAULT_URL})")
    try:
        _ = parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in URL {text!r}") from None
    return text if text.endswith("/") else text + "/"


def port(text: str) -> int:
    """A TCP port 0-65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def positive(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def add_global_options(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction[Any], *,
                       config_help: str) -> None:
    """-v/--verbose and --config on the main parser and on every subcommand (so they work in either place).

    The main parser's copies have their own dest (global_*); `resolve_globals` merges them after parsing.
    """
    verbose_help = "more output: debug logs, tracebacks"
    parser.add_argument("-v", "--verbose", dest="global_verbose", action="store_true", help=verbose_help)
    parser.add_argument("--config", dest="global_config", type=Path, help=config_help)
    for child in sub.choices.values():
        if "--verbose" not in child._option_string_actions:
            child.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
        if "--config" not in child._option_string_actions:
            child.add_argument("--config", type=Path, help=config_help)


def resolve_globals(args: argparse.Namespace) -> argparse.Namespace:
    """args.verbose and args.config whether they were given before or after the subcommand."""
    args.verbose = bool(getattr(args, "verbose", False) or args.global_verbose)
    args.config = getattr(args, "config", None) or args.global_config
    return args


def version_string(prog: str) -> str:
    """'prog 0.2.1 (git abc1234)' for --version."""
    from remote_monitor.stand.provenance import version_text

    return f"{prog} {version_text()}" if __version__ else prog


def guarded(prog: str, command: str, run: Callable[[], int], verbose: bool,
            user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a subcommand: a user error (bad path, config, value) is one line and exit 2, Ctrl-C exit 130;
    an unexpected failure is one line too, with the traceback only under -v."""
    caught: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError, LookupError, *user_errors)
    try:
        return run()
    except KeyboardInterrupt:
        print(f"{prog} {command}: interrupted", file=sys.stderr)
        return 130
    except caught as exc:
        print(f"{prog} {command}: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so in one line; -v shows where
        if verbose:
            logging.getLogger(prog).exception("internal error")
        print(f"{prog} {command}: internal error: {type(exc).__name__}: {exc} (rerun with -v for details)",
              file=sys.stderr)
        return 3


def _describe(exc: BaseException) -> str:
    """'Permission denied: /proc/x' rather than '[Errno 13] Permission denied: ...'."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{exc.strerror}: {where}" if where else exc.strerror
    text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def namespace_get(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    """An attribute of the parsed arguments that a subcommand may not define."""
    return getattr(args, name, default)
