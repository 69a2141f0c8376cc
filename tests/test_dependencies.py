"""Every package the product code imports is a declared dependency; the lock has no duplicates."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lynkr", "actors", "eventstore")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PACKAGES}


def test_every_imported_package_is_declared():
    """An import that only works because another package pulled it in is a failure."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_normal(re.split(r"[=<>!~\[ ]", d, maxsplit=1)[0])
                for d in project["dependencies"]}
    owners = packages_distributions()
    missing = sorted(name for name in _imported_top_levels()
                     if not declared & {_normal(d) for d in owners.get(name, [name])})
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_lock_file_pins_each_package_once():
    """requirements.lock names every distribution once."""
    lines = [line.split("==")[0].strip().lower()
             for line in (ROOT / "requirements.lock").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == len(set(lines)), sorted({n for n in lines if lines.count(n) > 1})
