"""The worker ingests spooled items in batches: one transaction, each item all or nothing."""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW, make_mail
from twentyday import config as config_module
from twentyday import spool as spool_module
from twentyday.crypto import secrets
from twentyday.errors import BatchRolledBack, IntakeError
from twentyday.pipeline.worker import BatchLimits, Worker
from twentyday.records import ParsedMessage
from twentyday.spool import Spool, SpoolMeta
from twentyday.store import schema
from twentyday.store.archive import Archive
from twentyday.store.search import Filters, search
from twentyday.store.verify import verify
from twentyday.store.writer import CaptureInput, RecordDraft


def drafts(tag: str, count: int, fail_after: int | None = None) -> Iterator[RecordDraft]:
    for n in range(count):
        if fail_after is not None and n == fail_after:
            raise RuntimeError("the parser broke mid-export")
        message = ParsedMessage("whatsapp", "chat", "Jane", NOW - timedelta(hours=n), None, f"{tag} {n}")
        yield RecordDraft(message, "sent", False, ("jdoe", "whatsapp", tag, str(n)))


def test_a_failed_capture_in_a_batch_leaves_the_others_committed(archive: Archive) -> None:
    with pytest.raises(RuntimeError), archive.batch():
        archive.ingest(CaptureInput("jdoe", "cli", "first.txt", b"first", "whatsapp", NOW), drafts("a", 2500))
        archive.ingest(CaptureInput("jdoe", "cli", "second.txt", b"second", "whatsapp", NOW),
                       drafts("b", 2500, fail_after=2300))

    conn = archive.conn
    assert conn.execute("SELECT source_name FROM capture").fetchall() == [("first.txt",)]
    assert conn.execute("SELECT count(*) FROM record").fetchone() == (2500,)
    # Search terms too: the batch writes those it held back for the committed capture only.
    assert conn.execute("SELECT count(*) FROM record_terms").fetchone() == (2500,)
    assert verify(conn, secrets.load(archive.data_dir).verify_key).ok
    # The failed capture is not half there: ingesting it again stores all of it.
    archive.ingest(CaptureInput("jdoe", "cli", "second.txt", b"second", "whatsapp", NOW), drafts("b", 2500))
    assert conn.execute("SELECT count(*) FROM record").fetchone() == (5000,)
    assert conn.execute("SELECT count(*) FROM record_terms").fetchone() == (5000,)
    assert verify(conn, secrets.load(archive.data_dir).verify_key).ok


def test_a_capture_without_a_savepoint_that_fails_rolls_the_whole_batch_back(archive: Archive) -> None:
    # The worker stores read-ahead items so (a savepoint copies every page they change),
    # and stores the batch again when this happens.
    with pytest.raises(BatchRolledBack, match="the batch was rolled back") as raised, archive.batch():
        archive.ingest(CaptureInput("jdoe", "cli", "first.txt", b"first", "whatsapp", NOW), drafts("a", 30),
                       savepoint=False)
        archive.ingest(CaptureInput("jdoe", "cli", "second.txt", b"second", "whatsapp", NOW),
                       drafts("b", 30, fail_after=20), savepoint=False)
    assert isinstance(raised.value.__cause__, RuntimeError)
    conn = archive.conn
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM capture").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM record").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM ledger WHERE kind != 'escrow'").fetchone() == (0,)  # init's own
    # Stored again, each capture whole, the archive as if the failure never happened.
    with archive.batch():
        archive.ingest(CaptureInput("jdoe", "cli", "first.txt", b"first", "whatsapp", NOW), drafts("a", 30),
                       savepoint=False)
        archive.ingest(CaptureInput("jdoe", "cli", "second.txt", b"second", "whatsapp", NOW), drafts("b", 30),
                       savepoint=False)
    assert conn.execute("SELECT count(*) FROM record").fetchone() == (60,)
    assert conn.execute("SELECT count(*) FROM record_terms").fetchone() == (60,)
    assert verify(conn, secrets.load(archive.data_dir).verify_key).ok


