"""The package as installed elsewhere: every third-party import is a declared dependency, and the layers of
docs/architecture.md import only downward (physics never imports service code)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("remote_monitor", "local_viewer", "report_templates")
# modules that a declared dependency brings along
PROVIDED_BY = {"tensorflow": "zfit", "iminuit": "zfit"}
LAYERS = ("analysis", "stand", "report", "simulation", "service")  # each imports only earlier ones


def _imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in one file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from pkg import module` counts as importing pkg.module
                sub = f"{node.module}.{alias.name}"
                is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").exists()
                names.add(sub if is_module else node.module)
    return names


def _sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in project["dependencies"]}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    declared = _declared()
    missing = {}
    for path in _sources():
        for name in _imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in PACKAGES:
                continue
            if PROVIDED_BY.get(top, top).lower().replace("_", "-") not in declared:
                missing.setdefault(top, path.relative_to(ROOT).as_posix())
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_layers_import_only_downward() -> None:
    upward = []
    for path in (ROOT / "remote_monitor").rglob("*.py"):
        parts = path.relative_to(ROOT / "remote_monitor").parts
        if parts[0] not in LAYERS:
            continue  # the command-line layer on top may import everything
        allowed = LAYERS[: LAYERS.index(parts[0]) + 1]
        for name in _imports(path):
            bits = name.split(".")
            if bits[0] == "remote_monitor" and len(bits) > 1 and bits[1] not in allowed:
                upward.append(f"{path.relative_to(ROOT).as_posix()} imports {name}")
    assert not upward, upward


def test_the_viewer_shares_only_signing_atomic_writes_and_cli_helpers_with_the_monitor() -> None:
    shared = {name for path in (ROOT / "local_viewer").rglob("*.py") for name in _imports(path)
              if name.startswith("remote_monitor")}
    assert shared <= {"remote_monitor.service.command_signing", "remote_monitor.service.store",
                      "remote_monitor.cli_common"}, shared
