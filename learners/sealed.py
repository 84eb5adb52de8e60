"""Sealed blobs: bytes that are authenticated before a single byte of them is decoded.

Learner checkpoints and batch-model artifacts are stored in the database and read back by every
process. Their payloads hold pickles (River models, boosters), and unpickling executes code, so
whoever can write the database must not be able to choose them (DESIGN.md rule 8). A sealed blob
is ``MAGIC || HMAC-SHA256(blob key, MAGIC || payload) || payload``; :meth:`Keyring.unseal`
checks the tag in constant time against the current and every previous server secret (rotation)
and only then returns the payload.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

MAGIC = b"ARS1"  # adaptive-router sealed blob, format 1
TAG_BYTES = hashlib.sha256().digest_size
# The server secret is never used directly: each purpose gets its own key derived from it.
_BLOB_PURPOSE = b"adaptive-router sealed blob v1"


class SealError(ValueError):
    """A blob is not sealed by any known server secret (forged, tampered or too old)."""


def derive_key(secret: bytes, purpose: bytes) -> bytes:
    """The key for one ``purpose`` (blobs, API-key hashes) derived from a server secret."""
    return hmac.new(secret, purpose, hashlib.sha256).digest()


def _tag(key: bytes, payload: bytes) -> bytes:
    mac = hmac.new(key, MAGIC, hashlib.sha256)
    mac.update(payload)
    return mac.digest()


def seal(payload: bytes, key: bytes) -> bytes:
    """``payload`` with a header that :func:`unseal` verifies with ``key``."""
    return MAGIC + _tag(key, payload) + payload


def unseal(blob: bytes, keys: Sequence[bytes]) -> bytes:
    """The payload of ``blob`` if one of ``keys`` sealed it; :class:`SealError` otherwise."""
    header = len(MAGIC) + TAG_BYTES
    if len(blob) < header or not blob.startswith(MAGIC):
        raise SealError("not a sealed blob")
    tag, payload = blob[len(MAGIC):header], blob[header:]
    # Every key is tried (no early exit), so the time taken does not say which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(_tag(key, payload), tag)
    if not matched:
        raise SealError("the blob's seal does not match any server secret")
    return payload


class Keyring:
    """The server secret that seals and the previous ones that still verify.

    The secrets themselves never appear in ``repr`` (they would end up in logs).
    """

    __slots__ = ("_sealing", "_verifying", "secrets")

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        if not current:
            raise ValueError("the server secret is empty")
        self.secrets: tuple[bytes, ...] = (current, *(p for p in previous if p))
        self._sealing = derive_key(current, _BLOB_PURPOSE)
        self._verifying = tuple(derive_key(s, _BLOB_PURPOSE) for s in self.secrets)

    def __repr__(self) -> str:
        return f"Keyring(current secret and {len(self.secrets) - 1} previous)"

    def seal(self, payload: bytes) -> bytes:
        """Seal with the current secret."""
        return seal(payload, self._sealing)

    def unseal(self, blob: bytes) -> bytes:
        """The payload of a blob sealed with the current or a previous secret."""
        return unseal(blob, self._verifying)