def test_an_interrupt_in_a_capture_without_a_savepoint_is_not_turned_into_a_retry(archive: Archive) -> None:
    def interrupted() -> Iterator[RecordDraft]:
        yield from drafts("a", 10)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), archive.batch():
        archive.ingest(CaptureInput("jdoe", "cli", "first.txt", b"first", "whatsapp", NOW), drafts("b", 5),
                       savepoint=False)
        archive.ingest(CaptureInput("jdoe", "cli", "second.txt", b"second", "whatsapp", NOW), interrupted(),
                       savepoint=False)
    assert not archive.conn.in_transaction
    assert archive.conn.execute("SELECT count(*) FROM capture").fetchone() == (0,)


def test_a_batch_cannot_start_while_another_writer_holds_the_index(archive_dir: Path) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    archive = Archive(config)
    other = sqlite3.connect(archive_dir / "data" / "index.db", timeout=0.1, isolation_level=None)
    archive.conn.execute("PRAGMA busy_timeout = 100")
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(IntakeError, match="not writable"), archive.batch():
            pass
    finally:
        other.execute("ROLLBACK")
        other.close()
        archive.close()


def _spool_mails(archive_dir: Path, count: int) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    spool = Spool.open(config)
    for n in range(count):
        spool.put_bytes(make_mail(message_id=f"<batch-{n}@example.test>", body=f"note {n}"),
                        SpoolMeta(f"mail-{n}", "smtp", NOW, "jdoe"))
    spool.close()


def test_the_worker_commits_a_batch_and_only_then_forgets_its_items(archive_dir: Path) -> None:
    count = BatchLimits().items + 6  # more than one batch
    _spool_mails(archive_dir, count)
    config = config_module.load(archive_dir / "twentyday.toml")
    archive = Archive(config, durable=False)
    spool = Spool.open(config, writer=False)
    try:
        outcomes = Worker(archive, spool).run_once()
        assert [o.state for o in outcomes] == ["ingested"] * count
        assert list(spool.pending()) == []
        assert archive.conn.execute("SELECT count(*) FROM capture").fetchone() == (count,)
        assert verify(archive.conn, archive.secrets.verify_key).ok
        # Every mail of every batch is found by its words.
        assert len(list(search(archive, Filters(text="note")))) == count
        mail_42 = archive.conn.execute("SELECT record.id FROM record JOIN capture ON capture.id = record.capture_id "
                                       "WHERE capture.source_name = 'mail-42'").fetchall()
        assert [(r["id"],) for r in search(archive, Filters(text="note 42"))] == mail_42
    finally:
        spool.close()
        archive.close()


