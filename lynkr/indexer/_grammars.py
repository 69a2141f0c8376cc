"""All tree-sitter and tree-sitter-languages access: grammars, parsing, query runs.

`extract_with_grammar(language, data)` parses `data` with the language's grammar and
runs its query (`_tsqueries.QUERIES`), returning an `Extraction`, or None when the
language has no grammar here or its grammar or query fails to load (that language is
then remembered as broken and the caller uses the heuristic fallback);
`grammar_rows` is the same as plain tuples, the rebuild's hot path. One
`Query.captures()` walk per file (cheaper than `matches()`, which builds a dict per
match) feeds everything; a definition is paired with the first ``@name`` inside it.
Parsers are per thread (tree-sitter parsers are not thread-safe); languages and
compiled queries are shared.
"""

from __future__ import annotations

import threading
import warnings
from bisect import bisect_left
from typing import Any

import structlog
import tree_sitter
import tree_sitter_languages

from lynkr.indexer._enclose import innermost, nest
from lynkr.indexer._model import (
    Extraction,
    ParsedImport,
    ParsedReference,
    ParsedSymbol,
    WireExtraction,
)
from lynkr.indexer._tsqueries import QUERIES

__all__ = ["extract_with_grammar", "grammar_languages", "grammar_rows", "loaded_grammar"]

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


def _kind_ranks(source: str) -> dict[str, int]:
    """Each definition kind's rank: its first appearance in the query source.

    When one node is captured as two kinds (a Go struct is also a type spec), the kind
    whose pattern comes first wins, as with the first matching pattern.
    """
    ranks: dict[str, int] = {}
    for piece in source.split("@definition.")[1:]:
        ranks.setdefault(piece.split(None, 1)[0].rstrip(")"), len(ranks))
    return ranks


_RANKS = {language: _kind_ranks(source) for language, source in QUERIES.items()}


def _split(captures: list[tuple[Any, str]]) -> tuple[list[Any], dict[int, Any], list[Any],
                                                      list[Any]]:
    """Captures by role: definitions (node, kind), references by start byte, names, imports.

    References are most of the captures, so they are picked out by one comprehension.
    """
    refs = {node.start_byte: node for node, cap in captures if cap == "reference"}
    defs: list[Any] = []
    names: list[Any] = []
    imports: list[Any] = []
    for node, cap in captures:
        if cap == "reference":
            continue
        if cap == "name":
            names.append(node)
        elif cap == "import":
            imports.append(node)
        elif cap.startswith("definition."):
            defs.append((node, cap[11:]))
    return defs, refs, names, imports


def _definitions(defs: list[Any], names: list[Any], ranks: dict[str, int]
                 ) -> list[tuple[int, int, str, Any, Any]]:
    """(start, end, kind, name node, node) per named definition, sorted by (start, -end).

    A definition's name is the first ``@name`` capture inside it: every pattern names
    its node by a child that precedes any nested definition.
    """
    starts = sorted(((n.start_byte, n) for n in names), key=lambda pair: pair[0])
    name_starts = [s for s, _ in starts]
    found: dict[int, tuple[int, int, str, Any, Any]] = {}
    for node, kind in defs:
        begin, end = node.start_byte, node.end_byte
        at = bisect_left(name_starts, begin)
        if at == len(name_starts) or name_starts[at] >= end:
            continue
        key = name_starts[at]
        seen = found.get(key)
        if seen is None or ranks.get(kind, 99) < ranks.get(seen[2], 99):
            found[key] = (begin, end, kind, starts[at][1], node)
    return sorted(found.values(), key=lambda d: (d[0], -d[1]))


def _symbols(data: bytes, ordered: list[tuple[int, int, str, Any, Any]]
             ) -> list[tuple[Any, ...]]:
    """Symbol rows (`ParsedSymbol` fields) with parents and method kinds."""
    names = [d[3].text.decode("utf-8", "replace") for d in ordered]
    parents = nest([(d[0], d[1]) for d in ordered])
    rows = []
    for (start, end, kind, _, node), name, parent in zip(ordered, names, parents, strict=True):
        if kind == "function" and parent is not None and ordered[parent][2] in _CONTAINERS:
            kind = "method"
        (row, col), (end_row, end_col) = node.start_point, node.end_point
        cut = data.find(b"\n", start, end)
        signature = data[start: end if cut < 0 else cut].decode("utf-8", "replace")
        rows.append((name, kind, row + 1, col + 1, end_row + 1, end_col + 1,
                     None if parent is None else names[parent],
                     signature.strip()[:_SIGNATURE_MAX]))
    return rows


def _references(data: bytes, ordered: list[tuple[int, int, str, Any, Any]], names: list[str],
                refs: dict[int, Any]) -> list[tuple[Any, ...]]:
    """Reference rows: once per position, never a definition's own name, in order.

    Per-node work is two reads (end byte, position) in comprehensions: this runs
    ~350k times on the stdlib, and tree-sitter node properties are not free (slicing
    `data` at the end byte costs less than half of ``node.text``). Equal names share
    one decoded string.
    """
    for d in ordered:
        refs.pop(d[3].start_byte, None)
    starts = sorted(refs)
    nodes = [refs[start] for start in starts]
    raws = [data[start:end] for start, end in zip(starts, [node.end_byte for node in nodes],
                                                  strict=True)]
    texts = {raw: raw.decode("utf-8", "replace") for raw in set(raws)}
    owners = [None if o is None else names[o]
              for o in innermost([(d[0], d[1]) for d in ordered], starts)]
    return [(texts[raw], row + 1, col + 1, owner) for raw, (row, col), owner
            in zip(raws, [node.start_point for node in nodes], owners, strict=True)]


def grammar_rows(language: str, data: bytes) -> WireExtraction | None:
    """`extract_with_grammar` as plain tuples (the fields of `Extraction` and its rows).

    This is the hot path of a rebuild: no NamedTuples are built per row.
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
    defs, refs, name_nodes, import_nodes = _split(query.captures(root))
    ordered = _definitions(defs, name_nodes, _RANKS[language])
    symbols = _symbols(data, ordered)
    references = _references(data, ordered, [s[0] for s in symbols], refs)
    imports = tuple((n.text.decode("utf-8", "replace").strip("'\"`"), n.start_point[0] + 1)
                    for n in import_nodes)
    problem = f"syntax error near line {_first_error_line(root)}" if root.has_error else None
    return tuple(symbols), tuple(references), imports, "grammar", problem


def extract_with_grammar(language: str, data: bytes) -> Extraction | None:
    """Symbols, references and imports of `data` read with `language`'s grammar.

    Returns:
        The extraction (``problem`` set when the tree has syntax errors), or None when
        no grammar is available or the parse failed, so the caller falls back.
    """
    rows = grammar_rows(language, data)
    if rows is None:
        return None
    symbols, references, imports, parser, problem = rows
    return Extraction(tuple(ParsedSymbol._make(r) for r in symbols),
                      tuple(ParsedReference._make(r) for r in references),
                      tuple(ParsedImport._make(r) for r in imports), parser, problem)
