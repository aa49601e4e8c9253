"""The archive: the only write path.

Layers, borg-style: :mod:`keys` (who can open) → :mod:`envelope` (data keys,
AEAD bound to owner and slot) → :mod:`blobstore` (opaque sealed chunks) —
with the SQLite index (:mod:`schema`) and the :mod:`ledger` beside them.

``Archive.ingest(capture, drafts, events)`` commits everything of a capture
or nothing, in one SQLite transaction: the raw bytes sealed, every record
sealed and indexed, every event, the ledger entries and a signed checkpoint.
Re-ingesting the same bytes is a no-op; a message already archived from an
earlier capture is linked to the new capture, never duplicated, and keeps its
earliest capture time.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import compliance, keys, schema, secrets
from .blobstore import BlobRef, BlobStore
from .canonical import canonical_json, iso, utc_key
from .config import Config
from .envelope import CHUNK_BYTES, DataKey
from .errors import IntakeError, KeyMaterialError, NotFoundError, TwentydayError
from .ledger import Ledger
from .records import Direction, ParsedEvent, ParsedMessage

log = logging.getLogger(__name__)

INDEX_FILE = "index.db"
TOKEN_CACHE_SIZE = 200_000
_WORD = re.compile(r"\w{2,64}")
#: Record columns in ledger and verify order; one list so writer and verifier agree.
RECORD_COLUMNS = (
    "id", "dedup_key", "custodian", "platform", "channel", "conversation", "sender", "recipients",
    "direction", "created_at", "created_utc", "time_reading", "captured_at", "deadline_at",
    "deadline_rule", "status", "days_late", "capture_id", "has_attachments", "incomplete", "edited",
    "flags", "message_ref", "reply_ref", "content_blob", "schedule", "retention",
)
CAPTURE_COLUMNS = (
    "id", "custodian", "channel", "source_name", "source_hash", "received_at", "parser", "size",
    "raw_blob", "envelope_blob", "state", "reason", "first_at", "last_at", "exported_at",
    "message_count", "parent_capture",
)
EVENT_COLUMNS = ("id", "capture_id", "custodian", "conversation", "kind", "at", "detail_blob")
ATTACHMENT_COLUMNS = ("record_id", "n", "blob_id", "size", "content_type", "omitted")


@dataclass(frozen=True)
class CaptureInput:
    """One item as received: the raw bytes (in memory or a file) and how they came."""

    custodian: str | None
    channel: str
    source_name: str
    raw: bytes | Path
    parser: str
    received_at: datetime
    envelope: dict[str, str] | None = None
    state: str = "ingested"
    reason: str = ""
    exported_at: datetime | None = None
    parent_capture: str | None = None


@dataclass(frozen=True)
class RecordDraft:
    """A parsed message with what the pipeline decided about it.

    ``identity`` is what makes it the same message when it shows up in another
    capture (a Message-ID, or sender + time + body for chats without ids).
    """

    message: ParsedMessage
    direction: Direction
    copied: bool
    identity: tuple[str, ...]


#: How many record ids an IngestResult lists (the counts are always exact).
RESULT_ID_SAMPLE = 10_000


@dataclass
class IngestResult:
    capture_id: str
    duplicate: bool = False
    new_count: int = 0
    linked_count: int = 0
    #: the first RESULT_ID_SAMPLE ids of each kind, for reports and tests
    new_records: list[str] = field(default_factory=list)
    linked_records: list[str] = field(default_factory=list)
    events: int = 0
    undated: int = 0
    late: int = 0

    def add_new(self, record_id: str) -> None:
        self.new_count += 1
        if len(self.new_records) < RESULT_ID_SAMPLE:
            self.new_records.append(record_id)

    def add_linked(self, record_id: str) -> None:
        self.linked_count += 1
        if len(self.linked_records) < RESULT_ID_SAMPLE:
            self.linked_records.append(record_id)


def tokens(text: str) -> set[str]:
    """Words as the blind index sees them: NFKC, case-folded, 2-64 word characters."""
    return set(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


class Archive:
    """An open archive. Writers need the daemon secrets and the recipients' public keys."""

    def __init__(self, config: Config, *, recipients: tuple[keys.Recipient, ...] | None = None,
                 durable: bool = True) -> None:
        """``durable=False`` lets commits skip their fsync; the caller must :meth:`sync` before it
        forgets the items it committed (the pipeline worker does, in batches: the spool still
        holds every item until then, so a power loss replays them and loses nothing)."""
        self.config = config
        self.data_dir = config.data_dir
        path = self.data_dir / INDEX_FILE
        if not path.exists():
            raise NotFoundError(f"{path}: no archive here (run 'twentyday init' first)")
        try:
            self.db = schema.connect(str(path))
            schema.migrate(self.db)
        except sqlite3.DatabaseError as error:
            raise TwentydayError(f"{path}: cannot open the index: {error}") from None
        self.conn = self.db.conn
        if not durable:
            self.conn.execute("PRAGMA synchronous = NORMAL")
        self.secrets = secrets.load(self.data_dir)
        self._recipients = recipients
        self._token_key = self.secrets.derived("token")
        self._dedup_key = self.secrets.derived("dedup")
        self._blob_key = self.secrets.derived("blob-id")
        self._source_key = self.secrets.derived("source")
        self._ref_key = self.secrets.derived("message-ref")
        # Chat vocabularies are small and skewed: most words repeat, so their HMACs do too.
        self._token_cache: dict[str, str] = {}

    @classmethod
    def create(cls, config: Config, recipients: tuple[keys.Recipient, ...]) -> Archive:
        """Make a new, empty archive: directories, index, daemon secrets sealed to the officers."""
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        daemon_secrets = secrets.generate(config.data_dir)
        index = config.data_dir / INDEX_FILE
        # The index holds personal data (names, numbers, times): owner-only, like the secrets.
        index.touch(mode=0o600, exist_ok=False)
        db = schema.connect(str(index))
        schema.migrate(db)
        db.conn.close()
        archive = cls(config, recipients=recipients)
        archive.escrow_secrets(recipients, daemon_secrets)
        return archive

    def close(self) -> None:
        self.conn.close()

    def sync(self) -> None:
        """Make every commit so far durable: fsync the write-ahead log (and the database)."""
        index = self.data_dir / INDEX_FILE
        for path in (index.with_name(INDEX_FILE + "-wal"), index):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- keys -------------------------------------------------------------------------

    @property
    def recipients(self) -> tuple[keys.Recipient, ...]:
        if self._recipients is None:
            self._recipients = tuple(keys.load_recipient(p) for p in self.config.recipients)
        return self._recipients

    def escrow_secrets(self, recipients: tuple[keys.Recipient, ...], daemon_secrets: secrets.DaemonSecrets
                       ) -> None:
        """Seal the daemon's secrets to each recipient that does not hold a copy yet."""
        now = iso(datetime.now(UTC))
        payload = daemon_secrets.escrow_payload()
        with self.transaction():
            for recipient in recipients:
                sealed = keys.seal(recipient, payload, b"twentyday/v1\0escrow")
                self.conn.execute(
                    "INSERT OR IGNORE INTO escrow (recipient, label, sealed, at) VALUES (?,?,?,?)",
                    (recipient.fingerprint, recipient.label, sealed, now),
                )

    # -- keyed hashes -------------------------------------------------------------------

    def _keyed(self, key: bytes, data: bytes) -> str:
        return hmac.digest(key, data, hashlib.sha256).hex()

    def blob_id(self, plaintext: bytes) -> str:
        return "b" + self._keyed(self._blob_key, plaintext)[:40]

    def message_ref(self, platform: str, key: str) -> str:
        return self._keyed(self._ref_key, f"{platform}\0{key}".encode())[:32] if key else ""

    def term_tokens(self, text: str) -> list[str]:
        """HMAC'd search tokens, sorted so the stored order says nothing about word order."""
        cache = self._token_cache
        out = []
        for word in tokens(text):
            token = cache.get(word)
            if token is None:
                if len(cache) >= TOKEN_CACHE_SIZE:
                    cache.clear()
                token = cache[word] = self._keyed(self._token_key, word.encode())[:16]
            out.append(token)
        out.sort()
        return out

    def source_hash(self, custodian: str | None, raw: bytes | Path) -> str:
        mac = hmac.new(self._source_key, (custodian or "").encode() + b"\0", hashlib.sha256)
        for piece in _read_pieces(raw):
            mac.update(piece)
        return mac.hexdigest()

    # -- transactions ------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    # -- ingest --------------------------------------------------------------------------

    def ingest(
        self,
        capture: CaptureInput,
        drafts: Iterable[RecordDraft] = (),
        events: Iterable[ParsedEvent] = (),
        before_commit: Callable[[sqlite3.Connection, IngestResult], None] | None = None,
    ) -> IngestResult:
        """Seal and index one capture atomically. Same bytes again: a no-op.

        ``before_commit`` runs inside the same transaction (e.g. to raise alerts), so
        a crash cannot keep the capture and lose what it should have raised.
        """
        source_hash = self.source_hash(capture.custodian, capture.raw)
        capture_id = "cap-" + source_hash[:24]
        recipients = self.recipients
        writer = _CaptureWriter(self, capture, capture_id, source_hash, recipients)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise IntakeError(f"index is not writable: {error}") from None
        try:
            if self.conn.execute("SELECT 1 FROM capture WHERE source_hash = ?", (source_hash,)).fetchone():
                self.conn.execute("ROLLBACK")
                return IngestResult(capture_id, duplicate=True)
            result = writer.write(drafts, events)
            if before_commit is not None:
                before_commit(self.conn, result)
            self.conn.execute("COMMIT")
        except BaseException:
            writer.abandon()
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        log.info("capture %s committed: %d new, %d linked, %d events; ledger head %s",
                 capture_id, result.new_count, result.linked_count, result.events,
                 writer.head_hash)
        return result

    # -- reading (metadata only) ----------------------------------------------------------

    def record_row(self, record_id: str) -> dict[str, Any]:
        rows = list(self.db.query("SELECT * FROM record WHERE id = ?", [record_id]))
        if not rows:
            raise NotFoundError(f"no record {record_id!r}")
        return rows[0]

    def open_blob(self, ref: BlobRef, identity: keys.Identity) -> bytes:
        """Decrypt one blob with an officer identity."""
        slot = self.conn.execute(
            "SELECT sealed FROM keyslot WHERE capture_id = ? AND recipient = ?",
            (ref.capture_id, identity.recipient.fingerprint),
        ).fetchone()
        if slot is None:
            raise KeyMaterialError(
                f"capture {ref.capture_id} was not sealed to {identity.recipient.fingerprint}"
            )
        data_key = DataKey.open_sealed(identity, bytes(slot[0]), ref.capture_id)
        blobs = BlobStore(self.conn)
        parts = []
        for seq, sealed in enumerate(blobs.chunks(ref.id)):
            parts.append(data_key.open_chunk(sealed, ref.owner, ref.slot, seq, seq == ref.chunks - 1))
        if len(parts) != ref.chunks:
            raise TwentydayError(f"blob {ref.id} is missing chunks (run 'twentyday verify')")
        return b"".join(parts)

    def blob_ref(self, blob_id: str) -> BlobRef:
        ref = BlobStore(self.conn).get_ref(blob_id)
        if ref is None:
            raise NotFoundError(f"blob {blob_id} is missing (run 'twentyday verify')")
        return ref

    def record_disclosure(self, *, actor: str, action: str, purpose: str, recipient: str,
                          subjects: list[str], identity: str, at: datetime) -> str:
        """Account for a disclosure (Privacy Act 552a(c)) before anything is shown."""
        stamp = iso(at)
        disclosure_id = "dis-" + hashlib.sha256(canonical_json([stamp, actor, subjects, purpose])).hexdigest()[:20]
        row = {"id": disclosure_id, "at": stamp, "actor": actor, "action": action, "purpose": purpose,
               "recipient": recipient, "subjects": json.dumps(subjects), "identity": identity}
        with self.transaction():
            ledger = Ledger(self.conn)
            ledger.begin()
            self.conn.execute(
                "INSERT INTO disclosure (id, at, actor, action, purpose, recipient, subjects, identity) "
                "VALUES (:id, :at, :actor, :action, :purpose, :recipient, :subjects, :identity)", row)
            ledger.append(stamp, "disclosure", disclosure_id, {"disclosure": row})
            ledger.checkpoint(stamp, self.secrets.signing_key)
        return disclosure_id


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._conn.execute("COMMIT" if kind is None else "ROLLBACK")


