"""`BlobCache`: a session's shortcut past re-encoding the request parts a client resends.

Claude Code resends its system prompt, its tool list (~80 KB) and the whole history
with every turn. Storing a part by content means encoding it canonically and hashing
that (`make_blob`), ~1 ms per 100 KB of request, most of it for parts the session
stored a turn ago. The cache keys each part by the SHA-256 of its `marshal` form,
about a seventh of the canonical encoding's cost, and remembers the `BlobRef` it
was stored under. Equal marshal bytes load back as equal values of the same types
(`True`, `1` and `1.0` marshal differently), so equal keys mean equal canonical
encodings: a hit is never a different blob. Values that marshal differently but
are equal (another key order, shared objects) only miss.

A hit whose blob the session has seen committed (`stored`, the session's own set of
digests) needs no bytes at all: it is answered as `(ref, b"")` and is never sent to
the store, since the session sends only blobs whose digest is not in `stored`. Any
other hit or a miss is encoded as before. The cache belongs to one session actor and
is touched only on the thread running it.

Its size follows the session: Claude Code resends *every* part every turn, so a
cache smaller than one request's parts would evict parts that are still live and
re-encode them all the next turn. The session calls `fit(parts)` before each
request, which grows the limit to twice that many (at most `MAX_LIMIT`).
"""

from __future__ import annotations

import marshal
from collections.abc import Set
from hashlib import sha256
from typing import Any

from eventstore import BlobRef, make_blob

__all__ = ["MAX_LIMIT", "BlobCache"]

Blob = tuple[BlobRef, bytes]
MAX_LIMIT = 65536  # keys, ~200 bytes each: a ceiling for a runaway request


class BlobCache:
    """`make_blob` with a memory of what this session already stored (module docstring)."""

    def __init__(self, stored: Set[bytes], *, limit: int = 4096) -> None:
        """Answer hits from `stored` (digests known committed); keep at most `limit` keys.

        Raises:
            ValueError: `limit` is less than 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        self._stored = stored
        self._limit = limit
        self._refs: dict[bytes, BlobRef] = {}
        self.hits = 0

    @property
    def limit(self) -> int:
        """Keys kept before the cache starts over."""
        return self._limit

    def fit(self, parts: int) -> None:
        """Make room for a request of `parts` parts and the next one (see module docstring)."""
        self._limit = max(self._limit, min(MAX_LIMIT, 2 * parts))

    def make(self, content: Any) -> Blob:
        """The blob of `content`: `(ref, b"")` if already stored, else `make_blob(content)`.

        Raises:
            TypeError: `content` holds something that cannot be stored (as `make_blob`).
            ValueError: likewise.
        """
        try:
            key = sha256(marshal.dumps(content)).digest()
        except ValueError:  # not marshal-able (or too deep): no shortcut
            return make_blob(content)
        ref = self._refs.get(key)
        if ref is not None and ref.digest in self._stored:
            self.hits += 1
            return ref, b""
        blob = make_blob(content)
        if len(self._refs) >= self._limit:
            self._refs.clear()
        self._refs[key] = blob[0]
        return blob
