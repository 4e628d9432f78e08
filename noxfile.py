"""nox sessions: tests, lint, bench."""

import nox

nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (the browser test needs Debian's chromium at /usr/bin/chromium)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the code."""
    session.install("ruff")
    session.run("ruff", "check", "remote_monitor", "local_viewer", "tests", "benchmarks")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: print measured ratios and times (not pass/fail)."""
    session.install("-e", ".[test]")
    for script in ("bench_reading.py", "bench_fit.py", "bench_point.py", "bench_latency.py"):
        session.run("python", f"benchmarks/{script}")
