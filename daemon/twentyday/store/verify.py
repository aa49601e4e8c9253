"""``verify``: prove that blobs, index and ledger agree, and name every difference.

It trusts nothing it reads from the archive it checks: the key that checks the
signatures is pinned in the config (``keys.ledger_key``), and the heads the daemon
published outside the archive (``verify --head``) must be in the chain it proves.
Checks, none of which needs an officer key or the daemon's secrets:

1. the ledger chain: consecutive sequence numbers, each entry's hash over its
   predecessor and its own payload (streamed: memory does not grow with the archive);
2. checkpoints: each signature valid under the pinned ledger key in force at that point,
   each head equal to the chain at that point, and the last checkpoint at the chain's end;
   a different key in the archive's ``secrets/`` is named too. A rotated key
   (``keys rotate-ledger``) is a :data:`HANDOVER` entry: its checkpoint must be signed by
   the key in force before it, the key it names is in force after it, and every key is
   one the config pins (``keys.ledger_key``, ``keys.former_ledger_keys``);
3. published heads: each one given, signed under the pinned key, is an entry of
   the chain (so the archive was neither truncated nor rolled back past it);
4. index ↔ ledger: every capture, link, event, disclosure, hold, alert, alert event,
   delivery, custodian and escrow row equals the payload of its latest ledger entry (canonical JSON);
   every record row is the one its content pack's entry lists (by the SHA-256 of
   the row), and so is its row of the blind-word index (``record_terms``); every
   blob row (owner, slot, capture) is the one its capture's entry lists; and every
   entry has its rows;
5. blobs: every sealed chunk hashes to the digest the ledger recorded; no blob
   or chunk exists that no entry accounts for;
6. the bucket (``[store] blobs = "s3://…"``, :func:`_check_bucket`): every segment a chunk row
   points to is there, inside its own capture's prefix, and locked in COMPLIANCE mode at least
   until its capture's records may be destroyed (:func:`object_locks.capture_locks`, as the writer
   computes it; a lock that ended because that time has passed is no problem), with a legal hold on
   while an active hold matches one of the capture's records; no version remains under the prefix
   of a capture a certificate of destruction destroyed; and the newest signed head the daemon
   published to ``heads/`` is held to the chain as a ``--head`` is (an archive rolled back below
   it is named). Objects under ``captures/`` that no chunk row points to are *strays*, counted in a
   note, not a problem: a capture's segments are written before its transaction commits, so a
   capture rolled back after its PUTs (a crash, a failed item, a batch retried) leaves them behind,
   as does a capture committed after verify's snapshot began. Locked like the records, they hold no
   key and nothing readable. A version or delete marker put over a segment's name by someone
   holding the bucket's key is counted in a note too: the version the name commits to is the one
   read and checked.

Rows written before their table was ledgered are held to the ``adopt`` entry the upgrade
wrote for them (:mod:`adopt`), and the report says how many were adopted and when. An index
at an earlier schema is refused in one line (:func:`schema.check_current`): migrating is the
writer's, who signs the adoption. The head reported is the newest entry proved: the last
checkpoint, or past it the officer-signed disclosures an officer's ``show`` appended.

Records are compared a pack at a time inside SQLite (the SHA-256 of the pack's
rows, each rendered by ``json_array``, against the digest in the pack's entry);
only packs that differ come back to Python, which then names each record that
was altered, added or removed. Re-hashing sealed bytes and half of the packs run
on connections of their own, in threads, so verify keeps pace with a plain
SHA-256 pass over the same files.

The bucket's cost: one listing of ``captures/`` and one of ``heads/`` (a page per thousand
versions), one HEAD per segment a chunk row points to (lock and legal hold in one answer, eight at
a time), one GET of the newest head, and a GET of each version of a segment that has more than
one. On top of re-reading every sealed byte from the bucket (one GET per segment), a verify of a
large bucket takes time: against the local one-node Ceph of the tests, on 2 cores, about 470
HEADs a second, so some 3.5 minutes per hundred thousand segments (up to 800 GB of them) for the
locks alone; a distant service answers slower.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import canonical_json
from twentyday.config import LEDGER_KEY_RE, Config
from twentyday.errors import ConfigError, IntegrityError, InvalidArgument, NotFoundError, TwentydayError
from twentyday.store import db, holds, schema
from twentyday.store.adopt import ADOPT, BLOBS, TERMS, WHOLE_ROW_TABLES, Adoption, adoption_summary
from twentyday.store.adopt import subject as adopted
from twentyday.store.alerts import ALERT_COLUMNS, alert_payload
from twentyday.store.blobstore import BlobRef, resolve
from twentyday.store.coverage import span_differences
from twentyday.store.disclosures import Disclosure
from twentyday.store.ledger import (
    GENESIS,
    HANDOVER,
    LedgerHead,
    SignedHead,
    entry_hash,
    ledger_key_text,
    parse_entry_head,
    parse_head,
    parse_ledger_key,
    published_heads,
    signature_ok,
    signed_head,
)
from twentyday.store.object_locks import capture_locks
from twentyday.store.objects import (
    COMPLIANCE,
    LockState,
    ObjectStore,
    SegmentCache,
    Version,
    capture_prefix,
    read_pointer,
)
from twentyday.store.officer_rows import OFFICER_KINDS
from twentyday.store.officer_rows import signature_ok as officer_signature_ok
from twentyday.store.outbox import (
    ALERT_EVENT_COLUMNS,
    DELIVERY_COLUMNS,
    alert_event_payload,
    delivery_payload,
)
from twentyday.store.rows import (
    ATTACHMENT_COLUMNS,
    BLOB_COLUMNS,
    CAPTURE_COLUMNS,
    DETAIL_SLOT,
    EVENT_COLUMNS,
    RECORD_COLUMNS,
    attachment_payloads,
    blob_payload,
    blobs_digest,
    capture_payload,
    escrow_payload,
    pack_slot,
    record_payload,
    row_digest,
    terms_digest,
)
from twentyday.store.search_index import TERM_ROWS_WITH_PLACES, misplaced_terms_rows, participant_differences

#: Where the archive keeps its own copy of the ledger key (compared with the pinned one).
_SECRETS_KEYS = ("secrets/ledger-signing.pem", "secrets/ledger-signing.pub")


@dataclass(frozen=True)
class Problem:
    kind: str  # altered | missing | unaccounted | chain | signature | truncated | unlocked
    object: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.object}: {self.detail}"


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    ledger_entries: int = 0
    records: int = 0
    captures: int = 0
    blobs: int = 0
    sealed_bytes: int = 0
    #: The newest entry proved: the last signed checkpoint (:meth:`SignedHead.text`) when it is the
    #: chain's end, else the end itself (:meth:`LedgerHead.text`) when every entry after the checkpoint
    #: is an officer-signed disclosure (:attr:`past_checkpoint`); '' when the archive has none.
    head: str = ""
    #: The last signed checkpoint (:meth:`SignedHead.text`), '' before the first.
    checkpoint: str = ""
    #: Entries after the last signed checkpoint (officer-signed disclosures, until the daemon's next).
    past_checkpoint: int = 0
    #: What an upgrade adopted into the ledger (rows not vouched for before its time); None: nothing.
    adopted: Adoption | None = None
    #: Published heads checked against the chain, and lines of a head file passed over (why).
    heads_checked: int = 0
    #: With ``[store] blobs``: the segments chunk rows point to, found and checked (None: the embedded
    #: store), their bytes, and the versions under ``captures/`` no chunk row points to (strays).
    objects: int | None = None
    object_bytes: int = 0
    stray_objects: int = 0
    #: The newest signed head published in the bucket (``heads/``), checked against the chain; '' when none.
    bucket_head: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ledger_entries": self.ledger_entries,
            "captures": self.captures,
            "records": self.records,
            "blobs": self.blobs,
            "sealed_bytes": self.sealed_bytes,
            "head": self.head,
            "checkpoint": self.checkpoint,
            "past_checkpoint": self.past_checkpoint,
            "adopted": self.adopted.as_json() if self.adopted is not None else None,
            "heads_checked": self.heads_checked,
            "objects": self.objects,
            "object_bytes": self.object_bytes,
            "stray_objects": self.stray_objects,
            "bucket_head": self.bucket_head,
            "notes": self.notes,
            "problems": [p.__dict__ for p in self.problems],
        }


def _rows(conn: db.Connection, sql: str, params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
    """A table's rows as dicts, read as they are used (:func:`db.stream`: memory bounded on either database)."""
    cursor = db.stream(conn, sql, params)
    try:
        names = [d[0] for d in cursor.description]
        for values in cursor:
            yield dict(zip(names, values, strict=True))
    finally:
        cursor.close()


#: Rows of sealed chunks (up to 1 MiB each) a server-side cursor holds at a time.
_CHUNKS_AT_ONCE = 16


def verify_archive(config: Config, head: str | None = None,
                   signers: Mapping[str, ed25519.Ed25519PublicKey] | None = None) -> VerifyReport:
    """``twentyday verify [--head HEAD]``: the archive the config names, checked with the pinned key.

    ``head``: a published head (:meth:`SignedHead.text`), or a file of them — one per line,
    or the daemon's log, whose ``ledger head`` lines are read. Refuses to run without a pin:
    a key read from the archive it checks proves nothing to whoever can rewrite that archive.
    ``signers``: the officers' disclosure-signing keys by fingerprint (:func:`keys.signers` of the
    config's ``keys.recipients``); a disclosure signed by any other key is named. Opens the index
    read-only and reads no secret: the verify timer's user may read the archive but not write it.
    """
    if not config.ledger_key:
        raise ConfigError("not set: verify checks the ledger with a key pinned outside the archive; "
                          "run 'twentyday keys pin-ledger' on a copy you trust, then add what it prints "
                          "(or run it with --write)", path=str(config.path), key="keys.ledger_key")
    verify_key = parse_ledger_key(config.ledger_key)
    former = tuple(parse_ledger_key(k) for k in config.former_ledger_keys)
    heads, notes = _given_heads(head, (verify_key, *former)) if head is not None else ([], [])
    conn = open_index_read_only(config)
    objects = ObjectStore(config.blobs) if config.blobs is not None else None
    tenures = {c.id: c.tenure_ended for c in config.custodians if c.tenure_ended is not None}
    try:
        if db.dialect(conn) == "sqlite":  # PostgreSQL's: checked as it was opened
            schema.check_current(conn)  # an earlier schema: one line saying what to run, not its rows named
        report = verify(conn, verify_key, heads=heads, signers=signers, former_keys=former, objects=objects,
                        tenures=tenures)
    finally:
        conn.close()
        if objects is not None:
            objects.close()
    report.notes += notes
    _check_archive_key(config, verify_key, report)
    return report


