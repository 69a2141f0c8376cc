"""TOOL_RESULT_MAX_BYTES: text cut to a byte budget, never half a character, with a note."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lynkr.tools._truncate import truncate_text


def test_text_that_fits_is_not_touched():
    """At or under the budget, nothing is cut."""
    assert truncate_text("a" * 2048, 2048) is None


def test_note_names_sizes_and_setting():
    """The note says it was cut, the full size, what is shown and the setting."""
    cut, size = truncate_text("x" * 5000, 1024)
    assert size == 5000
    head, note = cut.split("\n\n[", 1)
    assert set(head) == {"x"}
    assert note == (f"Lynkr truncated this tool result: it was 5000 bytes, the first "
                    f"{len(head)} are shown (TOOL_RESULT_MAX_BYTES=1024)]")


@given(st.text(min_size=1, max_size=3000), st.integers(min_value=1024, max_value=4096))
def test_cut_is_a_prefix_within_the_budget(text, max_bytes):
    """The cut text is a prefix of the original, and with its note fits the budget."""
    found = truncate_text(text, max_bytes)
    if found is None:
        assert len(text.encode()) <= max_bytes
        return
    cut, size = found
    assert size == len(text.encode()) > max_bytes
    assert len(cut.encode()) <= max_bytes
    head = cut.rsplit("\n\n[Lynkr truncated", 1)[0]
    assert text.startswith(head)
    assert len(head.encode()) > max_bytes - 200  # the note is short; most of it is kept
