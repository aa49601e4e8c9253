"""The append-only, hash-chained ledger, with Ed25519-signed checkpoints.

Entry ``n`` commits to entry ``n-1``: ``hash = sha256(prev | seq | at | kind |
subject | payload)``. The payload is the canonical JSON of what the entry is
about (a capture, a content pack and its records, a link, an event, a hold,
a disclosure; archives written before packs have an entry per record). Every
commit that appends entries ends with a checkpoint: the head hash signed with
the daemon's ledger key. The signed head is published outside the archive
(:class:`SignedHead`, logged by ``serve`` after every batch), and the key that
checks it is pinned in the config (``keys.ledger_key``), so neither a rewrite
of the whole chain nor a truncation or rollback goes unseen by ``verify --head``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import canonical_json
from twentyday.store import db
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

    def text(self) -> str:
        """``seq:hash``: an entry no checkpoint signs yet (an officer's disclosure), as ``verify`` reports it."""
        return f"{self.seq}:{self.hash}"


class Ledger:
    """Appends to the ledger inside the caller's transaction."""

    def __init__(self, conn: db.Connection, insert: Inserter | None = None) -> None:
        """``insert`` writes appended entries (default: at once, on ``conn``); :meth:`begin` and
        :meth:`checkpoint` use ``conn`` itself, so a deferred ``insert`` must have drained by then."""
        self._conn = conn
        self._insert: Inserter = insert or (lambda table, columns, rows: insert_rows(conn, table, columns, rows))
        self._pending: list[tuple[int, str, str, str, str, str, str]] = []
        self._pending_bytes = 0
        self._head = LedgerHead(0, GENESIS)

    def begin(self) -> None:
        """Read the head; call inside :func:`db.begin_write` so no other writer moves it."""
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

    def latest(self, kind: str, subject: str) -> str | None:
        """The payload of the newest entry about ``subject`` (appended here or already written)."""
        for _, _, entry_kind, entry_subject, text, _, _ in reversed(self._pending):
            if (entry_kind, entry_subject) == (kind, subject):
                return text
        row = self._conn.execute("SELECT payload FROM ledger WHERE kind = ? AND subject = ? ORDER BY seq DESC LIMIT 1",
                                 (kind, subject)).fetchone()
        return None if row is None else str(row[0])

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
            "INSERT INTO checkpoint (seq, head, at, signature) VALUES (?,?,?,?) ON CONFLICT (seq) "
            "DO UPDATE SET head = excluded.head, at = excluded.at, signature = excluded.signature",
            (head.seq, head.hash, at, base64.b64encode(signature).decode()),
        )
        return head


def signature_ok(verify_key: ed25519.Ed25519PublicKey, seq: int, head: str, at: str, signature: str) -> bool:
    try:
        verify_key.verify(base64.b64decode(signature), checkpoint_message(seq, head, at))
    except (InvalidSignature, ValueError):
        return False
    return True


# -- the signed head, published outside the archive ----------------------------------------

#: A published head: ``seq:hash:at:signature`` (``at`` is an ISO time, so it holds colons; the
#: signature is base64, which holds none, so the text splits unambiguously from both ends).
_HEAD_TEXT = re.compile(r"(\d{1,19}):([0-9a-f]{64}):([0-9T:.+\-Z]{10,40}):([A-Za-z0-9+/]{86}==)")
LEDGER_KEY_PREFIX = "ed25519:"
#: The entry kind that hands the ledger key over (``keys rotate-ledger``): its payload names the key
#: in force before it (``from``) and after it (``to``); a checkpoint at the entry, signed by ``from``,
#: vouches for ``to``, and every checkpoint after it is signed by ``to``.
HANDOVER = "ledger_key_handover"


@dataclass(frozen=True)
class SignedHead:
    """A checkpoint as the daemon publishes it: enough to check its signature with the pinned key alone."""

    seq: int
    hash: str
    at: str
    signature: str

    def text(self) -> str:
        return f"{self.seq}:{self.hash}:{self.at}:{self.signature}"

    def signed_by(self, verify_key: ed25519.Ed25519PublicKey) -> bool:
        return signature_ok(verify_key, self.seq, self.hash, self.at, self.signature)


def parse_head(text: str) -> SignedHead | None:
    """A head as :meth:`SignedHead.text` writes it, or None when ``text`` is not one."""
    match = _HEAD_TEXT.fullmatch(text.strip())
    if match is None:
        return None
    seq, digest, at, signature = match.groups()
    return SignedHead(int(seq), digest, at, signature)


_ENTRY_TEXT = re.compile(r"(\d{1,19}):([0-9a-f]{64})")


def parse_entry_head(text: str) -> LedgerHead | None:
    """A head as :meth:`LedgerHead.text` writes it (no signature), or None when ``text`` is not one."""
    match = _ENTRY_TEXT.fullmatch(text.strip())
    return LedgerHead(int(match.group(1)), match.group(2)) if match else None


def published_heads(text: str) -> list[tuple[int, SignedHead]]:
    """(line number, head) of every head published in ``text``: a daemon log, or one head per line.

    Only a line that *ends* with ``ledger head <head>`` (or is a head by itself) counts; the
    signature decides whether it is genuine (log lines are escaped, see :mod:`twentyday.logs`,
    so input cannot start a line of its own).
    """
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        candidate = stripped.rpartition("ledger head ")[2] if "ledger head " in stripped else stripped
        head = parse_head(candidate)
        if head is not None:
            found.append((number, head))
    return found


def signed_head(conn: db.Connection) -> SignedHead | None:
    """The last signed checkpoint, as it is published (None before the first)."""
    row = conn.execute("SELECT seq, head, at, signature FROM checkpoint ORDER BY seq DESC LIMIT 1").fetchone()
    return SignedHead(int(row[0]), str(row[1]), str(row[2]), str(row[3])) if row else None


def ledger_key_text(verify_key: ed25519.Ed25519PublicKey) -> str:
    """How the config pins the ledger's verification key (``keys.ledger_key``): the raw public key."""
    return LEDGER_KEY_PREFIX + verify_key.public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw).hex()


def parse_ledger_key(text: str) -> ed25519.Ed25519PublicKey:
    """The public key of a ``keys.ledger_key`` value (the config checked its form already)."""
    return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.removeprefix(LEDGER_KEY_PREFIX)))