def _given_heads(given: str, pinned: Sequence[ed25519.Ed25519PublicKey]
                 ) -> tuple[list[SignedHead | LedgerHead], list[str]]:
    """The heads to check: one head (a signed one's signature must verify; ``seq:hash`` is held to the
    chain as given) or every genuine signed head of a file."""
    single: SignedHead | LedgerHead | None = parse_head(given) or parse_entry_head(given)
    if single is not None:
        return [single], []
    source = Path(given)
    if not source.is_file():
        raise InvalidArgument(f"{given!r} is neither a head (seq:hash:time:signature) nor a file of them",
                              argument="--head")
    try:
        text = source.read_text(errors="replace")
    except OSError as error:
        raise InvalidArgument(f"{source}: cannot read: {error.strerror}", argument="--head") from None
    heads: list[SignedHead | LedgerHead] = []
    notes = []
    for line, found in published_heads(text):
        if any(found.signed_by(key) for key in pinned):  # a head published before a rotation: a former key
            heads.append(found)
        else:  # a log line is no proof: only a signature under the pinned key makes a head
            notes.append(f"{source}:{line}: head {found.seq} ignored: not signed by the pinned ledger key")
    if not heads:
        raise InvalidArgument(f"{source}: no head signed by the pinned ledger key", argument="--head")
    return heads, notes


def _check_archive_key(config: Config, verify_key: ed25519.Ed25519PublicKey, report: VerifyReport) -> None:
    """Name a ledger key in the archive's secrets that is not the pinned one (a key swapped on the disk)."""
    pinned = verify_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for name in _SECRETS_KEYS:
        try:
            data = (config.data_dir / name).read_bytes()
        except OSError:
            continue  # absent, or not readable by this account (verify needs neither)
        try:
            if name.endswith(".pem"):
                private = serialization.load_pem_private_key(data, None)
                public = private.public_key() if isinstance(private, ed25519.Ed25519PrivateKey) else None
            else:
                loaded = serialization.load_pem_public_key(data)
                public = loaded if isinstance(loaded, ed25519.Ed25519PublicKey) else None
        except (ValueError, TypeError):
            public = None
        if public is None or public.public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw) != pinned:
            report.problems.append(Problem("signature", name, "the archive's ledger key is not the pinned "
                                                              "keys.ledger_key (a key replaced on the disk?)"))


def verify(conn: db.Connection, verify_key: ed25519.Ed25519PublicKey, *,
           heads: Sequence[SignedHead | LedgerHead] | None = None,
           signers: Mapping[str, ed25519.Ed25519PublicKey] | None = None,
           former_keys: Sequence[ed25519.Ed25519PublicKey] = (),
           objects: ObjectStore | None = None, tenures: Mapping[str, date] | None = None) -> VerifyReport:
    """Check the archive on ``conn`` with ``verify_key``; ``heads``: published heads it must contain;
    ``signers``: the officer keys disclosures may be signed with (see :func:`verify_archive`);
    ``former_keys``: ledger keys in force before a rotation (``keys.former_ledger_keys``);
    ``objects``: the bucket holding the sealed bytes the chunk rows point to (``[store] blobs``);
    ``tenures``: each custodian's last day (``custodians.tenure_ended``), for the locks of tenure rules."""
    report = VerifyReport()
    # The newest head the bucket holds, read before the snapshot begins: the daemon publishes a head
    # after its commit, so whatever head is read here is in the state the snapshot sees.
    bucket_head = _newest_bucket_head(objects, report) if objects is not None else None
    if isinstance(conn, sqlite3.Connection):  # SQLite: sha256() in SQL is ours, registered per connection
        conn.create_function("sha256", 1, _sha256_text, deterministic=True)
    # One read transaction: every check on this connection sees the same state, also while
    # the daemon commits (a checkpoint read before new entries would otherwise look missing).
    own_transaction = not conn.in_transaction
    if own_transaction:
        db.begin_read(conn)
    # PostgreSQL: the passes on connections of their own read this very snapshot (SQLite's each
    # read one of their own, which is why they must hold by themselves: see _OnSecondConnection).
    snapshot = _export_snapshot(conn)
    # The heavy passes run on connections of their own, in threads: re-hashing sealed bytes
    # (I/O and hashlib) and half of the packs' row digests (SQLite's own loop) both run
    # without the interpreter lock, beside the checks on this connection. Each holds within
    # its own snapshot (sealed blobs never change; a pack commits with its entry).
    sealed = _OnSecondConnection(conn, lambda other: _check_sealed(other, objects, tenures or {}), snapshot)
    upper_packs = _OnSecondConnection(conn, lambda other: _pack_mismatches(other, upper=True), snapshot)
    terms = _OnSecondConnection(conn, _terms_mismatches, snapshot)
    # The spans are recomputed in one statement (a snapshot of its own): records, links and
    # spans commit together, so a capture committed meanwhile cannot make it disagree.
    spans = _OnSecondConnection(conn, span_differences, snapshot)
    # The derived tables search reads, each on a connection of its own: two short passes in parallel.
    participant_rows = _OnSecondConnection(conn, participant_differences, snapshot)
    try:
        _check_chain(conn, _PinnedKeys(verify_key, former_keys), report)
        _check_heads(conn, (verify_key, *former_keys), heads or [], report)
        if bucket_head is not None and objects is not None:
            key, head_text = bucket_head
            _check_bucket_head(conn, (verify_key, *former_keys), key, head_text, objects, report)
        _check_captures(conn, report)
        _check_records(conn, report, upper_packs)
        _check_terms(conn, report, terms)
        _check_small_tables(conn, report)
        _check_capture_spans(report, spans)
        officer_entries = check_officer_rows(conn, report, signers or {})
        _check_search_index(conn, report, participant_rows, terms)
        check_disclosures(conn, report, signers or {}, officer_entries)
        _settle_head(report)
        report.adopted = adoption_summary(conn)
        _check_orphan_entries(conn, report)
        _check_blob_references(conn, report)
        hashed = sealed.result()
        report.problems += hashed.problems
        report.sealed_bytes = hashed.sealed_bytes
        report.notes += hashed.notes
        report.objects, report.object_bytes, report.stray_objects = (hashed.objects, hashed.object_bytes,
                                                                      hashed.stray_objects)
    except db.DATABASE_ERRORS as error:
        if db.dialect(conn) == "sqlite":
            report.problems.append(Problem("altered", "index.db", f"database is damaged: {error}"))
        elif isinstance(error, db.OPERATIONAL_ERRORS):
            # The server went away, shut down or refused for now: the run failed, the index may be whole
            # (serve's check tries again; an integrity_failure alert here would be a false alarm).
            raise
        else:  # a table or column gone, an entry that is not JSON: what verify reads is not an index's
            report.problems.append(Problem("altered", "index", f"database is damaged: {str(error).splitlines()[0]}"))
    finally:
        if own_transaction and conn.in_transaction:
            conn.execute("ROLLBACK")  # nothing was written: end the snapshot
    report.problems = list(dict.fromkeys(report.problems))  # two checks may meet the same difference
    return report


def open_index_read_only(config: Config) -> db.Connection:
    """The index ``config`` names, opened to be read only: SQLite's file (:func:`open_read_only`), or
    the PostgreSQL database of ``[store] index``, whose reads then run in read-only transactions
    (:func:`db.begin_read`: the server refuses any write in one). A database in which no archive was
    made is not found; one at another schema version is refused in one line."""
    if config.index is None:
        return open_read_only(config.data_dir / "index.db")
    # Imported here: psycopg takes about 150 ms to import, which an archive in SQLite need not pay.
    from twentyday.store import pg_schema

    return pg_schema.open_index(config.index)


def open_read_only(index: Path) -> sqlite3.Connection:
    """The index as ``verify`` reads it: read-only (``mode=ro``), so it runs as a user who may
    read the archive but not write it, and nothing it does can change what it checks.

    A WAL database read-only needs its ``-wal`` and ``-shm`` beside it, which exist while
    the daemon has the index open. When they do not (the daemon is stopped) and the verify
    user cannot create them, the index is opened ``immutable``: nobody writes it then, and
    should the daemon start meanwhile, it writes to a new ``-wal`` that verify does not read.
    """
    if not index.is_file():
        raise NotFoundError(f"{index}: no archive here (run 'twentyday init' first)")
    uri = index.resolve().as_uri()  # SQLite's own: the index file, opened read-only (WAL, immutable below)
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        if index.with_name(index.name + "-wal").exists():
            raise
        conn = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)
    return conn


T = TypeVar("T")


class _OnSecondConnection(Generic[T]):
    """``work(connection)`` on a read-only connection of its own, in a thread, started at once.

    What runs here must hold within one snapshot by itself (sealed blobs never change;
    a pack and its ledger entry commit together), so a capture committed meanwhile cannot
    make the connections disagree. Where no second connection can be had (an in-memory
    database, a file not readable that way), :meth:`result` runs ``work`` on the caller's.
    """

    def __init__(self, conn: db.Connection, work: Callable[[db.Connection], T], snapshot: str | None = None) -> None:
        self._conn = conn
        self._work = work
        self._outcome: tuple[T] | None = None
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        if not isinstance(conn, sqlite3.Connection):  # PostgreSQL: the caller's snapshot, exported
            if snapshot is not None:
                self._thread = threading.Thread(target=self._run_on_snapshot, args=(snapshot,),
                                                name="twentyday-verify", daemon=True)
                self._thread.start()
            return
        path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
        if path:
            self._thread = threading.Thread(target=self._run, args=(path,), name="twentyday-verify", daemon=True)
            self._thread.start()

    def _run_on_snapshot(self, snapshot: str) -> None:
        # PostgreSQL's own: another connection, reading the snapshot the caller's transaction exported
        # (which stays open, and so importable, until verify ends).
        from twentyday.store.postgres import PgConnection

        assert isinstance(self._conn, PgConnection)
        try:
            other = self._conn.reopen()
        except db.ERRORS:
            return  # no second connection to be had (max_connections): result() does it on the caller's
        try:
            other.import_snapshot(snapshot)
            self._outcome = (self._work(other),)
        except db.OPERATIONAL_ERRORS:
            pass  # the snapshot gone or the server busy: result() does it on the caller's connection
        except db.DATABASE_ERRORS as error:
            self._error = error
        finally:
            other.close()

    def _run(self, path: str) -> None:
        # SQLite's own: a second read-only open of the index file (its sha256() registered as on the first)
        try:
            other = sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            other.create_function("sha256", 1, _sha256_text, deterministic=True)
            self._outcome = (self._work(other),)
        except sqlite3.OperationalError:
            pass  # locked or unreadable from here: result() does it on the caller's connection
        except sqlite3.DatabaseError as error:
            self._error = error
        finally:
            other.close()

    def result(self) -> T:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        if self._outcome is None:
            self._outcome = (self._work(self._conn),)  # once: a second caller reads the same result
        return self._outcome[0]


