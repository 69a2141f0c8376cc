"""`ProgressBar`: one self-redrawing line on stderr for long commands, only on a terminal.

Piped or redirected, stderr gets nothing from it, so a command's output (stdout)
and its logs (stderr) stay machine-readable; `lynkr index rebuild` has its own
bar, which also prints a line per tenth when piped.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

__all__ = ["ProgressBar"]

_WIDTH = 30
_INTERVAL = 0.1  # seconds between redraws


class ProgressBar:
    """``label [#####.....] done/total`` redrawn with ``\\r`` while work goes on.

    Args:
        label: what is being done (``verify``, ``rebuild``).
        total: the amount of work (events, say); 0 draws no bar.
        stream: where to draw (default `sys.stderr`); nothing is drawn unless it is a TTY.
    """

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.enabled = total > 0 and self.stream.isatty()
        self._drawn_at = -1.0

    def update(self, done: int) -> None:
        """Show `done` of `total` (at most every 0.1 s, and always at the end)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn_at < _INTERVAL and done < self.total:
            return
        self._drawn_at = now
        filled = _WIDTH * min(done, self.total) // self.total
        bar = "#" * filled + "." * (_WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line, so what follows starts on a line of its own."""
        if self.enabled and self._drawn_at >= 0:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
