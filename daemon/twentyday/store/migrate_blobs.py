"""``twentyday migrate --to CONFIG``: an embedded archive's sealed blobs moved into an S3 bucket with Object Lock.

The source is the archive of ``--config``, whose sealed chunks are in its index's ``chunk`` rows;
the target is the config ``--to`` names: the same officer keys (``keys.recipients``) and pinned
ledger key (``keys.ledger_key``), another ``data_dir``, and ``[store] blobs = "s3://…"``. The
source is only read. In order:

1. the bucket is made with Object Lock, as ``twentyday create`` makes it (a bucket without Object
   Lock, or one holding objects already, is refused on a first run);
2. into the target's ``data_dir`` (made 0700; one holding an archive is refused): the daemon's
   secrets (every file of ``secrets/``, 0600, the public keys 0644, the folder 0700, as
   ``Archive.create`` makes them) and the index, one consistent snapshot by SQLite's backup API
   (0600). A marker file, :data:`MARKER`, says a migration is under way and of what;
3. capture by capture, in storage order, the capture's chunks are written as segments with its
   lock and legal hold, by the writer's own :class:`~twentyday.store.blobstore.BlobStore` (the same
   segment boundaries, names and pointers): until the capture's records may be destroyed
   (:func:`~twentyday.store.object_locks.capture_locks`, the tenures as the target config knows
   them) and legally held when an active hold matches one of its records. After the PUTs of a batch
   of captures are written, their chunk rows become pointers in one transaction;
4. the target index is VACUUMed (the sealed bytes leave it), the signed head is published to the
   bucket's ``heads/`` as ``serve`` publishes it, and the marker is removed.

The ledger is not touched: a blob's digest is of its sealed bytes, the same wherever they are.

Stopped anywhere (a kill, a failed PUT, a full disk), a second run goes on where the first stopped:
captures whose rows are pointers already are passed over, and a segment an earlier run wrote (its
key is the SHA-256 of its bytes, so the same bytes give the same key) is not written again. Should
the source have taken new captures meanwhile, its index is copied again and the run goes on the same
way. Nothing is duplicated in the index (rows are rewritten in place, by their key).

:func:`agreement` then runs ``verify`` on both archives and compares what they prove: the same
ledger (entries, head, last signed checkpoint), the same captures, records and blobs, the same
sealed bytes, and the same blob digests (the SHA-256 over every blob row's id and digest, in id
order: the digests the ledger commits the sealed bytes to).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.config import BlobTarget, Config
from twentyday.crypto import keys, secrets
from twentyday.crypto.keys import replace_file
from twentyday.errors import ConfigError, IntegrityError, InvalidArgument, NotFoundError
from twentyday.retention import Rule
from twentyday.store import db, holds, schema
from twentyday.store.blobstore import BlobStore
from twentyday.store.ledger import signed_head
from twentyday.store.object_locks import capture_locks
from twentyday.store.objects import POINTER_PREFIX, ObjectStore, segment_key
from twentyday.store.verify import VerifyReport, open_index_read_only, open_read_only, verify_archive

INDEX_FILE = "index.db"
#: In the target's data_dir while a migration is under way (JSON: the source, its head, the progress).
MARKER = "migrating.json"
#: Captures whose chunk rows are rewritten in one transaction (``--batch``), at most.
BATCH_CAPTURES = 200
#: Sealed bytes written before a batch is committed, whatever its number of captures.
BATCH_BYTES = 256 * 1024 * 1024
#: What verify proves that both archives must have alike (``VerifyReport`` fields).
COMPARED = ("ledger_entries", "head", "checkpoint", "captures", "records", "blobs", "sealed_bytes")

# Every chunk in storage order (a capture's chunks were written together), with its blob's row.
_CHUNKS = """
SELECT c.rowid, b.capture_id, b.id, b.owner, b.slot, b.size, b.chunks, b.digest, c.seq, c.data
FROM chunk c JOIN blob b ON b.id = c.blob_id WHERE c.rowid > ? ORDER BY c.rowid
"""


@dataclass
class MigrationReport:
    """What a run moved (``captures``, ``objects``, ``sealed_bytes``) and what an earlier run had."""

    captures: int = 0
    objects: int = 0
    sealed_bytes: int = 0
    #: Captures an earlier, stopped run had moved (committed: their rows were pointers already).
    earlier_captures: int = 0
    #: Segments an earlier run had written (found in the bucket, not written again).
    earlier_objects: int = 0
    resumed: bool = False
    #: The source's index was copied again: it took captures since the earlier run began.
    recopied: bool = False
    seconds: float = 0.0
    bucket: str = ""
    head: str = ""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Agreement:
    """``verify`` of both archives and what was compared (:data:`COMPARED`, and the blob digests)."""

    source: VerifyReport
    target: VerifyReport
    source_blob_digests: str
    target_blob_digests: str
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.source.ok and self.target.ok and not self.differences


def _fingerprints(config: Config) -> set[str]:
    return {keys.load_recipient(path).fingerprint for path in config.recipients}


def check_configs(source: Config, target: Config) -> BlobTarget:
    """The two configs make a migration: an embedded source, a bucket target, the same keys."""
    if target.blobs is None:
        raise ConfigError("names no bucket: 'migrate --to' moves the blobs into the bucket of [store] blobs",
                          path=str(target.path), key="store.blobs")
    check_same_archive(source, target)
    return target.blobs


def check_same_archive(source: Config, target: Config) -> None:
    """The two configs are of one archive moved: an embedded source, another data_dir, the same keys."""
    if source.blobs is not None:
        raise InvalidArgument(f"{source.path}: this archive keeps its sealed blobs in s3://{source.blobs.bucket} "
                              "already", argument="--config")
    if target.data_dir.resolve() == source.data_dir.resolve():
        raise ConfigError("is the source's own data_dir: the migrated archive goes into another",
                          path=str(target.path), key="data_dir")
    if not source.ledger_key:
        raise ConfigError("not set: both archives are verified at the end, with the key pinned outside them; "
                          "run 'twentyday keys pin-ledger'", path=str(source.path), key="keys.ledger_key")
    if target.ledger_key != source.ledger_key or set(target.former_ledger_keys) != set(source.former_ledger_keys):
        raise ConfigError("must pin the same ledger keys as the source's config (the archive and its ledger "
                          "are the same)", path=str(target.path), key="keys.ledger_key")
    if _fingerprints(target) != _fingerprints(source):
        raise ConfigError("must name the same officer keys as the source's config (every capture is sealed "
                          "to them)", path=str(target.path), key="keys.recipients")


def _source_head(conn: db.Connection) -> str:
    row = conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return f"{row[0]}:{row[1]}" if row else "0:"


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise IntegrityError(f"{path}: an unreadable migration marker; move the data_dir aside and start "
                             "again") from None
    return found if isinstance(found, dict) else {}


def _write_marker(path: Path, marker: Mapping[str, Any]) -> None:
    replace_file(path, json.dumps(marker, sort_keys=True).encode() + b"\n", 0o600)


def _copy_secrets(source: Path, target: Path) -> None:
    """Every file of the daemon's ``secrets/``, with the modes ``Archive.create`` gives them."""
    secrets.load(source)  # checked as the daemon checks them: others may not read them, they are whole
    folder = secrets.secrets_dir(target)
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    for path in sorted(secrets.secrets_dir(source).iterdir()):
        if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
            replace_file(folder / path.name, path.read_bytes(), 0o644 if path.name.endswith(".pub") else 0o600)


