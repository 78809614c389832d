"""The one import root: every module is reached as ``kb``, ``kb.ingest`` or ``kb.server``. The top-level ``ingest/``
and ``server/`` folders are importable from a checkout too, so a stray ``import ingest`` would load a second copy of
a module (its own locks, its own caches) and still pass every other test."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("kb", "ingest", "server", "tests", "bench", "scripts")


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_module_imports_ingest_or_server_outside_the_kb_root() -> None:
    stray = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in _imported(ast.parse(path.read_text(), str(path)))
        if name.split(".")[0] in {"ingest", "server"}
    ]
    assert not stray


def test_the_installed_package_maps_the_folders_under_kb() -> None:
    # Run from outside the checkout, and without a PYTHONPATH that names it, so the folders beside the tests cannot
    # be found on the path: only what is installed.
    code = "import kb.ingest.pipeline, kb.server.cli, importlib.util as u; print(u.find_spec('ingest') is None)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
