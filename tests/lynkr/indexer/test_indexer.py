"""The manual test matrix of the original Lynkr, automated on fixture repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lynkr.errors import IndexerError
from lynkr.indexer import Indexer, RebuildProgress
from lynkr.indexer._catalogue import SCHEMA_VERSION, Catalogue

from .conftest import git_init, write_tree


def test_rebuild_makes_claude_md_and_search_reflect_the_repo(repo, make_indexer):
    """After a rebuild, CLAUDE.md names the languages and search finds each language's symbols."""
    indexer = make_indexer(repo, claude_md="create")
    report = indexer.rebuild()
    claude = (repo / "CLAUDE.md").read_text()
    assert report.files == 8
    assert "typescript 2" in claude
    assert "Jest" in claude
    assert "`npm test`" in claude
    assert "eslint (.eslintrc.json)" in claude
    assert {h.path for h in indexer.search("Helper", mode="exact")} == {"lib/util.py"}
    assert [h.kind for h in indexer.search("run", mode="exact")] == ["method"]


def test_deleting_a_file_removes_its_symbols_and_drops_its_language(repo, make_indexer):
    """A deleted file's symbols vanish and its language count drops on the next rebuild."""
    indexer = make_indexer(repo, claude_md="create")
    indexer.rebuild()
    (repo / "lib" / "util.py").unlink()
    report = indexer.rebuild()
    assert report.deleted == 1
    assert indexer.search("Helper", mode="exact") == []
    assert indexer.search("Helper") == []
    assert "python" not in report.languages
    assert indexer.references("Helper") == []
    assert "python" not in (repo / "CLAUDE.md").read_text()


def test_a_ts_symbol_is_defined_in_its_source_and_referenced_only_elsewhere(repo, make_indexer):
    """Definition points to money.ts; references list only the two importing files."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    [definition] = indexer.definitions("formatPrice")
    assert (definition.path, definition.start_line, definition.kind) == (
        "src/money.ts", 1, "function")
    refs = indexer.references("formatPrice")
    assert {r.path for r in refs} == {"src/cart.ts", "src/checkout.tsx"}
    assert any(r.enclosing == "total" and "formatPrice(42)" in r.text for r in refs)


def test_a_ruby_method_is_found_without_a_crash(repo, make_indexer):
    """A Ruby method is indexed with its class as parent."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    [hit] = indexer.search("full_name", mode="exact")
    assert (hit.kind, hit.parent, hit.path) == ("method", "User", "app/models/user.rb")


def test_files_in_a_language_without_a_grammar_are_indexed_as_files(repo, make_indexer):
    """Kotlin has no grammar query: the file is catalogued and the heuristic finds its class."""
    indexer = make_indexer(repo)
    report = indexer.rebuild()
    assert report.languages["kotlin"] == 1
    assert [h.path for h in indexer.search("Main", mode="exact")] == ["lib/Main.kt"]
    assert indexer.outline("lib/Main.kt")[1].name == "start"


def test_broken_binary_and_looping_files_are_reported_and_skipped(repo, make_indexer):
    """A syntax error, a binary .py, a symlink loop: each reported, the rebuild completes."""
    write_tree(repo, {"bad.py": "def broken(:\n    pass\n\ndef fine():\n    pass\n",
                      "blob.py": b"\x00\x01\x02binary\x00" * 50})
    os.symlink("loop_b.py", repo / "loop_a.py")
    os.symlink("loop_a.py", repo / "loop_b.py")
    indexer = make_indexer(repo)
    report = indexer.rebuild()
    reasons = {p.path: p.reason for p in report.problems}
    assert reasons["bad.py"].startswith("syntax error near line 1")
    assert reasons["blob.py"] == "binary"
    assert reasons["loop_a.py"].startswith("unreadable")
    assert indexer.search("fine", mode="exact")[0].path == "bad.py"
    assert report.files == 9


