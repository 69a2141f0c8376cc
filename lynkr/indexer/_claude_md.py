"""The marked section of CLAUDE.md that Lynkr maintains, and nothing else.

Claude Code reads CLAUDE.md as the user's own memory file, so `write_marked_section`
only ever replaces the bytes between `BEGIN` and `END`. Every byte outside them stays
as it was: a file without markers gets the section appended after its last byte; a
missing file is created only when the caller asks (`create=True`: INDEXER_CLAUDE_MD=create
or `index rebuild --claude-md`), since an unasked file shows up in the user's
`git status`; a file whose markers are damaged (one missing, out of order, repeated) is
left alone and the caller is told why. The returned `SectionWrite` says which of these
happened, so the caller can tell the user in one line.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["BEGIN", "END", "SectionAction", "SectionWrite", "write_marked_section"]

BEGIN = b"<!-- lynkr:begin -->"
END = b"<!-- lynkr:end -->"

SectionAction = Literal["created", "updated", "unchanged", "missing", "refused"]


@dataclass(frozen=True, slots=True)
class SectionWrite:
    """What `write_marked_section` did: `created`, `updated`, `unchanged` (already up to
    date), `missing` (no file and not asked to create one) or `refused` (with `reason`)."""

    action: SectionAction
    reason: str | None = None

    @property
    def holds_section(self) -> bool:
        """True when the file now holds the section (written or already up to date)."""
        return self.action in ("created", "updated", "unchanged")


def _updated(old: bytes | None, body: bytes) -> bytes | str:
    """The new file content, or a reason the markers cannot be trusted."""
    block = BEGIN + b"\n" + body.rstrip(b"\n") + b"\n" + END
    if old is None:
        return block + b"\n"
    begins, ends = old.count(BEGIN), old.count(END)
    if begins == 0 and ends == 0:
        glue = b"" if not old or old.endswith(b"\n\n") else (
            b"\n" if old.endswith(b"\n") else b"\n\n")
        return old + glue + block + b"\n"
    if begins != 1 or ends != 1 or old.index(END) < old.index(BEGIN):
        return "CLAUDE.md markers are damaged (need exactly one begin before one end); not touched"
    head = old[: old.index(BEGIN)]
    tail = old[old.index(END) + len(END):]
    return head + block + tail


def write_marked_section(path: Path, body: str, *, create: bool = False) -> SectionWrite:
    """Put `body` between the markers in the file at `path`.

    Args:
        path: the CLAUDE.md file.
        body: the section's text, without markers.
        create: create the file when it does not exist (otherwise: `missing`).

    Returns:
        What was done; `refused` carries the reason the file was left untouched.
    """
    target = Path(os.path.realpath(path))
    try:
        old = target.read_bytes() if target.exists() else None
    except OSError as exc:
        return SectionWrite("refused", f"CLAUDE.md could not be read: {exc.strerror or exc}")
    if old is None and not create:
        return SectionWrite("missing")
    new = _updated(old, body.encode("utf-8"))
    if isinstance(new, str):
        return SectionWrite("refused", new)
    if new == old:
        return SectionWrite("unchanged")
    return _replace(target, old, new)


def _replace(target: Path, old: bytes | None, new: bytes) -> SectionWrite:
    """Write `new` beside `target` and rename it over, keeping the old file's mode."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".CLAUDE.md.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(new)
        if old is not None:
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    except OSError as exc:
        return SectionWrite("refused", f"CLAUDE.md could not be written: {exc.strerror or exc}")
    return SectionWrite("created" if old is None else "updated")
