"""The heuristic reader for languages without a usable grammar: regexes, never a crash.

It recognises definition keywords shared by most languages (``def``, ``function``,
``func``, ``fn``, ``class``, ``struct``, ``interface``, ``trait``, ``enum``,
``module``, ``object``, ``sub``, ``proc``…), calls written ``name(`` as references,
and ``import``/``require``/``use``/``#include`` lines as imports. Definitions get
no end line beyond their own line and no parent.
"""

from __future__ import annotations

import re

from lynkr.indexer._model import Extraction, ParsedImport, ParsedReference, ParsedSymbol

__all__ = ["extract_heuristic"]

_MAX_LINE = 2000  # longer lines are minified or data; skipped to keep the regexes linear
_DEF = re.compile(
    r"^\s*(?:(?:export|public|private|protected|internal|static|abstract|final|async|"
    r"override|open|sealed|data|inline|pub(?:\([^)]*\))?|unsafe|extern|default)\s+)*"
    r"(?P<kw>def|function|func|fn|fun|sub|proc|defmodule|defp?|class|struct|interface|"
    r"trait|enum|module|object|record|protocol|namespace|impl|type)\s+"
    r"(?:self\.|\([^)]*\)\s*)?(?P<name>[A-Za-z_$][\w$]*[?!]?)"
)
_KIND = {
    "def": "function", "function": "function", "func": "function", "fn": "function",
    "fun": "function", "sub": "function", "proc": "function", "defp": "function",
    "defmodule": "module", "class": "class", "struct": "struct", "interface": "interface",
    "trait": "trait", "enum": "enum", "module": "module", "object": "class",
    "record": "class", "protocol": "interface", "namespace": "module", "impl": "impl",
    "type": "type",
}
_CALL = re.compile(r"(?<![\w$.])(?:[\w$]+\.)*(?P<name>[A-Za-z_$][\w$]*)\s*\(")
_IMPORT = re.compile(
    r"^\s*(?:#\s*include\s*[<\"](?P<inc>[^>\"]+)|(?:import|require(?:_relative)?|use|using)"
    r"\s*\(?\s*['\"]?(?P<mod>[\w./:@\\-]+))"
)
_NOT_CALLS = frozenset({
    "if", "for", "while", "switch", "catch", "return", "sizeof", "function", "elif", "and",
    "or", "not", "in", "def", "fn", "func", "fun", "new", "typeof", "match", "when", "until",
    "unless", "print",
})


def _line_symbols(number: int, line: str) -> ParsedSymbol | None:
    match = _DEF.match(line)
    if match is None:
        return None
    col = match.start("name") + 1
    return ParsedSymbol(match["name"], _KIND[match["kw"]], number, col, number,
                        len(line) + 1, None, line.strip()[:200])


def extract_heuristic(data: bytes, *, problem: str | None = None) -> Extraction:
    """Definitions, calls and imports found in `data` by line-oriented regexes."""
    text = data.decode("utf-8", "replace")
    symbols: list[ParsedSymbol] = []
    refs: list[ParsedReference] = []
    imports: list[ParsedImport] = []
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > _MAX_LINE:
            continue
        symbol = _line_symbols(number, line)
        skip_col = -1
        if symbol is not None:
            symbols.append(symbol)
            current = symbol.name
            skip_col = symbol.start_col
        found = _IMPORT.match(line)
        if found is not None:
            imports.append(ParsedImport(found["inc"] or found["mod"], number))
        for call in _CALL.finditer(line):
            name, col = call["name"], call.start("name") + 1
            if col != skip_col and name not in _NOT_CALLS:
                refs.append(ParsedReference(name, number, col, current))
    return Extraction(tuple(symbols), tuple(refs), tuple(imports), "heuristic", problem)
