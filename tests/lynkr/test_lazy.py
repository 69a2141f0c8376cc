"""`lynkr._lazy`: package roots that import their exports on first use."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from lynkr._lazy import lazy_exports

ROOT = Path(__file__).resolve().parents[2]
LAZY_PACKAGES = ["lynkr.indexer", "lynkr.mcp", "lynkr.providers", "lynkr.tools"]


def type_checking_imports(package: str) -> dict[str, str]:
    """Name → module of the `if TYPE_CHECKING:` imports of a package root."""
    source = (ROOT / package.replace(".", "/") / "__init__.py").read_text()
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                assert stmt.module is not None
                found.update({alias.name: stmt.module for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_each_typed_import_is_exported_lazily_from_its_module(package):
    """What mypy sees in the TYPE_CHECKING block is what `__getattr__` imports, and `__all__`
    lists it."""
    module = importlib.import_module(package)
    typed = type_checking_imports(package)
    assert typed
    assert set(typed) <= set(module.__all__)
    for name, source in typed.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_importing_a_package_root_imports_none_of_its_lazy_modules(package):
    """Only a name's first use imports its module (the CLI's quick commands rely on it)."""
    modules = sorted(set(type_checking_imports(package).values()))
    probe = (f"import sys, {package}\n"
             f"print([m for m in {modules!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_name_is_imported_once_and_kept_in_the_package():
    """The first lookup stores the value in the namespace; an unknown name is an
    AttributeError that names the package."""
    namespace: dict[str, object] = {}
    getattr_ = lazy_exports("json", namespace, {"decoder": ("JSONDecoder",)})
    decoder = getattr_("JSONDecoder")
    assert decoder is importlib.import_module("json.decoder").JSONDecoder
    assert namespace == {"JSONDecoder": decoder}
    with pytest.raises(AttributeError, match="module 'json' has no attribute 'loads_fast'"):
        getattr_("loads_fast")
