"""`extract(language, data)`: one file's symbols, references and imports, never raising.

Grammar first (`_grammars`), then the heuristic fallback (`_fallback`) for code in a
language without a usable grammar; files in non-code languages yield no symbols.
"""

from __future__ import annotations

from typing import Any, cast

from lynkr.indexer._fallback import extract_heuristic
from lynkr.indexer._grammars import extract_with_grammar
from lynkr.indexer._languages import CODE_LANGUAGES
from lynkr.indexer._model import Extraction

__all__ = ["NOTHING", "WireExtraction", "extract", "extract_batch", "from_wire"]

NOTHING = Extraction((), (), (), "none", None)


def extract(language: str, data: bytes) -> Extraction:
    """What `data`, written in `language`, defines, uses and imports."""
    if language not in CODE_LANGUAGES:
        return NOTHING
    found = extract_with_grammar(language, data)
    if found is not None:
        return found
    return extract_heuristic(data)


WireExtraction = tuple[tuple[tuple[Any, ...], ...], tuple[tuple[Any, ...], ...],
                       tuple[tuple[Any, ...], ...], str, str | None]


def _to_wire(found: Extraction) -> WireExtraction:
    return (tuple(map(tuple, found.symbols)), tuple(map(tuple, found.references)),
            tuple(map(tuple, found.imports)), found.parser, found.problem)


def from_wire(wire: WireExtraction) -> Extraction:
    """An `Extraction` back from `extract_batch`'s tuples.

    The rows stay plain tuples: everyone downstream (the catalogue) reads them by
    position, in the NamedTuples' field order, so rebuilding them would only cost time.
    """
    return Extraction(*cast(Any, wire))


def extract_batch(jobs: list[tuple[str, bytes]]) -> list[WireExtraction]:
    """`extract` over many (language, data) pairs: the unit of work of a parser process.

    Results are plain tuples, field for field like `Extraction` and its rows, because
    pickling them back from a worker costs a quarter of pickling NamedTuples (measured
    on the stdlib: 0.15 s against 0.6 s per 450 files).
    """
    return [_to_wire(extract(language, data)) for language, data in jobs]
