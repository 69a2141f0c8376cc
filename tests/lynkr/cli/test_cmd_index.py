"""`lynkr index rebuild|search|refs|outline|summary`, without a gateway, on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import structlog

from eventstore import SqliteRecorder
from lynkr.cli import main

FILES = {
    "pkg/shapes.py": "class Shape:\n    def area(self):\n        return 0\n",
    "pkg/use.py": "from pkg.shapes import Shape\n\nprint(Shape().area())\n",
    "requirements.txt": "pytest\n",
}


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace with two Python files, and LYNKR_DATA_DIR beside it."""
    root = tmp_path / "ws"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for key in [k for k in os.environ if k.startswith(("INDEXER_", "WORKSPACE_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LYNKR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKSPACE_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    yield root
    structlog.reset_defaults()  # the CLI configured logging onto this test's captured stderr


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rebuild_records_index_rebuilt_in_the_event_log(ws, tmp_path, capsys):
    """`index rebuild --json` reports the counts and appends IndexRebuilt to lynkr.db."""
    code, out, _ = run(capsys, "index", "rebuild", "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["files"], report["symbols"]) == (3, 2)
    recorder = SqliteRecorder(tmp_path / "data" / "lynkr.db")
    [recorded] = recorder.read_stream("system")
    recorder.close()
    assert (recorded.event.type_name, recorded.event.files) == ("IndexRebuilt", 3)
    assert report["claude_md_action"] == "missing"


def test_rebuild_writes_no_claude_md_unasked_and_says_so(ws, capsys):
    """A workspace without CLAUDE.md keeps a clean `git status`; the last line says why."""
    code, out, _ = run(capsys, "index", "rebuild")
    assert code == 0
    assert not (ws / "CLAUDE.md").exists()
    status = subprocess.run(["git", "-C", str(ws), "status", "--porcelain"], check=True,
                            capture_output=True, text=True).stdout
    assert "CLAUDE.md" not in status
    assert out.splitlines()[-1] == (f"no CLAUDE.md in {ws.resolve()}; none created "
                                    "(--claude-md or INDEXER_CLAUDE_MD=create creates one)")


def test_rebuild_claude_md_flag_creates_it_then_updates_report_it(ws, capsys):
    """--claude-md creates the file; later rebuilds refresh its section, each in one line."""
    path = ws.resolve() / "CLAUDE.md"
    _, out, _ = run(capsys, "index", "rebuild", "--claude-md")
    assert out.splitlines()[-1] == (f"created {path} with the project summary between "
                                    "Lynkr's markers")
    _, out, _ = run(capsys, "index", "rebuild")
    assert out.splitlines()[-1] == f"the Lynkr section of {path} is up to date"
    (ws / "pkg" / "more.py").write_text("def more():\n    pass\n")
    path.write_text("# my notes\n" + path.read_text())
    _, out, _ = run(capsys, "index", "rebuild")
    assert out.splitlines()[-1] == f"updated the Lynkr section of {path}"
    assert path.read_text().startswith("# my notes\n")


def test_index_claude_md_setting_create_and_off(ws, capsys, monkeypatch):
    """INDEXER_CLAUDE_MD=create creates the file; =off leaves it alone and says so."""
    monkeypatch.setenv("INDEXER_CLAUDE_MD", "create")
    run(capsys, "index", "rebuild")
    assert (ws / "CLAUDE.md").exists()
    (ws / "CLAUDE.md").write_text("mine\n")
    monkeypatch.setenv("INDEXER_CLAUDE_MD", "off")
    _, out, _ = run(capsys, "index", "rebuild")
    assert out.splitlines()[-1] == "CLAUDE.md not touched (INDEXER_CLAUDE_MD=off)"
    assert (ws / "CLAUDE.md").read_text() == "mine\n"


def test_search_refs_outline_and_summary_print_text_and_json(ws, capsys):
    """Each query command prints readable text, and JSON with --json."""
    run(capsys, "index", "rebuild")
    code, out, _ = run(capsys, "index", "search", "Shap")
    assert code == 0
    assert "pkg/shapes.py:1:1" in out
    code, out, _ = run(capsys, "index", "refs", "Shape", "--json")
    data = json.loads(out)
    assert [d["path"] for d in data["definitions"]] == ["pkg/shapes.py"]
    assert {r["path"] for r in data["references"]} == {"pkg/use.py"}
    code, out, _ = run(capsys, "index", "outline", "ws/pkg/shapes.py")
    assert out.splitlines() == ["     1  class Shape", "     2    method area"]
    code, out, _ = run(capsys, "index", "summary", "--json")
    assert json.loads(out)["project"]["test_commands"] == ["pytest"]
    code, out, _ = run(capsys, "index", "summary")
    assert "- Test command: `pytest`" in out
    assert "lcov.info: not found" in out


def test_no_match_exits_with_one(ws, capsys):
    """search and refs exit 1 when nothing matches, with a one-line message."""
    run(capsys, "index", "rebuild")
    assert run(capsys, "index", "search", "zzzqqq")[:2] == (1, "no symbol matches 'zzzqqq'\n")
    assert run(capsys, "index", "refs", "zzzqqq")[0] == 1


def test_errors_are_one_line_without_a_traceback(ws, capsys):
    """An outline of an unindexed file prints `lynkr: …` and exits 1."""
    code, _, err = run(capsys, "index", "outline", "missing.py")
    assert code == 1
    assert err.strip().endswith("missing.py is not in the catalogue (run a rebuild?)")
    assert "Traceback" not in err


def test_every_action_has_help_and_json(capsys):
    """`--help` of each action mentions --json."""
    for action in ("rebuild", "search", "refs", "outline", "summary"):
        with pytest.raises(SystemExit) as stop:
            main(["index", action, "--help"])
        assert stop.value.code == 0
        assert "--json" in capsys.readouterr().out


@pytest.mark.slow
def test_progress_is_plain_lines_off_a_terminal(ws, tmp_path):
    """Run as a subprocess (stderr a pipe), rebuild prints progress lines, not a bar."""
    done = subprocess.run([sys.executable, "-m", "lynkr", "index", "rebuild"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "LOG_LEVEL": "warning"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "indexed 3/3 files" in done.stderr
    assert "\r" not in done.stderr
    assert done.stdout.startswith("indexed 3 files (2 symbols)")


def test_the_terminal_bar_redraws_in_place():
    """On a terminal, progress is one bar redrawn with carriage returns."""
    import io

    from lynkr.cli._cmd_index import _Progress
    from lynkr.indexer import RebuildProgress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = _Progress(stream)
    for done in (1, 2):
        bar(RebuildProgress(done, 2, "a.py"))
    bar.close()
    assert stream.getvalue().startswith("\r[")
    assert "2/2" in stream.getvalue()
    assert stream.getvalue().endswith("\n")
