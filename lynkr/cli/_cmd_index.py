"""`lynkr index …`: build and query the repository catalogue without a running gateway.

`rebuild` runs the indexer through its actor in this process (so the rebuild is
recorded as `IndexRebuilt` in `$LYNKR_DATA_DIR/lynkr.db`), with a progress bar on a
terminal and plain lines otherwise, and ends with one line saying what it did to
CLAUDE.md (INDEXER_CLAUDE_MD: the marked section of an existing file is refreshed; a
missing one is created only with `--claude-md` or INDEXER_CLAUDE_MD=create); `search`,
`refs`, `outline` and `summary` read `$LYNKR_DATA_DIR/index.db` directly. Every command
takes `--json`. `search` and `refs` exit with 1 when nothing matches.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lynkr.cli._setup import load_cli_settings

if TYPE_CHECKING:
    from lynkr.config import Settings
    from lynkr.indexer import Indexer, RebuildProgress, RebuildReport

# The actors, the event store and the indexer are imported inside the handlers:
# `lynkr --help` and the other commands never pay for them (tools/bench_cli_startup.py).

__all__ = ["register"]

_BAR_WIDTH = 30
_BAR_INTERVAL = 0.1  # seconds between redraws of the terminal bar
_SHOWN_PROBLEMS = 20


def register(subparsers: Any) -> None:
    """Add `lynkr index` and its actions."""
    parser = subparsers.add_parser(
        "index", help="build and query the repository catalogue",
        description="Build and query the tree-sitter catalogue of WORKSPACE_ROOT.")
    actions = parser.add_subparsers(dest="index_action", metavar="ACTION", required=True)
    rebuild = actions.add_parser("rebuild", help="index changed files, refresh CLAUDE.md's "
                                                 "Lynkr section")
    rebuild.add_argument("--claude-md", action="store_true",
                         help="create CLAUDE.md when the workspace has none (by default only "
                              "an existing one's marked section is refreshed)")
    search = actions.add_parser("search", help="find symbol definitions by name")
    search.add_argument("name", metavar="NAME")
    search.add_argument("--mode", choices=("exact", "prefix", "fuzzy"), default="fuzzy")
    search.add_argument("--kind", help="only symbols of this kind (class, function, …)")
    search.add_argument("--limit", type=int, default=20)
    refs = actions.add_parser("refs", help="where a symbol is defined and used")
    refs.add_argument("name", metavar="NAME")
    refs.add_argument("--limit", type=int, default=200)
    outline = actions.add_parser("outline", help="the symbols of one file")
    outline.add_argument("file", metavar="FILE")
    summary = actions.add_parser("summary", help="languages, frameworks, tooling, tests")
    handlers = {rebuild: _rebuild, search: _search, refs: _refs, outline: _outline,
                summary: _summary}
    for action, handler in handlers.items():
        action.add_argument("--json", action="store_true", help="print JSON")
        action.add_argument("--root", type=Path, help="workspace to index (default WORKSPACE_ROOT)")
        action.set_defaults(handler=handler)


def _open(args: argparse.Namespace) -> tuple[Settings, Indexer]:
    from lynkr.indexer import Indexer
    settings = load_cli_settings()
    root = args.root.resolve() if args.root else settings.server.workspace_root
    indexer_settings = settings.indexer
    if getattr(args, "claude_md", False):  # only `rebuild` has the flag
        indexer_settings = replace(indexer_settings, claude_md="create")
    indexer = Indexer(root, settings.server.data_dir / "index.db", indexer_settings)
    return settings, indexer


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


class _Progress:
    """A bar redrawn in place on a terminal; a line per tenth otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.shown = -1.0
        self.tenth = -1

    def __call__(self, update: RebuildProgress) -> None:
        total = max(update.total, 1)
        if self.tty:
            now = time.monotonic()
            if now - self.shown < _BAR_INTERVAL and update.done < total:
                return
            self.shown = now
            filled = _BAR_WIDTH * update.done // total
            bar = "#" * filled + "." * (_BAR_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {update.done}/{update.total} {update.path[-40:]:<40}")
            self.stream.flush()
            return
        tenth = 10 * update.done // total
        if tenth != self.tenth:
            self.tenth = tenth
            print(f"indexed {update.done}/{update.total} files", file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar's line."""
        if self.tty and self.shown >= 0:
            self.stream.write("\n")


def _rebuild(args: argparse.Namespace) -> int:
    from actors import EventStore, IndexerActor, request_rebuild
    settings, indexer = _open(args)
    # The gateway's append path, in this process (docs/INTERNALS.md, "the CLI appends").
    store = EventStore.open(settings.db_path, durability=settings.server.durability)  # type: ignore[arg-type]
    progress = _Progress(sys.stderr)
    ref = IndexerActor.start(indexer, store)
    try:
        report: RebuildReport = request_rebuild(ref, progress).get()
    finally:
        progress.close()
        ref.stop()
        store.stop()
        indexer.close()
    lines = [f"indexed {report.files} files ({report.symbols} symbols) in "
             f"{report.duration_s:.2f}s: {report.added} added, {report.modified} modified, "
             f"{report.deleted} deleted, {report.unchanged} unchanged"]
    lines += [f"skipped {p.path}: {p.reason}" for p in report.problems[:_SHOWN_PROBLEMS]]
    if len(report.problems) > _SHOWN_PROBLEMS:
        lines.append(f"… and {len(report.problems) - _SHOWN_PROBLEMS} more problems (--json)")
    note = _claude_md_note(report, indexer.root)
    if note:
        lines.append(note)
    _emit(args, report.to_json(), "\n".join(lines))
    return 0


def _claude_md_note(report: RebuildReport, root: Path) -> str | None:
    """One line saying what the rebuild did to CLAUDE.md (a refusal is among the problems)."""
    path = root / "CLAUDE.md"
    return {
        "created": f"created {path} with the project summary between Lynkr's markers",
        "updated": f"updated the Lynkr section of {path}",
        "unchanged": f"the Lynkr section of {path} is up to date",
        "missing": f"no CLAUDE.md in {root}; none created (--claude-md or "
                   "INDEXER_CLAUDE_MD=create creates one)",
        "off": "CLAUDE.md not touched (INDEXER_CLAUDE_MD=off)",
    }.get(report.claude_md_action)


def _search(args: argparse.Namespace) -> int:
    _, indexer = _open(args)
    hits = indexer.search(args.name, mode=args.mode, kind=args.kind, limit=args.limit)
    text = "\n".join(f"{h.kind:<10} {h.name:<30} {h.path}:{h.start_line}:{h.start_col}  "
                     f"{h.signature}" for h in hits) or f"no symbol matches {args.name!r}"
    _emit(args, [h.to_json() for h in hits], text)
    return 0 if hits else 1


def _refs(args: argparse.Namespace) -> int:
    _, indexer = _open(args)
    defs = indexer.definitions(args.name)
    refs = indexer.references(args.name, limit=args.limit)
    lines = [f"defined at {d.path}:{d.start_line}:{d.start_col}  {d.signature}" for d in defs]
    lines += [f"{r.path}:{r.line}:{r.col}  {r.text}" + (f"  (in {r.enclosing})"
                                                        if r.enclosing else "") for r in refs]
    data = {"name": args.name, "definitions": [d.to_json() for d in defs],
            "references": [r.to_json() for r in refs]}
    _emit(args, data, "\n".join(lines) or f"no definition or use of {args.name!r}")
    return 0 if defs or refs else 1


def _outline(args: argparse.Namespace) -> int:
    _, indexer = _open(args)
    given = Path(args.file)  # relative to the working directory, else to the workspace
    entries = indexer.outline(str(given.absolute()) if given.exists() else args.file)
    text = "\n".join(f"{e.start_line:>6}  {'  ' * e.depth}{e.kind} {e.name}" for e in entries)
    _emit(args, [e.to_json() for e in entries], text or f"{args.file}: no symbols")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from lynkr.indexer._summary import render_markdown
    _, indexer = _open(args)
    data = indexer.summary()
    lines = [render_markdown(data).rstrip("\n")]
    lines += [f"- Coverage file {c['path']}: {c['status']}" for c in data["coverage"]
              if c["status"] != "found"]
    _emit(args, data, "\n".join(lines))
    return 0
