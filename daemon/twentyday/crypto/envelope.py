"""The envelope layer: per-capture data keys and AEAD-sealed chunks bound to their place.

Every capture gets a fresh 256-bit data key. The key is sealed once per
recipient with HPKE (:mod:`twentyday.crypto.keys`); the daemon forgets it when the
capture is committed, so it can write records but never read them back.

Each chunk of a blob is AES-256-GCM encrypted under the data key with
associated data naming what it is: the owner (record or capture id), the slot
(``raw``, ``att:3``, ``pack:7:<digest of its record ids>``, ...), the chunk number and whether it is the
last one. A ciphertext copied to another record, slot or position, or a blob
cut short, fails to open.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twentyday.crypto.keys import Identity, Recipient, seal, unseal
from twentyday.errors import IntegrityError

VERSION = b"twentyday/v1\0"
NONCE_BYTES = 12
CHUNK_BYTES = 1024 * 1024


def associated_data(owner: str, slot: str, seq: int, last: bool) -> bytes:
    return VERSION + owner.encode() + b"\0" + slot.encode() + b"\0" + struct.pack(">Q?", seq, last)


def key_info(capture_id: str) -> bytes:
    """HPKE ``info`` binding a sealed data key to its capture."""
    return VERSION + b"data-key\0" + capture_id.encode()


class DataKey:
    """A capture's data key, held only while the capture is being sealed or opened."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(self._key)

    def seal_for(self, recipients: tuple[Recipient, ...], capture_id: str) -> list[tuple[str, bytes]]:
        """The data key sealed to each recipient: ``[(fingerprint, sealed), ...]``."""
        return [(r.fingerprint, seal(r, self._key, key_info(capture_id))) for r in recipients]

    @classmethod
    def open_sealed(cls, identity: Identity, sealed: bytes, capture_id: str) -> DataKey:
        return cls(unseal(identity, sealed, key_info(capture_id)))

    def seal_chunk(self, plaintext: bytes, owner: str, slot: str, seq: int, last: bool) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data(owner, slot, seq, last))

    def open_chunk(self, sealed: bytes, owner: str, slot: str, seq: int, last: bool) -> bytes:
        try:
            return self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data(owner, slot, seq, last)
            )
        except InvalidTag:
            raise IntegrityError(f"blob {owner}/{slot} chunk {seq} fails authentication (altered or moved)") \
                from None
