"""``twentyday migrate --to CONFIG`` where CONFIG puts the index in PostgreSQL (``[store] index``).

The source is an embedded archive (its index and sealed blobs in ``data_dir/index.db``), only read;
the target config names the same keys, another ``data_dir`` and an empty PostgreSQL database:

(a) ``[store] index`` alone: the blobs stay in the index, their bytes copied as they are. The
    daemon's secrets go into the target's ``data_dir`` (as :mod:`migrate_blobs` copies them) and
    the source's index is copied into PostgreSQL (:func:`pg_copy.copy_index`) straight from its file.
(b) ``[store] index`` and ``[store] blobs = "s3://…"``, the full scale-out: :func:`migrate_blobs`
    moves the blobs into the bucket, which leaves in the target's ``data_dir`` an index of pointers
    (the *intermediate*); that one is copied into PostgreSQL, then removed, so that nothing can
    read a stale index beside the one in PostgreSQL.

Before anything is written, :func:`pg_copy.check_copy` refuses what the copy would refuse: a
database that is not empty, text PostgreSQL cannot hold (U+0000 in a name). After the copy,
:func:`pg_copy.compare_indexes` must find the copied index and PostgreSQL's alike, row by row;
then the archive's secrets check is written (:mod:`nodes`: a second node can join) and the
intermediate removed. The CLI then runs ``verify`` on both archives and compares them
(:func:`migrate_blobs.agreement`).

Stopped anywhere, a second run goes on. :data:`MARKER` in the target's ``data_dir`` says a
migration is under way. The copy is one PostgreSQL transaction: stopped during it, the database is
empty again and the copy is simply made again. Stopped while the blobs move, :func:`migrate_blobs`
goes on where it stopped (its own marker). Stopped after the copy committed, the rerun finds the
archive in PostgreSQL: at the source's ledger head, it compares the copy again (unless the secrets
check, written only after a comparison found no difference, is there already) and finishes; at
another head (serve ran on the source meanwhile), it refuses, saying to empty the database.

Measured on an archive of 20,000 mails (320,006 index rows, a 167 MB index; PostgreSQL 15 and a
one-node Ceph RGW on the same two shared cores), the whole ``migrate --to`` as run from the CLI:
(a) 26 s: 9 s here (the check, the copy 2.9 s, the comparison), the rest ``verify`` of both
archives; (b) 182 s: 70 s here (the blobs into 20,000 segments 60 s, the copy 3.0 s), then
``verify`` of both, the target's reading every segment back from the bucket (~100 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from twentyday.config import Config
from twentyday.crypto import secrets
from twentyday.errors import ConfigError, IntegrityError, NotFoundError, TwentydayError
from twentyday.store import migrate_blobs, pg_copy, pg_schema
from twentyday.store.migrate_blobs import INDEX_FILE, MigrationReport, check_configs, check_same_archive
from twentyday.store.nodes import SECRETS_CHECK, record_secrets_check
from twentyday.store.verify import open_read_only

#: In the target's data_dir while a migration into PostgreSQL is under way (JSON: the source, the database).
MARKER = "migrating-index.json"


@dataclass
class IndexMigrationReport:
    """What a run did: the blobs it moved (b), the copy it made (None: an earlier run had made it)."""

    database: str
    blobs: MigrationReport | None = None
    copy: pg_copy.CopyReport | None = None
    #: An earlier run had stopped: this one went on from where it had.
    resumed: bool = False
    #: The copied index was compared with PostgreSQL's by this run (False: an earlier run had, and found them alike).
    compared: bool = False
    #: The index of pointers in the target's data_dir was removed (b).
    intermediate_removed: bool = False
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        copy = None if self.copy is None else {
            "schema": self.copy.schema_version, "rows": self.copy.rows, "total_rows": self.copy.total_rows,
            "identities": self.copy.identities, "seconds": round(self.copy.seconds, 3)}
        return {"database": self.database, "copy": copy, "resumed": self.resumed, "compared": self.compared,
                "intermediate_removed": self.intermediate_removed, "seconds": round(self.seconds, 3)}


def migrate_to_postgresql(source: Config, target: Config, *, batch_captures: int = migrate_blobs.BATCH_CAPTURES,
                          blob_progress: Callable[[MigrationReport], None] | None = None,
                          copy_progress: pg_copy.Progress | None = None) -> IndexMigrationReport:
    """Move the archive of ``source`` (embedded) into ``target`` (its index in PostgreSQL); see the module.

    The caller keeps ``serve`` off the source meanwhile (the CLI holds its lock)."""
    started = time.monotonic()
    if target.index is None:
        raise ConfigError("names no index in PostgreSQL ([store] index)", path=str(target.path), key="store.index")
    uri = target.index
    if target.blobs is not None:
        check_configs(source, target)
    else:
        check_same_archive(source, target)
    source_index = source.data_dir / INDEX_FILE
    if not source_index.exists():
        raise NotFoundError(f"{source_index}: no archive here (run 'twentyday init' first)")
    report = IndexMigrationReport(pg_schema.describe(uri))
    data_dir = target.data_dir
    marker_path = data_dir / MARKER
    marker = migrate_blobs._read_marker(marker_path)
    if marker is None and any((data_dir / name).exists()
                              for name in (INDEX_FILE, "secrets", "spool", migrate_blobs.MARKER)):
        raise ConfigError("holds an archive already; 'migrate --to' writes a new one (name an empty data_dir)",
                          path=str(target.path), key="data_dir")
    if marker is not None and marker.get("source") != str(source.data_dir.resolve()):
        raise ConfigError(f"holds an unfinished migration of another archive ({marker.get('source')}); name "
                          "another data_dir", path=str(target.path), key="data_dir")
    source_head = _head_of(source_index)
    copied_head = _copied_head(uri, report.database)
    if marker is None or copied_head is None:
        # A database that is not empty, a value PostgreSQL cannot hold: refused before anything is written.
        try:
            pg_copy.check_copy(source_index, uri)
        except ConfigError as error:  # not empty, not byte-ordered text: the database is the target config's
            raise ConfigError(f"{report.database}: {error}", path=str(target.path), key="store.index") from None
        except IntegrityError as error:  # a value PostgreSQL cannot hold: the source's
            raise IntegrityError(f"{source_index}: {error}; the source is unchanged") from None
    elif copied_head != source_head:
        raise IntegrityError(f"{report.database} holds a copy of this archive at ledger entry {copied_head}, "
                             f"its source is at {source_head} now (served since?): drop that database's "
                             "tables and run 'migrate --to' again")
    report.resumed = marker is not None
    if marker is None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_dir.chmod(0o700)
        marker = {"source": str(source.data_dir.resolve()), "database": report.database}
        migrate_blobs._write_marker(marker_path, marker)
    copy_from = source_index
    if target.blobs is not None:
        copy_from = data_dir / INDEX_FILE
        if copied_head is None:
            report.blobs = _move_blobs(source, target, source_head, batch_captures, blob_progress)
    else:
        migrate_blobs._copy_secrets(source.data_dir, data_dir)
    if copied_head is None:
        report.copy = _copy(copy_from, uri, report.database, copy_progress)
    if copy_from.exists() and not _compared_before(copy_from, uri):
        differences = pg_copy.compare_indexes(copy_from, uri)
        if differences:
            raise IntegrityError(f"{report.database}: the copy differs from {copy_from} in {len(differences)} "
                                 f"table(s), first {differences[0]}; drop that database's tables and run "
                                 "'migrate --to' again")
        report.compared = True
    _record_secrets_check(uri, secrets.load(source.data_dir))
    if target.blobs is not None:
        report.intermediate_removed = copy_from.exists()
        for path in (copy_from, copy_from.with_name(INDEX_FILE + "-wal"), copy_from.with_name(INDEX_FILE + "-shm")):
            path.unlink(missing_ok=True)
    # What a run killed while writing left: a marker's temporary file, a partial copy of the index.
    for leftover in (*data_dir.glob(f".{MARKER}.*.tmp"), *data_dir.glob(f".{migrate_blobs.MARKER}.*.tmp"),
                     data_dir / (INDEX_FILE + ".copying")):
        leftover.unlink(missing_ok=True)
    marker_path.unlink()
    report.seconds = time.monotonic() - started
    return report


def _head_of(index: Path) -> str:
    conn = open_read_only(index)
    try:
        return migrate_blobs._source_head(conn)
    finally:
        conn.close()


def _connect(uri: str, where: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(uri, autocommit=True)
    except psycopg.Error as error:
        raise TwentydayError(f"{where}: cannot open the index: {str(error).strip().splitlines()[0]}") from None


def _copied_head(uri: str, where: str) -> str | None:
    """The ledger head (``seq:hash``) of the archive in the database; None: it holds no archive's index."""
    with _connect(uri, where) as conn:
        if not pg_schema.version(conn):
            return None
        row = conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return f"{row[0]}:{row[1]}" if row else "0:"


