"""Layering: imports flow eventstore ← actors ← lynkr, and each root's `__all__` is exact.

An AST walk over every module (imports inside functions and `TYPE_CHECKING`
blocks count too) checks that no package imports a layer above it and that no
package reaches into another package's private `_modules`. For each package root,
`__all__` must be sorted and equal to the public names the root binds.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("eventstore", "actors", "lynkr")  # each may import only those before it
FORBIDDEN = {
    "eventstore": {"actors", "lynkr"},
    "actors": {"lynkr"},
    "lynkr": set(),
}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, module: str) -> list[tuple[int, str]]:
    """Absolute names of every import in `module` (read from `path`), with line numbers.

    `from x import _private` counts as importing ``x._private``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.extend((node.lineno, f"{name}.{a.name}" if a.name.startswith("_") else name)
                         for a in node.names)
    return found


def violations(package: str, path: Path, module: str) -> list[str]:
    problems = []
    for line, name in imported_names(path, module):
        top = name.split(".")[0]
        where = f"{module}:{line} imports {name}"
        if top in FORBIDDEN[package]:
            problems.append(f"{where} (a layer above {package})")
        elif top in LAYERS and top != package and any(
                part.startswith("_") for part in name.split(".")[1:]):
            problems.append(f"{where} (a private module of {top})")
    return problems


@pytest.mark.parametrize("package", LAYERS)
def test_package_imports_only_layers_below_it(package):
    """No module imports a higher layer or another package's private modules."""
    problems = [p for path in modules(package)
                for p in violations(package, path, module_name(path))]
    assert problems == []


def test_the_check_catches_upward_and_private_imports(tmp_path):
    """The walk finds imports inside functions, relative targets and private reach-ins."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from actors import TrioActor\n"
                     "from lynkr.errors import LynkrError\nfrom . import _codec\n")
    found = violations("eventstore", probe, "eventstore.probe")
    assert {name for _, name in imported_names(probe, "eventstore.probe")} == {
        "actors", "lynkr.errors", "eventstore._codec"}
    assert len(found) == 2
    probe.write_text("from eventstore._codec import make_blob\nfrom eventstore import _rows\n")
    assert len(violations("actors", probe, "actors.probe")) == 2
    probe.write_text("from eventstore import make_blob\nfrom actors import TrioActor\n")
    assert violations("lynkr", probe, "lynkr.probe") == []


def root_bindings(package: str) -> set[str]:
    """Names the package root binds at top level: imports, defs, classes, assignments."""
    tree = ast.parse((ROOT / package / "__init__.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    names.discard("annotations")  # from __future__ import annotations
    names.discard("__all__")
    return {n for n in names if not n.startswith("_") or (n.startswith("__") and n.endswith("__"))}


def isort_key(name: str) -> tuple[int, list[object]]:
    """ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest; natural sort."""
    group = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return group, [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def test_isort_key_orders_like_ruff():
    """Constants come first, then classes, then functions, digits compare as numbers."""
    names = ["make_blob", "Recorder", "ANY_VERSION", "Item10", "Item9", "EVENTS"]
    assert sorted(names, key=isort_key) == ["ANY_VERSION", "EVENTS", "Item9", "Item10",
                                            "Recorder", "make_blob"]


@pytest.mark.parametrize("package", LAYERS)
def test_root_all_is_sorted(package):
    """Each package root lists `__all__` in ruff's isort-style order (RUF022)."""
    exported = importlib.import_module(package).__all__
    assert exported == sorted(exported, key=isort_key)


@pytest.mark.parametrize("package", LAYERS)
def test_root_all_equals_its_public_names(package):
    """Each root's `__all__` names exactly what it binds publicly, and every name resolves."""
    module = importlib.import_module(package)
    assert set(module.__all__) == root_bindings(package)
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None
