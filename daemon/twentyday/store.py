"""The archive: the only write path.

Layers, borg-style: :mod:`keys` (who can open) → :mod:`envelope` (data keys,
AEAD bound to owner and slot) → :mod:`blobstore` (opaque sealed chunks) —
with the SQLite index (:mod:`schema`) and the :mod:`ledger` beside them.

``Archive.ingest(capture, drafts, events)`` commits everything of a capture
or nothing, in one SQLite transaction: the raw bytes sealed, every record
sealed and indexed, every event, the ledger entries and a signed checkpoint.
Inside ``Archive.batch()`` (the pipeline worker's) each capture is a savepoint
instead, and the batch signs one checkpoint when it commits.
Re-ingesting the same bytes is a no-op; a message already archived from an
earlier capture is linked to the new capture, never duplicated, and keeps its
earliest capture time.

Record contents are sealed in packs (:func:`pack_slot`): up to ``PACK_RECORDS``
content documents, one canonical JSON line each, sealed as one blob owned by the
capture, whose slot names the pack's number and the ordered ids of its records, so
a pack moved to another capture or position, or a record pointed at another pack,
fails to open. One ledger entry per pack commits to the pack's sealed digest and
to each of its records' rows and attachments (:func:`pack_payload`).
The index rows are written by a background thread in multi-row INSERTs, inside the
same transaction (:class:`_BackgroundInserts`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import os
import queue
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import compliance, keys, schema, secrets
from .blobstore import BlobRef, BlobStore
from .canonical import canonical_json, iso, json_string, utc_key
from .config import Config
from .envelope import CHUNK_BYTES, DataKey
from .errors import IntakeError, IntegrityError, KeyMaterialError, NotFoundError, TwentydayError
from .ledger import Ledger
from .records import Direction, ParsedEvent, ParsedMessage, TimeReading

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
_CONTENT_BLOB = RECORD_COLUMNS.index("content_blob")
_STATUS = RECORD_COLUMNS.index("status")
#: A capture's record contents are sealed in packs of at most this many records or bytes.
PACK_RECORDS = 256
PACK_BYTES = 1024 * 1024
#: Records deduplicated with one query and written with one set of inserts.
BATCH_RECORDS = 2000
#: Stands in for a time reading's raw text while its JSON template is made (cannot occur in one).
_RAW_MARKER = "\0twentyday-raw\0"


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


def tokens(text: str) -> set[str]:
    """Words as the blind index sees them: NFKC, case-folded, 2-64 word characters."""
    # NFKC leaves ASCII alone, and casefold() is lower() on it.
    folded = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    if len(folded) < 256:
        return set(_WORD.findall(folded))
    # Long text (mail): whitespace never is a word character, so matching each distinct
    # whitespace-separated piece once finds the same words, at a third of the cost.
    words: set[str] = set()
    for piece in set(folded.split()):
        words.update(_WORD.findall(piece))
    return words


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
        self._token_hash = KeyedHash(self._token_key)
        self._dedup_hash = KeyedHash(self._dedup_key)
        self._blob_hash = KeyedHash(self._blob_key)
        self._ref_hash = KeyedHash(self._ref_key)
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

    def blob_id(self, plaintext: bytes) -> str:
        return "b" + self._blob_hash.hexdigest(plaintext)[:40]

    def message_ref(self, platform: str, key: str) -> str:
        return self._ref_hash.hexdigest(f"{platform}\0{key}".encode())[:32] if key else ""

    def term_tokens(self, text: str) -> list[str]:
        """HMAC'd search tokens, sorted so the stored order says nothing about word order."""
        cache = self._token_cache
        words = tokens(text)
        try:
            out = [cache[word] for word in words]
        except KeyError:
            out = []
            for word in words:
                token = cache.get(word)
                if token is None:
                    if len(cache) >= TOKEN_CACHE_SIZE:
                        cache.clear()
                    token = cache[word] = self._token_hash.hexdigest(word.encode())[:16]
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
        # Inside a batch (see :meth:`batch`) the capture is a savepoint: all of it or none
        # of it, committed with the batch.
        in_batch = self.conn.in_transaction
        writer.sign = not in_batch
        try:
            self.conn.execute("SAVEPOINT capture" if in_batch else "BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise IntakeError(f"index is not writable: {error}") from None
        try:
            if self.conn.execute("SELECT 1 FROM capture WHERE source_hash = ?", (source_hash,)).fetchone():
                self.conn.execute("RELEASE capture" if in_batch else "ROLLBACK")
                return IngestResult(capture_id, duplicate=True)
            result = writer.write(drafts, events)
            if before_commit is not None:
                before_commit(self.conn, result)
            self.conn.execute("RELEASE capture" if in_batch else "COMMIT")
        except BaseException:
            writer.abandon()
            # SQLite ends the whole transaction itself after some errors (disk full, I/O).
            if self.conn.in_transaction:
                if in_batch:
                    self.conn.execute("ROLLBACK TO capture")
                    self.conn.execute("RELEASE capture")
                else:
                    self.conn.execute("ROLLBACK")
            raise
        log.info("capture %s %s: %d new, %d linked, %d events; ledger head %s",
                 capture_id, "written (commits with its batch)" if in_batch else "committed",
                 result.new_count, result.linked_count, result.events, writer.head_hash)
        return result

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around several :meth:`ingest` calls: their pages are written once.

        Each capture inside is still all-or-nothing (a savepoint). The block commits what
        it wrote when it ends, also when it ends with an exception after some captures
        succeeded, unless SQLite already rolled the transaction back (then the commit's
        error is raised: nothing of the batch is stored).
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise IntakeError(f"index is not writable: {error}") from None
        try:
            yield
        finally:
            if not self.conn.in_transaction:
                raise IntakeError("the index rolled the batch back (disk full or I/O error)")
            try:
                self._sign_head()
                self.conn.execute("COMMIT")
            except sqlite3.Error as error:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise IntakeError(f"cannot commit the batch: {error}") from None

    def _sign_head(self) -> None:
        """Sign the ledger's head if entries follow the last checkpoint (the batch's captures)."""
        ledger = Ledger(self.conn)
        ledger.begin()
        last = self.conn.execute("SELECT max(seq) FROM checkpoint").fetchone()[0]
        if ledger.head.seq and ledger.head.seq != last:
            ledger.checkpoint(iso(datetime.now(UTC)), self.secrets.signing_key)

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

    def open_content(self, record_id: str, blob_id: str, identity: keys.Identity) -> dict[str, Any]:
        """Decrypt a record's content document (from its pack) with an officer identity."""
        ref = self.blob_ref(blob_id)
        return unpack_content(self.open_blob(ref, identity), ref, record_id)

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


class _BackgroundInserts:
    """Runs a capture's bulk INSERTs on a thread of their own, in the order they were given.

    Each insert is a few multi-row statements (:func:`schema.insert_rows`): bound with
    the GIL held, then run by SQLite without it, so the index's B-tree work overlaps
    with sealing the next batch of records. Only the same connection sees the rows
    before the commit, so the thread writes inside the capture's transaction.

    While the thread runs (between :meth:`start` and :meth:`stop`), the caller reads
    the connection only through :meth:`query` (which waits for the statement under
    way, never for the queue, so recent inserts may not be visible yet) or after
    :meth:`drain`. When it is not running, inserts are written at once.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._jobs: queue.Queue[tuple[str, Sequence[str], list[Sequence[Any]]] | None] = queue.Queue(maxsize=8)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._discard = False
        self.submitted = 0
        #: How many inserts are written; a read after seeing n here sees the first n inserts.
        self.completed = 0

    def start(self) -> None:
        self._error = None
        self._discard = False
        self._thread = threading.Thread(target=self._run, name="twentyday-index-writer", daemon=True)
        self._thread.start()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._thread is None:
            schema.insert_rows(self._conn, table, columns, rows)
            return
        self._raise_error()
        self.submitted += 1
        self._jobs.put((table, columns, list(rows)))  # a copy: the caller reuses its lists

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read between inserts (see the class docstring for what it can miss)."""
        self._raise_error()
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def drain(self) -> None:
        """Wait until every insert given so far is written (or has failed: then raise)."""
        if self._thread is not None:
            self._jobs.join()
        self._raise_error()

    def stop(self, discard: bool = False) -> None:
        """End the thread: after writing what is queued, or (``discard``) skipping it; never raises then."""
        thread = self._thread
        if thread is None:
            return
        self._discard = discard
        self._jobs.put(None)
        thread.join()
        self._thread = None
        if not discard:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None and not self._discard:
                    table, columns, rows = job
                    with self._lock:
                        schema.insert_rows(self._conn, table, columns, rows)
                    self.completed += 1
            except BaseException as error:  # handed to the caller's thread, which aborts the capture
                self._error = error
            finally:
                self._jobs.task_done()


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
        self.inserts = _BackgroundInserts(self.conn)
        self.blobs = BlobStore(self.conn, self.inserts.insert)
        self.ledger = Ledger(self.conn, self.inserts.insert)
        # Keys and links of batches whose rows may not be written yet: (last insert, keys, links).
        self._unwritten: list[tuple[int, set[str], set[str]]] = []
        self.captured_at = capture.received_at.astimezone(UTC)
        self.captured_iso = iso(self.captured_at)
        self.custodian = archive.config.custodian(capture.custodian) if capture.custodian else None
        self.result = IngestResult(capture_id)
        self.head_hash = ""
        #: Sign a checkpoint when done; inside a batch the batch signs once, at its commit.
        self.sign = True
        self._records: list[list[Any]] = []
        self._links: list[tuple[str, str, str]] = []
        self._recipient_cache: dict[tuple[str, ...], str] = {}
        self._attachments: list[tuple[Any, ...]] = []
        self._terms: list[tuple[str, str]] = []
        self._first: str | None = None
        self._last: str | None = None
        # Records staged for the next content pack: (id, row values, content document, attachments).
        self._pack: list[tuple[str, list[Any], bytes, list[tuple[dict[str, Any], BlobRef | None]]]] = []
        self._pack_bytes = 0
        self._pack_count = 0
        self._reading_cache: dict[tuple[tuple[str, Any], ...], tuple[str, str]] = {}
        # Per-capture constants of every record row.
        config = archive.config
        self._dedup_hash = archive._dedup_hash
        self._custodian_id = capture.custodian or ""
        self._deadline_rule = config.deadline_rule
        self._deadline_days = config.deadline_days
        self._deadline_label = f"{config.deadline_rule}/{config.deadline_days}d"
        self._schedule = config.schedule(self.custodian.schedule if self.custodian else "grs-6.1-011")
        self._retention = self._schedule.describe()
        self._zone = self.custodian.zone if self.custodian else None
        self._deadline_cache: dict[tuple[int, int, int, bool], tuple[str | None, str, int | None]] = {}

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
        try:
            for number, batch in enumerate(_batched(drafts, BATCH_RECORDS)):
                if number == 1:
                    # A second batch means a large capture: overlap its index writes from now on.
                    # A single mail is one small batch, written at once without a thread.
                    self.inserts.start()
                self._add_batch(list(batch))
                count += len(batch)
            self.ledger.flush()
        except BaseException:
            self.inserts.stop(discard=True)
            raise
        self.inserts.stop()
        self._unwritten.clear()
        for n, event in enumerate(events):
            self._add_event(n, event)
        self._write_capture(raw_ref, envelope_ref, keyslots, count)
        self.blobs.flush()
        self.ledger.flush()
        if self.sign:
            self.head_hash = self.ledger.checkpoint(self.captured_iso, self.archive.secrets.signing_key).hash
        else:
            self.ledger.flush()
            self.head_hash = self.ledger.head.hash
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
        self.inserts.drain()  # the blob store reads the connection itself
        if not self.blobs.known(blob_id):
            return None
        self.blobs.flush()
        self.inserts.drain()
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
        # canonical_json([*identity, occurrence]), written out: identities are strings.
        text = "[" + ",".join(map(json_string, identity)) + f",{occurrence}]"
        return self._dedup_hash.hexdigest(text.encode("utf-8"))

    def _add_batch(self, batch: list[RecordDraft]) -> None:
        """Dedup a batch with two queries, then stage its records and links.

        Identical messages inside one capture (the same "ok" twice in a minute) are
        different records: the n-th occurrence gets its own key, and the n-th
        occurrence in an overlapping export maps to the same record.

        Earlier batches of this capture may still be on their way to the index (see
        :class:`_BackgroundInserts`): their keys and links are checked in memory until
        their inserts are written, so the queries never need to wait for them.
        """
        first_keys = [self._dedup_key(d.identity, 0) for d in batch]
        written = self.inserts.completed  # read before the queries: what they are sure to see
        self._unwritten = [entry for entry in self._unwritten if entry[0] > written]
        unwritten_keys: set[str] = set().union(*(keys for _, keys, _ in self._unwritten))
        linked_here: set[str] = set().union(*(links for _, _, links in self._unwritten))
        marks = ",".join("?" * len(first_keys))
        archived = {key: (record_id, capture_id) for key, record_id, capture_id in self.inserts.query(
            f"SELECT dedup_key, id, capture_id FROM record WHERE dedup_key IN ({marks})", first_keys)}
        older = [record_id for record_id, capture_id in archived.values() if capture_id != self.capture_id]
        if older:
            linked_here.update(r for (r,) in self.inserts.query(
                f"SELECT record_id FROM record_capture WHERE capture_id = ? AND record_id IN "
                f"({','.join('?' * len(older))})", [self.capture_id, *older]))
        created_here: set[str] = set()
        links_here: set[str] = set()
        for draft, first_key in zip(batch, first_keys, strict=True):
            key, existing = self._resolve(draft.identity, first_key, archived, created_here, unwritten_keys,
                                          linked_here)
            if existing is None:
                created_here.add(key)
                self._add_record(draft, key)
            else:
                linked_here.add(existing)
                links_here.add(existing)
                self._add_link(existing)
        self._seal_pack()
        self._flush_records()
        self._unwritten.append((self.inserts.submitted, created_here, links_here))

    def _resolve(self, identity: tuple[str, ...], key: str, archived: dict[str, tuple[str, str]],
                 created_here: set[str], unwritten_keys: set[str], linked_here: set[str]) -> tuple[str, str | None]:
        """The dedup key for this message, and the archived record it is, if any."""
        occurrence = 0
        while True:
            if key not in created_here and key not in unwritten_keys:
                if occurrence == 0:
                    hit = archived.get(key)
                else:
                    found = self.inserts.query("SELECT id, capture_id FROM record WHERE dedup_key = ?", (key,))
                    hit = found[0] if found else None
                if hit is None:
                    return key, None
                record_id, first_capture = hit
                if first_capture != self.capture_id and record_id not in linked_here and not (
                    occurrence and self.inserts.query(
                        "SELECT 1 FROM record_capture WHERE record_id = ? AND capture_id = ?",
                        (record_id, self.capture_id))):
                    return key, record_id
            occurrence += 1
            key = self._dedup_key(identity, occurrence)

    def _add_link(self, existing: str) -> None:
        self._links.append((existing, self.capture_id, self.captured_iso))
        self.ledger.append(self.captured_iso, "link", f"{existing}/{self.capture_id}",
                           {"record_id": existing, "capture_id": self.capture_id, "captured_at": self.captured_iso})
        self.result.add_linked(existing)

    def _add_record(self, draft: RecordDraft, key: str) -> None:
        """Stage a record: its row, search terms and sealed attachments now, its content in a pack."""
        message = draft.message
        record_id = "rec-" + key[:24]
        values = self._record_values(record_id, key, draft)
        attachments = self._seal_attachments(record_id, message) if message.attachments else []
        document = content_json(record_id, message)
        searchable = message.body
        if message.subject or message.attachments:
            searchable = " ".join([message.subject, message.body, *(a.name for a in message.attachments)])
        self._terms.append((record_id, " ".join(self.archive.term_tokens(searchable))))
        self._pack.append((record_id, values, document, attachments))
        self._pack_bytes += len(document) + 1
        self.result.add_new(record_id)
        status = values[_STATUS]
        if status == "undated":
            self.result.undated += 1
        elif status == "late":
            self.result.late += 1
        if len(self._pack) >= PACK_RECORDS or self._pack_bytes >= PACK_BYTES:
            self._seal_pack()

    def _seal_pack(self) -> None:
        """Seal the staged records' contents as one pack, then stage their rows and the pack's ledger entry.

        A pack is the records' content documents, one canonical JSON line each, sealed as
        one blob owned by the capture; its slot names the pack's number and a digest of
        the ordered record ids, so the associated data binds the records it holds. One
        ledger entry per pack (see :func:`pack_payload`) commits to every record's row.
        """
        staged = self._pack
        if not staged:
            return
        slot = pack_slot(self._pack_count, [record_id for record_id, _, _, _ in staged])
        content = self._seal_new(b"\n".join(document for _, _, document, _ in staged), self.capture_id, slot)
        self._pack_count += 1
        rows = []
        for _, values, _, _ in staged:
            values[_CONTENT_BLOB] = content.id
            self._records.append(values)
            rows.append(canonical_json(values))
        members = [(record_id, row, attachments) for (record_id, _, _, attachments), row in zip(staged, rows,
                                                                                              strict=True)]
        self.ledger.append_text(self.captured_iso, "pack", content.id, pack_payload(content, members))
        staged.clear()
        self._pack_bytes = 0

    def _recipients_json(self, recipients: tuple[str, ...]) -> str:
        # A chat's participants repeat on every message: encode each list once.
        cached = self._recipient_cache.get(recipients)
        if cached is None:
            if len(self._recipient_cache) > 10_000:
                self._recipient_cache.clear()
            cached = self._recipient_cache[recipients] = canonical_json(list(recipients)).decode()
        return cached

    def _reading_json(self, reading: TimeReading) -> str:
        """canonical_json(reading.__dict__): only ``raw`` varies between a capture's messages."""
        fields = reading.__dict__
        shape = tuple((k, v) for k, v in fields.items() if k != "raw")
        parts = self._reading_cache.get(shape)
        if parts is None:
            if len(self._reading_cache) > 1000:
                self._reading_cache.clear()
            marker = json_string(_RAW_MARKER)
            prefix, suffix = canonical_json({**fields, "raw": _RAW_MARKER}).decode("utf-8").split(marker)
            parts = self._reading_cache[shape] = (prefix, suffix)
        return parts[0] + json_string(reading.raw) + parts[1]

    def _deadline(self, created: datetime | None, copied: bool) -> tuple[str | None, str, int | None]:
        """(deadline_at, status, days_late) of a record, by :mod:`compliance`.

        Under the calendar rule the deadline depends only on the local day of creation:
        a message read in the custodian's own zone is looked up by that day.
        """
        custodian = self.custodian
        day = None
        if created is not None and custodian is not None and self._deadline_rule == "calendar" \
                and created.tzinfo is self._zone:
            day = (created.year, created.month, created.day, copied)
            cached = self._deadline_cache.get(day)
            if cached is not None:
                return cached
        deadline_at = None
        if created is not None and custodian is not None:
            deadline_at = compliance.deadline(created, custodian.zone, self._deadline_rule, self._deadline_days)
        status, days_late = compliance.status(
            copied=copied, created_at=created, captured_at=self.captured_at, deadline_at=deadline_at,
        )
        found = (iso(deadline_at) if deadline_at else None, status, days_late)
        if day is not None:
            if len(self._deadline_cache) > 100_000:
                self._deadline_cache.clear()
            self._deadline_cache[day] = found
        return found

    def _record_values(self, record_id: str, key: str, draft: RecordDraft) -> list[Any]:
        """The record's row in RECORD_COLUMNS order (content_blob is filled in when its pack is sealed)."""
        message = draft.message
        created = message.created_at
        created_iso = created_utc = None
        if created is not None:
            created_iso = iso(created)
            created_utc = utc_key(created)
            if self._first is None or created_utc < self._first:
                self._first = created_utc
            if self._last is None or created_utc > self._last:
                self._last = created_utc
        deadline_iso, status, days_late = self._deadline(created, draft.copied)
        reading = message.time
        attachments = message.attachments
        flags = message.flags
        ref = self.archive.message_ref
        return [
            record_id,  # id
            key,  # dedup_key
            self._custodian_id,  # custodian
            message.platform,  # platform
            self.capture.channel,  # channel
            message.conversation,  # conversation
            message.sender,  # sender
            self._recipients_json(message.recipients),  # recipients
            draft.direction,  # direction
            created_iso,  # created_at
            created_utc,  # created_utc
            self._reading_json(reading) if reading else None,  # time_reading
            self.captured_iso,  # captured_at
            deadline_iso,  # deadline_at
            self._deadline_label,  # deadline_rule
            status,  # status
            days_late,  # days_late
            self.capture_id,  # capture_id
            int(bool(attachments)),  # has_attachments
            int(any(a.omitted for a in attachments) or "media_omitted" in flags),  # incomplete
            int(message.edited),  # edited
            canonical_json(flags).decode() if flags else "[]",  # flags
            ref(message.platform, message.message_key) if message.message_key else "",  # message_ref
            ref(message.platform, message.reply_to) if message.reply_to else "",  # reply_ref
            "",  # content_blob
            self._schedule.id,  # schedule
            self._retention,  # retention
        ]

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
        # Content packs' blob rows stay staged (the blob store writes them in bulk): records
        # and blobs meet in the same transaction, and staged blobs are known to _existing().
        insert = self.inserts.insert
        insert("record", RECORD_COLUMNS, self._records)
        insert("record_capture", ("record_id", "capture_id", "captured_at"), self._links)
        insert("attachment", ATTACHMENT_COLUMNS, self._attachments)
        insert("record_terms", ("record_id", "terms"), self._terms)
        self._records = []
        self._links = []
        self._attachments = []
        self._terms = []

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


def content_json(record_id: str, message: ParsedMessage) -> bytes:
    """canonical_json(content_document(record_id, message)), written out for a message without
    attachments or extra fields (most chat messages)."""
    if message.attachments or message.extra:
        return canonical_json(content_document(record_id, message))
    return (f'{{"attachments":[],"body":{json_string(message.body)},"extra":{{}},'
            f'"message_key":{json_string(message.message_key)},"record_id":{json_string(record_id)},'
            f'"reply_to":{json_string(message.reply_to)},"subject":{json_string(message.subject)}}}'
            ).encode()


def record_payload(row: dict[str, Any], content: BlobRef,
                   attachments: list[tuple[dict[str, Any], BlobRef | None]]) -> dict[str, Any]:
    """The ledger payload of one record in archives written before packs had one entry each."""
    return {
        "record_sha256": row_digest(row),
        "content": content.as_payload(),
        "attachments": attachment_payloads(attachments),
    }


PackMember = tuple[str, bytes, list[tuple[dict[str, Any], BlobRef | None]]]


def pack_payload(content: BlobRef, members: list[PackMember]) -> str:
    """The ledger payload of a content pack, as canonical JSON text.

    ``members`` are (record id, the record's row as canonical JSON, its attachments), in
    the pack's order. The payload names the sealed pack and, per record, the SHA-256 of
    its row and its attachments; ``rows_sha256`` hashes the rows themselves joined by
    newlines, so verify can check a whole pack with one digest computed inside SQLite
    and only look at single records when that digest differs.
    """
    records = [{"attachments": attachment_payloads(attachments) if attachments else [],
                "id": record_id, "row_sha256": hashlib.sha256(row).hexdigest()}
               for record_id, row, attachments in members]
    rows_sha256 = hashlib.sha256(b"\n".join(row for _, row, _ in members)).hexdigest()
    return canonical_json({"content": content.as_payload(), "records": records,
                           "rows_sha256": rows_sha256}).decode("utf-8")


def attachment_payloads(attachments: list[tuple[dict[str, Any], BlobRef | None]]) -> list[dict[str, Any]]:
    return [{"row": {c: a[c] for c in ATTACHMENT_COLUMNS}, "blob": blob_payload(r)} for a, r in attachments]


def pack_slot(number: int, record_ids: list[str]) -> str:
    """The slot of a capture's ``number``-th content pack: bound to the ordered ids of its records."""
    return f"pack:{number}:" + hashlib.sha256("\n".join(record_ids).encode("utf-8")).hexdigest()


def unpack_content(plaintext: bytes, ref: BlobRef, record_id: str) -> dict[str, Any]:
    """One record's content document from its opened content blob (a pack, or an older single document).

    The blob's slot was bound into its associated data; a pack's slot names the ordered
    ids of the records it holds, so the documents found must be exactly those.
    """
    documents = [json.loads(line) for line in plaintext.split(b"\n")]
    if ref.slot.startswith("pack:"):
        number = ref.slot.split(":")[1]
        if not number.isdigit() or pack_slot(int(number), [d.get("record_id") for d in documents]) != ref.slot:
            raise IntegrityError(f"blob {ref.id}: the pack does not hold the records its slot names")
    for document in documents:
        if document.get("record_id") == record_id:
            return dict(document)
    raise IntegrityError(f"blob {ref.id} does not hold the content of {record_id}")


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
