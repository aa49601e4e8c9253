"""Writing one capture inside the archive's open transaction.

:class:`CaptureWriter` seals the raw bytes, deduplicates and stages the records
(their contents sealed in packs, see :func:`rows.pack_slot`), and appends the
ledger entries; :class:`BackgroundInserts` writes the index rows of a large
capture on a thread of its own, in multi-row INSERTs, inside the same transaction.

The writer decides nothing about the rule: each record's deadline and status come
from :func:`twentyday.compliance.deadlines.assess`. It holds no key and reads no
clock: the archive gives it the keyed hashes, the signing key and the capture time
(see docs/ARCHITECTURE.md, "The store").
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import canonical_json, iso, parse_iso, utc_key
from twentyday.compliance import deadlines
from twentyday.config import Config, Custodian
from twentyday.crypto import keys
from twentyday.crypto.envelope import CHUNK_BYTES, DataKey
from twentyday.crypto.hashes import KeyedHashes
from twentyday.records import Direction, ParsedEvent, ParsedMessage
from twentyday.retention import parse_rule
from twentyday.store import db, holds, schema
from twentyday.store.blobstore import BlobRef, BlobStore
from twentyday.store.ledger import Ledger
from twentyday.store.objects import ObjectStore, capture_retain_until
from twentyday.store.rows import (
    ATTACHMENT_COLUMNS,
    CAPTURE_COLUMNS,
    DETAIL_SLOT,
    EVENT_COLUMNS,
    RECORD_COLUMNS,
    TERM_COLUMNS,
    AttachmentRow,
    CaptureRow,
    EventRow,
    PackMember,
    RecordRow,
    RowEncoder,
    blobs_digest,
    capture_payload,
    clear_content_type,
    content_json,
    pack_payload,
    pack_slot,
)
from twentyday.store.words import search_words


class Reopenable(Protocol):
    """Bytes the daemon owns and may read as often as it needs, always the same (a file taken
    into the spool, sealed: see :class:`twentyday.spool.SealedFile`)."""

    def open(self) -> BinaryIO: ...


#: A capture's raw bytes: in memory, a file given to ``twentyday ingest``, or a daemon-owned copy.
RawBytes = bytes | Path | Reopenable


@dataclass(frozen=True)
class CaptureInput:
    """One item as received: the raw bytes (in memory or a file) and how they came."""

    custodian: str | None
    channel: str
    source_name: str
    raw: RawBytes
    parser: str
    received_at: datetime
    envelope: dict[str, str] | None = None
    state: str = "ingested"
    reason: str = ""
    exported_at: datetime | None = None
    parent_capture: str | None = None
    #: Who handed the item over (``auth:<user>``, ``relay:<address>``, ``folder``, ``cli``).
    delivered_by: str | None = None
    #: The mail's authentication results ('' for items that are not mail by SMTP).
    origin_auth: str | None = None
    #: What the index must not hold in clear: the item's own name, the full text of the reason it
    #: was kept. Sealed with the capture as its ``detail`` blob (:data:`rows.DETAIL_SLOT`).
    detail: dict[str, str] | None = None


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
    #: Its search words when tokenised ahead (:func:`words.search_words`); None: the writer does it.
    words: frozenset[str] | None = None


#: How many record ids an IngestResult lists (the counts are always exact).
RESULT_ID_SAMPLE = 10_000


@dataclass
class IngestResult:
    capture_id: str
    custodian: str | None = None
    duplicate: bool = False
    new_count: int = 0
    linked_count: int = 0
    #: the first RESULT_ID_SAMPLE ids of each kind, for reports and tests
    new_records: list[str] = field(default_factory=list)
    linked_records: list[str] = field(default_factory=list)
    events: int = 0
    undated: int = 0
    late: int = 0
    #: The conversations the capture's records and events belong to (the alerts it may change).
    conversations: set[str] = field(default_factory=set)

    def add_new(self, record_id: str) -> None:
        self.new_count += 1
        if len(self.new_records) < RESULT_ID_SAMPLE:
            self.new_records.append(record_id)

    def add_linked(self, record_id: str) -> None:
        self.linked_count += 1
        if len(self.linked_records) < RESULT_ID_SAMPLE:
            self.linked_records.append(record_id)



def read_pieces(raw: RawBytes) -> Iterator[bytes]:
    if isinstance(raw, bytes):
        for start in range(0, max(len(raw), 1), CHUNK_BYTES):
            yield raw[start:start + CHUNK_BYTES]
        return
    with raw.open("rb") if isinstance(raw, Path) else raw.open() as handle:
        first = True
        while True:
            piece = handle.read(CHUNK_BYTES)
            if not piece and not first:
                return
            first = False
            yield piece
            if len(piece) < CHUNK_BYTES:
                return



class BackgroundInserts:
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

    def __init__(self, conn: db.Connection) -> None:
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
        """End the thread: after writing what is queued, or (``discard``) skipping it; never raises then.

        Interrupted while it waits (Ctrl-C during a large ``ingest``), it still waits for the
        thread, skipping the rest of the queue, and then lets the interrupt go on: an insert
        still running after the caller's ROLLBACK would be committed on its own.
        """
        thread = self._thread
        if thread is None:
            return
        self._discard = discard
        ended = False
        try:
            self._jobs.put(None)
            ended = True
            thread.join()
        except BaseException:
            self._discard = True
            while thread.is_alive():
                # A second Ctrl-C lands here too: still wait; the first one is re-raised below.
                with contextlib.suppress(BaseException):
                    if not ended:
                        self._jobs.put(None)
                        ended = True
                    thread.join()
            self._thread = None
            raise
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


@dataclass(frozen=True)
class WriterLimits:
    """How the writer cuts a capture into packs and batches: sizes, not rules (any value is correct)."""

    #: A capture's record contents are sealed in packs of at most this many records or bytes.
    pack_records: int = 256
    pack_bytes: int = 1024 * 1024
    #: Records deduplicated with one query and written with one set of inserts.
    batch_records: int = 2000
    #: At most this many of a capture's term rows wait for its batch's end (a mail has one).
    deferred_terms: int = 2000


DEFAULT_LIMITS = WriterLimits()


class _Deadlines:
    """The deadline columns of a capture's records, from :func:`deadlines.assess`.

    Under the calendar rule the deadline depends only on the local day of creation:
    a message read in the custodian's own zone is looked up by that day.
    """

    def __init__(self, custodian: Custodian | None, rule: str, days: int, captured_at: datetime) -> None:
        self.label = f"{rule}/{days}d"
        self._zone = custodian.zone if custodian else None
        self._rule = rule
        self._days = days
        self._captured_at = captured_at
        self._by_day: dict[tuple[int, int, int, bool], tuple[str | None, str, int | None]] = {}

    def assess(self, created: datetime | None, copied: bool) -> tuple[str | None, str, int | None]:
        """(deadline_at, status, days_late) of a record."""
        day = None
        if created is not None and self._zone is not None and self._rule == "calendar" \
                and created.tzinfo is self._zone:
            day = (created.year, created.month, created.day, copied)
            cached = self._by_day.get(day)
            if cached is not None:
                return cached
        found = deadlines.assess(created, self._captured_at, self._zone, self._rule, self._days, copied)
        columns = (iso(found.deadline) if found.deadline else None, found.status, found.days_late)
        if day is not None:
            if len(self._by_day) > 100_000:
                self._by_day.clear()
            self._by_day[day] = columns
        return columns


@dataclass(slots=True)
class _Staged:
    """A record waiting for its content pack to be sealed, which gives its row the pack's blob id."""

    record_id: str
    dedup_key: str
    draft: RecordDraft
    deadline: tuple[str | None, str, int | None]
    document: bytes
    attachments: list[tuple[dict[str, Any], BlobRef | None]]
    #: Its row of the blind-word index (``record_terms.terms``), committed to by its pack's entry.
    terms: str


