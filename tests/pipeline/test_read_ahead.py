"""Mail parsed ahead in a helper process is stored exactly as the worker alone stores it."""

from __future__ import annotations

import os
import pickle
import re
import signal
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import NOW, make_mail
from tests.parsers.mail.test_mailed_exports import export_text, mail_with
from tests.sealed_detail import capture_names
from twentyday import config as config_module
from twentyday.canonical import iso
from twentyday.initialise import init_archive
from twentyday.pipeline import process as pipeline
from twentyday.pipeline.read_ahead import ReadAhead, ReadAheadLimits
from twentyday.pipeline.worker import BatchLimits, Worker
from twentyday.spool import Spool, SpoolMeta
from twentyday.store.archive import Archive
from twentyday.store.search import Filters, search
from twentyday.store.verify import verify
from twentyday.store.writer import CaptureWriter, IngestResult, RecordDraft

AMBIGUOUS_WHATSAPP = b"01/02/2026, 10:00 - Jane Doe: which day is this\n03/04/2026, 11:00 - Counterpart: no idea\n"


def items() -> list[pipeline.Item]:
    """One of each way an item can go: stored, linked exports, kept for a reason."""
    def item(name: str, data: bytes, channel: str = "smtp", custodian: str | None = None) -> pipeline.Item:
        return pipeline.Item(name, channel, NOW, data=data, custodian_id=custodian)

    return [
        item("plain.eml", make_mail(message_id="<plain@x>")),
        item("to-jdoe.eml", make_mail(message_id="<tagged@x>"), custodian="jdoe"),
        item("export.eml", mail_with("WhatsApp Chat with Team.txt", export_text(30), "text", "plain")),
        item("nobody.eml", make_mail(message_id="<nobody@x>"), custodian="nobody"),
        item("stranger.eml", make_mail(sender="someone@else.example", message_id="<stranger@x>")),
        item("garbage.eml", b"\x00\x01 not mail at all \xff"),
        item("empty.eml", b""),
        item("chat.txt", AMBIGUOUS_WHATSAPP, channel="folder", custodian="jdoe"),
        item("chat-dup.txt", AMBIGUOUS_WHATSAPP, channel="folder", custodian="jdoe"),
    ]


def fresh_archive(directory: Path) -> Archive:
    init_archive(directory, passphrase=None, demo=False, now=NOW)
    path = directory / "twentyday.toml"
    path.write_text(path.read_text().replace('locale = "en_US"\n', ""))  # so the ambiguous chat is held
    return Archive(config_module.load(path))


def shape(outcome: pipeline.Outcome) -> tuple[object, ...]:
    """What a records officer sees of an outcome; capture ids differ between archives (their keys do)."""
    result = outcome.result
    counts = (result.new_count, result.linked_count, result.events) if result else None
    return outcome.source, outcome.state, re.sub(r"cap-[0-9a-f]+", "cap-*", outcome.detail), counts


def test_prepared_then_stored_is_what_process_does(tmp_path: Path) -> None:
    alone, ahead = fresh_archive(tmp_path / "alone"), fresh_archive(tmp_path / "ahead")
    try:
        expected = [shape(pipeline.process(alone, item)) for item in items()]
        # Through pickle, as the helper hands them over.
        prepared = [pickle.loads(pickle.dumps(pipeline.prepare(ahead.config, item))) for item in items()]
        assert all(p is not None for p in prepared)
        got = [shape(pipeline.store(ahead, p)) for p in prepared if p is not None]
        assert got == expected
        assert {state for _, state, _, _ in got} == {"ingested", "unrouted", "quarantined", "held", "duplicate"}
        for archive in (alone, ahead):
            assert archive.conn.execute("SELECT count(*) FROM record").fetchone()[0] == 33  # 3 mails + 30 chat
            assert archive.conn.execute("SELECT count(*) FROM record_terms").fetchone()[0] == 33
            assert verify(archive.conn, archive.secrets.verify_key).ok
        # The words tokenised ahead find the same records as those the store tokenised itself.
        for text in ("pelican schedule", "meeting notes", "budget agenda", "chat export attached"):
            found = [[(r["platform"], r["sender"], r["created_at"]) for r in search(archive, Filters(text=text))]
                     for archive in (alone, ahead)]
            assert found[0] == found[1] and found[0], text
    finally:
        alone.close()
        ahead.close()


