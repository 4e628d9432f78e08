#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox"]
# ///
"""nox sessions: lint (ruff + mypy + repo-review), tests, bench, lock. Installs use constraints.txt."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.3"
nox.options.default_venv_backend = "uv|virtualenv"

CONSTRAINTS = ("-c", "constraints.txt")


@nox.session(default=True)
def lint(session: nox.Session) -> None:
    """ruff and mypy over the code, repo-review over the packaging; fails on any finding."""
    session.install(*CONSTRAINTS, "-e", ".[test]")
    session.run("ruff", "check", ".")
    session.run("mypy")
    session.run("repo-review", ".")


@nox.session(default=True)
def tests(session: nox.Session) -> None:
    """The test suite (the browser tests need Debian's chromium at /usr/bin/chromium)."""
    session.install(*CONSTRAINTS, "-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: print measured ratios and times (not pass/fail)."""
    session.install(*CONSTRAINTS, "-e", ".[test]")
    for script in sorted(p.name for p in __import__("pathlib").Path("benchmarks").glob("bench_*.py")):
        session.run("python", f"benchmarks/{script}")


@nox.session(default=False, venv_backend="virtualenv")
def lock(session: nox.Session) -> None:
    """Re-resolve the newest allowed versions and write them to constraints.txt (then run the tests)."""
    session.install("-e", ".[test]")
    frozen = session.run("pip", "freeze", "--exclude-editable", silent=True, external=False)
    header = "# Pinned versions the tests ran with. Update: `nox -s lock`, run the tests, commit.\n"
    __import__("pathlib").Path("constraints.txt").write_text(header + str(frozen))


if __name__ == "__main__":
    nox.main()