def test_a_locked_index_keeps_every_item_in_the_spool_until_it_frees(archive_dir: Path) -> None:
    _spool_mails(archive_dir, 3)
    config = config_module.load(archive_dir / "twentyday.toml")
    archive = Archive(config, durable=False)
    archive.conn.execute("PRAGMA busy_timeout = 100")
    spool = Spool.open(config, writer=False)
    other = sqlite3.connect(archive_dir / "data" / "index.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert Worker(archive, spool).run_once() == []
        assert len(list(spool.pending())) == 3
        other.execute("ROLLBACK")

        assert len(Worker(archive, spool).run_once()) == 3
        assert list(spool.pending()) == []
        assert archive.conn.execute("SELECT count(*) FROM capture").fetchone() == (3,)
    finally:
        other.close()
        spool.close()
        archive.close()


def test_a_full_disk_after_the_commit_keeps_the_items_and_the_worker_alive(
        archive_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # The batch is committed, but its fsync (or the spool's done-log) fails: the worker must
    # neither die with a traceback nor forget the items; replayed, they are found archived.
    _spool_mails(archive_dir, 2)
    config = config_module.load(archive_dir / "twentyday.toml")
    archive = Archive(config, durable=False)
    spool = Spool.open(config, writer=False)
    worker = Worker(archive, spool)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    try:
        with monkeypatch.context() as patched:
            patched.setattr(spool_module.os, "fsync", disk_full)
            until = time.monotonic() + 0.5  # several rounds: each commits, fails to fsync, keeps the items
            worker.loop(poll_seconds=0.01, keep_going=lambda: time.monotonic() < until)
        assert any("No space left on device" in r.getMessage() for r in caplog.records)
        assert len(list(spool.pending())) == 2
        assert [o.state for o in worker.run_once()] == ["duplicate", "duplicate"]
        assert list(spool.pending()) == []
        assert archive.conn.execute("SELECT count(*) FROM capture").fetchone() == (2,)
    finally:
        spool.close()
        archive.close()


def test_a_damaged_spool_item_is_kept_sealed_and_the_items_behind_it_go_on(archive_dir: Path) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    spool = Spool.open(config)
    spool.put_bytes(make_mail(message_id="<rotten@example.test>"), SpoolMeta("rotten", "smtp", NOW, "jdoe"))
    spool.close()
    [segment] = (archive_dir / "data" / "spool").glob("seg-*.log")
    damaged = bytearray(segment.read_bytes())
    damaged[-5] ^= 0x01  # one flipped bit in the sealed payload
    segment.write_bytes(bytes(damaged))
    _spool_mails(archive_dir, 3)
    archive = Archive(config, durable=False)
    spool = Spool.open(config, writer=False)
    rotten = next(spool.pending())
    sealed = spool.read_sealed(rotten)
    try:
        outcomes = Worker(archive, spool).run_once()
        # Its header failed authentication with it: not trusted, so not used for its name.
        assert [(o.source, o.state) for o in outcomes] == [
            (f"damaged spool item {rotten.id}", "quarantined"), ("mail-0", "ingested"), ("mail-1", "ingested"),
            ("mail-2", "ingested")]
        assert "is damaged" in str(outcomes[0].detail)
        assert list(spool.pending()) == []
        assert archive.conn.execute("SELECT kind FROM alert").fetchall() == [("ingest_failed",)]
        # What is kept is the damaged sealed bytes, as they were in the spool.
        [capture_id] = archive.conn.execute("SELECT id FROM capture WHERE source_name = ?",
                                            (f"damaged spool item {rotten.id}",)).fetchone()
        assert archive.conn.execute("SELECT size FROM blob WHERE owner = ? AND slot = 'raw'",
                                    (capture_id,)).fetchone() == (len(sealed),)
        assert verify(archive.conn, archive.secrets.verify_key).ok
    finally:
        spool.close()
        archive.close()


def test_an_interrupt_while_a_large_capture_waits_for_its_index_writer_commits_nothing(
        archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C during `twentyday ingest` of a large export can land while the capture waits
    # for its index-writer thread: that thread must be stopped before the rollback, or its
    # remaining inserts would be committed on their own, without their capture.
    real_insert = schema.insert_rows

    def slow_insert(conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    verb: str = "INSERT") -> None:
        if threading.current_thread().name == "twentyday-index-writer":
            time.sleep(0.05)  # a busy disk: the writer thread lags behind
        real_insert(conn, table, columns, rows, verb)

    join = threading.Thread.join
    interrupted: list[bool] = []

    def interrupted_join(self: threading.Thread, timeout: float | None = None) -> None:
        if self.name == "twentyday-index-writer" and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        join(self, timeout)

    monkeypatch.setattr(schema, "insert_rows", slow_insert)
    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "join", interrupted_join)
        with pytest.raises(KeyboardInterrupt):
            archive.ingest(CaptureInput("jdoe", "cli", "big.txt", b"big export", "whatsapp", NOW),
                           drafts("big", 5000))
    assert interrupted
    time.sleep(0.2)  # were the writer still running, its inserts would land now
    conn = archive.conn
    assert not conn.in_transaction
    assert [conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("capture", "record", "ledger")
            ] == [0, 0, 1]  # the ledger holds init's escrow entry, nothing of the capture
    assert verify(conn, secrets.load(archive.data_dir).verify_key).ok
    # Ingested again, it is all there once.
    archive.ingest(CaptureInput("jdoe", "cli", "big.txt", b"big export", "whatsapp", NOW), drafts("big", 5000))
    assert conn.execute("SELECT count(*) FROM record").fetchone() == (5000,)
    assert verify(conn, secrets.load(archive.data_dir).verify_key).ok
