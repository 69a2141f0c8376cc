"""`extract(language, data)`: one file's symbols, references and imports, never raising.

Grammar first (`_grammars`), then the heuristic fallback (`_fallback`) for code in a
language without a usable grammar; files in non-code languages yield no symbols.
"""

from __future__ import annotations

from typing import Any, cast

from lynkr.indexer._fallback import extract_heuristic
from lynkr.indexer._grammars import extract_with_grammar, grammar_rows
from lynkr.indexer._languages import CODE_LANGUAGES
from lynkr.indexer._model import Extraction, WireExtraction

__all__ = ["NOTHING", "WireExtraction", "extract", "extract_batch", "extract_rows", "from_wire"]

NOTHING = Extraction((), (), (), "none", None)
_NOTHING_WIRE: WireExtraction = ((), (), (), "none", None)


def extract(language: str, data: bytes) -> Extraction:
    """What `data`, written in `language`, defines, uses and imports."""
    if language not in CODE_LANGUAGES:
        return NOTHING
    found = extract_with_grammar(language, data)
    if found is not None:
        return found
    return extract_heuristic(data)


def _to_wire(found: Extraction) -> WireExtraction:
    return (tuple(map(tuple, found.symbols)), tuple(map(tuple, found.references)),
            tuple(map(tuple, found.imports)), found.parser, found.problem)


def extract_rows(language: str, data: bytes) -> WireExtraction:
    """`extract` as plain tuples, field for field like `Extraction` and its rows.

    The grammar path builds the tuples directly (no NamedTuple per row: ~350k
    references on the stdlib); the heuristic path converts its result.
    """
    if language not in CODE_LANGUAGES:
        return _NOTHING_WIRE
    rows = grammar_rows(language, data)
    if rows is not None:
        return rows
    return _to_wire(extract_heuristic(data))


def from_wire(wire: WireExtraction) -> Extraction:
    """An `Extraction` back from `extract_batch`'s tuples.

    The rows stay plain tuples: everyone downstream (the catalogue) reads them by
    position, in the NamedTuples' field order, so rebuilding them would only cost time.
    """
    return Extraction(*cast(Any, wire))


def extract_batch(jobs: list[tuple[str, bytes]]) -> list[WireExtraction]:
    """`extract_rows` over many (language, data) pairs: the unit of work of a parser process.

    Results are plain tuples because pickling them back from a worker costs a quarter
    of pickling NamedTuples (measured on the stdlib: 0.15 s against 0.6 s per 450 files).
    """
    return [extract_rows(language, data) for language, data in jobs]
