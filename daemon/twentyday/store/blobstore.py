"""The blob store: opaque sealed chunks by id. It knows nothing about keys or content.

A blob's id is a keyed hash of its plaintext (computed by the caller), so
identical content is stored once and nobody without the key can test a
guess. Blobs are written once, inside the caller's transaction, and never
modified; ``digest`` (SHA-256 over the sealed chunks in order) lets ``verify``
check every byte without any key.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from twentyday.store.schema import Inserter, insert_rows

#: Sealed bytes staged before they are written (a bound on memory, not on blob size).
STAGED_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class BlobRef:
    id: str
    capture_id: str
    owner: str
    slot: str
    size: int
    chunks: int
    digest: str

    def as_payload(self) -> dict[str, object]:
        return {"id": self.id, "size": self.size, "chunks": self.chunks, "digest": self.digest}


class BlobStore:
    def __init__(self, conn: sqlite3.Connection, insert: Inserter | None = None) -> None:
        """``insert`` writes staged rows (default: at once, on ``conn``); the capture writer
        passes its background writer's, so reads here must come after it has drained."""
        self._conn = conn
        self._insert: Inserter = insert or (lambda table, columns, rows: insert_rows(conn, table, columns, rows))
        self._rows: list[tuple[str, str, str, str, int, int, str]] = []
        self._chunks: list[tuple[str, int, bytes]] = []
        self._chunk_bytes = 0
        self._written: set[str] = set()

    def get_ref(self, blob_id: str) -> BlobRef | None:
        row = self._conn.execute(
            "SELECT id, capture_id, owner, slot, size, chunks, digest FROM blob WHERE id = ?", (blob_id,)
        ).fetchone()
        return BlobRef(*row) if row else None

    def known(self, blob_id: str) -> bool:
        """True when the blob is stored already, or staged in this transaction."""
        if blob_id in self._written:
            return True
        return self._conn.execute("SELECT 1 FROM blob WHERE id = ?", (blob_id,)).fetchone() is not None

    def put(
        self, blob_id: str, capture_id: str, owner: str, slot: str, size: int, sealed_chunks: Iterable[bytes]
    ) -> BlobRef:
        """Stage a new blob; written with the caller's transaction (see :meth:`flush`)."""
        digest = hashlib.sha256()
        count = 0
        for seq, data in enumerate(sealed_chunks):
            digest.update(data)
            self._chunks.append((blob_id, seq, data))
            self._chunk_bytes += len(data)
            count += 1
            if len(self._chunks) >= 2000 or self._chunk_bytes > STAGED_CHUNK_BYTES:
                self._flush_chunks()
        ref = BlobRef(blob_id, capture_id, owner, slot, size, count, digest.hexdigest())
        self._rows.append((ref.id, ref.capture_id, ref.owner, ref.slot, ref.size, ref.chunks, ref.digest))
        self._written.add(blob_id)
        if len(self._rows) >= 2000:
            self.flush()
        return ref

    def _flush_chunks(self) -> None:
        if self._chunks:
            self._insert("chunk", ("blob_id", "seq", "data"), self._chunks)
            self._chunks = []
            self._chunk_bytes = 0

    def flush(self) -> None:
        self._flush_chunks()
        if self._rows:
            self._insert("blob", ("id", "capture_id", "owner", "slot", "size", "chunks", "digest"), self._rows)
            self._rows = []
        # Flushed rows are found by known()'s query; keeping their ids would grow with the capture.
        self._written.clear()

    def reset(self) -> None:
        """Forget staged writes (the transaction was rolled back)."""
        self._rows = []
        self._chunks = []
        self._chunk_bytes = 0
        self._written.clear()

    def chunks(self, blob_id: str) -> Iterator[bytes]:
        for (data,) in self._conn.execute("SELECT data FROM chunk WHERE blob_id = ? ORDER BY seq", (blob_id,)):
            yield bytes(data)