def test_files_and_large_items_are_not_read_ahead(tmp_path: Path) -> None:
    archive = fresh_archive(tmp_path / "a")
    try:
        on_disk = tmp_path / "chat.txt"
        on_disk.write_bytes(AMBIGUOUS_WHATSAPP)
        assert pipeline.prepare(archive.config, pipeline.Item("chat.txt", "folder", NOW, path=on_disk)) is None
        huge = b"x" * (pipeline.PREPARE_MAX_BYTES + 1)
        assert pipeline.prepare(archive.config, pipeline.Item("big.eml", "smtp", NOW, data=huge)) is None
    finally:
        archive.close()


def spool_items(archive: Archive) -> None:
    spool = Spool.open(archive.config)
    for item in items():
        assert item.data is not None
        spool.put_bytes(item.data, SpoolMeta(item.name, item.channel, item.received_at, item.custodian_id))
    for n in range(40):  # several chunks of read-ahead
        spool.put_bytes(make_mail(message_id=f"<bulk-{n}@x>", body=f"bulk note {n}"),
                        SpoolMeta(f"bulk-{n}.eml", "smtp", datetime.now(UTC), None))
    spool.put_bytes(b"", SpoolMeta("link", "folder", datetime.now(UTC), "jdoe", refused="a symbolic link"))
    spool.close()


def run_worker(archive: Archive, read_ahead: ReadAhead | None) -> list[tuple[object, ...]]:
    spool = Spool.open(archive.config, writer=False)
    try:
        outcomes = Worker(archive, spool, read_ahead=read_ahead).run_once()
        assert list(spool.pending()) == []
        return [shape(o) for o in outcomes]
    finally:
        spool.close()


def test_the_worker_with_a_helper_stores_what_it_stores_alone(tmp_path: Path) -> None:
    alone, ahead = fresh_archive(tmp_path / "alone"), fresh_archive(tmp_path / "ahead")
    read_ahead = ReadAhead(ahead.config)
    try:
        spool_items(alone)
        spool_items(ahead)
        expected = run_worker(alone, None)
        assert run_worker(ahead, read_ahead) == expected
        assert len(expected) == len(items()) + 41
        assert verify(ahead.conn, ahead.secrets.verify_key).ok
    finally:
        read_ahead.close()
        alone.close()
        ahead.close()


def test_an_item_read_ahead_that_fails_costs_its_batch_a_second_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Read-ahead items are stored without a savepoint each; a failure rolls the batch back
    # and the worker stores it again item by item: nothing lost, nothing twice.
    archive = fresh_archive(tmp_path / "a")
    read_ahead = ReadAhead(archive.config)
    write = CaptureWriter.write
    attempts: list[str] = []

    def failing_write(self: CaptureWriter, drafts: Iterable[RecordDraft], events: Iterable[object]) -> IngestResult:
        if self.capture.source_name == "bulk-7.eml" and self.capture.parser == "email":
            attempts.append(self.capture.source_name)
            raise RuntimeError("a bug in the writer")
        return write(self, drafts, events)  # type: ignore[arg-type]

    monkeypatch.setattr(CaptureWriter, "write", failing_write)
    try:
        spool_items(archive)
        outcomes = run_worker(archive, read_ahead)
        assert len(attempts) == 2  # once in the batch without savepoints, once in a savepoint of its own
        assert sum("the batch was rolled back" in r.getMessage() for r in caplog.records) == 1
        assert len(outcomes) == len(items()) + 41
        [kept] = [o for o in outcomes if o[0] == "bulk-7.eml"]
        assert kept[1] == "quarantined" and "internal error (RuntimeError)" in str(kept[2])
        assert archive.conn.execute("SELECT count(*) FROM record").fetchone()[0] == 33 + 39
        names = list(capture_names(archive, tmp_path / "a").values())
        assert len(names) == len(set(names))
        assert archive.conn.execute("SELECT count(*) FROM record_terms").fetchone()[0] == 33 + 39
        assert verify(archive.conn, archive.secrets.verify_key).ok
    finally:
        read_ahead.close()
        archive.close()


