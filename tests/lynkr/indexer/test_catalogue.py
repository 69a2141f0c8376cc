"""`Catalogue.bulk`: a load into an empty catalogue builds its indexes at the end."""

from __future__ import annotations

import pytest

from lynkr.indexer._catalogue import Catalogue
from lynkr.indexer._model import Extraction, ParsedImport, ParsedReference, ParsedSymbol

INDEXES = {"symbols_name", "symbols_file", "refs_name", "refs_file", "imports_file"}
FOUND = Extraction((ParsedSymbol("f", "function", 1, 1, 2, 1, None, "def f():"),),
                   (ParsedReference("g", 2, 5, "f"),), (ParsedImport("os", 1),), "grammar",
                   None)


def _indexes(catalogue: Catalogue) -> set[str]:
    rows = catalogue._rows("SELECT name FROM sqlite_master WHERE type='index' "
                           "AND name NOT LIKE 'sqlite_%'")
    return {row[0] for row in rows}


def _synchronous(catalogue: Catalogue) -> int:
    return int(catalogue._rows("PRAGMA synchronous")[0][0])


def test_a_bulk_load_ends_with_every_index_and_normal_syncing(tmp_path):
    """After a bulk load the rows are there, all indexes exist and name lookups use them."""
    catalogue = Catalogue(tmp_path / "index.db")
    with catalogue.bulk():
        assert _indexes(catalogue) == set()
        assert _synchronous(catalogue) == 0
        catalogue.store_file("a.py", "python", 9, 1, "h", FOUND, None)
    assert _indexes(catalogue) == INDEXES
    assert _synchronous(catalogue) == 1  # NORMAL
    assert catalogue.counts() == (1, 1, 1)
    plan = catalogue._rows("EXPLAIN QUERY PLAN SELECT * FROM refs WHERE name='g'")
    assert "refs_name" in " ".join(str(row) for row in plan)
    catalogue.close()


def test_a_failed_bulk_load_keeps_the_old_catalogue_and_its_indexes(tmp_path):
    """An error inside `bulk()` rolls back the rows and the dropped indexes alike."""
    catalogue = Catalogue(tmp_path / "index.db")

    def load_then_fail() -> None:
        with catalogue.bulk():
            catalogue.store_file("a.py", "python", 9, 1, "h", FOUND, None)
            raise RuntimeError("parser died")

    with pytest.raises(RuntimeError, match="parser died"):
        load_then_fail()
    assert catalogue.counts() == (0, 0, 0)
    assert _indexes(catalogue) == INDEXES
    assert _synchronous(catalogue) == 1
    catalogue.close()


def test_a_reopened_catalogue_keeps_its_indexes(tmp_path):
    """Opening an existing catalogue neither drops nor duplicates its indexes."""
    Catalogue(tmp_path / "index.db").close()
    catalogue = Catalogue(tmp_path / "index.db")
    assert _indexes(catalogue) == INDEXES
    catalogue.close()
