"""The catalogue's value types: what extraction yields and what queries return.

Lines are 1-based; columns are 1-based byte offsets within the line. Extraction
results are NamedTuples because they cross process boundaries (parser workers) by
pickling, and tuples are the cheapest to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Extraction",
    "OutlineEntry",
    "ParsedImport",
    "ParsedReference",
    "ParsedSymbol",
    "Problem",
    "RebuildProgress",
    "RebuildReport",
    "ReferenceHit",
    "SymbolHit",
    "WireExtraction",
]


class ParsedSymbol(NamedTuple):
    """A definition found in one file."""

    name: str
    kind: str  # class, function, method, interface, type, enum, struct, trait, module, …
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    parent: str | None  # the enclosing symbol's name
    signature: str  # the first line of the definition, trimmed


class ParsedReference(NamedTuple):
    """A use of a name in one file (never the definition's own name)."""

    name: str
    line: int
    col: int
    enclosing: str | None


class ParsedImport(NamedTuple):
    """A module a file imports."""

    module: str
    line: int


class Extraction(NamedTuple):
    """Everything read from one file's content."""

    symbols: tuple[ParsedSymbol, ...]
    references: tuple[ParsedReference, ...]
    imports: tuple[ParsedImport, ...]
    parser: str  # "grammar", "heuristic" or "none"
    problem: str | None  # e.g. a syntax error; the file is still indexed


WireExtraction = tuple[tuple[tuple[Any, ...], ...], tuple[tuple[Any, ...], ...],
                       tuple[tuple[Any, ...], ...], str, str | None]
"""An `Extraction` as plain tuples, field for field (rows too): cheap to build and pickle."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A file the rebuild skipped or only partly understood, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    """How far a rebuild is: `done` of `total` files looked at."""

    done: int
    total: int
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RebuildReport:
    """What one rebuild did."""

    files: int  # files in the catalogue afterwards
    symbols: int
    references: int
    added: int
    modified: int
    deleted: int
    unchanged: int
    duration_s: float
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    languages: dict[str, int] = field(default_factory=dict)
    claude_md: str | None = None  # the CLAUDE.md that holds the section now, if any
    # what happened to it: created, updated, unchanged, missing (not asked to create
    # one), refused (a problem says why) or off (INDEXER_CLAUDE_MD=off)
    claude_md_action: str = "off"

    @property
    def changed(self) -> int:
        """Files added, modified or deleted."""
        return self.added + self.modified + self.deleted

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "files": self.files, "symbols": self.symbols, "references": self.references,
            "added": self.added, "modified": self.modified, "deleted": self.deleted,
            "unchanged": self.unchanged, "changed": self.changed,
            "duration_s": round(self.duration_s, 4),
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
            "languages": dict(self.languages), "claude_md": self.claude_md,
            "claude_md_action": self.claude_md_action,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolHit:
    """A symbol definition found by a search."""

    name: str
    kind: str
    path: str
    language: str
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    parent: str | None
    signature: str
    score: float = 0.0  # lower is better; 0 = exact

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "name": self.name, "kind": self.kind, "path": self.path, "language": self.language,
            "line": self.start_line, "column": self.start_col, "end_line": self.end_line,
            "end_column": self.end_col, "parent": self.parent, "signature": self.signature,
            "score": round(self.score, 3),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceHit:
    """A use of a name somewhere in the workspace."""

    name: str
    path: str
    line: int
    col: int
    enclosing: str | None
    text: str  # the line, trimmed

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"name": self.name, "path": self.path, "line": self.line, "column": self.col,
                "enclosing": self.enclosing, "text": self.text}


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlineEntry:
    """One symbol of a file outline, with its nesting depth."""

    name: str
    kind: str
    start_line: int
    end_line: int
    depth: int
    signature: str

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"name": self.name, "kind": self.kind, "line": self.start_line,
                "end_line": self.end_line, "depth": self.depth, "signature": self.signature}