def _read_pieces(raw: bytes | Path) -> Iterator[bytes]:
    if isinstance(raw, bytes):
        for start in range(0, max(len(raw), 1), CHUNK_BYTES):
            yield raw[start:start + CHUNK_BYTES]
        return
    with raw.open("rb") as handle:
        first = True
        while True:
            piece = handle.read(CHUNK_BYTES)
            if not piece and not first:
                return
            first = False
            yield piece
            if len(piece) < CHUNK_BYTES:
                return


def blob_payload(ref: BlobRef | None) -> dict[str, object] | None:
    return ref.as_payload() if ref else None


class _CaptureWriter:
    """Writes one capture inside the archive's open transaction."""

    def __init__(self, archive: Archive, capture: CaptureInput, capture_id: str, source_hash: str,
                 recipients: tuple[keys.Recipient, ...]) -> None:
        self.archive = archive
        self.conn = archive.conn
        self.capture = capture
        self.capture_id = capture_id
        self.source_hash = source_hash
        self.recipients = recipients
        self.data_key = DataKey()
        self.blobs = BlobStore(self.conn)
        self.ledger = Ledger(self.conn)
        self.captured_at = capture.received_at.astimezone(UTC)
        self.captured_iso = iso(self.captured_at)
        self.custodian = archive.config.custodian(capture.custodian) if capture.custodian else None
        self.result = IngestResult(capture_id)
        self.head_hash = ""
        self._records: list[tuple[Any, ...]] = []
        self._links: list[tuple[str, str, str]] = []
        self._recipient_cache: dict[tuple[str, ...], str] = {}
        self._attachments: list[tuple[Any, ...]] = []
        self._terms: list[tuple[str, str]] = []
        self._first: str | None = None
        self._last: str | None = None

    def abandon(self) -> None:
        self.blobs.reset()

    def write(self, drafts: Iterable[RecordDraft], events: Iterable[ParsedEvent]) -> IngestResult:
        self.ledger.begin()
        keyslots = self.data_key.seal_for(self.recipients, self.capture_id)
        self.conn.executemany(
            "INSERT INTO keyslot (capture_id, recipient, sealed) VALUES (?,?,?)",
            [(self.capture_id, fp, sealed) for fp, sealed in keyslots],
        )
        raw_ref = self._seal_stream(self.capture.raw, self.capture_id, "raw")
        envelope_ref = None
        if self.capture.envelope is not None:
            envelope_ref = self._seal_bytes(canonical_json(self.capture.envelope), self.capture_id, "envelope")
        count = 0
        for batch in _batched(drafts, 2000):
            self._add_batch(list(batch))
            count += len(batch)
        for n, event in enumerate(events):
            self._add_event(n, event)
        self._write_capture(raw_ref, envelope_ref, keyslots, count)
        self.blobs.flush()
        self.ledger.flush()
        head = self.ledger.checkpoint(self.captured_iso, self.archive.secrets.signing_key)
        self.head_hash = head.hash
        return self.result

    # -- blobs

    def _seal_bytes(self, plaintext: bytes, owner: str, slot: str) -> BlobRef:
        blob_id = self.archive.blob_id(plaintext)
        existing = self._existing(blob_id)
        if existing:
            return existing
        return self._seal_new(plaintext, owner, slot, blob_id)

    def _seal_new(self, plaintext: bytes, owner: str, slot: str, blob_id: str | None = None) -> BlobRef:
        """Seal content known not to be stored yet."""
        blob_id = blob_id or self.archive.blob_id(plaintext)
        sealed = [self.data_key.seal_chunk(plaintext[i:i + CHUNK_BYTES], owner, slot, n,
                                           i + CHUNK_BYTES >= len(plaintext))
                  for n, i in enumerate(range(0, max(len(plaintext), 1), CHUNK_BYTES))]
        return self.blobs.put(blob_id, self.capture_id, owner, slot, len(plaintext), sealed)

    def _existing(self, blob_id: str) -> BlobRef | None:
        if not self.blobs.known(blob_id):
            return None
        self.blobs.flush()
        return self.blobs.get_ref(blob_id)

    def _seal_stream(self, raw: bytes | Path, owner: str, slot: str) -> BlobRef:
        if isinstance(raw, bytes):
            return self._seal_bytes(raw, owner, slot)
        mac = hmac.new(self.archive._blob_key, digestmod=hashlib.sha256)
        size = 0
        for piece in _read_pieces(raw):
            mac.update(piece)
            size += len(piece)
        blob_id = "b" + mac.hexdigest()[:40]
        existing = self._existing(blob_id)
        if existing:
            return existing

        def sealed_pieces() -> Iterator[bytes]:
            pieces = _read_pieces(raw)
            current = next(pieces)
            for n, following in enumerate(_lookahead(pieces)):
                yield self.data_key.seal_chunk(current, owner, slot, n, following is None)
                if following is None:
                    return
                current = following

        return self.blobs.put(blob_id, self.capture_id, owner, slot, size, sealed_pieces())

    # -- records

    def _dedup_key(self, identity: tuple[str, ...], occurrence: int) -> str:
        return self.archive._keyed(self.archive._dedup_key, canonical_json([*identity, occurrence]))

    def _add_batch(self, batch: list[RecordDraft]) -> None:
        """Dedup a batch with two queries, then stage its records and links.

        Identical messages inside one capture (the same "ok" twice in a minute) are
        different records: the n-th occurrence gets its own key, and the n-th
        occurrence in an overlapping export maps to the same record.
        """
        first_keys = [self._dedup_key(d.identity, 0) for d in batch]
        marks = ",".join("?" * len(first_keys))
        archived = {key: (record_id, capture_id) for key, record_id, capture_id in self.conn.execute(
            f"SELECT dedup_key, id, capture_id FROM record WHERE dedup_key IN ({marks})", first_keys)}
        older = [record_id for record_id, capture_id in archived.values() if capture_id != self.capture_id]
        linked_here = set()
        if older:
            linked_here = {r for (r,) in self.conn.execute(
                f"SELECT record_id FROM record_capture WHERE capture_id = ? AND record_id IN "
                f"({','.join('?' * len(older))})", [self.capture_id, *older])}
        created_here: set[str] = set()
        for draft, first_key in zip(batch, first_keys, strict=True):
            key, existing = self._resolve(draft.identity, first_key, archived, created_here, linked_here)
            if existing is None:
                created_here.add(key)
                self._add_record(draft, key)
            else:
                linked_here.add(existing)
                self._add_link(existing)
        self._flush_records()

    def _resolve(self, identity: tuple[str, ...], key: str, archived: dict[str, tuple[str, str]],
                 created_here: set[str], linked_here: set[str]) -> tuple[str, str | None]:
        """The dedup key for this message, and the archived record it is, if any."""
        occurrence = 0
        while True:
            if key not in created_here:
                hit = archived.get(key) if occurrence == 0 else self.conn.execute(
                    "SELECT id, capture_id FROM record WHERE dedup_key = ?", (key,)).fetchone()
                if hit is None:
                    return key, None
                record_id, first_capture = hit
                if first_capture != self.capture_id and record_id not in linked_here and not (
                    occurrence and self.conn.execute(
                        "SELECT 1 FROM record_capture WHERE record_id = ? AND capture_id = ?",
                        (record_id, self.capture_id)).fetchone()):
                    return key, record_id
            occurrence += 1
            key = self._dedup_key(identity, occurrence)

    def _add_link(self, existing: str) -> None:
        self._links.append((existing, self.capture_id, self.captured_iso))
        self.ledger.append(self.captured_iso, "link", f"{existing}/{self.capture_id}",
                           {"record_id": existing, "capture_id": self.capture_id, "captured_at": self.captured_iso})
        self.result.add_linked(existing)

    def _add_record(self, draft: RecordDraft, key: str) -> None:
        message = draft.message
        if message.created_at is not None:
            stamp = utc_key(message.created_at)
            self._first = min(self._first or stamp, stamp)
            self._last = max(self._last or stamp, stamp)
        record_id = "rec-" + key[:24]
        row = self._record_row(record_id, key, draft)
        attachments = self._seal_attachments(record_id, message)
        # The record id is part of the sealed document, so a content blob is never shared
        # between records: no existence check per message, and equal bodies do not show.
        content = self._seal_new(canonical_json(content_document(record_id, message)), record_id, "content")
        row["content_blob"] = content.id
        # record.capture_id is the first capture; record_capture lists only later ones.
        self._records.append(tuple(row[c] for c in RECORD_COLUMNS))
        searchable = " ".join([message.subject, message.body, *(a.name for a in message.attachments)])
        self._terms.append((record_id, " ".join(self.archive.term_tokens(searchable))))
        self.ledger.append(self.captured_iso, "record", record_id,
                           record_payload(row, content, [(a, r) for a, r in attachments]))
        self.result.add_new(record_id)
        if row["status"] == "undated":
            self.result.undated += 1
        elif row["status"] == "late":
            self.result.late += 1

    def _recipients_json(self, recipients: tuple[str, ...]) -> str:
        # A chat's participants repeat on every message: encode each list once.
        cached = self._recipient_cache.get(recipients)
        if cached is None:
            if len(self._recipient_cache) > 10_000:
                self._recipient_cache.clear()
            cached = self._recipient_cache[recipients] = canonical_json(list(recipients)).decode()
        return cached

    def _record_row(self, record_id: str, key: str, draft: RecordDraft) -> dict[str, Any]:
        message = draft.message
        config = self.archive.config
        custodian = self.custodian
        deadline_at = None
        if message.created_at is not None and custodian is not None:
            deadline_at = compliance.deadline(message.created_at, custodian.zone, config.deadline_rule,
                                              config.deadline_days)
        status, days_late = compliance.status(
            copied=draft.copied, created_at=message.created_at, captured_at=self.captured_at,
            deadline_at=deadline_at,
        )
        schedule = config.schedule(custodian.schedule) if custodian else config.schedule("grs-6.1-011")
        reading = message.time
        return {
            "id": record_id,
            "dedup_key": key,
            "custodian": self.capture.custodian or "",
            "platform": message.platform,
            "channel": self.capture.channel,
            "conversation": message.conversation,
            "sender": message.sender,
            "recipients": self._recipients_json(message.recipients),
            "direction": draft.direction,
            "created_at": iso(message.created_at) if message.created_at else None,
            "created_utc": utc_key(message.created_at) if message.created_at else None,
            "time_reading": canonical_json(reading.__dict__).decode() if reading else None,
            "captured_at": self.captured_iso,
            "deadline_at": iso(deadline_at) if deadline_at else None,
            "deadline_rule": f"{config.deadline_rule}/{config.deadline_days}d",
            "status": status,
            "days_late": days_late,
            "capture_id": self.capture_id,
            "has_attachments": int(bool(message.attachments)),
            "incomplete": int(any(a.omitted for a in message.attachments) or "media_omitted" in message.flags),
            "edited": int(message.edited),
            "flags": canonical_json(message.flags).decode() if message.flags else "[]",
            "message_ref": self.archive.message_ref(message.platform, message.message_key),
            "reply_ref": self.archive.message_ref(message.platform, message.reply_to),
            "content_blob": "",
            "schedule": schedule.id,
            "retention": schedule.describe(),
        }

    def _seal_attachments(self, record_id: str, message: ParsedMessage) -> list[tuple[dict[str, Any], BlobRef | None]]:
        out = []
        for n, attachment in enumerate(message.attachments):
            ref = None
            if attachment.data is not None:
                ref = self._seal_bytes(attachment.data, record_id, f"att:{n}")
            row = {"record_id": record_id, "n": n, "blob_id": ref.id if ref else None,
                   "size": len(attachment.data) if attachment.data is not None else 0,
                   "content_type": attachment.content_type, "omitted": int(attachment.omitted)}
            self._attachments.append(tuple(row[c] for c in ATTACHMENT_COLUMNS))
            out.append((row, ref))
        return out

    def _flush_records(self) -> None:
        self.blobs.flush()
        if self._records:
            self.conn.executemany(
                f"INSERT INTO record ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))})",
                self._records,
            )
        if self._links:
            self.conn.executemany(
                "INSERT INTO record_capture (record_id, capture_id, captured_at) VALUES (?,?,?)", self._links
            )
        if self._attachments:
            self.conn.executemany(
                f"INSERT INTO attachment ({', '.join(ATTACHMENT_COLUMNS)}) VALUES (?,?,?,?,?,?)", self._attachments
            )
        if self._terms:
            self.conn.executemany("INSERT INTO record_terms (record_id, terms) VALUES (?,?)", self._terms)
        self._records.clear()
        self._links.clear()
        self._attachments.clear()
        self._terms.clear()

    # -- events and the capture itself

    def _add_event(self, n: int, event: ParsedEvent) -> None:
        event_id = f"evt-{self.capture_id[4:]}-{n}"
        detail = self._seal_bytes(canonical_json({"detail": event.detail}), event_id, "detail")
        row = {"id": event_id, "capture_id": self.capture_id, "custodian": self.capture.custodian,
               "conversation": event.conversation, "kind": event.kind,
               "at": iso(event.at) if event.at else None, "detail_blob": detail.id}
        self.conn.execute(
            f"INSERT INTO event ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})",
            tuple(row[c] for c in EVENT_COLUMNS),
        )
        self.ledger.append(self.captured_iso, "event", event_id, {"event": row, "detail": detail.as_payload()})
        self.result.events += 1

    def _write_capture(self, raw_ref: BlobRef, envelope_ref: BlobRef | None,
                       keyslots: list[tuple[str, bytes]], count: int) -> None:
        capture = self.capture
        row = {
            "id": self.capture_id, "custodian": capture.custodian, "channel": capture.channel,
            "source_name": capture.source_name, "source_hash": self.source_hash,
            "received_at": self.captured_iso, "parser": capture.parser, "size": raw_ref.size,
            "raw_blob": raw_ref.id, "envelope_blob": envelope_ref.id if envelope_ref else None,
            "state": capture.state, "reason": capture.reason,
            "first_at": self._first, "last_at": self._last,
            "exported_at": iso(capture.exported_at) if capture.exported_at else None,
            "message_count": count, "parent_capture": capture.parent_capture,
        }
        self.conn.execute(
            f"INSERT INTO capture ({', '.join(CAPTURE_COLUMNS)}) VALUES ({', '.join('?' * len(CAPTURE_COLUMNS))})",
            tuple(row[c] for c in CAPTURE_COLUMNS),
        )
        if self.custodian is not None:
            self.conn.execute(
                "INSERT OR REPLACE INTO custodian (id, name, timezone, schedule) VALUES (?,?,?,?)",
                (self.custodian.id, self.custodian.name, self.custodian.timezone, self.custodian.schedule),
            )
        self.ledger.append(self.captured_iso, "capture", self.capture_id,
                           capture_payload(row, keyslots, raw_ref, envelope_ref))


