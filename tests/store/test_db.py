"""The index's database seam (store/db.py) on a real archive's SQLite index: the store writes through
it, so if it stopped taking the writers' lock, or its error tuples stopped naming the driver's errors,
two writers would run beside each other, or a locked index would surface as a traceback."""

from __future__ import annotations

import time

import pytest

from tests.conftest import NOW
from tests.store.conftest import embedded_only
from twentyday.errors import IntakeError
from twentyday.store import db, schema
from twentyday.store.archive import INDEX_FILE, Archive
from twentyday.store.writer import CaptureInput

pytestmark = embedded_only("the seam is the index's database; where sealed blobs go does not enter it")

#: How long a writer waits for the lock in these tests (milliseconds): short, so a wait that never
#: ends shows as the error the daemon retries on, not as a test that hangs for the 30 s default.
SHORT_BUSY_MS = 200


def second_writer(archive: Archive) -> db.Connection:
    """Another connection to the archive's index, as another process opens it, waiting briefly for locks."""
    conn = schema.connect(str(archive.data_dir / INDEX_FILE)).conn
    conn.execute(f"PRAGMA busy_timeout = {SHORT_BUSY_MS}")
    return conn


def test_two_writers_never_run_beside_each_other(archive: Archive) -> None:
    other = second_writer(archive)
    try:
        db.begin_write(archive.conn)
        started = time.monotonic()
        with pytest.raises(db.OPERATIONAL_ERRORS):
            db.begin_write(other)  # waits out its busy timeout, then gives up
        assert time.monotonic() - started < 5
        assert not other.in_transaction
        archive.conn.execute("COMMIT")
        db.begin_write(other)  # the first writer is done: the lock is free
        assert other.in_transaction
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_capture_while_another_writer_holds_the_index_is_refused_for_a_retry(archive: Archive) -> None:
    other = second_writer(archive)
    try:
        db.begin_write(other)
        archive.conn.execute(f"PRAGMA busy_timeout = {SHORT_BUSY_MS}")
        capture = CaptureInput("jdoe", "cli", "while-locked.txt", b"while locked", "whatsapp", NOW)
        # IntakeError: the worker leaves the item in the spool and tries again (no traceback, nothing lost)
        with pytest.raises(IntakeError, match="index is not writable"):
            archive.ingest(capture)
        other.execute("ROLLBACK")
        assert not archive.ingest(capture).duplicate  # the lock released: the same item is stored now
        assert archive.conn.execute("SELECT count(*) FROM capture WHERE source_name = ?",
                                    ("while-locked.txt",)).fetchone() == (1,)
    finally:
        other.close()


def test_the_archive_index_is_sqlite(archive: Archive) -> None:
    assert db.dialect(archive.conn) == "sqlite"


def test_max_parameters_is_what_one_statement_can_bind(archive: Archive) -> None:
    limit = db.max_parameters(archive.conn)
    assert limit >= 999  # SQLite's smallest default: insert_rows cuts its statements by this number

    def bind(count: int) -> object:
        values = ",".join("?" * count)
        return archive.conn.execute(f"SELECT count(*) WHERE 1 IN ({values})", [1] * count).fetchone()

    assert bind(limit) == (1,)
    with pytest.raises(db.OPERATIONAL_ERRORS, match="too many SQL variables"):
        bind(limit + 1)
