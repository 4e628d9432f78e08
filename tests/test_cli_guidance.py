"""Both command lines guide: help with defaults and examples everywhere, global options in either place,
defaults from the environment and the user config, and no traceback for any typical mistake."""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console

from local_viewer import cli as viewer_cli
from remote_monitor import cli as monitor_cli
from remote_monitor.cli_common import user_defaults
from remote_monitor.simulation.stand import SimulationConfig, simulate_scan

REPO = Path(__file__).resolve().parents[1]


def _subparsers(parser: object) -> dict[str, object]:
    for action in parser._actions:  # type: ignore[attr-defined]
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("build", [monitor_cli.build_parser, viewer_cli.build_parser], ids=["remote", "viewer"])
def test_every_subcommand_and_option_has_help_and_an_example(build: object) -> None:
    parser = build()  # type: ignore[operator]
    for name, child in _subparsers(parser).items():
        assert child.description, name
        assert child.epilog.startswith("examples:") and f" {name}" in child.epilog, name
        formatter = child._get_formatter()
        for action in child._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings != ["-h", "--help"]:
                assert "default" in formatter._get_help_string(action), f"{name} {action.dest}: default not shown"
        assert "examples:" in child.format_help(), name


def _run(prog: str, args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMT_MONITOR_", "XDG_CONFIG"))}
    env.update(HOME=str(home), PYTHONPATH=str(REPO), PATH=f"{home}{os.pathsep}/usr/bin:/bin", COLUMNS="100")
    module = {"remote-monitor": "remote_monitor.cli", "local-viewer": "local_viewer.cli"}[prog]
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False, cwd=home)


