"""`Indexer`: the repository catalogue of one workspace, built and queried.

This is the concrete component the indexer actor (`actors.indexer`) owns: its
`rebuild` is called on the actor's thread, one at a time. The query methods only
read, through their own per-thread connection, so they can run from any thread
while a rebuild is writing (they see the previous catalogue until it commits).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import structlog

from lynkr.errors import IndexerError
from lynkr.indexer._catalogue import Catalogue
from lynkr.indexer._claude_md import SectionWrite, write_marked_section
from lynkr.indexer._enclose import nest
from lynkr.indexer._model import (
    OutlineEntry,
    Problem,
    RebuildReport,
    ReferenceHit,
    SymbolHit,
)
from lynkr.indexer._project import detect_project
from lynkr.indexer._rebuild import ProgressCallback, apply_changes, plan_changes
from lynkr.indexer._search import MODES, NameIndex, search_symbols
from lynkr.indexer._settings import IndexerSettings
from lynkr.indexer._summary import read_coverage, render_markdown, summary_json

__all__ = ["Indexer"]

log = structlog.get_logger()

_COL = 1_000_000  # packs (line, column) into one sortable number for nesting


class Indexer:
    """The catalogue of the workspace at `root`, stored at `catalogue_path`."""

    def __init__(self, root: str | os.PathLike[str], catalogue_path: str | os.PathLike[str],
                 settings: IndexerSettings | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise IndexerError(f"workspace root {self.root} is not a directory")
        self.settings = settings or IndexerSettings()
        self.catalogue = Catalogue(catalogue_path)
        self._names: tuple[int, NameIndex] | None = None

    def close(self) -> None:
        """Close the calling thread's catalogue connection."""
        self.catalogue.close()

    # -- building ------------------------------------------------------------------
    def rebuild(self, progress: ProgressCallback | None = None) -> RebuildReport:
        """Bring the catalogue up to date with the workspace; parse only changed files.

        Args:
            progress: called with a `RebuildProgress` after each file is looked at.

        Raises:
            IndexerError: the catalogue cannot be written.
        """
        started = time.perf_counter()
        changes = plan_changes(self.root, self.catalogue, self.settings, progress)
        apply_changes(self.catalogue, changes, self.settings.workers, progress)
        added = sum(1 for job in changes.jobs if job.old_id is None)
        generation = int(self.catalogue.meta("generation", 0))
        if changes.jobs or changes.deleted:
            generation += 1
        summary = self._summary_data()
        with self.catalogue.write():
            self.catalogue.set_meta("generation", generation)
            self.catalogue.set_meta("summary", summary)
        problems = list(changes.problems)
        claude_md = self._write_claude_md(summary)
        if claude_md is not None and claude_md.reason is not None:
            problems.append(Problem("CLAUDE.md", claude_md.reason))
        report = RebuildReport(
            files=summary["files"], symbols=summary["symbols"],
            references=self.catalogue.counts()[2], added=added,
            modified=len(changes.jobs) - added, deleted=len(changes.deleted),
            unchanged=changes.unchanged, duration_s=time.perf_counter() - started,
            problems=tuple(problems), languages=summary["languages"],
            claude_md=(str(self.root / "CLAUDE.md")
                       if claude_md is not None and claude_md.holds_section else None),
            claude_md_action=claude_md.action if claude_md is not None else "off",
        )
        log.info("index_rebuilt", files=report.files, symbols=report.symbols,
                 changed=report.changed, problems=len(problems),
                 seconds=round(report.duration_s, 3))
        return report

    def _write_claude_md(self, summary: dict[str, Any]) -> SectionWrite | None:
        """The marked section of CLAUDE.md, as INDEXER_CLAUDE_MD says (None: `off`)."""
        if self.settings.claude_md == "off":
            return None
        return write_marked_section(self.root / "CLAUDE.md", render_markdown(summary),
                                    create=self.settings.claude_md == "create")

    def _summary_data(self) -> dict[str, Any]:
        files, symbols, _ = self.catalogue.counts()
        facts = detect_project(self.root, self.catalogue.paths())
        return summary_json(files, symbols, self.catalogue.language_counts(), facts,
                            self.catalogue.import_counts(20),
                            read_coverage(self.root, self.settings.coverage_files))

    # -- querying ------------------------------------------------------------------
    def _require_built(self) -> None:
        if self.catalogue.meta("generation") is None:
            raise IndexerError("the workspace has not been indexed yet (run a rebuild)")

    def _name_index(self) -> NameIndex:
        generation = int(self.catalogue.meta("generation", 0))
        if self._names is None or self._names[0] != generation:
            self._names = (generation, NameIndex(self.catalogue.distinct_names()))
        return self._names[1]

    def search(self, query: str, *, mode: str = "fuzzy", kind: str | None = None,
               limit: int = 20) -> list[SymbolHit]:
        """Symbols matching `query`, best first.

        Raises:
            IndexerError: empty query, unknown mode or a limit below 1.
        """
        if not query.strip() or "\n" in query:
            raise IndexerError("the symbol query must be a non-empty single-line name")
        if mode not in MODES:
            raise IndexerError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if limit < 1:
            raise IndexerError("limit must be at least 1")
        self._require_built()
        return search_symbols(self.catalogue, self._name_index(), query.strip(), mode=mode,
                              kind=kind, limit=limit)

    def definitions(self, name: str, limit: int = 50) -> list[SymbolHit]:
        """Every place `name` is defined."""
        return self.search(name, mode="exact", limit=limit)

    def references(self, name: str, *, limit: int = 200) -> list[ReferenceHit]:
        """Uses of `name` across the workspace (definition sites excluded), with their lines.

        Raises:
            IndexerError: empty name or a limit below 1.
        """
        if not name.strip() or limit < 1:
            raise IndexerError("references need a non-empty name and a limit of at least 1")
        self._require_built()
        lines: dict[str, list[str]] = {}
        hits = []
        for path, line, col, enclosing in self.catalogue.references(name.strip(), limit):
            if path not in lines:
                try:
                    lines[path] = (self.root / path).read_text(errors="replace").splitlines()
                except OSError:
                    lines[path] = []
            text = lines[path][line - 1].strip()[:200] if line <= len(lines[path]) else ""
            hits.append(ReferenceHit(name=name.strip(), path=path, line=line, col=col,
                                     enclosing=enclosing, text=text))
        return hits

    def relative(self, path: str) -> str:
        """`path` (absolute or workspace-relative) as a catalogue path.

        Raises:
            IndexerError: the path is outside the workspace.
        """
        full = Path(os.path.realpath(self.root / path))
        if not full.is_relative_to(self.root):
            raise IndexerError(f"{path} is outside the workspace")
        return full.relative_to(self.root).as_posix()

    def outline(self, path: str) -> list[OutlineEntry]:
        """The symbols of one file in order, with nesting depth.

        Raises:
            IndexerError: the file is outside the workspace or not in the catalogue.
        """
        rel = self.relative(path)
        row = self.catalogue.file_row(rel)
        if row is None:
            raise IndexerError(f"{rel} is not in the catalogue (run a rebuild?)")
        rows = self.catalogue.outline_rows(row[0])
        parents = nest([(r[2] * _COL + r[4], r[3] * _COL + r[5]) for r in rows])
        depths: list[int] = []
        for parent in parents:
            depths.append(0 if parent is None else depths[parent] + 1)
        return [OutlineEntry(name=r[0], kind=r[1], start_line=r[2], end_line=r[3], depth=d,
                             signature=r[6] or "") for r, d in zip(rows, depths, strict=True)]

    def summary(self) -> dict[str, Any]:
        """The project summary of the last rebuild, with fresh coverage figures.

        Raises:
            IndexerError: no rebuild has run yet.
        """
        self._require_built()
        data = self.catalogue.meta("summary")
        data["coverage"] = read_coverage(self.root, self.settings.coverage_files)
        data["problems"] = [{"path": p, "reason": r} for p, r in self.catalogue.problems()]
        return dict(data)
