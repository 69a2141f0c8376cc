"""The marked section of CLAUDE.md that Lynkr maintains, and nothing else.

Claude Code reads CLAUDE.md as the user's own memory file, so `write_marked_section`
only ever replaces the bytes between `BEGIN` and `END`. Every byte outside them stays
as it was: a file without markers gets the section appended after its last byte; a
missing file is created; a file whose markers are damaged (one missing, out of order,
repeated) is left alone and the caller is told why.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["BEGIN", "END", "write_marked_section"]

BEGIN = b"<!-- lynkr:begin -->"
END = b"<!-- lynkr:end -->"


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


def write_marked_section(path: Path, body: str) -> str | None:
    """Put `body` between the markers in the file at `path`.

    Returns:
        None when the file now holds `body` (written, or already up to date), or the
        reason it was left untouched.
    """
    target = Path(os.path.realpath(path))
    try:
        old = target.read_bytes() if target.exists() else None
    except OSError as exc:
        return f"CLAUDE.md could not be read: {exc.strerror or exc}"
    new = _updated(old, body.encode("utf-8"))
    if isinstance(new, str):
        return new
    if new == old:
        return None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".CLAUDE.md.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(new)
        if old is not None:
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    except OSError as exc:
        return f"CLAUDE.md could not be written: {exc.strerror or exc}"
    return None
