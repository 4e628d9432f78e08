"""Where a result comes from: code version (with the git commit), configuration hash, input file digests.

Every point result carries a `provenance` dict so that a gain in a report or a CSV can be traced to the
code, the configuration and the input files that produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from remote_monitor import __version__
from remote_monitor.stand.config import Config

BLOCK = 1 << 20  # 1 MiB
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def git_commit() -> tuple[str | None, bool]:
    """(short commit hash, dirty) of the checkout this code runs from; (None, False) when not in a git checkout.

    The installed package version (setuptools-scm) is fixed at install time, so an editable install that
    has moved on since shows a stale commit there; this asks git about the running source directly (once).
    """
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(_PACKAGE_DIR), *args], capture_output=True, text=True,
                              timeout=10, check=False)

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return None, False
        dirty = git("diff", "--quiet", "HEAD", "--", ".").returncode == 1
    except (OSError, subprocess.SubprocessError):
        return None, False
    return head.stdout.strip(), dirty


def code_version() -> dict[str, Any]:
    """Package version (from package metadata, one place: remote_monitor.__version__) and the git commit."""
    commit, dirty = git_commit()
    return {"version": __version__, "git_commit": commit, "git_dirty": dirty}


def config_hash(cfg: Config) -> str:
    """First 16 hex digits of the SHA-256 of the effective configuration as canonical JSON."""
    text = json.dumps(dataclasses.asdict(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def head_tail_digest(path: Path) -> str:
    """BLAKE2b (16 bytes) over the size, the first MiB and the last MiB of a file: NOT a full checksum.

    Cost: two 1 MiB reads per file whatever its size (a real point is ~2.6 GB: a full checksum would read it
    all again, seconds per point). It detects a different, truncated or appended file; it cannot see a change
    in the middle of a file of the same size. Use `full_digest` when that matters (offline, e.g. archiving).
    """
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with path.open("rb") as handle:
        digest.update(handle.read(BLOCK))
        if size > BLOCK:
            handle.seek(max(BLOCK, size - BLOCK))
            digest.update(handle.read(BLOCK))
    return digest.hexdigest()


def full_digest(path: Path) -> str:
    """BLAKE2b (16 bytes) over the whole file in 1 MiB blocks (reads all of it: ~1-3 s per GB)."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def input_record(path: Path) -> dict[str, Any]:
    """Name, size, mtime and head+tail digest of one input file."""
    st = path.stat()
    return {"name": path.name, "size": st.st_size, "mtime": st.st_mtime, "head_tail_blake2b": head_tail_digest(path)}


def point_provenance(cfg: Config, sources: dict[str, Path]) -> dict[str, Any]:
    """The provenance block stored in each point result; unreadable inputs are recorded with the error."""
    inputs: dict[str, Any] = {}
    for name, path in sorted(sources.items()):
        try:
            inputs[name] = input_record(path)
        except OSError as exc:
            inputs[name] = {"name": path.name, "error": os.strerror(exc.errno or 0) or str(exc)}
    return {**code_version(), "config_hash": config_hash(cfg), "inputs": inputs}


def version_text(info: dict[str, Any] | None = None) -> str:
    """'0.2.1 (git 2b4c736, modified)' for pages, CSV and --version."""
    info = info or code_version()
    commit = info.get("git_commit")
    if not commit:
        return str(info.get("version"))
    return f"{info.get('version')} (git {commit}{', modified' if info.get('git_dirty') else ''})"
