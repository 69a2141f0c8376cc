"""Fixture repositories the indexer tests build on disk, and an indexer over them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lynkr.indexer import Indexer, IndexerSettings

SAMPLE = {
    "src/money.ts": "export function formatPrice(cents: number): string {\n"
                    "  return (cents / 100).toFixed(2);\n}\n",
    "src/cart.ts": 'import { formatPrice } from "./money";\n'
                   "export class Cart {\n  total(): string { return formatPrice(42); }\n}\n",
    "src/checkout.tsx": 'import { formatPrice } from "./money";\n'
                        "export const Checkout = () => <b>{formatPrice(1)}</b>;\n",
    "app/models/user.rb": "class User < ApplicationRecord\n  def full_name\n"
                          "    first + last\n  end\nend\n",
    "lib/util.py": "import os\n\nclass Helper:\n    def run(self):\n        return os.getcwd()\n"
                   "\n\ndef main():\n    Helper().run()\n",
    "lib/Main.kt": "class Main {\n    fun start(args: Array<String>) { println(args) }\n}\n",
    "package.json": '{"devDependencies": {"jest": "29", "typescript": "5"},'
                    ' "scripts": {"test": "jest"}}',
    ".eslintrc.json": "{}\n",
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> None:
    """Create `files` (path -> text or bytes) under `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def git_init(root: Path) -> None:
    """Make `root` a git work tree (files stay untracked: `ls-files --others` lists them)."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree holding `SAMPLE`."""
    root = tmp_path / "repo"
    root.mkdir()
    git_init(root)
    write_tree(root, SAMPLE)
    return root


@pytest.fixture
def make_indexer(tmp_path: Path) -> Iterator[Callable[..., Indexer]]:
    """Build an `Indexer` over a root, its catalogue in `tmp_path/data`; closed afterwards."""
    made: list[Indexer] = []

    def make(root: Path, **settings: object) -> Indexer:
        options = {"workers": 1, **settings}
        indexer = Indexer(root, tmp_path / "data" / "index.db", IndexerSettings(**options))
        made.append(indexer)
        return indexer

    yield make
    for indexer in made:
        indexer.close()
