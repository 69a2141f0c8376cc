"""The crawler: git-aware listing, exclusion rules, and per-file skip verdicts."""

from __future__ import annotations

import os

import pytest

from lynkr.indexer import IndexerSettings
from lynkr.indexer._crawl import FileSkipped, list_files, load_file, stat_file

from .conftest import git_init, write_tree


def test_git_work_trees_are_listed_with_gitignore_applied(tmp_path):
    """In a git work tree, ignored files are not listed and the source is git."""
    write_tree(tmp_path, {".gitignore": "*.log\n", "a.py": "", "debug.log": ""})
    git_init(tmp_path)
    listing = list_files(tmp_path, IndexerSettings())
    assert listing.source == "git"
    assert listing.paths == (".gitignore", "a.py")


def test_plain_directories_are_walked_with_the_root_gitignore(tmp_path):
    """Outside git, the walk applies the root .gitignore and prunes vendored folders."""
    write_tree(tmp_path, {".gitignore": "out/\n", "out/x.py": "", "keep.py": "",
                          "node_modules/m/i.js": "", "pkg/__pycache__/c.py": ""})
    listing = list_files(tmp_path, IndexerSettings())
    assert listing.source == "walk"
    assert listing.paths == (".gitignore", "keep.py")


def test_generated_and_binary_names_and_ignore_globs_are_excluded(tmp_path):
    """Minified, lock, protobuf, image files and configured globs are dropped by name."""
    write_tree(tmp_path, {"app.min.js": "", "yarn.lock": "", "m_pb2.py": "", "i.png": "",
                          "fixtures/big.json": "", "ok.js": ""})
    listing = list_files(tmp_path, IndexerSettings(ignore_globs=("fixtures/*",)))
    assert listing.paths == ("ok.js",)
    assert listing.excluded == 5


def test_binary_content_is_skipped(tmp_path):
    """A NUL byte early in the file means binary, whatever the extension."""
    write_tree(tmp_path, {"x.py": b"abc\x00def"})
    with pytest.raises(FileSkipped, match="binary"):
        load_file(tmp_path, "x.py", 1000)


def test_size_limit_is_checked_at_stat_and_at_read(tmp_path):
    """A file over the limit is skipped before reading, and if it grew meanwhile."""
    write_tree(tmp_path, {"big.py": "x" * 100})
    with pytest.raises(FileSkipped, match="size limit"):
        stat_file(tmp_path, "big.py", 50)
    with pytest.raises(FileSkipped, match="size limit"):
        load_file(tmp_path, "big.py", 50)


def test_a_symlink_loop_is_unreadable_not_a_crash(tmp_path):
    """Two symlinks pointing at each other are skipped as unreadable."""
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(FileSkipped, match="unreadable"):
        stat_file(tmp_path, "a", 1000)


def test_a_vanished_file_is_reported_as_vanished(tmp_path):
    """Stat or read of a missing file says vanished."""
    with pytest.raises(FileSkipped, match="vanished"):
        stat_file(tmp_path, "gone.py", 1000)
    with pytest.raises(FileSkipped, match="vanished"):
        load_file(tmp_path, "gone.py", 1000)


def test_a_directory_symlink_loop_does_not_hang_the_walk(tmp_path):
    """A symlinked directory pointing at its parent is not followed."""
    write_tree(tmp_path, {"d/a.py": ""})
    os.symlink("..", tmp_path / "d" / "up")
    assert list_files(tmp_path, IndexerSettings()).paths == ("d/a.py",)


def test_the_combined_glob_pattern_agrees_with_fnmatch():
    """A path is excluded by the globs exactly when `fnmatch` matches its name or path."""
    import fnmatch

    from lynkr.indexer._crawl import GENERATED_GLOBS, _excluded

    globs = (*GENERATED_GLOBS, "docs/*", "a[bc]?.py", "**/x/*")
    paths = ["a.min.js", "b.js", "x_pb2.py", "dir/a.min.js", "docs/r.md", "q/docs/r.md",
             "abz.py", "ad.py", "foo.lock", "a/go.sum", "k.generated.ts", "m/x/y.py",
             "x/y.py", "a/b.map", "new\nline.lock"]
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        expected = any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(path, g) for g in globs)
        assert _excluded(path, globs) is expected, path
    assert _excluded("a.py", ()) is False
