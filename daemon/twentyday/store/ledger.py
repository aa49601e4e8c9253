"""The append-only, hash-chained ledger, with Ed25519-signed checkpoints.

Entry ``n`` commits to entry ``n-1``: ``hash = sha256(prev | seq | at | kind |
subject | payload)``. The payload is the canonical JSON of what the entry is
about (a capture, a content pack and its records, a link, an event, a hold,
a disclosure; archives written before packs have an entry per record). Every
commit that appends entries ends with a checkpoint: the head hash signed with
the daemon's ledger key. The head is also logged, so a copy of it lives
outside the archive (journald) and a rewrite of the whole chain shows.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import canonical_json
from twentyday.store.schema import Inserter, insert_rows

GENESIS = "0" * 64
#: Appended entries are written in bulk once this many, or this many payload bytes, wait.
FLUSH_ENTRIES = 5000
FLUSH_BYTES = 1024 * 1024


def entry_hash(prev: str, seq: int, at: str, kind: str, subject: str, payload: str) -> str:
    # None of prev, seq, at, kind or subject can contain "|" or a newline (hex, digits,
    # ISO times, fixed names, our own ids), so this header is unambiguous and cheap.
    head = f"twentyday/v1|{prev}|{seq}|{at}|{kind}|{subject}\n"
    return hashlib.sha256((head + payload).encode("utf-8")).hexdigest()


def checkpoint_message(seq: int, head: str, at: str) -> bytes:
    return canonical_json(["twentyday/v1/checkpoint", seq, head, at])


@dataclass
class LedgerHead:
    seq: int
    hash: str


class Ledger:
    """Appends to the ledger inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection, insert: Inserter | None = None) -> None:
        """``insert`` writes appended entries (default: at once, on ``conn``); :meth:`begin` and
        :meth:`checkpoint` use ``conn`` itself, so a deferred ``insert`` must have drained by then."""
        self._conn = conn
        self._insert: Inserter = insert or (lambda table, columns, rows: insert_rows(conn, table, columns, rows))
        self._pending: list[tuple[int, str, str, str, str, str, str]] = []
        self._pending_bytes = 0
        self._head = LedgerHead(0, GENESIS)

    def begin(self) -> None:
        """Read the head; call inside ``BEGIN IMMEDIATE`` so no other writer moves it."""
        row = self._conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        self._head = LedgerHead(row[0], row[1]) if row else LedgerHead(0, GENESIS)
        self._pending.clear()

    def append(self, at: str, kind: str, subject: str, payload: object) -> int:
        return self.append_text(at, kind, subject, canonical_json(payload).decode("utf-8"))

    def append_text(self, at: str, kind: str, subject: str, text: str) -> int:
        """Append a payload already in canonical JSON (the caller answers for its form)."""
        seq = self._head.seq + 1
        digest = entry_hash(self._head.hash, seq, at, kind, subject, text)
        self._pending.append((seq, at, kind, subject, text, self._head.hash, digest))
        self._pending_bytes += len(text)
        self._head = LedgerHead(seq, digest)
        # Entries are written in bulk, but never held back by the megabyte (a content
        # pack's entry lists 256 records): memory must not grow with the capture.
        if len(self._pending) >= FLUSH_ENTRIES or self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        return seq

    @property
    def head(self) -> LedgerHead:
        return self._head

    def flush(self) -> None:
        if self._pending:
            self._insert("ledger", ("seq", "at", "kind", "subject", "payload", "prev", "hash"), self._pending)
            self._pending = []
            self._pending_bytes = 0

    def checkpoint(self, at: str, signing_key: ed25519.Ed25519PrivateKey) -> LedgerHead:
        """Flush and sign the head. Returns the signed head."""
        self.flush()
        head = self._head
        signature = signing_key.sign(checkpoint_message(head.seq, head.hash, at))
        self._conn.execute(
            "INSERT OR REPLACE INTO checkpoint (seq, head, at, signature) VALUES (?,?,?,?)",
            (head.seq, head.hash, at, base64.b64encode(signature).decode()),
        )
        return head


def signature_ok(verify_key: ed25519.Ed25519PublicKey, seq: int, head: str, at: str, signature: str) -> bool:
    try:
        verify_key.verify(base64.b64decode(signature), checkpoint_message(seq, head, at))
    except (InvalidSignature, ValueError):
        return False
    return True