def test_a_helper_that_dies_costs_nothing_but_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    archive = fresh_archive(tmp_path / "a")
    now = [1000.0]
    read_ahead = ReadAhead(archive.config, clock=lambda: now[0])
    try:
        spool_items(archive)
        # Start the helper, then kill it as the OOM killer would.
        warm = read_ahead.submit([None])
        assert warm is not None and warm.result(timeout=60) == [None]
        helper_pids = list(read_ahead._pool._processes)  # type: ignore[union-attr]
        for pid in helper_pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in helper_pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        outcomes = run_worker(archive, read_ahead)
        assert any("read-ahead helper" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
        assert len(outcomes) == len(items()) + 41
        assert archive.conn.execute("SELECT count(*) FROM record").fetchone()[0] == 33 + 40
        assert verify(archive.conn, archive.secrets.verify_key).ok
        # It rests before another helper starts, then one does.
        assert read_ahead.submit([None]) is None
        now[0] += 3600
        again = read_ahead.submit([None])
        assert again is not None and again.result(timeout=60) == [None]
    finally:
        read_ahead.close()
        archive.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return waited == 0


def test_a_stuck_helper_is_killed_and_its_items_are_stored_anyway(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    archive = fresh_archive(tmp_path / "a")
    read_ahead = ReadAhead(archive.config, limits=ReadAheadLimits(answer_seconds=1.0))
    try:
        spool_items(archive)
        warm = read_ahead.submit([None])
        assert warm is not None and warm.result(timeout=60) == [None]
        [helper] = list(read_ahead._pool._processes)  # type: ignore[union-attr]
        os.kill(helper, signal.SIGSTOP)  # alive, but never answers
        outcomes = run_worker(archive, read_ahead)
        assert len(outcomes) == len(items()) + 41
        assert archive.conn.execute("SELECT count(*) FROM record").fetchone()[0] == 33 + 40
        assert any("TimeoutError" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
        deadline = time.monotonic() + 10
        while _alive(helper) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(helper)
    finally:
        read_ahead.close()
        archive.close()


def test_a_batch_stored_again_is_stored_whole_and_in_order_so_the_first_capture_counts(
        archive_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same message forwarded twice: on time (mail-3), then 30 days later (mail-7). A
    # batch rolled back by a failure at mail-5 is stored again, a savepoint per item, which
    # is slower; were that pass cut short by the batch's time limit, mail-3 and mail-4
    # would be left for later and stored after mail-7, and the message would count as late.
    config = config_module.load(archive_dir / "twentyday.toml")
    spool = Spool.open(config)
    for n in range(12):
        data = make_mail(message_id=f"<mail-{n}@example.test>", body=f"note {n}")
        received = NOW
        if n in (3, 7):
            data = make_mail(message_id="<same@example.test>", body="the same message", to=f"x{n}@partner.example")
            received = NOW if n == 3 else NOW + timedelta(days=30)
        spool.put_bytes(data, SpoolMeta(f"mail-{n}", "smtp", received, "jdoe"))
    spool.close()
    archive = Archive(config, durable=False)
    spool = Spool.open(config, writer=False)
    read_ahead = ReadAhead(config)
    store = pipeline.store

    def slow_in_a_savepoint(archive: Archive, prepared: pipeline.Prepared, *, savepoint: bool = True
                            ) -> pipeline.Outcome:
        if savepoint:
            time.sleep(0.2)
        return store(archive, prepared, savepoint=savepoint)

    write = CaptureWriter.write

    def failing_write(self: CaptureWriter, drafts: Iterable[RecordDraft], events: Iterable[object]) -> IngestResult:
        if self.capture.source_name == "mail-5" and self.capture.parser == "email":
            raise RuntimeError("a bug in the writer")
        return write(self, drafts, events)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "store", slow_in_a_savepoint)
    monkeypatch.setattr(CaptureWriter, "write", failing_write)
    try:
        outcomes = Worker(archive, spool, read_ahead=read_ahead, limits=BatchLimits(seconds=0.5)).run_once()
        assert [o.source for o in outcomes] == [f"mail-{n}" for n in range(12)]
        assert list(spool.pending()) == []
        assert archive.conn.execute(
            "SELECT status, captured_at FROM record WHERE capture_id = "
            "(SELECT id FROM capture WHERE source_name = 'mail-3')").fetchall() == [("on_time", iso(NOW))]
        assert archive.conn.execute("SELECT count(*) FROM record WHERE status = 'late'").fetchone() == (0,)
        assert verify(archive.conn, archive.secrets.verify_key).ok
    finally:
        read_ahead.close()
        spool.close()
        archive.close()
