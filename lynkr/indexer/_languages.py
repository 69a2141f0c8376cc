"""Which language a file is in, judged by its name alone.

The crawler and the summary use `language_for(path)`; the extractor decides from the
language whether a tree-sitter grammar, the heuristic fallback, or nothing applies.
"""

from __future__ import annotations

from pathlib import PurePosixPath

__all__ = ["CODE_LANGUAGES", "language_for"]

_BY_SUFFIX: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".cs": "c_sharp", ".php": "php", ".kt": "kotlin", ".kts": "kotlin",
    ".swift": "swift", ".scala": "scala", ".lua": "lua", ".pl": "perl", ".pm": "perl",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".hs": "haskell", ".ml": "ocaml", ".clj": "clojure", ".dart": "dart",
    ".r": "r", ".jl": "julia", ".zig": "zig", ".nim": "nim", ".groovy": "groovy",
    ".vue": "vue", ".svelte": "svelte", ".sql": "sql",
    ".md": "markdown", ".rst": "rst", ".txt": "text", ".json": "json", ".yaml": "yaml",
    ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".xml": "xml",
    ".html": "html", ".htm": "html", ".css": "css", ".scss": "scss", ".less": "less",
}
_BY_NAME: dict[str, str] = {
    "Gemfile": "ruby", "Rakefile": "ruby", "Makefile": "make", "Dockerfile": "dockerfile",
    "CMakeLists.txt": "cmake",
}

CODE_LANGUAGES = frozenset({
    "python", "javascript", "typescript", "tsx", "go", "rust", "java", "ruby", "c", "cpp",
    "c_sharp", "php", "kotlin", "swift", "scala", "lua", "perl", "bash", "elixir", "erlang",
    "haskell", "ocaml", "clojure", "dart", "r", "julia", "zig", "nim", "groovy", "vue",
    "svelte",
})
"""Languages that define symbols: a grammar or the heuristic fallback reads them."""


def language_for(path: str) -> str:
    """The language of `path` (a workspace-relative POSIX path); ``"other"`` if unknown."""
    pure = PurePosixPath(path)
    if pure.name in _BY_NAME:
        return _BY_NAME[pure.name]
    return _BY_SUFFIX.get(pure.suffix.lower(), "other")