def _copy_index(source: Path, target: Path) -> None:
    """One consistent snapshot of the source's index (SQLite's backup API in one step), 0600, put in place whole."""
    partial = target.with_name(target.name + ".copying")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    origin = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        origin.backup(copy, pages=-1)
        copy.execute("PRAGMA journal_mode = DELETE")  # one file to move; the archive's settings come back below
    finally:
        copy.close()
        origin.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    for stale in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        stale.unlink(missing_ok=True)
    os.replace(partial, target)


class _ResumingStore(ObjectStore):
    """The target bucket, where a segment an earlier run wrote (the same bytes: the same key) is not written again."""

    def __init__(self, target: BlobTarget, present: set[str]) -> None:
        super().__init__(target)
        self.present = present
        self.written = 0
        self.found = 0

    def put_segment(self, capture_id: str, data: bytes, retain_until: datetime | None, legal_hold: bool) -> tuple[
            str, Future[str]]:
        key = segment_key(capture_id, data)
        if key in self.present:
            self.found += 1
            done: Future[str] = Future()
            done.set_result("")
            return key, done
        self.written += 1
        return super().put_segment(capture_id, data, retain_until, legal_hold)


class _Batch:
    """The pointers of the captures moved since the last commit, rewritten in one transaction."""

    def __init__(self) -> None:
        self.rows: list[tuple[bytes, str, int]] = []
        self.captures = 0
        self.bytes = 0
        self.last_rowid = 0

    def insert(self, table: str, columns: Any, rows: Any) -> None:
        if table == "chunk":  # the blob rows are in the index already, unchanged
            self.rows.extend((data, blob_id, seq) for blob_id, seq, data in rows)