def _export_snapshot(conn: db.Connection) -> str | None:
    """PostgreSQL: the open transaction's snapshot, for the passes on other connections to read too;
    None on SQLite (each of its connections reads a snapshot of its own)."""
    if isinstance(conn, sqlite3.Connection):
        return None
    from twentyday.store.postgres import PgConnection

    assert isinstance(conn, PgConnection)
    return conn.export_snapshot()


def _sha256_text(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


class _PinnedKeys:
    """The ledger keys the config pins, and which one is in force as the chain is walked (see HANDOVER)."""

    def __init__(self, current: ed25519.Ed25519PublicKey, former: Sequence[ed25519.Ed25519PublicKey]) -> None:
        self.current = ledger_key_text(current)
        self.pinned = {ledger_key_text(k): k for k in (current, *former)}
        self.in_force = self.current

    def start(self, conn: db.Connection, report: VerifyReport) -> None:
        """The key in force at the chain's start: the one the first handover hands over from, else the current."""
        first = conn.execute("SELECT seq, payload FROM ledger WHERE kind = ? ORDER BY seq LIMIT 1",
                             (HANDOVER,)).fetchone()
        keys = _handover_keys(str(first[1])) if first is not None else None
        if keys is None:
            return  # no handover (or an unreadable one, named where the walk meets it)
        self.in_force = keys[0]
        if keys[0] not in self.pinned:
            report.problems.append(Problem("signature", f"ledger entry {first[0]}", f"the ledger was signed with "
                                           f"{keys[0]} before this key handover, a key the config pins in neither "
                                           "keys.ledger_key nor keys.former_ledger_keys (add it to "
                                           "keys.former_ledger_keys if it was this archive's key)"))

    def key(self) -> ed25519.Ed25519PublicKey:
        # A key the config does not pin has been named (start, hand_over); its checkpoints are still checked
        # under it, so one problem names it rather than one per checkpoint.
        return self.pinned.get(self.in_force) or parse_ledger_key(self.in_force)

    def hand_over(self, seq: int, payload: str, checkpoint: dict[str, Any] | None,
                  report: VerifyReport) -> None:
        """A handover entry: signed (its checkpoint) by the key in force before it, naming a pinned successor."""
        label = f"ledger entry {seq}"
        keys = _handover_keys(payload)
        if keys is None:
            report.problems.append(Problem("altered", label, "a ledger key handover that names no keys"))
            return
        before, after = keys
        if before != self.in_force:
            report.problems.append(Problem("signature", label, f"a ledger key handover from {before}, but "
                                           f"{self.in_force} was in force"))
        if checkpoint is None:
            report.problems.append(Problem("signature", label, "a ledger key handover no checkpoint signs"))
        elif not signature_ok(self.key(), seq, checkpoint["head"], checkpoint["at"], checkpoint["signature"]):
            report.problems.append(Problem("signature", label, f"a ledger key handover to {after} not signed by "
                                           f"the key in force before it ({self.in_force})"))
        if after not in self.pinned:
            report.problems.append(Problem("signature", label, f"a ledger key handover to {after}, a key the config "
                                           "pins in neither keys.ledger_key nor keys.former_ledger_keys"))
        self.in_force = after

    def finish(self, report: VerifyReport) -> None:
        if self.in_force != self.current:
            report.problems.append(Problem("signature", "ledger", f"the ledger's last key handover leaves "
                                           f"{self.in_force} in force, but keys.ledger_key pins {self.current}"))


def _handover_keys(payload: str) -> tuple[str, str] | None:
    """(from, to) of a handover entry's payload, or None when it does not name two ledger keys."""
    try:
        named = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(named, dict):
        return None
    before, after = named.get("from"), named.get("to")
    if not all(isinstance(k, str) and LEDGER_KEY_RE.match(k) for k in (before, after)):
        return None
    return str(before), str(after)


def _check_chain(conn: db.Connection, keys: _PinnedKeys, report: VerifyReport) -> None:
    checkpoints = {row["seq"]: row for row in _rows(conn, "SELECT * FROM checkpoint")}
    prev, expected_seq, last_checkpoint = GENESIS, 1, 0
    keys.start(conn, report)
    for seq, at, kind, subject, payload, stored_prev, stored_hash in db.stream(
        conn, "SELECT seq, at, kind, subject, payload, prev, hash FROM ledger ORDER BY seq", batch=100
    ):
        if seq != expected_seq:
            report.problems.append(Problem("chain", f"ledger entry {expected_seq}", f"missing (next is {seq})"))
        if stored_prev != prev or entry_hash(stored_prev, seq, at, kind, subject, payload) != stored_hash:
            report.problems.append(Problem("altered", f"ledger entry {seq}", f"{kind} {subject}: hash chain broken"))
        checkpoint = checkpoints.pop(seq, None)
        if checkpoint is not None:
            if checkpoint["head"] != stored_hash:
                report.problems.append(Problem("altered", f"checkpoint {seq}", "head differs from the ledger"))
            if not signature_ok(keys.key(), seq, checkpoint["head"], checkpoint["at"], checkpoint["signature"]):
                report.problems.append(Problem("signature", f"checkpoint {seq}", "signature does not verify"))
            last_checkpoint = seq
        if kind == HANDOVER:  # after its own checkpoint, which the key before it signs
            keys.hand_over(seq, payload, checkpoint, report)
        prev, expected_seq = stored_hash, seq + 1
        report.ledger_entries += 1
    last = signed_head(conn)
    if last is not None and not any(p.object == f"checkpoint {last.seq}" for p in report.problems):
        report.checkpoint = last.text()
    report.past_checkpoint = expected_seq - 1 - last_checkpoint
    report.head = report.checkpoint if report.checkpoint and last is not None and last.hash == prev else ""
    if report.ledger_entries and report.past_checkpoint:
        report.head = LedgerHead(expected_seq - 1, prev).text()  # until _settle_head decides
    keys.finish(report)
    for seq in checkpoints:
        report.problems.append(Problem("unaccounted", f"checkpoint {seq}", "no ledger entry at that point"))
    if report.ledger_entries and last_checkpoint != expected_seq - 1:
        report.problems.append(Problem("unaccounted", f"ledger entry {expected_seq - 1}",
                                       "entries after the last signed checkpoint"))


def _settle_head(report: VerifyReport) -> None:
    """The head proved: entries after the last checkpoint count only when each is an officer-signed
    disclosure (check_disclosures then dropped the problem that names them); else the checkpoint."""
    if report.past_checkpoint and any(p.detail == _TRAILING for p in report.problems):
        report.head = report.checkpoint


def _check_heads(conn: db.Connection, pinned: Sequence[ed25519.Ed25519PublicKey],
                 heads: Sequence[SignedHead | LedgerHead], report: VerifyReport, where: str = "") -> None:
    """Each published head must be an entry of this chain: else it was truncated, rolled back or rewritten.

    A signed head must verify under a pinned key (one published before a rotation: a former key); a
    ``seq:hash`` head (one ``verify`` reported past the last checkpoint)
    is the caller's own record, held to the chain as it is. ``where``: where the heads were found."""
    end = conn.execute("SELECT max(seq) FROM ledger").fetchone()[0] or 0
    for head in {(h.seq, h.hash): h for h in heads}.values():
        label = f"published head {head.seq}{where}"
        if isinstance(head, SignedHead) and not any(head.signed_by(key) for key in pinned):
            report.problems.append(Problem("signature", label, "not signed by the pinned ledger key"))
            continue
        report.heads_checked += 1
        row = conn.execute("SELECT hash FROM ledger WHERE seq = ?", (head.seq,)).fetchone()
        if row is None:
            report.problems.append(Problem("truncated", label, f"the ledger ends at entry {end}: entries were "
                                                               "removed, or the archive is an earlier copy"))
        elif row[0] != head.hash:
            report.problems.append(Problem("altered", label, f"ledger entry {head.seq} differs from the "
                                                             "published head: history was rewritten"))


HEADS_PREFIX = "heads/"


def _newest_bucket_head(objects: ObjectStore, report: VerifyReport) -> tuple[str, str] | None:
    """The key and text of the newest head published in the bucket (``heads/<seq>``), or None."""
    try:
        numbered = [(int(key[len(HEADS_PREFIX):]), key) for key in objects.keys(HEADS_PREFIX)
                    if key[len(HEADS_PREFIX):].isdigit()]
        if not numbered:
            return None
        key = max(numbered)[1]
        return key, objects.read(key).decode("ascii", "replace")
    except TwentydayError as error:  # IntegrityError too: a head listed but not readable
        report.problems.append(Problem("missing", "published heads", f"{objects.describe()}: {_bucket_failure(error)}"))
        return None


def _check_bucket_head(conn: db.Connection, pinned: Sequence[ed25519.Ed25519PublicKey], key: str, text: str,
                       objects: ObjectStore, report: VerifyReport) -> None:
    """The newest head in the bucket is held to the chain as a ``--head`` is (:func:`_check_heads`)."""
    where = f" ({key} in {objects.describe()})"
    head = parse_head(text)
    if head is None:
        report.problems.append(Problem("altered", f"published head{where}", "not a signed head "
                                                                          "(seq:hash:time:signature)"))
        return
    report.bucket_head = head.text()
    _check_heads(conn, pinned, [head], report, where)


def _bucket_failure(error: TwentydayError) -> str:
    """A bucket error's own words, without the service (named beside it) or the advice to run verify."""
    text = str(error)
    text = text.split(": ", 1)[1] if text.startswith("s3://") and ": " in text else text
    return text.replace("; run 'twentyday verify'", "")


def _latest_payload(conn: db.Connection, kind: str, subject: str) -> str | None:
    """The payload of the newest entry about a row: its table's own, or the one that adopted it."""
    if kind in WHOLE_ROW_TABLES:
        row = conn.execute("SELECT payload FROM ledger WHERE (kind = ? AND subject = ?) OR (kind = ? AND subject = ?) "
                           "ORDER BY seq DESC LIMIT 1", (kind, subject, ADOPT, adopted(kind, subject))).fetchone()
    else:
        row = conn.execute("SELECT payload FROM ledger WHERE kind = ? AND subject = ? ORDER BY seq DESC LIMIT 1",
                           (kind, subject)).fetchone()
    return str(row[0]) if row else None


def _adopted_payload(conn: db.Connection, table: str, key: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT payload FROM ledger WHERE kind = ? AND subject = ? ORDER BY seq DESC LIMIT 1",
                       (ADOPT, adopted(table, key))).fetchone()
    if row is None:
        return None
    return _pack_entry(str(row[0]))


def _compare(conn: db.Connection, report: VerifyReport, kind: str, subject: str,
             payload: dict[str, Any], label: str) -> None:
    stored = _latest_payload(conn, kind, subject)
    if stored is None:
        report.problems.append(Problem("unaccounted", label, "in the index but not in the ledger"))
    elif canonical_json(payload).decode("utf-8") != stored:
        report.problems.append(Problem("altered", label, _difference(stored, payload)))


def _difference(stored: str, payload: dict[str, Any]) -> str:
    """Name the fields that differ, so the officer knows where to look."""
    try:
        original = json.loads(stored)
    except ValueError:
        return "index row differs from the ledger"
    current = json.loads(canonical_json(payload))
    changed = []
    for part, values in current.items():
        before = original.get(part)
        if isinstance(values, dict) and isinstance(before, dict):
            changed += [f"{part}.{k}" for k in values if values.get(k) != before.get(k)]
        elif values != before:
            changed.append(part)
    return "index row differs from the ledger" + (f" ({', '.join(changed)})" if changed else "")


def _name_blobs(conn: db.Connection, report: VerifyReport, capture_id: str) -> None:
    """A capture's blob rows differ from its entry: name each blob whose row no longer says where
    its sealed bytes belong (what the AEAD binds: the capture's key, the owner and the slot)."""
    named = False
    for blob_id, owner, slot in conn.execute("SELECT id, owner, slot FROM blob WHERE capture_id = ?",
                                             (capture_id,)).fetchall():
        if not _placed(conn, blob_id, capture_id, owner, slot):
            report.problems.append(Problem("altered", f"blob {blob_id}",
                                           f"its row ({capture_id}, {owner}/{slot}) differs from the ledger"))
            named = True
    if not named:
        report.problems.append(Problem("altered", f"capture {capture_id}",
                                       "the rows of the blobs it sealed differ from the ledger (owner, slot "
                                       "or capture)"))


def _placed(conn: db.Connection, blob_id: str, capture_id: str, owner: str, slot: str) -> bool:
    """Whether a blob row's owner and slot are the ones its first user sealed it for."""
    def exists(sql: str, *params: object) -> bool:
        return conn.execute(sql, params).fetchone() is not None

    if slot == "raw":
        return owner == capture_id and exists("SELECT 1 FROM capture WHERE id = ? AND raw_blob = ?", owner, blob_id)
    if slot == "envelope":
        return owner == capture_id and exists("SELECT 1 FROM capture WHERE id = ? AND envelope_blob = ?",
                                              owner, blob_id)
    if slot == "detail":
        return exists("SELECT 1 FROM event WHERE id = ? AND detail_blob = ?", owner, blob_id)
    if slot == DETAIL_SLOT:  # a capture's own name and full reason, found by owner and slot
        return owner == capture_id and exists("SELECT 1 FROM capture WHERE id = ?", owner)
    if slot.startswith("att:"):
        return exists("SELECT 1 FROM attachment WHERE record_id = ? AND blob_id = ? AND 'att:' || n = ?",
                      owner, blob_id, slot)
    if slot.startswith("pack:") and owner == capture_id:
        # A capture's entries are contiguous, its packs' before its own: the pack's number is how
        # many pack entries precede it since the capture before.
        found = conn.execute("SELECT seq, payload FROM ledger WHERE kind = 'pack' AND subject = ?",
                             (blob_id,)).fetchone()
        if found is None:
            return False
        number = conn.execute(
            "SELECT count(*) FROM ledger WHERE kind = 'pack' AND seq < ? AND seq > coalesce("
            "(SELECT max(seq) FROM ledger WHERE kind = 'capture' AND seq < ?), 0)", (found[0], found[0])
        ).fetchone()[0]
        return bool(pack_slot(number, list(_pack_members(found[1]))) == slot)
    return False


def _blob_ref(conn: db.Connection, blob_id: str | None) -> BlobRef | None:
    if not blob_id:
        return None
    row = conn.execute("SELECT id, capture_id, owner, slot, size, chunks, digest FROM blob WHERE id = ?",
                       (blob_id,)).fetchone()
    return BlobRef(*row) if row else None


def _ref(conn: db.Connection, blob_id: str) -> BlobRef:
    """A blob row, or a stand-in that cannot match the ledger (so a missing blob is named)."""
    return _blob_ref(conn, blob_id) or BlobRef(blob_id, "", "", "", -1, -1, "missing")


def _record_payload_from_db(conn: db.Connection, record_id: str) -> dict[str, Any]:
    row = next(_rows(conn, f"SELECT {', '.join(RECORD_COLUMNS)} FROM record WHERE id = ?", (record_id,)))
    attachments = [(a, _blob_ref(conn, a["blob_id"])) for a in _rows(
        conn, f"SELECT {', '.join(ATTACHMENT_COLUMNS)} FROM attachment WHERE record_id = ? ORDER BY n", (record_id,))]
    return record_payload(row, _ref(conn, row["content_blob"]), attachments)


def _pg_json_list(columns: Sequence[str], prefix: str = "") -> str:
    """PostgreSQL's text for a JSON list of ``columns`` exactly as canonical_json writes it (and SQLite's
    json_array): to_json renders a string, an integer and NULL the same way, with no space between
    items (json_build_array would put one after each comma)."""
    items = " || ',' || ".join(f"coalesce(to_json({prefix}{c})::text, 'null')" for c in columns)
    return f"'[' || {items} || ']'"


def _pg_sha256(text: str) -> str:
    """PostgreSQL's text for the hex SHA-256 of ``text``'s UTF-8 bytes (SQLite: verify's own sha256())."""
    return f"encode(sha256(convert_to({text}, 'UTF8')), 'hex')"


# Per capture, the digest of the blob rows it sealed (rows.blobs_digest), inside SQLite: the
# ordered subquery hands each group its lines sorted (SQLite 3.40 has no ORDER BY in aggregates).
_BLOB_DIGESTS = f"""
SELECT capture_id, sha256(group_concat(line, char(10))) FROM (
    SELECT capture_id, json_array({", ".join(BLOB_COLUMNS)}) AS line FROM blob ORDER BY capture_id, line)
GROUP BY capture_id
"""
# PostgreSQL: the aggregate orders its own lines.
_BLOB_DIGESTS_PG = f"""
SELECT capture_id, {_pg_sha256("string_agg(" + _pg_json_list(BLOB_COLUMNS) + ", chr(10) ORDER BY "
                               + _pg_json_list(BLOB_COLUMNS) + ")")}
FROM blob GROUP BY capture_id
"""
_NO_BLOBS = blobs_digest([])


def _check_adopted_blobs(conn: db.Connection, report: VerifyReport, capture_id: str, blobs: str) -> None:
    adopted_blobs = _adopted_payload(conn, BLOBS, capture_id)
    if adopted_blobs is None:
        report.problems.append(Problem("unaccounted", f"capture {capture_id}", "the rows of the blobs it sealed "
                                       "are in no ledger entry (written before they were ledgered, never adopted)"))
    elif adopted_blobs.get("blobs_sha256") != blobs:
        _name_blobs(conn, report, capture_id)


def _check_captures(conn: db.Connection, report: VerifyReport) -> None:
    sealed_by = dict(conn.execute(_BLOB_DIGESTS if db.dialect(conn) == "sqlite" else _BLOB_DIGESTS_PG).fetchall())
    certified = certified_captures(conn)
    for row in _rows(conn, f"SELECT {', '.join(CAPTURE_COLUMNS)} FROM capture"):
        report.captures += 1
        label = f"capture {row['id']}"
        slots = [(r, bytes(s)) for r, s in conn.execute(
            "SELECT recipient, sealed FROM keyslot WHERE capture_id = ?", (row["id"],))]
        stored = _latest_payload(conn, "capture", row["id"])
        blobs = sealed_by.pop(row["id"], _NO_BLOBS)
        own = stored is not None and '"blobs_sha256":' in stored
        payload = capture_payload(row, slots, _ref(conn, row["raw_blob"]), _blob_ref(conn, row["envelope_blob"]),
                                  blobs if own else None)
        if row["id"] in certified:  # its data keys were destroyed: the certificate names what they were
            if slots:
                report.problems.append(Problem("unaccounted", f"keyslot {row['id']}", "data keys remain, yet "
                                               f"certificate {certified[row['id']]['certificate']} destroyed them"))
            payload["keyslots"] = certified[row["id"]]["keyslots"]
        if stored is not None and not own:  # an entry from before it listed the blob rows: adopted since
            _check_adopted_blobs(conn, report, row["id"], blobs)
        if stored is None:
            report.problems.append(Problem("unaccounted", label, "in the index but not in the ledger"))
        elif canonical_json(payload).decode("utf-8") != stored:
            difference = _difference(stored, payload)
            if difference.endswith("(blobs_sha256)"):  # only the blob rows: name them, not the capture
                _name_blobs(conn, report, row["id"])
            else:
                report.problems.append(Problem("altered", label, difference))
    for capture_id in sealed_by:
        for (blob_id,) in conn.execute("SELECT id FROM blob WHERE capture_id = ?", (capture_id,)):
            report.problems.append(Problem("unaccounted", f"blob {blob_id}",
                                           f"sealed by capture {capture_id}, which is not in the index"))
    for (capture_id,) in conn.execute(
            "SELECT DISTINCT capture_id FROM keyslot WHERE capture_id NOT IN (SELECT id FROM capture)"):
        report.problems.append(Problem("unaccounted", f"keyslot {capture_id}", "no capture owns it"))


# Per content pack: its records' rows, each rendered by json_array exactly as canonical_json
# wrote it, joined by newlines in the order they were written (the index on content_blob
# walks a pack's rows in rowid order) and hashed, all inside SQLite; beside it what the
# pack's ledger entry says. Only packs that differ come back to Python record by record.
# Blob ids are "b" and a keyed hash, so "b8" splits the packs into two even halves.
_PACK_MISMATCH = f"""
SELECT p.content_blob, l.payload FROM (
    SELECT content_blob, count(*) AS records,
           sha256(group_concat(json_array({", ".join(RECORD_COLUMNS)}), char(10))) AS rows_sha256
    FROM record INDEXED BY record_content WHERE {{half}} GROUP BY content_blob) p
LEFT JOIN ledger l ON l.kind = 'pack' AND l.subject = p.content_blob
LEFT JOIN blob b ON b.id = p.content_blob
WHERE l.seq IS NULL
   OR p.rows_sha256 IS NOT json_extract(l.payload, '$.rows_sha256')
   OR p.records != json_array_length(l.payload, '$.records')
   OR json_object('chunks', b.chunks, 'digest', b.digest, 'id', b.id, 'size', b.size)
      IS NOT json_extract(l.payload, '$.content')
"""

# Archives written before packs had one ledger entry: records with an entry of their own.
_LEGACY_RECORD_MISMATCH = f"""
SELECT r.id FROM record r
JOIN ledger l ON l.kind = 'record' AND l.subject = r.id
LEFT JOIN blob b ON b.id = r.content_blob
WHERE sha256(json_array({", ".join("r." + c for c in RECORD_COLUMNS)}))
      IS NOT json_extract(l.payload, '$.record_sha256')
   OR json_object('chunks', b.chunks, 'digest', b.digest, 'id', b.id, 'size', b.size)
      IS NOT json_extract(l.payload, '$.content')
   OR (SELECT count(*) FROM attachment a WHERE a.record_id = r.id)
      != json_array_length(l.payload, '$.attachments')
"""


# PostgreSQL: the same, the rows in the order written (rowid), the entry's fields read as JSON; the
# content compared as jsonb (the entry's text is canonical JSON, and a value that differs differs there).
_PACK_MISMATCH_PG = f"""
SELECT p.content_blob, l.payload FROM (
    SELECT content_blob, count(*) AS records,
           {_pg_sha256(f"string_agg({_pg_json_list(RECORD_COLUMNS)}, chr(10) ORDER BY rowid)")} AS rows_sha256
    FROM record WHERE {{half}} GROUP BY content_blob) p
LEFT JOIN ledger l ON l.kind = 'pack' AND l.subject = p.content_blob
LEFT JOIN blob b ON b.id = p.content_blob
WHERE l.seq IS NULL
   OR p.rows_sha256 IS DISTINCT FROM l.payload::json ->> 'rows_sha256'
   OR p.records IS DISTINCT FROM json_array_length(l.payload::json -> 'records')
   OR jsonb_build_object('chunks', b.chunks, 'digest', b.digest, 'id', b.id, 'size', b.size)
      IS DISTINCT FROM (l.payload::json -> 'content')::jsonb
"""

_LEGACY_RECORD_MISMATCH_PG = f"""
SELECT r.id FROM record r
JOIN ledger l ON l.kind = 'record' AND l.subject = r.id
LEFT JOIN blob b ON b.id = r.content_blob
WHERE {_pg_sha256(_pg_json_list(RECORD_COLUMNS, "r."))} IS DISTINCT FROM l.payload::json ->> 'record_sha256'
   OR jsonb_build_object('chunks', b.chunks, 'digest', b.digest, 'id', b.id, 'size', b.size)
      IS DISTINCT FROM (l.payload::json -> 'content')::jsonb
   OR (SELECT count(*) FROM attachment a WHERE a.record_id = r.id)
      IS DISTINCT FROM json_array_length(l.payload::json -> 'attachments')
"""

# Links to later captures: one ledger entry each (the first capture is in the record's row), whose
# payload is the link's canonical JSON (built as text on both: compared as text, as it was hashed).
_LINK_MISMATCH = """
SELECT rc.record_id, rc.capture_id FROM record_capture rc
LEFT JOIN record r ON r.id = rc.record_id
LEFT JOIN ledger l ON l.kind = 'link' AND l.subject = rc.record_id || '/' || rc.capture_id
WHERE r.capture_id IS NOT rc.capture_id
  AND (l.seq IS NULL OR json_object('capture_id', rc.capture_id, 'captured_at', rc.captured_at,
                                    'record_id', rc.record_id) IS NOT l.payload)
"""
_LINK_MISMATCH_PG = """
SELECT rc.record_id, rc.capture_id FROM record_capture rc
LEFT JOIN record r ON r.id = rc.record_id
LEFT JOIN ledger l ON l.kind = 'link' AND l.subject = rc.record_id || '/' || rc.capture_id
WHERE r.capture_id IS DISTINCT FROM rc.capture_id
  AND (l.seq IS NULL OR '{"capture_id":' || coalesce(to_json(rc.capture_id)::text, 'null')
                        || ',"captured_at":' || coalesce(to_json(rc.captured_at)::text, 'null')
                        || ',"record_id":' || coalesce(to_json(rc.record_id)::text, 'null') || '}'
                        IS DISTINCT FROM l.payload)
"""


def _pack_mismatches(conn: db.Connection, *, upper: bool) -> list[tuple[str, str | None]]:
    """(pack, its ledger payload) of the packs in one half whose rows differ from their entry."""
    half = "content_blob >= 'b8'" if upper else "content_blob < 'b8'"
    text = _PACK_MISMATCH if db.dialect(conn) == "sqlite" else _PACK_MISMATCH_PG
    return [(blob, payload) for blob, payload in conn.execute(text.format(half=half))]


def _check_records(conn: db.Connection, report: VerifyReport,
                   upper_packs: _OnSecondConnection[list[tuple[str, str | None]]]) -> None:
    report.records = conn.execute("SELECT count(*) FROM record").fetchone()[0]
    legacy = conn.execute("SELECT 1 FROM ledger WHERE kind = 'record' LIMIT 1").fetchone() is not None
    for content_blob, payload in _pack_mismatches(conn, upper=False) + upper_packs.result():
        _check_pack(conn, report, content_blob, payload)
    if legacy:
        legacy_text = _LEGACY_RECORD_MISMATCH if db.dialect(conn) == "sqlite" else _LEGACY_RECORD_MISMATCH_PG
        for (record_id,) in conn.execute(legacy_text).fetchall():
            _compare(conn, report, "record", record_id, _record_payload_from_db(conn, record_id),
                     f"record {record_id}")
    for subject, payload in conn.execute(
            "SELECT subject, payload FROM ledger WHERE kind = 'pack' "
            "AND subject NOT IN (SELECT content_blob FROM record)").fetchall():
        for record_id in _pack_members(payload):
            report.problems.append(Problem("missing", f"record {record_id}",
                                           f"in the ledger (pack {subject}) but not in the index"))
    _check_attachments(conn, report, legacy)
    for record_id, capture_id in conn.execute(
            _LINK_MISMATCH if db.dialect(conn) == "sqlite" else _LINK_MISMATCH_PG).fetchall():
        report.problems.append(Problem("altered", f"link {record_id}/{capture_id}",
                                       "link differs from the ledger, or has no entry"))


def _pack_entry(payload: str) -> dict[str, Any]:
    try:
        entry = json.loads(payload)
    except ValueError:
        return {}  # an unreadable entry: the chain check has named it already
    return entry if isinstance(entry, dict) else {}


def _pack_members(payload: str) -> dict[str, dict[str, Any]]:
    members = _pack_entry(payload).get("records")
    if not isinstance(members, list):
        return {}
    return {str(m.get("id")): m for m in members if isinstance(m, dict)}


def _check_pack(conn: db.Connection, report: VerifyReport, content_blob: str, payload: str | None) -> None:
    """Name each record of a pack whose digest differs: altered, unaccounted or missing."""
    expected = _pack_members(payload) if payload is not None else {}
    if payload is not None and _pack_entry(payload).get("content") != blob_payload(_blob_ref(conn, content_blob)):
        report.problems.append(Problem("altered", f"blob {content_blob}", "pack differs from its ledger entry"))
    for row in _rows(conn, f"SELECT {', '.join(RECORD_COLUMNS)} FROM record WHERE content_blob = ?",
                     (content_blob,)):
        label = f"record {row['id']}"
        member = expected.pop(row["id"], None)
        if member is not None:
            if row_digest(row) != member.get("row_sha256"):
                report.problems.append(Problem("altered", label, "index row differs from the ledger"))
        elif _latest_payload(conn, "record", row["id"]) is None:  # else: written before packs, checked apart
            report.problems.append(Problem("unaccounted", label, "in the index but not in the ledger"))
    for record_id in expected:
        report.problems.append(Problem("missing", f"record {record_id}", "in the ledger but not in the index"))


def _check_attachments(conn: db.Connection, report: VerifyReport, legacy: bool) -> None:
    """Attachment rows and blobs, compared in full for the records that have any."""
    packs: dict[str, dict[str, dict[str, Any]]] = {}
    for record_id, content_blob in conn.execute(
            "SELECT DISTINCT a.record_id, r.content_blob FROM attachment a "
            "LEFT JOIN record r ON r.id = a.record_id ORDER BY r.content_blob").fetchall():
        label = f"record {record_id}"
        if content_blob is None:
            report.problems.append(Problem("unaccounted", f"attachment of {record_id}", "no record owns it"))
            continue
        if any(p.object == label for p in report.problems):
            continue
        if content_blob not in packs:
            packs.clear()  # ordered by pack: keep only the current one in memory
            payload = _latest_payload(conn, "pack", content_blob)
            packs[content_blob] = _pack_members(payload) if payload is not None else {}
        member = packs[content_blob].get(record_id)
        if member is None:
            if legacy:
                _compare(conn, report, "record", record_id, _record_payload_from_db(conn, record_id), label)
            continue  # not in its pack's entry: _check_pack named it
        if member.get("attachments") != json.loads(canonical_json(_attachments_from_db(conn, record_id))):
            report.problems.append(Problem("altered", label, "attachments differ from the ledger"))


def _attachments_from_db(conn: db.Connection, record_id: str) -> list[dict[str, Any]]:
    return attachment_payloads([(a, _blob_ref(conn, a["blob_id"])) for a in _rows(
        conn, f"SELECT {', '.join(ATTACHMENT_COLUMNS)} FROM attachment WHERE record_id = ? ORDER BY n",
        (record_id,))])


# The blind-word digest each pack's entry commits to (rows.pack_payload): canonical JSON sorts
# its keys, so "terms_sha256" is the entry's last field, read from the end of the text without
# parsing a payload that lists up to 256 records. A negative start is SQLite's own: counting from
# length() instead costs verify a third more here (it counts the characters twice); PostgreSQL's text
# will read the same field with right(payload, 82).
_TERMS_SHA256_SUFFIX = '"terms_sha256":"'
# Adopted terms (adopt.py) end with the same field.
_COMMITTED_TERMS = f"""
SELECT subject, substr(payload, -66, 64) FROM ledger
WHERE kind = 'pack' AND substr(payload, -82, 16) = '{_TERMS_SHA256_SUFFIX}'
UNION ALL
SELECT substr(subject, 7), substr(payload, -66, 64) FROM ledger
WHERE kind = '{ADOPT}' AND substr(subject, 1, 6) = '{TERMS} ' AND substr(payload, -82, 16) = '{_TERMS_SHA256_SUFFIX}'
"""


# PostgreSQL's substr takes no negative start: the same fields read with right().
_COMMITTED_TERMS_PG = f"""
SELECT subject, left(right(payload, 66), 64) FROM ledger
WHERE kind = 'pack' AND left(right(payload, 82), 16) = '{_TERMS_SHA256_SUFFIX}'
UNION ALL
SELECT substr(subject, 7), left(right(payload, 66), 64) FROM ledger
WHERE kind = '{ADOPT}' AND substr(subject, 1, 6) = '{TERMS} '
  AND left(right(payload, 82), 16) = '{_TERMS_SHA256_SUFFIX}'
"""


def _term_rows(conn: db.Connection, unplaced: list[str]) -> Iterator[tuple[str | None, str]]:
    """Every blind-word row with its record's pack (None: no such record), in the order the rows
    were written: a pack's rows were written together, in the pack's order. The records whose
    row ``record_terms_row`` does not place are added to ``unplaced`` on the way (search_index.py).

    Records and their term rows are written in the same order, so both tables are read in
    storage order side by side, instead of looking up each record by its (random) id; a record
    read ahead waits in memory until its term row comes (only as many as the two orders differ).
    """
    records = iter(db.stream(conn, "SELECT id, content_blob, coalesce(created_utc, '') FROM record ORDER BY rowid"))
    waiting: dict[str, tuple[str, str]] = {}
    for record_id, terms, placed_id, placed_at in db.stream(conn, TERM_ROWS_WITH_PLACES):
        found = waiting.pop(record_id, None)
        while found is None:
            row = next(records, None)
            if row is None:
                break
            if row[0] == record_id:
                found = (row[1], row[2])
            else:
                waiting[row[0]] = (row[1], row[2])
        # The place must name this row's record at the record's own time (a search finds it by both).
        if placed_id != record_id or (found is not None and placed_at != found[1]):
            unplaced.append(str(record_id))
        yield (found[0] if found is not None else None), terms


@dataclass
class _TermsPass:
    #: The packs whose blind-word rows differ from their entry's digest (None: rows of no record).
    packs: list[str | None]
    #: The records whose blind-word row ``record_terms_row`` does not place.
    unplaced: list[str]


def _terms_mismatches(conn: db.Connection) -> _TermsPass:
    """The packs whose blind-word rows differ from their entry's digest (None: rows of no record),
    and the records whose row's place is not where the row is.

    One pass in storage order, hashing each pack's run of rows; a pack whose rows are not one
    run (or are none) is only looked at record by record, which decides (:func:`_check_terms`).
    """
    committed = dict(conn.execute(_COMMITTED_TERMS if db.dialect(conn) == "sqlite" else _COMMITTED_TERMS_PG).fetchall())
    differ: list[str | None] = []
    finished: set[str] = set()
    current: str | None = None
    digest = hashlib.sha256()
    unplaced: list[str] = []
    for content_blob, terms in _term_rows(conn, unplaced):
        if content_blob is None:
            if None not in differ:
                differ.append(None)
            continue
        if content_blob != current:
            _finish_terms(current, digest, committed, differ, finished)
            current, digest = content_blob, hashlib.sha256(terms.encode("utf-8"))
        else:
            digest.update(b"\n" + terms.encode("utf-8"))
    _finish_terms(current, digest, committed, differ, finished)
    return _TermsPass(differ + list(committed), unplaced)  # committed: what is left, to rows not there


def _finish_terms(pack: str | None, digest: Any, committed: dict[str, str], differ: list[str | None],
                  finished: set[str]) -> None:
    if pack is None:
        return
    if pack in finished:  # a second run of the same pack: its rows are out of order or added
        differ.append(pack)
        return
    finished.add(pack)
    expected = committed.pop(pack, None)
    if digest.hexdigest() != expected:  # None: no entry commits to these rows
        differ.append(pack)


def _check_terms(conn: db.Connection, report: VerifyReport,
                 mismatches: _OnSecondConnection[_TermsPass]) -> None:
    """Name each record whose blind-word row was altered, removed or added (search would lie about it)."""
    for content_blob in dict.fromkeys(mismatches.result().packs):
        if content_blob is None:
            for (record_id,) in conn.execute(
                    "SELECT DISTINCT record_id FROM record_terms WHERE record_id NOT IN (SELECT id FROM record)"):
                report.problems.append(Problem("unaccounted", f"search terms of {record_id}", "no such record"))
            # A row read after its record's: a second row for a record (its pack's own run was intact).
            for record_id, count in conn.execute(
                    "SELECT record_id, count(*) FROM record_terms GROUP BY record_id HAVING count(*) > 1"):
                report.problems.append(Problem("unaccounted", f"record {record_id}", f"{count} rows of search terms"))
            continue
        # A destroyed record's search terms were destroyed with it (its certificate accounts for them).
        present = {r for (r,) in conn.execute("SELECT id FROM record WHERE content_blob = ? AND id NOT IN "
                                              "(SELECT record_id FROM disposed_record)", (content_blob,))}
        if not present:
            continue  # the records themselves are gone: _check_pack named them
        rows: dict[str, list[str]] = {}
        for record_id, terms in conn.execute(
                "SELECT record_id, terms FROM record_terms WHERE record_id IN "
                "(SELECT id FROM record WHERE content_blob = ?)", (content_blob,)):
            rows.setdefault(str(record_id), []).append(str(terms))
        expected = _committed_term_digests(conn, content_blob)
        if expected is None:
            for record_id in rows:
                report.problems.append(Problem("unaccounted", f"search terms of {record_id}",
                                               "in the index but not in the ledger"))
            continue
        for record_id, digest in expected.items():
            if record_id not in present:
                continue  # the record itself is gone: _check_pack named it
            found = rows.pop(record_id, [])
            label = f"record {record_id}"
            if not found:
                report.problems.append(Problem("missing", label, "its search terms are not in the index"))
            elif len(found) > 1:
                report.problems.append(Problem("unaccounted", label, f"{len(found)} rows of search terms"))
            elif terms_digest(found[0]) != digest:
                report.problems.append(Problem("altered", label, "search terms differ from the ledger"))
        for record_id in rows:
            report.problems.append(Problem("unaccounted", f"search terms of {record_id}",
                                           f"not in the entry of pack {content_blob}"))


def _committed_term_digests(conn: db.Connection, content_blob: str) -> dict[str, Any] | None:
    """Each record's digest of its term row, as its pack's entry (or, before packs listed them, the
    entry that adopted them) commits to; None when no entry does."""
    payload = _latest_payload(conn, "pack", content_blob)
    if payload is not None and f',{_TERMS_SHA256_SUFFIX}' in payload:
        return {record_id: member.get("terms") for record_id, member in _pack_members(payload).items()}
    adopted_terms = _adopted_payload(conn, TERMS, content_blob)
    if adopted_terms is not None and isinstance(adopted_terms.get("records"), dict):
        return dict(adopted_terms["records"])
    return None


def _check_small_tables(conn: db.Connection, report: VerifyReport) -> None:
    for row in _rows(conn, f"SELECT {', '.join(EVENT_COLUMNS)} FROM event"):
        payload = {"event": row, "detail": blob_payload(_blob_ref(conn, row["detail_blob"]))}
        _compare(conn, report, "event", row["id"], payload, f"event {row['id']}")
    for row in _rows(conn, "SELECT * FROM hold"):
        _compare(conn, report, "hold", row["id"], {"hold": row}, f"hold {row['id']}")
    for kind, table in (("plan", "retention_plan"), ("disposition", "disposition")):
        for row in _rows(conn, f"SELECT * FROM {table}"):
            _compare(conn, report, kind, row["id"], {kind: row}, f"{kind} {row['id']}")
    for row in _rows(conn, f"SELECT {', '.join(ALERT_COLUMNS)} FROM alert"):
        _compare(conn, report, "alert", str(row["id"]), alert_payload(row), f"alert {row['id']}")
    for row in _rows(conn, f"SELECT {', '.join(ALERT_EVENT_COLUMNS)} FROM alert_event"):
        _compare(conn, report, "alert_event", str(row["id"]), alert_event_payload(row), f"alert event {row['id']}")
    for row in _rows(conn, f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM delivery"):
        _compare(conn, report, "delivery", str(row["id"]), delivery_payload(row), f"delivery {row['id']}")
    for row in _rows(conn, "SELECT id, name, timezone, schedule FROM custodian"):
        _compare(conn, report, "custodian", row["id"], {"custodian": row}, f"custodian {row['id']}")
    for recipient, label, sealed, at in conn.execute("SELECT recipient, label, sealed, at FROM escrow"):
        _compare(conn, report, "escrow", recipient, escrow_payload(recipient, label, bytes(sealed), at),
                 f"escrow {recipient}")


def _check_capture_spans(report: VerifyReport, spans: _OnSecondConnection[list[str]]) -> None:
    # Derived data, not evidence (no ledger entry): recomputed from the records and their links,
    # which the checks above hold to the ledger. A difference misleads the clock, not the record.
    differ = spans.result()
    if differ:
        named = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        report.problems.append(Problem("altered", "capture_span", f"the rows of {named} differ from the "
                                       "records and links they derive from"))


def _check_search_index(conn: db.Connection, report: VerifyReport,
                        participants: _OnSecondConnection[list[str]], terms: _OnSecondConnection[_TermsPass]) -> None:
    # Derived data too (store/search_index.py): a difference would make search miss or add records.
    differ = sorted(set(participants.result()) | set(misplaced_terms_rows(conn, terms.result().unplaced)))
    if differ:
        named = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        report.problems.append(Problem("altered", "search index", f"the participant or word-row entries of "
                                       f"{named} differ from the rows they derive from"))


_ORPHAN_ENTRIES = """
SELECT DISTINCT l.kind, l.subject FROM ledger l WHERE
   (l.kind = 'capture' AND l.subject NOT IN (SELECT id FROM capture))
OR (l.kind = 'record' AND l.subject NOT IN (SELECT id FROM record))
OR (l.kind = 'event' AND l.subject NOT IN (SELECT id FROM event))
OR (l.kind = 'disclosure' AND l.subject NOT IN (SELECT id FROM disclosure))
OR (l.kind = 'hold' AND l.subject NOT IN (SELECT id FROM hold))
OR (l.kind = 'plan' AND l.subject NOT IN (SELECT id FROM retention_plan))
OR (l.kind = 'disposition' AND l.subject NOT IN (SELECT id FROM disposition))
OR (l.kind = 'link' AND l.subject NOT IN (SELECT record_id || '/' || capture_id FROM record_capture))
OR (l.kind = 'alert' AND l.subject NOT IN (SELECT CAST(id AS TEXT) FROM alert))
OR (l.kind = 'alert_event' AND l.subject NOT IN (SELECT CAST(id AS TEXT) FROM alert_event))
OR (l.kind = 'delivery' AND l.subject NOT IN (SELECT CAST(id AS TEXT) FROM delivery))
OR (l.kind = 'custodian' AND l.subject NOT IN (SELECT id FROM custodian))
OR (l.kind = 'escrow' AND l.subject NOT IN (SELECT recipient FROM escrow))
"""
# Adopted rows that are gone (a capture's blob rows and a pack's terms: its own entry names them).
# The subject is "<table> <key>": split at the space after the table named (instr() is SQLite's own).
_ORPHAN_ADOPTED = f"""
SELECT DISTINCT
    CASE WHEN substr(subject, 1, 6) = 'alert ' THEN 'alert'
         WHEN substr(subject, 1, 10) = 'custodian ' THEN 'custodian' ELSE 'escrow' END,
    substr(subject, CASE WHEN substr(subject, 1, 6) = 'alert ' THEN 7
                         WHEN substr(subject, 1, 10) = 'custodian ' THEN 11 ELSE 8 END)
FROM ledger WHERE kind = '{ADOPT}' AND (
   (substr(subject, 1, 6) = 'alert ' AND substr(subject, 7) NOT IN (SELECT CAST(id AS TEXT) FROM alert))
OR (substr(subject, 1, 10) = 'custodian ' AND substr(subject, 11) NOT IN (SELECT id FROM custodian))
OR (substr(subject, 1, 7) = 'escrow ' AND substr(subject, 8) NOT IN (SELECT recipient FROM escrow)))
"""


def _check_orphan_entries(conn: db.Connection, report: VerifyReport) -> None:
    for kind, subject in [*conn.execute(_ORPHAN_ENTRIES), *conn.execute(_ORPHAN_ADOPTED)]:
        report.problems.append(Problem("missing", f"{kind} {subject}", "in the ledger but not in the index"))


_UNREFERENCED_BLOBS = f"""
SELECT id, owner, slot FROM blob WHERE id NOT IN (
    SELECT raw_blob FROM capture UNION SELECT envelope_blob FROM capture WHERE envelope_blob IS NOT NULL
    UNION SELECT content_blob FROM record UNION SELECT blob_id FROM attachment WHERE blob_id IS NOT NULL
    UNION SELECT detail_blob FROM event
    UNION SELECT blob.id FROM blob JOIN capture ON capture.id = blob.owner WHERE blob.slot = '{DETAIL_SLOT}')
"""


def _check_blob_references(conn: db.Connection, report: VerifyReport) -> None:
    for blob_id, owner, slot in conn.execute(_UNREFERENCED_BLOBS):
        report.problems.append(Problem("unaccounted", f"blob {blob_id}", f"{owner}/{slot}: nothing uses it"))
    for (blob_id,) in conn.execute("SELECT DISTINCT blob_id FROM chunk WHERE blob_id NOT IN (SELECT id FROM blob)"):
        report.problems.append(Problem("unaccounted", f"blob {blob_id}", "chunks with no blob row"))
    certified = certified_captures(conn)
    destroyed_blobs = {b["id"]: (c, b) for c, capture in certified.items() for b in capture["blobs"]}
    for blob_id, owner, slot in conn.execute(
            "SELECT id, owner, slot FROM blob WHERE id NOT IN (SELECT blob_id FROM chunk)"):
        if blob_id in destroyed_blobs:
            continue  # destroyed under a certificate of destruction (checked in _check_disposals)
        report.problems.append(Problem("missing", f"blob {blob_id}", f"{owner}/{slot}: no sealed data"))
    for (blob_id,) in db.stream(conn, "SELECT DISTINCT blob_id FROM chunk"):
        if blob_id in destroyed_blobs:
            report.problems.append(Problem("unaccounted", f"blob {blob_id}", f"sealed bytes remain, yet certificate "
                                           f"{certified[destroyed_blobs[blob_id][0]]['certificate']} destroyed them"))
    report.blobs = conn.execute("SELECT count(*) FROM blob").fetchone()[0]


def _check_sealed(conn: db.Connection, objects: ObjectStore | None,
                  tenures: Mapping[str, date]) -> VerifyReport:
    """The sealed bytes re-hashed (:func:`_hash_sealed_chunks`), then, with a bucket, the bucket
    held to the chunk rows of the same snapshot (:func:`_check_bucket`)."""
    pointed: set[str] = set()
    report = _hash_sealed_chunks(conn, objects, pointed)
    if objects is not None:
        _check_bucket(conn, objects, pointed, tenures, report)
    return report


def _hash_sealed_chunks(conn: db.Connection, objects: ObjectStore | None = None,
                        pointed: set[str] | None = None) -> VerifyReport:
    """Blobs whose sealed bytes differ from their digest (in ``problems``), and the bytes read
    (from the bucket where a chunk row points there: a segment missing or unreadable is named,
    and so is a pointer to a segment outside the blob's own capture). ``pointed``: filled with
    the segments the chunk rows point to."""
    # One pass over every sealed byte in storage order (a blob's chunks are written
    # together, so they are adjacent): each blob's digest is what the ledger committed to.
    report = VerifyReport()
    cache = SegmentCache(objects) if objects is not None else None
    current: tuple[str, str, str, int, str] | None = None
    digest = hashlib.sha256()
    count = 0
    for blob_id, capture_id, owner, slot, chunks, expected, data in db.stream(
        conn, "SELECT c.blob_id, b.capture_id, b.owner, b.slot, b.chunks, b.digest, c.data FROM chunk c "
        "JOIN blob b ON b.id = c.blob_id ORDER BY c.rowid", batch=_CHUNKS_AT_ONCE
    ):
        if current is None or current[0] != blob_id:
            _finish_blob(report, current, digest, count)
            current, digest, count = (blob_id, owner, slot, chunks, expected), hashlib.sha256(), 0
        try:
            found = read_pointer(bytes(data))
            if found is not None:
                if pointed is not None:
                    pointed.add(found.key)
                if not found.key.startswith(capture_prefix(capture_id)):
                    report.problems.append(Problem(
                        "altered", f"blob {blob_id}", f"{owner}/{slot}: its sealed bytes are pointed to in "
                        f"{found.key}, outside its own capture's segments ({capture_prefix(capture_id)})"))
            data = resolve(bytes(data), cache)
        except TwentydayError as error:  # IntegrityError, or the bucket not answering
            report.problems.append(Problem("missing", f"blob {blob_id}", f"{owner}/{slot}: {error}"))
            continue
        digest.update(data)
        count += 1
        report.sealed_bytes += len(data)
    _finish_blob(report, current, digest, count)
    return report


def _finish_blob(report: VerifyReport, blob: tuple[str, str, str, int, str] | None,
                 digest: Any, count: int) -> None:
    if blob is None:
        return
    blob_id, owner, slot, chunks, expected = blob
    if digest.hexdigest() != expected or count != chunks:
        report.problems.append(Problem("altered", f"blob {blob_id}",
                                       f"{owner}/{slot}: sealed bytes differ from the ledger"))


CAPTURES_PREFIX = "captures/"
#: HEAD requests in flight at once while the segments' locks are read.
LOCK_READERS = 8


def _capture_of(key: str) -> str:
    """The capture a segment's key is under (``captures/<capture id>/<sha256>``), '' when none."""
    parts = key.split("/")
    return parts[1] if len(parts) == 3 and parts[0] + "/" == CAPTURES_PREFIX else ""


def _check_bucket(conn: db.Connection, objects: ObjectStore, pointed: Set[str], tenures: Mapping[str, date],
                  report: VerifyReport) -> None:
    """The segments the chunk rows point to are in the bucket, locked and held as their captures' records
    require; no destroyed capture's version remains; strays counted (see the module's docstring, 6)."""
    try:
        listed: dict[str, list[Version]] = {}
        for version in objects.catalogue(CAPTURES_PREFIX):
            listed.setdefault(version.key, []).append(version)
    except TwentydayError as error:
        report.problems.append(Problem("missing", f"bucket {objects.describe()}", _bucket_failure(error)))
        return
    report.objects = 0
    destroyed = dict(conn.execute("SELECT capture_id, disposition_id FROM disposed_capture").fetchall())
    remaining: Counter[str] = Counter()
    strays = stray_bytes = overwritten = 0
    checked: list[tuple[str, list[Version]]] = []
    for key in sorted(listed.keys() | pointed):
        versions = [v for v in listed.get(key, []) if not v.marker]
        capture = _capture_of(key)
        if capture in destroyed:
            remaining[capture] += len(versions)
        elif key not in pointed:
            strays += len(versions)
            stray_bytes += sum(v.size for v in versions)
        elif not versions:
            report.problems.append(Problem("missing", f"segment {key}", f"not in {objects.describe()}"))
        else:
            if len(listed[key]) > 1:
                overwritten += 1
                versions = [v for v in versions if _holds_its_name(objects, v)] if len(versions) > 1 else versions
            if versions:  # none holding the bytes its name commits to: the blobs it holds are named already
                checked.append((key, versions))
    for capture, count in sorted(remaining.items()):
        if count:
            report.problems.append(Problem("unaccounted", f"capture {capture}", f"{count} sealed object version(s) "
                                           f"remain in the bucket, yet certificate {destroyed[capture]} destroyed "
                                           "them"))
    now = datetime.now(UTC)
    locks = capture_locks(conn, tenures, as_written=True)
    held = holds.captures_held(conn, now)
    with ThreadPoolExecutor(max_workers=LOCK_READERS, thread_name_prefix="twentyday-verify-locks") as pool:
        states = list(pool.map(lambda item: _lock_states(objects, item[1]), checked))
    loose_holds = 0
    for (key, versions), found in zip(checked, states, strict=True):
        report.objects += 1
        report.object_bytes += versions[0].size
        if isinstance(found, str):
            report.problems.append(Problem("missing", f"segment {key}", f"its lock cannot be read ({found})"))
            continue
        capture = _capture_of(key)
        required = locks.get(capture)
        _check_lock(report, key, capture, required, found, now)
        if capture in held:
            if not any(state.legal_hold for state in found):
                report.problems.append(Problem("unlocked", f"segment {key}", f"capture {capture} holds a record an "
                                               "active legal hold matches, yet the segment carries no legal hold"))
        elif any(state.legal_hold for state in found):
            loose_holds += 1
    report.stray_objects = strays
    if strays:
        report.notes.append(f"{strays} object version(s) ({stray_bytes} bytes) under {CAPTURES_PREFIX} that no "
                            "chunk row points to: segments of captures rolled back after their writes (a crash, "
                            "a failed item) or committed after verify began; sealed like every segment, and part "
                            "of no record the index holds")
    if overwritten:
        report.notes.append(f"{overwritten} segment(s) with another version or a delete marker over their name "
                            "(written with the bucket's key, not by twentyday): the version whose bytes the name "
                            "commits to is the one read and checked")
    if loose_holds:
        report.notes.append(f"{loose_holds} segment(s) carry a legal hold that no active hold matches now (a hold "
                            "released or expired, or one whose words their records do not hold)")


def _holds_its_name(objects: ObjectStore, version: Version) -> bool:
    """Whether a version's bytes are those its segment's name commits to (read whole: a rare case)."""
    try:
        data = objects.read(version.key, version_id=version.version_id)
    except IntegrityError:
        return False
    return hashlib.sha256(data).hexdigest() == version.key.rpartition("/")[2]


def _lock_states(objects: ObjectStore, versions: Sequence[Version]) -> list[LockState] | str:
    try:
        return [objects.lock_state(v.key, v.version_id) for v in versions]
    except TwentydayError as error:
        return _bucket_failure(error)


def _check_lock(report: VerifyReport, key: str, capture: str, required: datetime | None,
                found: Sequence[LockState], now: datetime) -> None:
    """A segment is locked in COMPLIANCE mode at least until ``required`` (S3 keeps whole seconds), unless
    that time has passed: a capture whose records may be destroyed needs no lock (none is written then)."""
    if required is None:
        return  # no capture row: the blob rows pointing here are named by the checks on captures and blobs
    required = required.replace(microsecond=0)
    if required <= now:
        return
    locked = [s.until for s in found if s.mode == COMPLIANCE and s.until is not None]
    if locked and max(locked) >= required:
        return
    need = f"capture {capture}'s records are kept until {required.isoformat()}"
    if locked:
        detail = f"locked until {max(locked).isoformat()}, yet {need}"
    else:
        modes = sorted({s.mode for s in found if s.mode})
        detail = (f"locked in {', '.join(modes)} mode only (which the bucket's owner can lift)" if modes
                  else "not locked") + f", yet {need}"
    report.problems.append(Problem("unlocked", f"segment {key}", detail))


#: The mark migration 4 left: disclosures whose ledger entry is at or after it must be signed.
DISCLOSURES_SIGNED_FROM = "disclosures_signed_from"
_TRAILING = "entries after the last signed checkpoint"


def check_disclosures(conn: db.Connection, report: VerifyReport,
                      signers: Mapping[str, ed25519.Ed25519PublicKey], officer_entries: Set[int] = frozenset()) -> None:
    """Every disclosure row equals its ledger entry and is signed by an officer key the config names.

    The signature (:meth:`Disclosure.message`) covers the row and the ledger hash its entry
    extends, so neither the daemon's key nor the disk is enough to forge, alter or move one.
    Named: a signature that does not verify, a signer not in ``signers``, and an unsigned row
    whose entry is at or after the migration's mark or after any signed disclosure (rows from
    before signing rest on the daemon's checkpoints). Entries after the last checkpoint are
    accepted when each is a disclosure whose signature verified: an officer's ``show`` appends
    them and the daemon's next checkpoint covers them.
    """
    mark = conn.execute("SELECT value FROM meta WHERE key = ?", (DISCLOSURES_SIGNED_FROM,)).fetchone()
    signed_from = int(mark[0]) if mark and str(mark[0]).isdigit() else 1
    entries = {subject: (seq, prev) for seq, subject, prev in conn.execute(
        "SELECT seq, subject, prev FROM ledger WHERE kind = 'disclosure' ORDER BY seq")}
    rows = sorted(_rows(conn, "SELECT * FROM disclosure"), key=lambda r: entries.get(r["id"], (0, ""))[0])
    first_signed = min((entries[r["id"]][0] for r in rows if r["signature"] and r["id"] in entries), default=None)
    authenticated: set[int] = set(officer_entries)  # holds, plans, certificates: see check_officer_rows
    for row in rows:
        label = f"disclosure {row['id']}"
        before_signing = row["signer"] is None and row["signature"] is None
        stored = {k: v for k, v in row.items() if not (before_signing and k in ("signer", "signature"))
                  and not (k == "recipient_address" and v is None)}  # NULL: none named, not in the entry
        _compare(conn, report, "disclosure", row["id"], {"disclosure": stored}, label)
        if row["id"] not in entries:
            continue  # named just above: no entry, so no place in the chain for a signature to cover
        seq, prev = entries[row["id"]]
        disclosure = Disclosure.from_row(row)
        if not disclosure.signature:
            if seq >= signed_from or (first_signed is not None and seq > first_signed):
                report.problems.append(Problem("signature", label, "not signed by an officer key"))
            continue
        key = signers.get(disclosure.signer)
        if key is None:
            report.problems.append(Problem("signature", label, f"signed by {disclosure.signer or '(none)'}, "
                                           "a key no public key in keys.recipients carries"))
        elif not disclosure.signature_ok(key, prev):
            report.problems.append(Problem("signature", label, "the officer's signature does not verify "
                                           "(altered after it was signed, or moved in the ledger)"))
        elif not any(p.object == label for p in report.problems):  # and its entry equals the row
            authenticated.add(seq)
    last_checkpoint = conn.execute("SELECT coalesce(max(seq), 0) FROM checkpoint").fetchone()[0]
    trailing = {seq for (seq,) in conn.execute("SELECT seq FROM ledger WHERE seq > ?", (last_checkpoint,))}
    if trailing and trailing <= authenticated:
        report.problems = [p for p in report.problems if not (p.kind == "unaccounted" and p.detail == _TRAILING)]


def certified_captures(conn: db.Connection) -> dict[str, dict[str, Any]]:
    """Each capture a certificate of destruction names: its keyslots (recipient, SHA-256 of the sealed key)
    and blobs as they were, and the certificate's id."""
    found: dict[str, dict[str, Any]] = {}
    for disposition_id, body in conn.execute("SELECT id, body FROM disposition"):
        try:
            captures = json.loads(body).get("captures", [])
        except (ValueError, AttributeError):
            continue  # an unreadable certificate: its comparison with the ledger names it
        for capture in captures if isinstance(captures, list) else []:
            found[str(capture.get("id"))] = {"certificate": disposition_id, "keyslots": capture.get("keyslots", []),
                                             "blobs": capture.get("blobs", [])}
    return found


def check_officer_rows(conn: db.Connection, report: VerifyReport,
                       signers: Mapping[str, ed25519.Ed25519PublicKey]) -> set[int]:
    """Every entry of a hold, plan or certificate is signed by an officer key the config names, over the row
    and the ledger hash it extends (:mod:`officer_rows`); the tombstones equal what the certificates list.
    Returns the sequence numbers authenticated (entries past the last checkpoint may be these)."""
    authenticated: set[int] = set()
    kinds = tuple(OFFICER_KINDS)
    for seq, kind, subject, payload, prev in conn.execute(
            f"SELECT seq, kind, subject, payload, prev FROM ledger WHERE kind IN ({', '.join('?' * len(kinds))}) "
            "ORDER BY seq", kinds):
        label = f"{kind} {subject} (ledger entry {seq})"
        row = _pack_entry(payload).get(kind)
        if not isinstance(row, dict):
            report.problems.append(Problem("altered", label, "the entry holds no row"))
            continue
        key = signers.get(str(row.get("signer") or ""))
        if key is None:
            report.problems.append(Problem("signature", label, f"signed by {row.get('signer') or '(none)'}, a key "
                                           "no public key in keys.recipients carries"))
        elif not officer_signature_ok(kind, row, key, prev):
            report.problems.append(Problem("signature", label, "the officer's signature does not verify (altered "
                                           "after it was signed, or moved in the ledger)"))
        else:
            authenticated.add(seq)
    _check_disposals(conn, report)
    return authenticated


def _check_disposals(conn: db.Connection, report: VerifyReport) -> None:
    """The tombstones (disposed_record, disposed_capture) are exactly what the certificates list."""
    listed: dict[tuple[str, str], tuple[str, str]] = {}
    for disposition_id, at, body in conn.execute("SELECT id, at, body FROM disposition"):
        try:
            certificate = json.loads(body)
        except ValueError:
            continue
        for record in certificate.get("records", []):
            listed[("record", str(record.get("id")))] = (disposition_id, at)
        for capture in certificate.get("captures", []):
            listed[("capture", str(capture.get("id")))] = (disposition_id, at)
    for what, table, column in (("record", "disposed_record", "record_id"),
                                ("capture", "disposed_capture", "capture_id")):
        for object_id, disposition_id, at in conn.execute(f"SELECT {column}, disposition_id, disposed_at FROM {table}"):
            if listed.pop((what, object_id), None) != (disposition_id, at):
                report.problems.append(Problem("unaccounted", f"{what} {object_id}", "marked destroyed, but no "
                                               "certificate of destruction lists it so"))
    for what, object_id in listed:
        report.problems.append(Problem("missing", f"{what} {object_id}", "a certificate of destruction lists it, "
                                       "but its tombstone is not in the index"))
