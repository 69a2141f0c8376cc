"""The CLAUDE.md writer touches only the bytes between its markers."""

from __future__ import annotations

from lynkr.indexer._claude_md import BEGIN, END, SectionWrite, write_marked_section

from .conftest import write_tree

HEAD = b"# My notes\r\n\r\nKeep tabs\there, trailing spaces   \n\n"
TAIL = "\n\n## After\nünïcode ✓ and no final newline".encode()


def test_a_missing_file_is_created_with_only_the_section_when_asked(tmp_path):
    """With create=True and no CLAUDE.md, the file is created holding the marked section."""
    path = tmp_path / "CLAUDE.md"
    assert write_marked_section(path, "hello", create=True) == SectionWrite("created")
    assert path.read_bytes() == BEGIN + b"\nhello\n" + END + b"\n"


def test_a_missing_file_is_not_created_unasked(tmp_path):
    """By default a workspace without CLAUDE.md keeps having none."""
    assert write_marked_section(tmp_path / "CLAUDE.md", "hello") == SectionWrite("missing")
    assert not (tmp_path / "CLAUDE.md").exists()


def test_a_file_without_markers_keeps_its_bytes_as_a_prefix(tmp_path):
    """A hand-written file without markers gets the section appended after its last byte."""
    path = tmp_path / "CLAUDE.md"
    path.write_bytes(b"no newline at end")
    assert write_marked_section(path, "x") == SectionWrite("updated")
    assert path.read_bytes().startswith(b"no newline at end\n\n" + BEGIN)


def test_text_above_and_below_the_markers_survives_two_rebuilds(repo, make_indexer):
    """Hand-written text around the markers is byte-identical after two rebuilds."""
    (repo / "CLAUDE.md").write_bytes(HEAD + BEGIN + b"\nold\n" + END + TAIL)
    indexer = make_indexer(repo)
    indexer.rebuild()
    write_tree(repo, {"more.py": "def added(): pass\n"})
    indexer.rebuild()
    data = (repo / "CLAUDE.md").read_bytes()
    assert data.startswith(HEAD + BEGIN)
    assert data.endswith(END + TAIL)
    assert b"old" not in data
    assert b"python 2" in data


def test_damaged_markers_leave_the_file_untouched(repo, make_indexer):
    """A begin marker without an end: the file is not modified and the rebuild says why."""
    original = HEAD + BEGIN + b"\nmine\n"
    (repo / "CLAUDE.md").write_bytes(original)
    report = make_indexer(repo).rebuild()
    assert (repo / "CLAUDE.md").read_bytes() == original
    assert any(p.path == "CLAUDE.md" and "damaged" in p.reason for p in report.problems)
    assert (report.claude_md, report.claude_md_action) == (None, "refused")


def test_an_unchanged_section_is_not_rewritten(tmp_path):
    """Writing the same body twice leaves the file's inode and mtime alone."""
    path = tmp_path / "CLAUDE.md"
    write_marked_section(path, "same", create=True)
    before = path.stat()
    assert write_marked_section(path, "same") == SectionWrite("unchanged")
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_claude_md_is_not_indexed_itself(repo, make_indexer):
    """The file Lynkr writes is not part of the catalogue, so rebuilds settle at no change."""
    indexer = make_indexer(repo)
    indexer.rebuild()
    assert indexer.rebuild().changed == 0
    assert "CLAUDE.md" not in indexer.catalogue.paths()


def test_a_rebuild_leaves_a_workspace_without_claude_md_alone(repo, make_indexer):
    """The default (INDEXER_CLAUDE_MD=update) creates no file and reports `missing`."""
    report = make_indexer(repo).rebuild()
    assert not (repo / "CLAUDE.md").exists()
    assert (report.claude_md, report.claude_md_action) == (None, "missing")


def test_create_mode_creates_and_off_mode_touches_nothing(repo, make_indexer, tmp_path):
    """INDEXER_CLAUDE_MD=create creates the file; =off leaves even an existing one alone."""
    report = make_indexer(repo, claude_md="create").rebuild()
    assert (report.claude_md, report.claude_md_action) == (str(repo / "CLAUDE.md"), "created")
    (repo / "CLAUDE.md").write_bytes(b"mine\n")
    other = make_indexer(repo, claude_md="off")
    assert other.rebuild().claude_md_action == "off"
    assert (repo / "CLAUDE.md").read_bytes() == b"mine\n"