def migrate_blobs(source: Config, target: Config, *, batch_captures: int = BATCH_CAPTURES,
                  progress: Callable[[MigrationReport], None] | None = None) -> MigrationReport:
    """Move the archive of ``source`` (embedded) into ``target`` (its bucket and data_dir); see the module.

    The caller keeps ``serve`` off the source meanwhile (the CLI holds its lock)."""
    started = time.monotonic()
    bucket_target = check_configs(source, target)
    source_index = source.data_dir / INDEX_FILE
    if not source_index.exists():
        raise NotFoundError(f"{source_index}: no archive here (run 'twentyday init' first)")
    reader = open_read_only(source_index)
    try:
        schema.check_current(reader)
        head_now = _source_head(reader)
        head = signed_head(reader)
    finally:
        reader.close()
    report = MigrationReport(bucket=f"s3://{bucket_target.bucket}", head=head.text() if head is not None else "")
    data_dir = target.data_dir
    target_index = data_dir / INDEX_FILE
    marker_path = data_dir / MARKER
    marker = _read_marker(marker_path)
    if marker is None and any((data_dir / name).exists() for name in (INDEX_FILE, "secrets", "spool")):
        raise ConfigError("holds an archive already; 'migrate --to' writes a new one (name an empty data_dir)",
                          path=str(target.path), key="data_dir")
    if marker is not None and marker.get("source") != str(source.data_dir.resolve()):
        raise ConfigError(f"holds an unfinished migration of another archive ({marker.get('source')}); name "
                          "another data_dir", path=str(target.path), key="data_dir")
    if marker is not None and marker.get("bucket") != bucket_target.bucket:
        raise ConfigError(f"the unfinished migration in {data_dir} writes into s3://{marker.get('bucket')}; name that "
                          "bucket again to go on, or move the data_dir aside to start over", path=str(target.path),
                          key="store.blobs")
    objects = ObjectStore(bucket_target)
    try:
        objects.ensure_bucket(create=True)
        present = set(objects.keys("captures/"))
        if marker is None and (present or next(objects.keys("heads/"), None) is not None):
            raise ConfigError(f"{objects.describe()} holds objects already (another archive's?); migrate into "
                              "a new bucket", path=str(target.path), key="store.blobs")
    finally:
        objects.close()
    report.resumed = marker is not None
    if marker is None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(data_dir, 0o700)
        marker = {"source": str(source.data_dir.resolve()), "bucket": bucket_target.bucket}
    if marker.get("source_head") != head_now or not target_index.exists():
        report.recopied = report.resumed and target_index.exists()
        marker.update(source_head=head_now, done_rowid=0, moved_captures=0)
        _write_marker(marker_path, marker)
        _copy_secrets(source.data_dir, data_dir)
        _copy_index(source_index, target_index)
    _move(source_index, target, marker, marker_path, present, report, batch_captures, progress)
    db = schema.connect(str(target_index))
    try:
        db.conn.execute("VACUUM")
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.conn.close()
    _publish_head(bucket_target, report.head)
    marker_path.unlink()
    report.seconds = time.monotonic() - started
    return report


def _move(source_index: Path, target: Config, marker: dict[str, Any], marker_path: Path, present: set[str],
          report: MigrationReport, batch_captures: int,
          progress: Callable[[MigrationReport], None] | None) -> None:
    """Capture by capture, the chunks into segments; a batch's rows rewritten once its PUTs are written."""
    assert target.blobs is not None
    conn = schema.connect(str(target.data_dir / INDEX_FILE)).conn
    source = open_read_only(source_index)
    objects = _ResumingStore(target.blobs, present)
    tenures = {c.id: c.tenure_ended for c in target.custodians if c.tenure_ended is not None}
    try:
        def rule_of(custodian_id: str) -> Rule:  # the writer's choice for a capture with no record
            known = target.custodian(custodian_id)
            return target.schedule(known.schedule if known else "grs-6.1-011").rule()

        locks = capture_locks(conn, tenures, as_written=False, unrecorded=rule_of)
        held = holds.captures_held(conn, datetime.now(UTC))
        batch = _Batch()
        report.earlier_captures = int(marker.get("moved_captures") or 0)  # those before done_rowid

        def commit() -> None:
            objects.wait()  # a failed PUT stops here: nothing of the batch is committed
            if batch.rows:
                db.begin_write(conn)
                try:
                    cursor = conn.executemany("UPDATE chunk SET data = ? WHERE blob_id = ? AND seq = ?", batch.rows)
                    if cursor.rowcount != len(batch.rows):
                        raise IntegrityError(f"{target.data_dir / INDEX_FILE}: its chunk rows differ from the "
                                             "source's; move the data_dir aside and start again")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            if batch.last_rowid:
                marker.update(done_rowid=batch.last_rowid, moved_captures=report.earlier_captures + report.captures)
                _write_marker(marker_path, marker)
            report.objects = objects.written
            report.earlier_objects = objects.found
            if progress is not None and batch.captures:
                progress(report)
            batch.rows, batch.captures, batch.bytes = [], 0, 0

        rows = source.execute(_CHUNKS, (int(marker.get("done_rowid") or 0),))
        for capture_id, run in itertools.groupby(rows, key=lambda row: str(row[1])):
            first, chunks = _peek(run)
            if _moved(conn, first[2], first[8]):
                for row in chunks:
                    batch.last_rowid = row[0]
                report.earlier_captures += 1
                continue
            _write_capture(capture_id, chunks, conn, objects, locks.get(capture_id), capture_id in held,
                           batch, report)
            if batch.captures >= batch_captures or batch.bytes >= BATCH_BYTES:
                commit()
        commit()
    finally:
        objects.forget()
        objects.close()
        source.close()
        conn.close()


