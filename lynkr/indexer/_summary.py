"""The project summary: language mix, frameworks, tooling, dependencies, test command,
coverage; as JSON for `project_summary` and as Markdown for CLAUDE.md.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from lynkr.indexer._project import ProjectFacts

__all__ = ["read_coverage", "render_markdown", "summary_json"]


def _coverage_pct(path: Path) -> float | None:
    text = path.read_text(errors="replace")
    if path.suffix == ".json":
        return float(json.loads(text)["total"]["lines"]["pct"])
    if path.suffix == ".xml":
        rate = ET.fromstring(text).get("line-rate")
        return None if rate is None else round(float(rate) * 100, 2)
    found = sum(int(n) for n in re.findall(r"^LH:(\d+)", text, re.MULTILINE))
    total = sum(int(n) for n in re.findall(r"^LF:(\d+)", text, re.MULTILINE))
    return round(100 * found / total, 2) if total else None


def read_coverage(root: Path, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """One entry per configured coverage file: its line coverage, or "not found"."""
    entries: list[dict[str, Any]] = []
    for name in names:
        path = root / name
        if not path.is_file():
            entries.append({"path": name, "status": "not found"})
            continue
        try:
            entries.append({"path": name, "status": "found", "lines_pct": _coverage_pct(path)})
        except (OSError, ValueError, KeyError, TypeError, ET.ParseError) as exc:
            entries.append({"path": name, "status": "found", "lines_pct": None,
                            "error": f"unreadable: {exc}"})
    return entries


def _language_line(languages: dict[str, int]) -> str:
    total = sum(languages.values()) or 1
    ranked = sorted(languages.items(), key=lambda item: (-item[1], item[0]))[:10]
    parts = [f"{lang} {n} ({100 * n / total:.0f}%)" for lang, n in ranked]
    return ", ".join(parts) or "none"


def render_markdown(summary: dict[str, Any]) -> str:
    """The CLAUDE.md section for a `project_summary` result (no timestamps: stable)."""
    facts: dict[str, Any] = summary["project"]
    configs = "; ".join(f"{tool} ({', '.join(where)})"
                        for tool, where in sorted(facts["configs"].items())) or "none found"
    deps = ", ".join(f"{m} ({n} dependencies)" for m, n in facts["dependencies"].items())
    imports = ", ".join(f"{m} ({n} files)" for m, n in summary["top_imports"][:8])
    tests = ", ".join(f"`{c}`" for c in facts["test_commands"]) or "none detected"
    found = [c for c in summary["coverage"] if c["status"] == "found"]
    lines = [
        "## Project summary (maintained by Lynkr; edit outside these markers)",
        "",
        f"- Files indexed: {summary['files']} ({summary['symbols']} symbols)",
        f"- Languages: {_language_line(summary['languages'])}",
        f"- Frameworks: {', '.join(facts['frameworks']) or 'none detected'}",
        f"- Lint/format/test configs: {configs}",
        f"- Dependency manifests: {deps or 'none found'}",
        f"- Most imported: {imports or 'none'}",
        f"- Test command: {tests}",
    ]
    if found:
        lines.append("- Test coverage: " + ", ".join(
            f"{c['path']} {c['lines_pct']}% lines" for c in found))
    return "\n".join(lines) + "\n"


def summary_json(files: int, symbols: int, languages: dict[str, int], facts: ProjectFacts,
                 top_imports: list[tuple[str, int]], coverage: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    """The `project_summary` result."""
    return {"files": files, "symbols": symbols, "languages": languages,
            "project": facts.to_json(), "top_imports": [list(t) for t in top_imports],
            "coverage": coverage}
