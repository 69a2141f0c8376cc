"""TOOL_RESULT_MAX_BYTES: a tool result's text cut to a byte budget, with a note saying so.

The note names the full size, how much is shown and the setting, so the model (or a
user reading a transcript) knows the result is partial and why. The cut never splits a
UTF-8 character, and text plus note stay within the budget.
"""

from __future__ import annotations

__all__ = ["truncate_text"]


def _note(size: int, kept: int, max_bytes: int) -> str:
    return (f"\n\n[Lynkr truncated this tool result: it was {size} bytes, the first {kept} "
            f"are shown (TOOL_RESULT_MAX_BYTES={max_bytes})]")


def truncate_text(text: str, max_bytes: int) -> tuple[str, int] | None:
    """`text` cut to at most `max_bytes` UTF-8 bytes, note included, and its full size.

    Returns:
        ``(cut text with the note, full size in bytes)``, or None when it fits.
    """
    data = text.encode()
    size = len(data)
    if size <= max_bytes:
        return None
    budget = max(0, max_bytes - len(_note(size, max_bytes, max_bytes).encode()))
    head = data[:budget].decode("utf-8", "ignore")  # "ignore" drops a half character
    return head + _note(size, len(head.encode()), max_bytes), size