def _peek(rows: Iterator[Any]) -> tuple[Any, Iterator[Any]]:
    """The first of ``rows`` (a group: never empty), and all of them."""
    first = next(rows)
    return first, itertools.chain([first], rows)


def _moved(conn: db.Connection, blob_id: str, seq: int) -> bool:
    found = conn.execute("SELECT substr(data, 1, ?) FROM chunk WHERE blob_id = ? AND seq = ?",
                         (len(POINTER_PREFIX), blob_id, seq)).fetchone()
    return found is not None and bytes(found[0]) == POINTER_PREFIX


def _write_capture(capture_id: str, chunks: Iterator[Any], conn: db.Connection, objects: ObjectStore,
                   until: datetime | None, held: bool, batch: _Batch, report: MigrationReport) -> None:
    """One capture's chunks as its segments (the writer's BlobStore), locked and held from the first PUT."""
    store = BlobStore(conn, batch.insert, objects)
    store.finish(until or datetime.now(UTC), held)  # known before any segment: each is written with it
    for blob_id, blob_rows in itertools.groupby(chunks, key=lambda row: str(row[2])):
        first, rows = _peek(blob_rows)

        def sealed(rows: Iterator[Any] = rows) -> Iterator[bytes]:
            for row in rows:
                data = bytes(row[9])
                batch.last_rowid = row[0]
                batch.bytes += len(data)
                report.sealed_bytes += len(data)
                yield data

        ref = store.put(blob_id, capture_id, first[3], first[4], first[5], sealed())
        if first[8] == 0 and ref.chunks == first[6] and ref.digest != first[7]:
            raise IntegrityError(f"blob {blob_id}: its sealed bytes differ from their digest in the source; run "
                                 "'twentyday verify' on it (nothing of this capture was moved)")
    store.flush()
    batch.captures += 1
    report.captures += 1


def _publish_head(target: BlobTarget, head: str) -> None:
    """The migrated archive's signed head in the bucket (``heads/<seq>``), as ``serve`` publishes it, once."""
    if not head:
        return
    seq = int(head.split(":", 1)[0])
    objects = ObjectStore(target)
    try:
        if f"heads/{seq:012d}" not in set(objects.keys("heads/")):
            objects.publish_head(seq, head)
    finally:
        objects.close()


def _blob_digests(config: Config) -> str:
    """SHA-256 over every blob row's id and digest, in id order."""
    conn = open_index_read_only(config)  # the target's may be in PostgreSQL (store/migrate_index.py)
    digest = hashlib.sha256()
    try:
        for blob_id, blob_digest in conn.execute("SELECT id, digest FROM blob ORDER BY id"):
            digest.update(f"{blob_id} {blob_digest}\n".encode())
    finally:
        conn.close()
    return digest.hexdigest()


def agreement(source: Config, target: Config,
              signers: Mapping[str, ed25519.Ed25519PublicKey] | None = None) -> Agreement:
    """``verify`` of both archives, and whether they prove the same (:data:`COMPARED`, the blob digests)."""
    found = Agreement(verify_archive(source, signers=signers), verify_archive(target, signers=signers),
                      _blob_digests(source), _blob_digests(target))
    for name in COMPARED:
        mine, theirs = getattr(found.source, name), getattr(found.target, name)
        if mine != theirs:
            found.differences.append(f"{name}: {mine} in the source, {theirs} in the target")
    if found.source_blob_digests != found.target_blob_digests:
        found.differences.append("blob digests: the blob rows' digests differ")
    return found
