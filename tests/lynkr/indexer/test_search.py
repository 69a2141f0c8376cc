"""Symbol search: exact, prefix and fuzzy ranking over a real catalogue."""

from __future__ import annotations

from lynkr.indexer._search import NameIndex

from .conftest import git_init, write_tree

NAMES = ["get_config", "getConfig", "GetConfigValue", "config", "reconfigure", "gc_collect",
         "target_conf_flag", "Unrelated"]


def test_fuzzy_tiers_rank_exact_prefix_substring_then_scattered():
    """Exact beats case-insensitive exact beats prefix beats substring beats scattered."""
    ranked = [name for _, name in NameIndex(NAMES).ranked("config", 10)]
    assert ranked[0] == "config"
    assert ranked.index("reconfigure") < ranked.index("get_config")
    assert "Unrelated" not in ranked
    scattered = [name for _, name in NameIndex(NAMES).ranked("gcf", 10)]
    assert scattered[0] == "getConfig"  # the tightest spread of g…c…f
    assert set(scattered) == {"getConfig", "get_config", "GetConfigValue", "target_conf_flag"}


def test_case_variants_of_one_name_are_all_returned():
    """Names differing only in case are separate results."""
    names = [n for _, n in NameIndex(["Foo", "foo", "bar"]).ranked("foo", 5)]
    assert sorted(names) == ["Foo", "foo"]


def test_scattered_matches_are_found_when_nothing_else_is():
    """With no prefix or substring match, a subsequence anywhere in a name still matches."""
    assert [n for _, n in NameIndex(["xx_alpha_beta"]).ranked("ab", 5)] == ["xx_alpha_beta"]


def test_regex_characters_in_queries_are_literal():
    """A query with regex metacharacters is searched literally."""
    assert NameIndex(["a.b", "axb"]).ranked("a.b", 5)[0][1] == "a.b"
    assert NameIndex(["x"]).ranked("(*[", 5) == []


def test_modes_and_kind_filter_on_a_catalogue(tmp_path, make_indexer):
    """exact, prefix and fuzzy modes and a kind filter answer from the catalogue."""
    tmp_path = tmp_path / "ws"
    write_tree(tmp_path, {"m.py": "class Parser:\n    def parse(self):\n        pass\n\n"
                                  "def parse_args():\n    pass\n"})
    git_init(tmp_path)
    indexer = make_indexer(tmp_path)
    indexer.rebuild()
    assert [h.name for h in indexer.search("parse", mode="exact")] == ["parse"]
    assert [h.name for h in indexer.search("pars", mode="prefix")] == [
        "parse", "Parser", "parse_args"]  # shorter completions first
    fuzzy = indexer.search("parse")
    assert fuzzy[0].name == "parse"
    assert fuzzy[0].score == 0.0
    assert [h.name for h in indexer.search("pars", kind="class")] == ["Parser"]
    assert [h.name for h in indexer.search("prsrgs")] == ["parse_args"]


def test_the_name_index_follows_rebuilds(tmp_path, make_indexer):
    """A name added by a later rebuild is found by fuzzy search (the cache is renewed)."""
    tmp_path = tmp_path / "ws"
    write_tree(tmp_path, {"a.py": "def first(): pass\n"})
    git_init(tmp_path)
    indexer = make_indexer(tmp_path)
    indexer.rebuild()
    assert indexer.search("second") == []
    write_tree(tmp_path, {"b.py": "def second(): pass\n"})
    indexer.rebuild()
    assert [h.name for h in indexer.search("second")] == ["second"]
