"""All tree-sitter and tree-sitter-languages access: grammars, parsing, query runs.

`extract_with_grammar(language, data)` parses `data` with the language's grammar and
runs its query (`_tsqueries.QUERIES`), returning an `Extraction`, or None when the
language has no grammar here or its grammar or query fails to load (that language is
then remembered as broken and the caller uses the heuristic fallback). Parsers are
per thread (tree-sitter parsers are not thread-safe); languages and compiled queries
are shared.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import structlog
import tree_sitter
import tree_sitter_languages  # type: ignore[import-untyped]

from lynkr.indexer._enclose import innermost, nest
from lynkr.indexer._model import Extraction, ParsedImport, ParsedReference, ParsedSymbol
from lynkr.indexer._tsqueries import QUERIES

__all__ = ["extract_with_grammar", "grammar_languages", "loaded_grammar"]

log = structlog.get_logger()

_PARSE_TIMEOUT_US = 10_000_000
_SIGNATURE_MAX = 200
_CONTAINERS = frozenset({"class", "interface", "impl", "trait", "struct", "module", "enum"})
_lock = threading.Lock()
_loaded: dict[str, tuple[Any, Any]] = {}  # language -> (Language, Query)
_broken: set[str] = set()
_local = threading.local()


def grammar_languages() -> frozenset[str]:
    """Languages that have a grammar query (whether or not it loads)."""
    return frozenset(QUERIES)


def loaded_grammar(language: str) -> tuple[Any, Any] | None:
    """(tree-sitter Language, compiled Query) for `language`, or None if unavailable."""
    if language not in QUERIES or language in _broken:
        return None
    with _lock:
        if language not in _loaded:
            try:
                with warnings.catch_warnings():
                    # tree-sitter-languages 1.10.2 calls Language(path, name), deprecated in 0.21.
                    warnings.simplefilter("ignore", FutureWarning)
                    lang = tree_sitter_languages.get_language(language)
                query = lang.query(QUERIES[language])
            except (OSError, AttributeError, RuntimeError, SyntaxError, NameError,
                    TypeError, ValueError) as exc:
                _broken.add(language)
                log.warning("indexer_grammar_broken", language=language, error=str(exc))
                return None
            _loaded[language] = (lang, query)
        return _loaded[language]


def _parser(language: str, lang: Any) -> tree_sitter.Parser:
    parsers: dict[str, tree_sitter.Parser] = _local.__dict__.setdefault("parsers", {})
    if language not in parsers:
        parser = tree_sitter.Parser()
        parser.set_language(lang)
        parser.set_timeout_micros(_PARSE_TIMEOUT_US)
        parsers[language] = parser
    return parsers[language]


def _first_error_line(root: Any) -> int:
    node = root
    while True:
        if node.type == "ERROR" or node.is_missing:
            return int(node.start_point[0]) + 1
        bad = [child for child in node.children if child.has_error]
        if not bad:
            return int(node.start_point[0]) + 1
        node = bad[0]


def _signature(data: bytes, node: Any) -> str:
    start = node.start_byte
    end = data.find(b"\n", start, node.end_byte)
    line = data[start: node.end_byte if end < 0 else end]
    return line.decode("utf-8", "replace").strip()[:_SIGNATURE_MAX]


def _collect(matches: list[tuple[int, dict[str, Any]]]) -> tuple[dict[int, Any], list[Any],
                                                                    list[Any]]:
    """Split query matches into definitions (by name start byte), references, imports."""
    defs: dict[int, tuple[int, str, Any, Any]] = {}
    refs: list[Any] = []
    imports: list[Any] = []
    for index, caps in matches:
        name = caps.get("name")
        if name is not None:
            for key, node in caps.items():
                if key.startswith("definition."):
                    seen = defs.get(name.start_byte)
                    if seen is None or index < seen[0]:
                        defs[name.start_byte] = (index, key[11:], name, node)
        elif "reference" in caps:
            refs.append(caps["reference"])
        elif "import" in caps:
            imports.append(caps["import"])
    return defs, refs, imports


def _symbols(data: bytes, ordered: list[tuple[int, str, Any, Any]]) -> list[ParsedSymbol]:
    """Symbols from definitions sorted by (start, -end), with parents and method kinds."""
    names = [d[2].text.decode("utf-8", "replace") for d in ordered]
    parents = nest([(d[3].start_byte, d[3].end_byte) for d in ordered])
    symbols = []
    for (_, kind, _, node), name, parent in zip(ordered, names, parents, strict=True):
        if kind == "function" and parent is not None and ordered[parent][1] in _CONTAINERS:
            kind = "method"
        symbols.append(ParsedSymbol(
            name, kind, node.start_point[0] + 1, node.start_point[1] + 1,
            node.end_point[0] + 1, node.end_point[1] + 1,
            None if parent is None else names[parent], _signature(data, node),
        ))
    return symbols


def _references(ordered: list[tuple[int, str, Any, Any]], symbols: list[ParsedSymbol],
                nodes: list[Any], def_names: dict[int, Any]) -> tuple[ParsedReference, ...]:
    """Uses of names, once per position, never a definition's own name, in order.

    Per-node work is kept to one read of each property: this runs ~350k times on the
    stdlib, and tree-sitter node properties are not free.
    """
    unique = {}
    for node in nodes:
        start = node.start_byte
        if start not in def_names:
            unique[start] = node
    starts = sorted(unique)
    owners = innermost([(d[3].start_byte, d[3].end_byte) for d in ordered], starts)
    names = [s.name for s in symbols]
    refs = []
    for start, owner in zip(starts, owners, strict=True):
        node = unique[start]
        row, col = node.start_point
        refs.append(ParsedReference(node.text.decode("utf-8", "replace"), row + 1, col + 1,
                                    None if owner is None else names[owner]))
    return tuple(refs)


def extract_with_grammar(language: str, data: bytes) -> Extraction | None:
    """Symbols, references and imports of `data` read with `language`'s grammar.

    Returns:
        The extraction (``problem`` set when the tree has syntax errors), or None when
        no grammar is available or the parse failed, so the caller falls back.
    """
    grammar = loaded_grammar(language)
    if grammar is None:
        return None
    lang, query = grammar
    try:
        tree = _parser(language, lang).parse(data)
    except ValueError as exc:  # tree-sitter raises ValueError when parsing is cancelled
        log.warning("indexer_parse_failed", language=language, error=str(exc))
        return None
    root = tree.root_node
    defs, ref_nodes, import_nodes = _collect(query.matches(root))
    ordered = sorted(defs.values(), key=lambda d: (d[3].start_byte, -d[3].end_byte))
    symbols = _symbols(data, ordered)
    refs = _references(ordered, symbols, ref_nodes, defs)
    imports = tuple(
        ParsedImport(n.text.decode("utf-8", "replace").strip("'\"`"), n.start_point[0] + 1)
        for n in import_nodes
    )
    problem = f"syntax error near line {_first_error_line(root)}" if root.has_error else None
    return Extraction(tuple(symbols), refs, imports, "grammar", problem)