def _batched(items: Iterable[RecordDraft], size: int) -> Iterator[tuple[RecordDraft, ...]]:
    """itertools.batched for Python 3.11."""
    iterator = iter(items)
    while batch := tuple(itertools.islice(iterator, size)):
        yield batch


def _lookahead(pieces: Iterator[bytes]) -> Iterator[bytes | None]:
    """Yield each following piece, then None: lets the sealer mark the last chunk."""
    for piece in pieces:
        if piece:
            yield piece
    yield None


def content_document(record_id: str, message: ParsedMessage) -> dict[str, Any]:
    """What is sealed for a record: everything a reader needs that the index must not hold."""
    return {
        "record_id": record_id,
        "subject": message.subject,
        "body": message.body,
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "omitted": a.omitted,
             "size": len(a.data) if a.data is not None else 0}
            for a in message.attachments
        ],
        "message_key": message.message_key,
        "reply_to": message.reply_to,
        "extra": message.extra,
    }


def record_payload(row: dict[str, Any], content: BlobRef,
                   attachments: list[tuple[dict[str, Any], BlobRef | None]]) -> dict[str, Any]:
    return {
        "record_sha256": row_digest(row),
        "content": content.as_payload(),
        "attachments": [{"row": {c: a[c] for c in ATTACHMENT_COLUMNS}, "blob": blob_payload(r)}
                        for a, r in attachments],
    }


def row_digest(row: dict[str, Any]) -> str:
    """SHA-256 of the record row as a JSON list in RECORD_COLUMNS order.

    verify recomputes it inside SQLite as sha256(json_array(...)) over the same columns:
    SQLite's json_array renders strings, integers and nulls exactly as canonical_json does.
    The ledger keeps the digest, not a second copy of every row.
    """
    return hashlib.sha256(canonical_json([row[c] for c in RECORD_COLUMNS])).hexdigest()


def capture_payload(row: dict[str, Any], keyslots: list[tuple[str, bytes]], raw_ref: BlobRef,
                    envelope_ref: BlobRef | None) -> dict[str, Any]:
    return {
        "capture": {c: row[c] for c in CAPTURE_COLUMNS},
        "keyslots": sorted([fp, hashlib.sha256(sealed).hexdigest()] for fp, sealed in keyslots),
        "raw": raw_ref.as_payload(),
        "envelope": blob_payload(envelope_ref),
    }
