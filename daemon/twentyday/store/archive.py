"""The archive: the only write path.

Layers, borg-style: :mod:`twentyday.crypto.keys` (who can open) →
:mod:`twentyday.crypto.envelope` (data keys, AEAD bound to owner and slot) →
:mod:`blobstore` (opaque sealed chunks) — with the SQLite index (:mod:`schema`)
and the :mod:`ledger` beside them (docs/ARCHITECTURE.md, "Security model").

``Archive.ingest(capture, drafts, events)`` commits everything of a capture
or nothing, in one SQLite transaction: the raw bytes sealed, every record
sealed and indexed, every event, the ledger entries and a signed checkpoint.
Inside ``Archive.batch()`` (the pipeline worker's) each capture is a savepoint
instead, and the batch signs one checkpoint when it commits. A capture that
cannot fail half-way for a reason of its own (its records are parsed already)
may skip the savepoint, whose statement journal copies every page the capture
changes: should it fail anyway, the whole batch is rolled back
(:class:`BatchRolledBack`) and the caller stores the batch again.
Re-ingesting the same bytes is a no-op; a message already archived from an
earlier capture is linked to the new capture, never duplicated, and keeps its
earliest capture time.

The writing itself is :mod:`writer`'s, which is given the connection, the keyed
hashes (:class:`~twentyday.crypto.hashes.KeyedHashes`), the signing key and the
limits, never the archive; what is committed to (row columns, content documents
and packs, ledger payloads) is :mod:`rows`'. Record contents are sealed in packs
(:func:`rows.pack_slot`): up to ``WriterLimits.pack_records`` content
documents, one canonical JSON line each, sealed as one blob owned by the capture,
whose slot names the pack's number and the ordered ids of its records, so a pack
moved to another capture or position, or a record pointed at another pack, fails
to open. One ledger entry per pack commits to the pack's sealed digest and to each
of its records' rows and attachments (:func:`rows.pack_payload`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twentyday.canonical import iso
from twentyday.compliance.evaluate import Policy
from twentyday.config import Config
from twentyday.crypto import keys, secrets
from twentyday.crypto.envelope import DataKey
from twentyday.crypto.hashes import KeyedHashes
from twentyday.crypto.secrets import DaemonSecrets
from twentyday.errors import (
    BatchRolledBack,
    IntakeError,
    IntegrityError,
    KeyMaterialError,
    NotFoundError,
    TwentydayError,
)
from twentyday.records import ParsedEvent
from twentyday.store import clock, db, schema
from twentyday.store.adopt import Adoption, adopt_unledgered
from twentyday.store.alerts import Alert, Changes, Scope, close_alert, reconcile
from twentyday.store.blobstore import BlobRef, BlobStore
from twentyday.store.disclosures import Disclosure, accounting, insert_disclosure
from twentyday.store.ledger import HANDOVER, Ledger, LedgerHead, ledger_key_text
from twentyday.store.nodes import record_secrets_check
from twentyday.store.objects import ObjectStore
from twentyday.store.rows import RECORD_COLUMNS, TERM_COLUMNS, escrow_payload, unpack_content
from twentyday.store.words import tokens
from twentyday.store.writer import (
    DEFAULT_LIMITS,
    CaptureInput,
    CaptureWriter,
    IngestResult,
    RawBytes,
    RecordDraft,
    WriterLimits,
    read_pieces,
)

log = logging.getLogger(__name__)

INDEX_FILE = "index.db"


def _commit_failed() -> tuple[type[Exception], ...]:
    """A batch's commit failed: in the index's database, or writing its sealed segments to the bucket.
    (A function: ``db.ERRORS`` is read when an error is caught, so psycopg is imported only then.)"""
    return (*db.ERRORS, IntakeError)

NO_SIGNING_KEY = ("this identity has no signing key, so it cannot sign the disclosure: run "
                  "'twentyday keys add-signing KEY', then give the config the .pub it rewrites")

def _open_postgresql(uri: str) -> db.Connection:
    # Imported here: psycopg takes about 150 ms to import, which an archive in SQLite need not pay.
    from twentyday.store import pg_schema

    return pg_schema.open_index(uri)


def _create_postgresql(uri: str) -> None:
    import psycopg

    from twentyday.store import pg_schema

    where = pg_schema.describe(uri)
    try:
        with psycopg.connect(uri, autocommit=True) as conn:
            pg_schema.create(conn)
    except psycopg.Error as error:
        raise TwentydayError(f"{where}: cannot create the index: {str(error).splitlines()[0]}") from None


class Archive:
    """An open archive. Writers need the daemon secrets and the recipients' public keys."""

    def __init__(self, config: Config, *, recipients: tuple[keys.Recipient, ...] | None = None,
                 durable: bool = True, writer_limits: WriterLimits = DEFAULT_LIMITS,
                 officer: bool = False) -> None:
        """``durable=False`` lets commits skip their fsync; the caller must :meth:`sync` before it
        forgets the items it committed (the pipeline worker does, in batches: the spool still
        holds every item until then, so a power loss replays them and loses nothing).
        ``writer_limits``: how captures are cut into packs and batches (tests use small ones).
        ``officer=True`` opens the archive for an officer's side (``show``): the daemon's
        secrets are never read (``secrets/`` may be unreadable to the officer's account), so
        nothing that needs them (ingest, keyed hashes, checkpoints) is available; opening a
        record and recording its disclosure need only the officer's identity."""
        self.config = config
        self.data_dir = config.data_dir
        path = self.data_dir / INDEX_FILE
        if config.index is None and not path.exists():
            raise NotFoundError(f"{path}: no archive here (run 'twentyday init' first)")
        self._secrets = None if officer else secrets.load(self.data_dir)
        #: What opening this archive adopted into the ledger (see :mod:`adopt`); None: nothing.
        self.adoption: Adoption | None = None
        #: The index: SQLite in data_dir, or PostgreSQL (``[store] index``).
        self.conn: db.Connection
        if config.index is not None:
            self.conn = _open_postgresql(config.index)
            #: The schema version the index was at when opened (below the current one: migrated now).
            self.opened_at_version = len(schema.MIGRATIONS)
        else:
            try:
                index = schema.connect(str(path))
                self.opened_at_version = schema.version(index.conn)
                # The officer's side holds no signing key: it cannot adopt, so it refuses an old archive.
                schema.migrate(index, adopt=None if self._secrets is None else self._adopt)
            except db.DATABASE_ERRORS as error:
                raise TwentydayError(f"{path}: cannot open the index: {error}") from None
            self.conn = index.conn
        #: The S3 bucket of the sealed blobs (``[store] blobs``); None: the embedded store.
        self.objects: ObjectStore | None = None
        if config.blobs is not None:
            try:
                self.objects = ObjectStore(config.blobs)
            except BaseException:
                self.conn.close()
                raise
        # Whether the bucket was seen to keep Object Lock (checked before the first write, not at
        # open: reading the index — search, status — needs no bucket).
        self._bucket_checked = False
        if not durable and config.index is None:  # PostgreSQL's commits are durable when they return
            self.conn.execute("PRAGMA synchronous = NORMAL")
        self._recipients = recipients
        self._hashes = None if self._secrets is None else KeyedHashes.derived_from(self._secrets)
        self.writer_limits = writer_limits
        # Search terms of the open batch's captures, inserted at its commit (see CaptureWriter);
        # None outside a batch.
        self._batch_terms: list[tuple[str, str]] | None = None

    def _adopt(self, conn: db.Connection, from_version: int) -> None:
        """Inside the migration's transaction: account for the rows written before their tables were ledgered."""
        adoption = adopt_unledgered(conn, self.secrets.signing_key, iso(datetime.now(UTC)))
        if adoption.entries:
            self.adoption = adoption
            log.info("archive upgraded from schema %d: %s", from_version, adoption.text())

    @classmethod
    def create(cls, config: Config, recipients: tuple[keys.Recipient, ...]) -> Archive:
        """Make a new, empty archive: directories, index, daemon secrets sealed to the officers,
        and with ``[store] blobs = "s3://…"`` the bucket, with Object Lock (one without it is refused)."""
        if config.blobs is not None:
            objects = ObjectStore(config.blobs)
            try:
                made = objects.ensure_bucket(create=True)
                # One archive per bucket: another's published heads would stand beside this one's.
                if not made and next(iter(objects.keys("")), None) is not None:
                    raise TwentydayError(f"{objects.describe()}: the bucket holds objects already (another "
                                         "archive's?); give each archive a bucket of its own")
            finally:
                objects.close()
            log.info("sealed blobs go to %s (%s)", objects.describe(), "made now, with Object Lock" if made
                     else "exists, with Object Lock")
        if config.index is not None:
            # The tables first: a database that cannot hold the index (not empty, not collation C)
            # is refused before anything is written in data_dir.
            _create_postgresql(config.index)
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        daemon_secrets = secrets.generate(config.data_dir)
        if config.index is None:
            index = config.data_dir / INDEX_FILE
            # The index holds personal data (names, numbers, times): owner-only, like the secrets.
            index.touch(mode=0o600, exist_ok=False)
            new_index = schema.connect(str(index))
            schema.migrate(new_index)
            new_index.conn.close()
        archive = cls(config, recipients=recipients)
        archive.escrow_secrets(recipients, daemon_secrets)
        if config.index is not None:  # other nodes may serve it: what tells them its secrets (store/nodes.py)
            record_secrets_check(archive.conn, daemon_secrets)
        return archive

    def close(self) -> None:
        self.conn.close()
        if self.objects is not None:
            self.objects.close()

    def sync(self) -> None:
        """Make every commit so far durable: fsync the write-ahead log (and the database). An index in
        PostgreSQL is durable at each commit already (the server's own synchronous_commit)."""
        if self.config.index is not None:
            return
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
    def secrets(self) -> DaemonSecrets:
        if self._secrets is None:
            raise KeyMaterialError("the archive was opened for an officer: the daemon's secrets are not loaded")
        return self._secrets

    @property
    def hashes(self) -> KeyedHashes:
        if self._hashes is None:
            raise KeyMaterialError("the archive was opened for an officer: the daemon's keyed hashes are not loaded")
        return self._hashes

    @property
    def recipients(self) -> tuple[keys.Recipient, ...]:
        if self._recipients is None:
            self._recipients = tuple(keys.load_recipient(p) for p in self.config.recipients)
        return self._recipients

    def escrow_secrets(self, recipients: tuple[keys.Recipient, ...], daemon_secrets: DaemonSecrets) -> None:
        """Seal the daemon's secrets to each recipient that does not hold a copy yet."""
        now = iso(datetime.now(UTC))
        payload = daemon_secrets.escrow_payload()
        with self.transaction():
            ledger = Ledger(self.conn)
            ledger.begin()
            for recipient in recipients:
                sealed = keys.seal(recipient, payload, b"twentyday/v1\0escrow")
                if self.conn.execute(
                    "INSERT INTO escrow (recipient, label, sealed, at) VALUES (?,?,?,?) "
                    "ON CONFLICT (recipient) DO NOTHING",
                    (recipient.fingerprint, recipient.label, sealed, now),
                ).rowcount:
                    # Who can recover the daemon's secrets is evidence: ledgered, and checked by verify.
                    ledger.append(now, "escrow", recipient.fingerprint,
                                  escrow_payload(recipient.fingerprint, recipient.label, sealed, now))
            if ledger.head.seq and self.conn.execute("SELECT max(seq) FROM checkpoint").fetchone()[0] \
                    != ledger.head.seq:
                ledger.checkpoint(now, daemon_secrets.signing_key)

    def hand_over_ledger_key(self, successor: DaemonSecrets) -> LedgerHead:
        """``keys rotate-ledger``, in one transaction: a :data:`HANDOVER` entry naming the successor's key,
        checkpointed with the key in force (the old key vouches for the new one); the daemon secrets, now
        holding the new key, sealed again to every configured recipient (their escrow rows replaced,
        each ledgered); then a checkpoint with the new key. Returns the new head."""
        if not self.recipients:  # the config requires one; the second checkpoint needs an entry of its own
            raise KeyMaterialError("no recipient to seal the new ledger key to")
        now = iso(datetime.now(UTC))
        payload = successor.escrow_payload()
        with self.transaction():
            ledger = Ledger(self.conn)
            ledger.begin()
            new_key = ledger_key_text(successor.verify_key)
            ledger.append(now, HANDOVER, new_key, {"from": ledger_key_text(self.secrets.verify_key), "to": new_key})
            ledger.checkpoint(now, self.secrets.signing_key)
            for recipient in self.recipients:
                sealed = keys.seal(recipient, payload, b"twentyday/v1\0escrow")
                self.conn.execute("INSERT INTO escrow (recipient, label, sealed, at) VALUES (?,?,?,?) ON CONFLICT "
                                  "(recipient) DO UPDATE SET label = excluded.label, sealed = excluded.sealed, "
                                  "at = excluded.at", (recipient.fingerprint, recipient.label, sealed, now))
                ledger.append(now, "escrow", recipient.fingerprint,
                              escrow_payload(recipient.fingerprint, recipient.label, sealed, now))
            return ledger.checkpoint(now, successor.signing_key)

    # -- keyed hashes -------------------------------------------------------------------

    def term_tokens(self, text: str) -> list[str]:
        """Keyed search tokens of a text (see :func:`words.tokens`)."""
        return self.hashes.blind(tokens(text))

    def source_hash(self, custodian: str | None, raw: RawBytes) -> str:
        return self.hashes.source(custodian, read_pieces(raw))

    # -- transactions ------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    # -- ingest --------------------------------------------------------------------------

    def ingest(
        self,
        capture: CaptureInput,
        drafts: Iterable[RecordDraft] = (),
        events: Iterable[ParsedEvent] = (),
        before_commit: Callable[[db.Connection, IngestResult], None] | None = None,
        *,
        savepoint: bool = True,
    ) -> IngestResult:
        """Seal and index one capture atomically. Same bytes again: a no-op.

        ``before_commit`` runs inside the same transaction (e.g. to raise alerts), so
        a crash cannot keep the capture and lose what it should have raised.
        Inside a batch, ``savepoint=False`` writes the capture without a savepoint of
        its own: if it fails, the batch is rolled back and :class:`BatchRolledBack` raised.
        """
        self._require_bucket()
        source_hash = self.source_hash(capture.custodian, capture.raw)
        capture_id = "cap-" + source_hash[:24]
        recipients = self.recipients
        in_batch = self.conn.in_transaction
        writer = CaptureWriter(
            self.conn, capture, capture_id=capture_id, source_hash=source_hash, captured_at=capture.received_at,
            recipients=recipients, hashes=self.hashes, config=self.config, limits=self.writer_limits,
            # The checkpoint is signed after before_commit, whose alerts are ledgered too: by the
            # batch at its commit (which inserts the deferred terms before it), or below.
            signing_key=None,
            defer_terms=self._batch_terms is not None,
            objects=self.objects,
        )
        # Alone: a transaction of its own. Inside a batch (see :meth:`batch`), committed with
        # it: a savepoint (rolled back alone), or none (see the module docstring).
        guarded = in_batch and savepoint
        if not in_batch:
            end = "COMMIT"
        elif guarded:
            end = "RELEASE capture"
        else:
            end = ""
        try:
            if not in_batch:
                db.begin_write(self.conn)
            elif guarded:
                self.conn.execute("SAVEPOINT capture")
        except db.OPERATIONAL_ERRORS as error:
            raise IntakeError(f"index is not writable: {error}") from None
        try:
            if self.conn.execute("SELECT 1 FROM capture WHERE source_hash = ?", (source_hash,)).fetchone():
                if end:
                    self.conn.execute("RELEASE capture" if guarded else "ROLLBACK")
                return IngestResult(capture_id, duplicate=True)
            result = writer.write(drafts, events)
            if before_commit is not None:
                before_commit(self.conn, result)
            if not in_batch:
                self._sign_head()
                self._objects_written()
            if end:
                self.conn.execute(end)
            if writer.deferred_terms and self._batch_terms is not None:
                self._batch_terms += writer.deferred_terms
        except BaseException as error:
            writer.abandon()
            if self.objects is not None and not in_batch:
                self.objects.forget()
            # SQLite ends the whole transaction itself after some errors (disk full, I/O).
            if self.conn.in_transaction:
                if guarded:
                    self.conn.execute("ROLLBACK TO capture")
                    self.conn.execute("RELEASE capture")
                else:
                    self.conn.execute("ROLLBACK")
            if in_batch and not guarded:
                self._batch_terms = None  # tells batch() that nothing is left to commit
                if isinstance(error, Exception):  # not KeyboardInterrupt: that one goes on as it is
                    raise BatchRolledBack(f"capture {capture_id} failed without a savepoint "
                                          f"({type(error).__name__}): the batch was rolled back") from error
            raise
        # Inside a batch the worker logs each item's outcome when the batch commits: one line per item.
        log.log(logging.DEBUG if in_batch else logging.INFO, "capture %s %s: %d new, %d linked, %d events; "
                "ledger head %s", capture_id, "written (commits with its batch)" if in_batch else "committed",
                result.new_count, result.linked_count, result.events, writer.head_hash)
        return result

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around several :meth:`ingest` calls: their pages are written once.

        Each capture inside is still all-or-nothing (a savepoint). The block commits what
        it wrote when it ends, also when it ends with an exception after some captures
        succeeded, unless SQLite already rolled the transaction back (then the commit's
        error is raised: nothing of the batch is stored) or a capture written without a
        savepoint failed (then its :class:`BatchRolledBack` goes on, nothing committed).
        """
        self._require_bucket()
        try:
            db.begin_write(self.conn)
        except db.OPERATIONAL_ERRORS as error:
            raise IntakeError(f"index is not writable: {error}") from None
        self._batch_terms = []
        try:
            yield
        except BaseException:
            if self._batch_terms is not None:  # None: a capture rolled the batch back, nothing to commit
                self._commit_batch()
            elif self.objects is not None:  # its writes are strays: a failed one must not fail the next batch
                self.objects.forget()
            raise
        else:
            self._commit_batch()
        finally:
            self._batch_terms = None

    def _commit_batch(self) -> None:
        terms, self._batch_terms = self._batch_terms or [], None
        if not self.conn.in_transaction:
            raise IntakeError("the index rolled the batch back (disk full or I/O error)")
        try:
            schema.insert_rows(self.conn, "record_terms", TERM_COLUMNS, terms)
            self._sign_head()
            self._objects_written()
            self.conn.execute("COMMIT")
        except _commit_failed() as error:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise IntakeError(f"cannot commit the batch: {error}") from None

    def _require_bucket(self) -> None:
        """Before the first write: the bucket exists and keeps Object Lock (else nothing is written to it).
        Unreachable: an :class:`IntakeError`, so the items stay in the spool and are tried again."""
        if self.objects is None or self._bucket_checked:
            return
        try:
            self.objects.ensure_bucket(create=False)
        except TwentydayError as error:
            raise IntakeError(str(error)) from None
        self._bucket_checked = True

    def _objects_written(self) -> None:
        """Before the index commits: every sealed segment of what it commits is in the bucket.
        A failed write fails the commit (the caller rolls back; the spool still holds the items)."""
        if self.objects is not None:
            self.objects.wait()

    def evaluate_alerts(self, now: datetime, scope: Scope | None = None) -> Changes:
        """Evaluate the condition alerts at ``now`` (those of ``scope``, else all) and reconcile the
        alert table with them, escalating what is due: ledgered, in a transaction of its own signed
        like a capture's, or inside an open batch a savepoint (undone alone if it fails)."""
        guarded = self.conn.in_transaction
        try:
            if guarded:
                self.conn.execute("SAVEPOINT alerts")
            else:
                db.begin_write(self.conn)
        except db.OPERATIONAL_ERRORS as error:
            raise IntakeError(f"index is not writable: {error}") from None
        try:
            changes = reconcile(self.conn, clock.findings(self.conn, self.config, now, scope=scope), now,
                                Policy.from_config(self.config), scope)
            if guarded:
                self.conn.execute("RELEASE alerts")
            else:
                self._sign_head()
                self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO alerts" if guarded else "ROLLBACK")
                if guarded:
                    self.conn.execute("RELEASE alerts")
            raise
        return changes

    def close_alert(self, alert_id: int, note: str, closed_by: str, now: datetime) -> Alert:
        """An officer closes an event alert with a note: the change ledgered and signed."""
        with self.transaction():
            closed = close_alert(self.conn, alert_id, note, closed_by, now)
            self._sign_head()
        return closed

    def _sign_head(self) -> None:
        """Sign the ledger's head if entries follow the last checkpoint (the batch's captures)."""
        ledger = Ledger(self.conn)
        ledger.begin()
        last = self.conn.execute("SELECT max(seq) FROM checkpoint").fetchone()[0]
        if ledger.head.seq and ledger.head.seq != last:
            ledger.checkpoint(iso(datetime.now(UTC)), self.secrets.signing_key)

    # -- reading (metadata only) ----------------------------------------------------------

    def record_row(self, record_id: str) -> dict[str, Any]:
        rows = db.query(self.conn, f"SELECT {', '.join(RECORD_COLUMNS)} FROM record WHERE id = ?", (record_id,))
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
        blobs = BlobStore(self.conn, objects=self.objects)
        parts = []
        for seq, sealed in enumerate(blobs.chunks(ref.id)):
            parts.append(data_key.open_chunk(sealed, ref.owner, ref.slot, seq, seq == ref.chunks - 1))
        if len(parts) != ref.chunks:
            raise IntegrityError(f"blob {ref.id} is missing chunks (run 'twentyday verify')")
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
                          subjects: list[str], identity: keys.Identity, at: datetime,
                          recipient_address: str = "") -> Disclosure:
        """Account for a disclosure (Privacy Act 552a(c)) before anything is shown: the row and
        its ledger entry, in one transaction, signed with the officer's own key.

        The entry extends the head read inside :func:`db.begin_write`, as the daemon's commits
        do, so the two cannot fork the chain; the daemon's next checkpoint covers it, and
        until then ``verify`` accepts it on the officer's signature."""
        signing_key = identity.signing_key
        if signing_key is None:
            raise KeyMaterialError(NO_SIGNING_KEY)
        unsigned = Disclosure.new(at=at, actor=actor, action=action, purpose=purpose, recipient=recipient,
                                  subjects=subjects, identity=identity.recipient.fingerprint,
                                  recipient_address=recipient_address)
        with self.transaction():
            ledger = Ledger(self.conn)
            ledger.begin()
            disclosure = unsigned.signed(signing_key, identity.recipient.signer, ledger.head.hash)
            insert_disclosure(self.conn, disclosure)
            ledger.append(disclosure.at, "disclosure", disclosure.id, {"disclosure": disclosure.row()})
            ledger.flush()
        return disclosure

    # -- lifecycle, and what the CLI and the daemon read (no SQL outside the store) -------

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.close()

    def ledger_head(self) -> LedgerHead:
        """The last signed checkpoint (sequence 0 and no hash before the first)."""
        row = self.conn.execute("SELECT seq, head FROM checkpoint ORDER BY seq DESC LIMIT 1").fetchone()
        return LedgerHead(row[0], row[1]) if row else LedgerHead(0, "")

    def disclosures(self) -> list[Disclosure]:
        """The accounting of disclosures, oldest first."""
        return accounting(self.conn)

    def escrow_holders(self) -> list[EscrowHolder]:
        """Who holds a sealed copy of the daemon secrets, in the order they were given one."""
        return [EscrowHolder(*row) for row in self.conn.execute(
            "SELECT recipient, label, at FROM escrow ORDER BY rowid")]


class _Transaction:
    def __init__(self, conn: db.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> db.Connection:
        db.begin_write(self._conn)
        return self._conn

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._conn.execute("COMMIT" if kind is None else "ROLLBACK")


@dataclass(frozen=True)
class EscrowHolder:
    """A recipient holding an escrowed copy of the daemon secrets, since ``at``."""

    fingerprint: str
    label: str
    at: str
