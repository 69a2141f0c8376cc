"""Byte-level encoding: cbor2 payloads, content-addressed blob references, the hash chain.

Payload values are CBOR-native (None, bool, int, float, str, bytes, tuple, dict) plus
`BlobRef`, encoded as CBOR tag 40401 around the 32-byte digest. Arrays always decode
as tuples so that frozen events compare equal after a round trip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import cbor2

__all__ = [
    "BLOB_TAG",
    "BlobRef",
    "chain_hash",
    "decode_value",
    "encode_value",
    "make_blob",
]

BLOB_TAG = 40401
_GENESIS = b"\x00" * 32


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A reference to content stored once in the blob table, by SHA-256 of its bytes."""

    digest: bytes
    size: int = 0

    @property
    def hex(self) -> str:
        """The digest as lowercase hex, as shown to people."""
        return self.digest.hex()

    def __repr__(self) -> str:
        return f"BlobRef({self.digest.hex()[:12]}…, {self.size}B)"


def _default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, BlobRef):
        encoder.encode(cbor2.CBORTag(BLOB_TAG, [value.digest, value.size]))
        return
    raise TypeError(f"cannot encode {type(value).__name__} in an event payload")


def _tag_hook(decoder: cbor2.CBORDecoder, tag: cbor2.CBORTag) -> Any:
    if tag.tag == BLOB_TAG:
        digest, size = tag.value
        return BlobRef(bytes(digest), int(size))
    return tag


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def encode_value(value: Any) -> bytes:
    """Encode a payload value canonically (sorted map keys), so equal values hash equal.

    Raises:
        TypeError: if the value holds something that is not CBOR-native or a `BlobRef`.
    """
    return cbor2.dumps(value, canonical=True, default=_default)


def decode_value(data: bytes) -> Any:
    """Decode bytes written by `encode_value`; arrays come back as tuples."""
    return _freeze(cbor2.loads(data, tag_hook=_tag_hook))


def make_blob(content: Any) -> tuple[BlobRef, bytes]:
    """Encode JSON-like content for the blob table.

    Returns:
        The reference (SHA-256 of the encoded bytes) and the bytes to store.
    """
    data = encode_value(content)
    return BlobRef(hashlib.sha256(data).digest(), len(data)), data


def chain_hash(
    previous: bytes | None,
    stream_id: str,
    seq: int,
    type_name: str,
    version: int,
    payload: bytes,
    metadata: bytes,
) -> bytes:
    """SHA-256 linking one stored event to the previous event of its stream."""
    h = hashlib.sha256(previous or _GENESIS)
    for part in (stream_id.encode(), seq.to_bytes(8, "big"), type_name.encode(),
                 version.to_bytes(4, "big")):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(hashlib.sha256(payload).digest())
    h.update(hashlib.sha256(metadata).digest())
    return h.digest()