def test_typical_mistakes_are_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    d, o, key = str(tmp_path / "data"), str(tmp_path / "out"), tmp_path / "monitor.key"
    key.write_text("0" * 64)
    key.chmod(0o600)
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[fit]\nmodel = 3\n[[[")
    remote = [
        [], ["frobnicate"], ["run", "--bogus"], ["run", "--data", d],
        ["run", "--data", d, "--out", o, "--serve", "99999"], ["serve", "--out", o, "--port", "http"],
        ["run", "--data", d, "--out", o, "--poll", "-1"], ["run", "--data", d, "--out", o, "--config", "nope.toml"],
        ["run", "--data", d, "--out", o, "--config", str(bad_config)],
        ["demo", "--workdir", "/proc/x"], ["demo", "--events", "many"], ["simulate", "--data", "/proc/x"],
        ["simulate", "--data", d, "--fault", "bogus"], ["keygen"], ["keygen", "--key", "/proc/x/monitor.key"],
        ["reprocess", "--out", o, "--scan-dir", str(tmp_path)], ["reprocess", "--out", o],
        ["submit", "--data", d], ["submit", "--data", d, "--out", o, "--poll", "soon"], ["demo", "--workers", "0"],
    ]
    viewer = [
        [], ["watch", "htp:/typo"], ["watch", "--url", "ftp://host/"], ["watch", "--interval", "0"],
        ["watch", "--local-port", "99999"], ["watch", "--ssh", "-oProxyCommand=x", "--once", "--no-browser"],
        ["flag", "EA0001", "--scan", "261125_101500", "--reason", "r"],
        ["flag", "EA0001", "--scan", "261125_101500", "--reason", "r", "--key", "missing.key", "--url", dead],
        ["archive", "EA0001"], ["unflag", "EA0001", "--scan", "261125_101500", "--key", str(key), "--url", "htp:/x"],
        ["archive", "EA0001", "--scan", "261125_101500", "--key", str(key), "--url", dead, "--wait", "1"],
    ]
    cases = [("remote-monitor", a) for a in remote] + [("local-viewer", a) for a in viewer]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: _run(c[0], c[1], tmp_path), cases))
    for (prog, args), proc in zip(cases, results, strict=True):
        lines = proc.stderr.strip().splitlines()
        shown = f"{prog} {' '.join(args)} -> {proc.returncode}: {proc.stderr!r}"
        assert proc.returncode != 0, shown
        assert "Traceback" not in proc.stderr + proc.stdout, shown
        assert len(lines) == 1 and lines[0].startswith(prog) and "error" in lines[0], shown
    typo = results[cases.index(("local-viewer", ["watch", "htp:/typo"]))].stderr
    assert "not an http(s) URL" in typo and "unreachable" not in typo
    assert "port must be 0-65535" in results[4].stderr
    assert "--workers: must be >= 1" in results[len(remote) - 1].stderr
    print(f"{len(cases)} mistakes, each one line; e.g. {results[9].stderr.strip()!r}")


def test_global_options_before_or_after_the_subcommand() -> None:
    parse = monitor_cli.build_parser().parse_args
    for argv in (["-v", "--config", "m.toml", "run", "--data", "d", "--out", "o"],
                 ["run", "--data", "d", "--out", "o", "-v", "--config", "m.toml"],
                 ["-v", "run", "--data", "d", "--out", "o", "--config", "m.toml"]):
        args = monitor_cli.resolve_globals(parse(argv))
        assert args.verbose is True and args.config == Path("m.toml"), argv
    args = monitor_cli.resolve_globals(parse(["run", "--data", "d", "--out", "o"]))
    assert args.verbose is False and args.config is None
    args = viewer_cli.resolve_globals(viewer_cli.build_parser().parse_args(["watch", "-v", "--url", "http://h:1"]))
    assert args.verbose and args.url_option == "http://h:1/"


def test_version_names_the_commit(capsys: pytest.CaptureFixture) -> None:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    for main, prog in ((monitor_cli.main, "remote-monitor"), (viewer_cli.main, "local-viewer")):
        with pytest.raises(SystemExit) as exit_info:
            main(["--version"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(prog) and f"git {head}" in out


def test_defaults_from_user_config_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pmt-monitor" / "viewer.toml"
    config.parent.mkdir()
    config.write_text('url = "http://from-config:8765/"\nkey = "~/k.key"\nssh = "op@login"\n')
    for var in ("PMT_MONITOR_URL", "PMT_MONITOR_KEY", "PMT_MONITOR_SSH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_defaults() == {"url": "http://from-config:8765/", "key": "~/k.key", "ssh": "op@login"}
    monkeypatch.setenv("PMT_MONITOR_URL", "http://from-env:1/")
    assert user_defaults()["url"] == "http://from-env:1/"
    args = viewer_cli.resolve_globals(viewer_cli.build_parser().parse_args(["watch"]))
    viewer_cli._apply_defaults(args)
    assert args.url == "http://from-env:1/" and args.ssh == "op@login"
    args = viewer_cli.resolve_globals(viewer_cli.build_parser().parse_args(["watch", "http://given:2"]))
    viewer_cli._apply_defaults(args)
    assert args.url == "http://given:2/"  # the command line wins
    args = viewer_cli.resolve_globals(viewer_cli.build_parser().parse_args(
        ["flag", "EA0001", "--scan", "261125_101500", "--reason", "r"]))
    viewer_cli._apply_defaults(args)
    assert args.key == Path.home() / "k.key" and args.url == "http://from-env:1/"


def test_progress_bars_count_simulated_and_processed_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, simulate and run --once show bars that reach the number of points."""
    screen = io.StringIO()
    monkeypatch.setattr("remote_monitor.progress.Console",
                        lambda stderr: Console(file=screen, force_terminal=True, width=120))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert monitor_cli.main(["simulate", "--data", str(tmp_path / "sim"), "--events", "200", "--record-length",
                             "200", "--scan-id", "261129_100000"]) == 0
    assert "26/26" in screen.getvalue() and "simulated HV_" in screen.getvalue()
    screen.truncate(0)
    data, out, config = tmp_path / "d", tmp_path / "o", tmp_path / "m.toml"
    config.write_text("[fit]\nmin_events = 200\n")
    simulate_scan(data, "PB0001", scan_id="261129_110000", points=["theta0_phi0", "theta10_phi90", "theta20_phi0"],
                  cfg=SimulationConfig(n_events=800, record_length=300, seed=4))
    assert monitor_cli.main(["run", "--data", str(data), "--out", str(out), "--once", "--config", str(config)]) == 0
    assert "3/3" in screen.getvalue(), screen.getvalue()[-500:]