def test_a_file_deleted_mid_crawl_is_reported_and_the_rebuild_completes(repo, make_indexer):
    """A changed file that vanishes after the listing is reported as vanished and forgotten."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    victim = repo / "src" / "money.ts"
    victim.write_text("export function formatPrice() {}\nexport function extra() {}\n")

    def progress(update: RebuildProgress) -> None:
        if victim.exists():  # the first file is done; money.ts is listed but not yet read
            victim.unlink()

    report = indexer.rebuild(progress)
    assert ("src/money.ts", "vanished") in {(p.path, p.reason) for p in report.problems}
    assert (report.files, report.deleted) == (7, 1)
    assert indexer.definitions("formatPrice") == []


def test_a_rebuild_without_changes_parses_nothing(repo, make_indexer):
    """The second rebuild finds every file unchanged and changes nothing."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    report = indexer.rebuild()
    assert (report.changed, report.unchanged) == (0, 8)


def test_only_changed_files_are_reparsed(repo, make_indexer):
    """An edited file counts as modified; a touched but identical one stays unchanged."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    (repo / "lib" / "util.py").write_text("def renamed():\n    pass\n")
    os.utime(repo / "src" / "cart.ts", ns=(1, 1))
    report = indexer.rebuild()
    assert (report.added, report.modified, report.deleted, report.unchanged) == (0, 1, 0, 7)
    assert indexer.search("renamed", mode="exact")
    assert not indexer.search("Helper", mode="exact")


def test_gitignored_and_vendored_files_stay_out(repo, make_indexer):
    """Files ignored by .gitignore or under node_modules are not catalogued."""
    write_tree(repo, {".gitignore": "secret/\n", "secret/keys.py": "def leak(): pass\n",
                      "node_modules/x/index.js": "function vendored() {}\n"})
    indexer = make_indexer(repo)
    indexer.rebuild()
    assert indexer.search("leak", mode="exact") == []
    assert indexer.search("vendored", mode="exact") == []


def test_outline_nests_methods_under_their_class(repo, make_indexer):
    """The outline of util.py lists Helper, run one level deeper, then main."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    outline = [(e.name, e.kind, e.depth) for e in indexer.outline(str(repo / "lib/util.py"))]
    assert outline == [("Helper", "class", 0), ("run", "method", 1), ("main", "function", 0)]


def test_outline_of_an_unknown_or_outside_file_is_a_clear_error(repo, make_indexer):
    """Asking for a file that is not catalogued, or outside the workspace, raises IndexerError."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    with pytest.raises(IndexerError, match="not in the catalogue"):
        indexer.outline("nope.py")
    with pytest.raises(IndexerError, match="outside the workspace"):
        indexer.outline("../../etc/passwd")


def test_a_catalogue_of_another_schema_version_is_rebuilt_from_scratch(repo, tmp_path):
    """A catalogue file with an old schema version is emptied, not misread."""
    path = tmp_path / "old" / "index.db"
    Catalogue(path).close()
    import apsw

    conn = apsw.Connection(str(path))
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 7}")
    conn.close()
    indexer = Indexer(repo, path)
    try:
        assert indexer.rebuild().added == 8
    finally:
        indexer.close()


def test_a_workspace_that_is_not_a_directory_is_refused(tmp_path):
    """An Indexer over a missing root raises IndexerError."""
    with pytest.raises(IndexerError, match="not a directory"):
        Indexer(tmp_path / "missing", tmp_path / "index.db")


def test_search_rejects_empty_queries_and_unknown_modes(repo, make_indexer):
    """Bad search input is an IndexerError with the reason."""
    indexer = make_indexer(repo)
    with pytest.raises(IndexerError, match="non-empty"):
        indexer.search("  ")
    with pytest.raises(IndexerError, match="mode must be one of"):
        indexer.search("x", mode="regex")


def test_summary_before_any_rebuild_says_to_rebuild(repo, make_indexer):
    """project summary without a catalogue tells the user to rebuild."""
    with pytest.raises(IndexerError, match="run a rebuild"):
        make_indexer(repo).summary()


def test_a_big_rebuild_parses_in_worker_processes(tmp_path, make_indexer, monkeypatch):
    """With 2 workers and enough source the pool path indexes every file like in-process."""
    from lynkr.indexer import _rebuild

    monkeypatch.setattr(_rebuild, "_POOL_MIN_BYTES", 1)  # the real threshold is 8 MB
    started: list[int] = []
    real_pool = _rebuild._parse_pool

    def counting_pool(jobs, workers):
        started.append(workers)
        return real_pool(jobs, workers)

    monkeypatch.setattr(_rebuild, "_parse_pool", counting_pool)
    root = tmp_path / "big"
    write_tree(root, {f"m{i}.py": f"def f{i}():\n    return f{i + 1}()\n" for i in range(240)})
    git_init(root)
    report = make_indexer(root, workers=2, claude_md="off").rebuild()
    assert (report.files, report.symbols, report.references) == (240, 240, 240)
    assert started == [2]


def test_a_tree_ignored_by_an_enclosing_repo_is_walked(tmp_path, make_indexer):
    """A workspace inside a repo that ignores it is still crawled (by walking it)."""
    outer = tmp_path / "outer"
    write_tree(outer, {".gitignore": "inner/\n", "inner/a.py": "def inside(): pass\n"})
    git_init(outer)
    indexer = make_indexer(outer / "inner")
    indexer.rebuild()
    assert [h.path for h in indexer.search("inside", mode="exact")] == ["a.py"]


def test_a_symlink_out_of_the_workspace_is_skipped(repo, tmp_path, make_indexer):
    """A symlink to a file outside the root is reported, its content never read."""
    outside = tmp_path / "outside.py"
    outside.write_text("def stolen(): pass\n")
    os.symlink(outside, repo / "link.py")
    indexer = make_indexer(repo)
    report = indexer.rebuild()
    assert ("link.py", "symlink points outside the workspace") in {
        (p.path, p.reason) for p in report.problems}
    assert indexer.search("stolen", mode="exact") == []


def test_an_oversized_file_is_skipped(repo, make_indexer):
    """A file over the size limit is reported and left out."""
    write_tree(repo, {"huge.py": "x = 1\n" * 100})
    report = make_indexer(repo, max_file_bytes=500).rebuild()
    assert any(p.path == "huge.py" and "size limit" in p.reason for p in report.problems)


def test_catalogue_paths_are_workspace_relative(repo: Path, make_indexer):
    """Search results carry POSIX paths relative to the workspace root."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    assert all(not h.path.startswith("/") for h in indexer.search("a", limit=50))