class CaptureWriter:
    """Writes one capture inside the archive's open transaction.

    Given everything it needs by its maker (the archive): the connection, the keyed
    hashes, the signing key (None inside a batch, which signs once at its commit), the
    config, the capture time and the limits. It reads no clock and no archive.
    """

    def __init__(self, conn: db.Connection, capture: CaptureInput, *, capture_id: str, source_hash: str,
                 captured_at: datetime, recipients: tuple[keys.Recipient, ...], hashes: KeyedHashes,
                 signing_key: ed25519.Ed25519PrivateKey | None, config: Config,
                 limits: WriterLimits = DEFAULT_LIMITS, defer_terms: bool = False,
                 objects: ObjectStore | None = None) -> None:
        """``objects``: the bucket the capture's sealed chunks go to (None: the index holds them).
        ``defer_terms``: inside a batch, a small capture's search terms are handed to the batch
        (:attr:`deferred_terms`) instead of inserted: the full-text index writes a segment per
        savepoint, and merges them, so per-capture inserts cost it more than the rows."""
        self.conn = conn
        self.capture = capture
        self.capture_id = capture_id
        self.source_hash = source_hash
        self.recipients = recipients
        self.hashes = hashes
        self.signing_key = signing_key
        self.limits = limits
        self.data_key = DataKey()
        self.inserts = BackgroundInserts(conn)
        self.blobs = BlobStore(conn, self.inserts.insert, objects)
        self._objects = objects
        self.ledger = Ledger(conn, self.inserts.insert)
        self.result = IngestResult(capture_id, custodian=capture.custodian)
        self.head_hash = ""
        #: The search terms handed to the batch (see ``defer_terms``); None when they are inserted.
        self.deferred_terms: list[tuple[str, str]] | None = [] if defer_terms else None
        self.captured_at = captured_at.astimezone(UTC)
        self.captured_iso = iso(self.captured_at)
        # Per-capture constants of every record row.
        self.custodian = config.custodian(capture.custodian) if capture.custodian else None
        self._schedule = config.schedule(self.custodian.schedule if self.custodian else "grs-6.1-011")
        self._retention = self._schedule.rule().text()  # the whole rule, fixed on the record (retention.Rule)
        self._deadlines = _Deadlines(self.custodian, config.deadline_rule, config.deadline_days, self.captured_at)
        self._encoder = RowEncoder()
        # Keys and links of batches whose rows may not be written yet: (last insert, keys, links).
        self._unwritten: list[tuple[int, set[str], set[str]]] = []
        # Rows staged for the next inserts.
        self._records: list[RecordRow] = []
        self._links: list[tuple[str, str, str]] = []
        self._attachments: list[AttachmentRow] = []
        self._terms: list[tuple[str, str]] = []
        # The earliest and latest creation time of the capture's records (UTC keys).
        self._first: str | None = None
        self._last: str | None = None
        #: Whether the capture brought a new record with no date (its retention counts from its capture).
        self._undated = False
        # What this capture holds of each conversation: (custodian, conversation, platform) -> [first, last,
        # count] of its new dated records; its links are added from the index once written (_write_spans).
        self._spans: dict[tuple[str, str, str], list[Any]] = {}
        self._linked = False
        # Records staged for the next content pack.
        self._pack: list[_Staged] = []
        self._pack_bytes = 0
        self._pack_count = 0
        #: Every blob this capture sealed: its entry commits to their rows (:func:`rows.blobs_digest`).
        self._sealed: list[BlobRef] = []

    def abandon(self) -> None:
        """The capture failed: stop its index writer before the caller rolls back, forget staged blobs."""
        self.inserts.stop(discard=True)
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
        if self.capture.detail:
            # Found by its owner and slot (no column); its row is in the capture's blobs_sha256. The
            # capture id inside makes it the capture's own blob, never one shared by equal text.
            self._seal_bytes(canonical_json({**self.capture.detail, "capture_id": self.capture_id}),
                             self.capture_id, DETAIL_SLOT)
        count = 0
        try:
            for number, batch in enumerate(_batched(drafts, self.limits.batch_records)):
                if number == 1:
                    # A second batch means a large capture: overlap its index writes from now on.
                    # A single mail is one small batch, written at once without a thread.
                    self.inserts.start()
                self._add_batch(list(batch))
                count += len(batch)
            self.ledger.flush()
            self.inserts.stop()
        except BaseException:
            self.inserts.stop(discard=True)
            raise
        self._unwritten.clear()
        self._write_spans()
        for n, event in enumerate(events):
            self._add_event(n, event)
        self._write_capture(raw_ref, envelope_ref, keyslots, count)
        if self._objects is not None:
            self.blobs.finish(*self._object_lock())
        self.blobs.flush()
        self.ledger.flush()
        if self.signing_key is not None:
            self.head_hash = self.ledger.checkpoint(self.captured_iso, self.signing_key).hash
        else:
            self.ledger.flush()
            self.head_hash = self.ledger.head.hash
        return self.result

    # -- blobs

    def _object_lock(self) -> tuple[datetime, bool]:
        """Until when the capture's objects are locked, and whether a legal hold is set on them.

        The capture goes only with every record it holds, the new ones and those archived before
        and linked to it: its lock follows the latest of them under each rule they carry. Held when
        an active hold may match one of them (:func:`holds.capture_held`)."""
        tenure = self.custodian.tenure_ended if self.custodian else None
        today = self.captured_at.date()
        latest_new = [t for t in (self._last, self.captured_iso if self._undated else None) if t is not None]
        until = self.captured_at
        if latest_new:
            until = capture_retain_until(parse_rule(self._retention), max(parse_iso(t) for t in latest_new), tenure,
                                         today)
        linked = self.conn.execute(
            "SELECT r.retention, max(r.created_utc), max(CASE WHEN r.created_utc IS NULL THEN r.captured_at END) "
            "FROM record_capture l JOIN record r ON r.id = l.record_id WHERE l.capture_id = ? GROUP BY r.retention",
            (self.capture_id,)).fetchall()
        for retention, latest_dated, latest_undated in linked:
            latest = max(parse_iso(t) for t in (latest_dated, latest_undated) if t is not None)
            until = max(until, capture_retain_until(parse_rule(retention), latest, tenure, today))
        if not latest_new and not linked:
            # No record (quarantined, held for review, nothing routed): kept under the custodian's rule
            # from its capture, as a record captured then would be (disposition never destroys one).
            until = capture_retain_until(parse_rule(self._retention), self.captured_at, tenure, today)
        span = (self._first, self._last) if self._first is not None and self._last is not None else None
        return until, holds.capture_held(self.conn, self.capture_id, self.capture.custodian or "", span,
                                         self.captured_at)

    def _seal_bytes(self, plaintext: bytes, owner: str, slot: str) -> BlobRef:
        blob_id = self.hashes.blob_id(plaintext)
        existing = self._existing(blob_id)
        if existing:
            return existing
        return self._seal_new(plaintext, owner, slot, blob_id)

    def _seal_new(self, plaintext: bytes, owner: str, slot: str, blob_id: str | None = None) -> BlobRef:
        """Seal content known not to be stored yet."""
        blob_id = blob_id or self.hashes.blob_id(plaintext)
        sealed = [self.data_key.seal_chunk(plaintext[i:i + CHUNK_BYTES], owner, slot, n,
                                           i + CHUNK_BYTES >= len(plaintext))
                  for n, i in enumerate(range(0, max(len(plaintext), 1), CHUNK_BYTES))]
        ref = self.blobs.put(blob_id, self.capture_id, owner, slot, len(plaintext), sealed)
        self._sealed.append(ref)
        return ref

    def _existing(self, blob_id: str) -> BlobRef | None:
        self.inserts.drain()  # the blob store reads the connection itself
        if not self.blobs.known(blob_id):
            return None
        self.blobs.flush()
        self.inserts.drain()
        return self.blobs.get_ref(blob_id)

    def _seal_stream(self, raw: RawBytes, owner: str, slot: str) -> BlobRef:
        if isinstance(raw, bytes):
            return self._seal_bytes(raw, owner, slot)
        blob_id, size = self.hashes.blob_id_of_pieces(read_pieces(raw))
        existing = self._existing(blob_id)
        if existing:
            return existing

        def sealed_pieces() -> Iterator[bytes]:
            pieces = read_pieces(raw)
            current = next(pieces)
            for n, following in enumerate(_lookahead(pieces)):
                yield self.data_key.seal_chunk(current, owner, slot, n, following is None)
                if following is None:
                    return
                current = following

        ref = self.blobs.put(blob_id, self.capture_id, owner, slot, size, sealed_pieces())
        self._sealed.append(ref)
        return ref

    # -- records

    def _add_batch(self, batch: list[RecordDraft]) -> None:
        """Dedup a batch with two queries, then stage its records and links.

        Identical messages inside one capture (the same "ok" twice in a minute) are
        different records: the n-th occurrence gets its own key, and the n-th
        occurrence in an overlapping export maps to the same record.

        Earlier batches of this capture may still be on their way to the index (see
        :class:`BackgroundInserts`): their keys and links are checked in memory until
        their inserts are written, so the queries never need to wait for them.
        """
        dedup = self.hashes.dedup
        first_keys = [dedup(d.identity, 0) for d in batch]
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
        self.result.conversations.update(draft.message.conversation for draft in batch)
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
            key = self.hashes.dedup(identity, occurrence)

    def _add_link(self, existing: str) -> None:
        self._linked = True
        self._links.append((existing, self.capture_id, self.captured_iso))
        self.ledger.append(self.captured_iso, "link", f"{existing}/{self.capture_id}",
                           {"record_id": existing, "capture_id": self.capture_id, "captured_at": self.captured_iso})
        self.result.add_linked(existing)

    def _add_record(self, draft: RecordDraft, key: str) -> None:
        """Stage a record: its search terms and sealed attachments now, its row and content with its pack."""
        message = draft.message
        record_id = "rec-" + key[:24]
        deadline = self._deadlines.assess(message.created_at, draft.copied)
        attachments = self._seal_attachments(record_id, message) if message.attachments else []
        document = content_json(record_id, message)
        words = draft.words if draft.words is not None else search_words(message)
        terms = " ".join(self.hashes.blind(words))
        self._terms.append((record_id, terms))
        self._pack.append(_Staged(record_id, key, draft, deadline, document, attachments, terms))
        self._pack_bytes += len(document) + 1
        self.result.add_new(record_id)
        status = deadline[1]
        if status == "undated":
            self.result.undated += 1
        elif status == "late":
            self.result.late += 1
        if len(self._pack) >= self.limits.pack_records or self._pack_bytes >= self.limits.pack_bytes:
            self._seal_pack()

    def _seal_pack(self) -> None:
        """Seal the staged records' contents as one pack, then stage their rows and the pack's ledger entry.

        A pack is the records' content documents, one canonical JSON line each, sealed as
        one blob owned by the capture; its slot names the pack's number and a digest of
        the ordered record ids, so the associated data binds the records it holds. One
        ledger entry per pack (:func:`rows.pack_payload`) commits to every record's row.
        """
        staged = self._pack
        if not staged:
            return
        slot = pack_slot(self._pack_count, [record.record_id for record in staged])
        content = self._seal_new(b"\n".join(record.document for record in staged), self.capture_id, slot)
        self._pack_count += 1
        members: list[PackMember] = []
        for record in staged:
            row = self._record_row(record, content.id)
            self._records.append(row)
            members.append((record.record_id, canonical_json(row), record.attachments))
        self.ledger.append_text(self.captured_iso, "pack", content.id,
                                pack_payload(content, members, [record.terms for record in staged]))
        staged.clear()
        self._pack_bytes = 0

    def _record_row(self, record: _Staged, content_blob: str) -> RecordRow:
        message = record.draft.message
        created = message.created_at
        created_iso = created_utc = None
        if created is None:
            self._undated = True
        else:
            created_iso = iso(created)
            created_utc = utc_key(created)
            if self._first is None or created_utc < self._first:
                self._first = created_utc
            if self._last is None or created_utc > self._last:
                self._last = created_utc
            span_key = (self.capture.custodian or "", message.conversation, message.platform)
            span = self._spans.get(span_key)
            if span is None:
                self._spans[span_key] = [created_utc, created_utc, 1]
            else:
                if created_utc < span[0]:
                    span[0] = created_utc
                if created_utc > span[1]:
                    span[1] = created_utc
                span[2] += 1
        deadline_at, status, days_late = record.deadline
        reading = message.time
        attachments = message.attachments
        flags = message.flags
        ref = self.hashes.message_ref
        return RecordRow(
            id=record.record_id,
            dedup_key=record.dedup_key,
            custodian=self.capture.custodian or "",
            platform=message.platform,
            channel=self.capture.channel,
            conversation=message.conversation,
            sender=message.sender,
            recipients=self._encoder.recipients_json(message.recipients),
            direction=record.draft.direction,
            created_at=created_iso,
            created_utc=created_utc,
            time_reading=self._encoder.reading_json(reading) if reading else None,
            captured_at=self.captured_iso,
            deadline_at=deadline_at,
            deadline_rule=self._deadlines.label,
            status=status,
            days_late=days_late,
            capture_id=self.capture_id,
            has_attachments=int(bool(attachments)),
            incomplete=int(any(a.omitted for a in attachments) or "media_omitted" in flags),
            edited=int(message.edited),
            flags=canonical_json(flags).decode() if flags else "[]",
            message_ref=(ref(message.platform, message.message_key) if message.message_key
                         else ref(message.platform, message.text_key) if message.text_key else ""),
            reply_ref=ref(message.platform, message.reply_to) if message.reply_to else "",
            content_blob=content_blob,
            schedule=self._schedule.id,
            retention=self._retention,
        )

    def _seal_attachments(self, record_id: str, message: ParsedMessage) -> list[tuple[dict[str, Any], BlobRef | None]]:
        out = []
        for n, attachment in enumerate(message.attachments):
            ref = None
            if attachment.data is not None:
                ref = self._seal_bytes(attachment.data, record_id, f"att:{n}")
            row = AttachmentRow(record_id=record_id, n=n, blob_id=ref.id if ref else None,
                                size=len(attachment.data) if attachment.data is not None else 0,
                                content_type=clear_content_type(attachment.content_type),
                                omitted=int(attachment.omitted))
            self._attachments.append(row)
            out.append((row._asdict(), ref))
        return out

    def _flush_records(self) -> None:
        # Content packs' blob rows stay staged (the blob store writes them in bulk): records
        # and blobs meet in the same transaction, and staged blobs are known to _existing().
        insert = self.inserts.insert
        insert("record", RECORD_COLUMNS, self._records)
        insert("record_capture", ("record_id", "capture_id", "captured_at"), self._links)
        insert("attachment", ATTACHMENT_COLUMNS, self._attachments)
        deferred = self.deferred_terms
        if deferred is not None and len(deferred) + len(self._terms) <= self.limits.deferred_terms:
            deferred += self._terms
        else:
            insert("record_terms", TERM_COLUMNS, self._terms)
        self._records = []
        self._links = []
        self._attachments = []
        self._terms = []

    def _write_spans(self) -> None:
        """The capture's rows of ``capture_span`` (derived data: see migration 9 in store/schema.py).

        New records were counted as their rows were made; linked records are read back (their
        conversation and time are the archived record's), through the capture's own links only.
        """
        spans = self._spans
        if self._linked:
            for custodian, conversation, platform, first, last, count in self.conn.execute(
                    "SELECT r.custodian, r.conversation, r.platform, min(r.created_utc), max(r.created_utc), "
                    "count(*) FROM record_capture l JOIN record r ON r.id = l.record_id "
                    "WHERE l.capture_id = ? AND r.created_utc IS NOT NULL "
                    "GROUP BY r.custodian, r.conversation, r.platform", (self.capture_id,)):
                span = spans.setdefault((custodian, conversation, platform), [first, last, 0])
                span[0], span[1], span[2] = min(span[0], first), max(span[1], last), span[2] + count
        if spans:
            # An upsert merges, should a capture's rows ever be written in two steps.
            self.conn.executemany(
                "INSERT INTO capture_span (capture_id, custodian, conversation, platform, first_utc, last_utc, "
                "messages) VALUES (?,?,?,?,?,?,?) ON CONFLICT (custodian, conversation, capture_id, platform) "
                "DO UPDATE SET first_utc = CASE WHEN excluded.first_utc < capture_span.first_utc "
                "THEN excluded.first_utc ELSE capture_span.first_utc END, "
                "last_utc = CASE WHEN excluded.last_utc > capture_span.last_utc "
                "THEN excluded.last_utc ELSE capture_span.last_utc END, "
                "messages = capture_span.messages + excluded.messages",
                [(self.capture_id, *key, *span) for key, span in spans.items()])
            spans.clear()

    # -- events and the capture itself

    def _add_event(self, n: int, event: ParsedEvent) -> None:
        event_id = f"evt-{self.capture_id[4:]}-{n}"
        detail = self._seal_bytes(canonical_json({"detail": event.detail}), event_id, "detail")
        row = EventRow(id=event_id, capture_id=self.capture_id, custodian=self.capture.custodian,
                       conversation=event.conversation, kind=event.kind,
                       at=iso(event.at) if event.at else None, detail_blob=detail.id)
        schema.insert_rows(self.conn, "event", EVENT_COLUMNS, [row])
        self.ledger.append(self.captured_iso, "event", event_id,
                           {"event": row._asdict(), "detail": detail.as_payload()})
        self.result.events += 1

    def _write_capture(self, raw_ref: BlobRef, envelope_ref: BlobRef | None,
                       keyslots: list[tuple[str, bytes]], count: int) -> None:
        capture = self.capture
        row = CaptureRow(
            id=self.capture_id, custodian=capture.custodian, channel=capture.channel,
            source_name=capture.source_name, source_hash=self.source_hash,
            received_at=self.captured_iso, parser=capture.parser, size=raw_ref.size,
            raw_blob=raw_ref.id, envelope_blob=envelope_ref.id if envelope_ref else None,
            state=capture.state, reason=capture.reason,
            first_at=self._first, last_at=self._last,
            exported_at=iso(capture.exported_at) if capture.exported_at else None,
            message_count=count, parent_capture=capture.parent_capture,
            delivered_by=capture.delivered_by, origin_auth=capture.origin_auth,
        )
        schema.insert_rows(self.conn, "capture", CAPTURE_COLUMNS, [row])
        if self.custodian is not None:
            # Written only when new or changed: a REPLACE would rewrite the row for every capture.
            custodian = {"id": self.custodian.id, "name": self.custodian.name,
                         "timezone": self.custodian.timezone, "schedule": self.custodian.schedule}
            changed = self.conn.execute(
                "INSERT INTO custodian (id, name, timezone, schedule) VALUES (?,?,?,?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone, "
                "schedule = excluded.schedule WHERE (custodian.name, custodian.timezone, custodian.schedule) "
                "IS DISTINCT FROM (excluded.name, excluded.timezone, excluded.schedule)",
                tuple(custodian[c] for c in ("id", "name", "timezone", "schedule"))).rowcount
            if changed:  # the custodian row is evidence too (its schedule): each version is ledgered
                self.ledger.append(self.captured_iso, "custodian", self.custodian.id, {"custodian": custodian})
        self.ledger.append(self.captured_iso, "capture", self.capture_id,
                           capture_payload(row._asdict(), keyslots, raw_ref, envelope_ref,
                                           blobs_digest(self._sealed)))




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
