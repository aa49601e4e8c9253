"""The archive's keyed hashes: ids and index values that say nothing without the daemon's keys.

Each purpose has its own key derived from the daemon secrets (see docs/ARCHITECTURE.md,
"Security model"): blob ids (so equal contents share a blob without revealing them),
dedup keys (which message is which across captures), blind search tokens, message
references (threads and replies), and source hashes (the same bytes captured again).
The store owns no key: the archive hands a :class:`KeyedHashes` to its writer and search.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from twentyday.canonical import json_string
from twentyday.crypto.secrets import DaemonSecrets

#: How many words' search tokens are kept; chat vocabularies are small and skewed.
TOKEN_CACHE_SIZE = 200_000

_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class KeyedHash:
    """HMAC-SHA256 under one key (RFC 2104), its padded key states computed once.

    The same digest as ``hmac.digest(key, data, "sha256")`` at a third of the cost,
    which matters for the several keyed hashes every archived message needs.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def hexdigest(self, data: bytes) -> str:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


class KeyedHashes:
    """Every keyed hash the archive computes, each under its own key."""

    def __init__(self, *, blob_id_key: bytes, dedup_key: bytes, token_key: bytes, message_ref_key: bytes,
                 source_key: bytes) -> None:
        self._blob_id_key = blob_id_key
        self._source_key = source_key
        self._blob_id = KeyedHash(blob_id_key)
        self._dedup = KeyedHash(dedup_key)
        self._token = KeyedHash(token_key)
        self._message_ref = KeyedHash(message_ref_key)
        # Most words repeat, so their HMACs do too.
        self._token_cache: dict[str, str] = {}

    @classmethod
    def derived_from(cls, daemon_secrets: DaemonSecrets) -> KeyedHashes:
        return cls(blob_id_key=daemon_secrets.derived("blob-id"), dedup_key=daemon_secrets.derived("dedup"),
                   token_key=daemon_secrets.derived("token"), message_ref_key=daemon_secrets.derived("message-ref"),
                   source_key=daemon_secrets.derived("source"))

    def blob_id(self, plaintext: bytes) -> str:
        return "b" + self._blob_id.hexdigest(plaintext)[:40]

    def blob_id_of_pieces(self, pieces: Iterable[bytes]) -> tuple[str, int]:
        """The blob id of content read in pieces (a file too large to hold), and its size."""
        mac = hmac.new(self._blob_id_key, digestmod=hashlib.sha256)
        size = 0
        for piece in pieces:
            mac.update(piece)
            size += len(piece)
        return "b" + mac.hexdigest()[:40], size

    def source(self, custodian: str | None, pieces: Iterable[bytes]) -> str:
        """What makes a capture the same capture: its custodian and its bytes."""
        mac = hmac.new(self._source_key, (custodian or "").encode() + b"\0", hashlib.sha256)
        for piece in pieces:
            mac.update(piece)
        return mac.hexdigest()

    def dedup(self, identity: tuple[str, ...], occurrence: int) -> str:
        """The dedup key of the ``occurrence``-th message with this identity in a capture."""
        # canonical_json([*identity, occurrence]), written out: identities are strings.
        text = "[" + ",".join(map(json_string, identity)) + f",{occurrence}]"
        return self._dedup.hexdigest(text.encode("utf-8"))

    def message_ref(self, platform: str, key: str) -> str:
        return self._message_ref.hexdigest(f"{platform}\0{key}".encode())[:32] if key else ""

    def blind(self, words: Iterable[str]) -> list[str]:
        """Keyed search tokens, sorted so the stored order says nothing about word order."""
        cache = self._token_cache
        try:
            out = [cache[word] for word in words]
        except KeyError:
            out = []
            for word in words:
                token = cache.get(word)
                if token is None:
                    if len(cache) >= TOKEN_CACHE_SIZE:
                        cache.clear()
                    token = cache[word] = self._token.hexdigest(word.encode())[:16]
                out.append(token)
        out.sort()
        return out