def test_the_data_folder_inside_the_workspace_is_not_indexed(tmp_path):
    """With LYNKR_DATA_DIR under WORKSPACE_ROOT (the default), the catalogue skips itself."""
    write_tree(tmp_path, {"a.py": "def a(): pass\n"})
    git_init(tmp_path)
    indexer = Indexer(tmp_path, tmp_path / "data" / "index.db")
    try:
        indexer.rebuild()
        report = indexer.rebuild()
    finally:
        indexer.close()
    assert (report.files, report.problems, report.changed) == (1, (), 0)


def test_progress_counts_every_listed_file_once(repo, make_indexer):
    """The progress callback is called once per file, ending at done == total."""
    seen: list[RebuildProgress] = []
    make_indexer(repo).rebuild(seen.append)
    assert [p.done for p in seen] == list(range(1, 9))
    assert {p.total for p in seen} == {8}
    assert len({p.path for p in seen}) == 8


def test_queries_before_any_rebuild_say_to_rebuild(repo, make_indexer):
    """Search and references on a never-built catalogue ask for a rebuild, not return []."""
    indexer = make_indexer(repo)
    with pytest.raises(IndexerError, match="run a rebuild"):
        indexer.search("x")
    with pytest.raises(IndexerError, match="run a rebuild"):
        indexer.references("x")


def test_verify_content_catches_an_edit_that_kept_size_and_mtime(repo, make_indexer):
    """With verify_content, a same-size edit with a restored mtime is re-parsed."""
    indexer = make_indexer(repo, verify_content=True)
    indexer.rebuild()
    path = repo / "lib" / "util.py"
    before = path.stat()
    path.write_text(path.read_text().replace("Helper", "Helpme"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    report = indexer.rebuild()
    assert report.modified == 1
    assert [h.name for h in indexer.search("Helpme", mode="exact")] == ["Helpme"]


def test_by_default_size_and_mtime_are_trusted(repo, make_indexer):
    """Without verify_content, an unchanged size and mtime means the file is not read."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    path = repo / "lib" / "util.py"
    before = path.stat()
    path.write_text(path.read_text().replace("Helper", "Helpme"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert indexer.rebuild().modified == 0