def _move_blobs(source: Config, target: Config, source_head: str, batch_captures: int,
                progress: Callable[[MigrationReport], None] | None) -> MigrationReport | None:
    """(b): the blobs into the bucket, leaving the index of pointers to copy; None: an earlier run had moved them."""
    data_dir = target.data_dir
    intermediate = data_dir / INDEX_FILE
    blob_marker = data_dir / migrate_blobs.MARKER
    if intermediate.exists() and not blob_marker.exists():
        if _head_of(intermediate) == source_head:
            return None  # moved whole by an earlier run, which stopped before its copy committed
        # The source took captures since: migrate_blobs copies its index again and goes on (found segments kept).
        assert target.blobs is not None
        migrate_blobs._write_marker(blob_marker, {"source": str(source.data_dir.resolve()),
                                                  "bucket": target.blobs.bucket, "source_head": ""})
    return migrate_blobs.migrate_blobs(source, target, batch_captures=batch_captures, progress=progress)


def _copy(copy_from: Path, uri: str, where: str, progress: pg_copy.Progress | None) -> pg_copy.CopyReport:
    try:
        return pg_copy.copy_index(copy_from, uri, progress)
    except psycopg.Error as error:  # the copy's transaction was rolled back: the database is empty again
        raise TwentydayError(f"{where}: the copy stopped ({str(error).strip().splitlines()[0]}); nothing of it "
                             "was kept: run 'migrate --to' again") from None


def _compared_before(copy_from: Path, uri: str) -> bool:
    """An earlier run compared the copy and found no difference: the secrets check it writes only then is in
    PostgreSQL, and not in the index it copied (whose own would have been copied)."""
    with _connect(uri, pg_schema.describe(uri)) as conn:
        in_postgresql = conn.execute("SELECT 1 FROM meta WHERE key = %s", (SECRETS_CHECK,)).fetchone()
    if in_postgresql is None:
        return False
    index = open_read_only(copy_from)
    try:
        return index.execute("SELECT 1 FROM meta WHERE key = ?", (SECRETS_CHECK,)).fetchone() is None
    finally:
        index.close()


def _record_secrets_check(uri: str, daemon_secrets: secrets.DaemonSecrets) -> None:
    """What tells a node joining the archive that its secrets are the archive's (store/nodes.py)."""
    from twentyday.store import postgres

    conn = postgres.connect(uri)
    try:
        record_secrets_check(conn, daemon_secrets)  # autocommit: one statement, kept when it returns
    finally:
        conn.close()
