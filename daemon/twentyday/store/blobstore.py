"""The blob store: opaque sealed chunks by id. It knows nothing about keys or content.

A blob's id is a keyed hash of its plaintext (computed by the caller), so
identical content is stored once and nobody without the key can test a
guess. Blobs are written once, inside the caller's transaction, and never
modified; ``digest`` (SHA-256 over the sealed chunks in order) lets ``verify``
check every byte without any key.

Where the sealed bytes live: in the ``chunk`` rows themselves (the embedded store), or, with
``[store] blobs = "s3://…"``, in the capture's locked segments in the bucket (:mod:`objects`),
each ``chunk`` row then holding a pointer to its bytes there. Readers see the same chunks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from twentyday.errors import IntegrityError
from twentyday.store import db
from twentyday.store.objects import ObjectStore, SegmentCache, pointer, read_pointer
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
    def __init__(self, conn: db.Connection, insert: Inserter | None = None,
                 objects: ObjectStore | None = None) -> None:
        """``insert`` writes staged rows (default: at once, on ``conn``); the capture writer
        passes its background writer's, so reads here must come after it has drained.
        ``objects``: the bucket (None: the embedded store; a pointer met then is named)."""
        self._conn = conn
        self._objects = objects
        #: Segments this store wrote for its capture before :meth:`finish` (their locks are set there).
        self._segments: list[tuple[str, Future[str]]] = []
        #: (retain until, legal hold) of the capture's last segment, once :meth:`finish` knows them.
        self._final: tuple[datetime, bool] | None = None
        self._capture_id: str | None = None
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
        if self._objects is not None and capture_id != self._capture_id:
            self._flush_chunks()  # a segment holds one capture's chunks: its lock and disposal are the capture's
            self._capture_id = capture_id
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
            if self._objects is not None:
                self._chunks = self._to_segment(self._chunks)
            self._insert("chunk", ("blob_id", "seq", "data"), self._chunks)
            self._chunks = []
            self._chunk_bytes = 0

    def _to_segment(self, chunks: list[tuple[str, int, bytes]]) -> list[tuple[str, int, bytes]]:
        """Write the staged chunks as one segment of the capture; their rows become pointers to it."""
        assert self._objects is not None and self._capture_id is not None
        data = b"".join(chunk for _, _, chunk in chunks)
        until, held = self._final if self._final is not None else (None, False)
        key, version = self._objects.put_segment(self._capture_id, data, until, held)
        if self._final is None:
            self._segments.append((key, version))
        rows = []
        offset = 0
        for blob_id, seq, chunk in chunks:
            rows.append((blob_id, seq, pointer(key, offset, len(chunk))))
            offset += len(chunk)
        return rows

    def finish(self, retain_until: datetime, legal_hold: bool) -> None:
        """The capture's records are known: lock its segments until ``retain_until`` (held or not).

        Its last segment is written with that lock; the ones written before, with the bucket's
        minimum, have theirs extended (in the background, waited for before the commit)."""
        if self._objects is None:
            return
        self._final = (retain_until, legal_hold)
        for key, version in self._segments:
            self._objects.relock(key, version, retain_until, legal_hold)
        self._segments = []

    def flush(self) -> None:
        self._flush_chunks()
        if self._rows:
            self._insert("blob", ("id", "capture_id", "owner", "slot", "size", "chunks", "digest"), self._rows)
            self._rows = []
        # Flushed rows are found by known()'s query; keeping their ids would grow with the capture.
        self._written.clear()

    def reset(self) -> None:
        """Forget staged writes (the transaction was rolled back; segments written are strays)."""
        self._rows = []
        self._chunks = []
        self._chunk_bytes = 0
        self._written.clear()
        self._segments = []
        self._final = None

    def chunks(self, blob_id: str) -> Iterator[bytes]:
        """A blob's sealed chunks in order, wherever they are kept."""
        cache = SegmentCache(self._objects) if self._objects is not None else None
        for (data,) in self._conn.execute("SELECT data FROM chunk WHERE blob_id = ? ORDER BY seq", (blob_id,)):
            yield resolve(bytes(data), cache)


def resolve(data: bytes, cache: SegmentCache | None) -> bytes:
    """A chunk row's sealed bytes: the row's own, or those its pointer names in the bucket."""
    found = read_pointer(data)
    if found is None:
        return data
    if cache is None:
        raise IntegrityError("this blob is in an S3 bucket, and the configuration names none ([store] blobs)")
    return cache.chunk(found)
