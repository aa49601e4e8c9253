"""Content packs, the background index writer and the hand-written canonical forms of the store."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.chatgen import write_export
from tests.conftest import NOW
from twentyday.canonical import canonical_json
from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.crypto.hashes import KeyedHash, KeyedHashes
from twentyday.errors import IntegrityError
from twentyday.pipeline import process as pipeline
from twentyday.records import ParsedAttachment, ParsedMessage, TimeReading
from twentyday.store import rows as entries
from twentyday.store import schema, search
from twentyday.store.archive import Archive
from twentyday.store.writer import CaptureInput, RecordDraft

from .conftest import OpenWithLimits

ODD_TEXT = ['', 'plain', 'quote " and \\ backslash', 'line\nbreak\ttab\r', '\x00\x1f control', 'é ü ß 漢字 🦜',
            '\u2028 line separator \u2029', '</script>']


def verify_ok(archive_dir: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "verify", "--json"])
    problems: list[dict[str, Any]] = json.loads(result.output)["problems"]
    return problems


def ingest_export(archive: Archive, path: Path) -> pipeline.Outcome:
    item = pipeline.Item(path.name, "cli", NOW, path=path, custodian_id="jdoe")
    return pipeline.process(archive, item)


@pytest.mark.parametrize("key", [b"", b"k", bytes(range(32)), bytes(64), bytes(range(100))])
def test_keyed_hash_is_hmac_sha256(key: bytes) -> None:
    keyed = KeyedHash(key)
    for data in (b"", b"abc", bytes(range(256)) * 5):
        assert keyed.hexdigest(data) == hmac.digest(key, data, hashlib.sha256).hex()


@pytest.mark.parametrize("text", ODD_TEXT)
def test_hand_written_json_is_canonical_json(text: str) -> None:
    message = ParsedMessage("whatsapp", text, text, NOW, TimeReading(text, "layout " + text, None, "file", text),
                            text, subject=text, message_key=text, reply_to=text)
    record_id = "rec-" + text
    assert entries.content_json(record_id, message) == canonical_json(entries.content_document(record_id, message))
    with_more = ParsedMessage("email", "c", "s", NOW, None, text, extra={"x": text},
                              attachments=(ParsedAttachment(text, data=b"1"),))
    assert entries.content_json("r", with_more) == canonical_json(entries.content_document("r", with_more))
    encoder = entries.RowEncoder()
    for day_first in (None, True, False):
        reading = TimeReading(text, "layout", day_first, "locale", "UTC")
        # How the time was read, without the text it was read from (sealed with the content).
        shape = {k: v for k, v in reading.__dict__.items() if k != "raw"}
        assert encoder.reading_json(reading) == canonical_json(shape).decode()
        assert encoder.reading_json(reading) == canonical_json(shape).decode()  # from its cache
    recipients = (text, "Jane")
    assert encoder.recipients_json(recipients) == canonical_json(list(recipients)).decode()
    identity = ("jdoe", "whatsapp", text, text, "2026", "ab")
    hashes = KeyedHashes(blob_id_key=b"b", dedup_key=b"dedup", token_key=b"t", message_ref_key=b"m", source_key=b"s")
    assert hashes.dedup(identity, 3) == hmac.digest(b"dedup", canonical_json([*identity, 3]), hashlib.sha256).hex()


def test_records_sealed_in_packs_open_one_by_one_and_are_bound_to_their_pack(
        archive_dir: Path, archive_with_limits: OpenWithLimits, tmp_path: Path) -> None:
    archive = archive_with_limits(pack_records=16)
    export = write_export(tmp_path / "WhatsApp Chat with Counterpart.txt", 40)
    assert ingest_export(archive, export).state == "ingested"
    packs = archive.conn.execute("SELECT id, owner, slot FROM blob WHERE slot LIKE 'pack:%' ORDER BY slot").fetchall()
    assert len(packs) == 3
    assert archive.conn.execute("SELECT count(DISTINCT content_blob) FROM record").fetchone()[0] == 3
    identity = keys.load_identity(archive_dir / "officer.key", None)
    rows = archive.conn.execute("SELECT id, content_blob FROM record ORDER BY created_utc").fetchall()
    for n in (0, 17, 39):
        document = search.open_record(archive, rows[n][0], identity, purpose="test")
        assert document["content"]["record_id"] == rows[n][0]
        assert document["content"]["body"].startswith(f"message {n} ")
    assert verify_ok(archive_dir) == []

    # A record pointed at another pack does not open, and verify names it.
    moved, other = rows[0][0], next(blob for _, blob in rows if blob != rows[0][1])
    archive.conn.execute("UPDATE record SET content_blob = ? WHERE id = ?", (other, moved))
    with pytest.raises(IntegrityError, match="does not hold"):
        search.open_record(archive, moved, identity, purpose="test")
    assert f"record {moved}" in [p["object"] for p in verify_ok(archive_dir)]
    # A pack's slot (its bound list of records) cannot be rewritten either.
    archive.conn.execute("UPDATE record SET content_blob = ? WHERE id = ?", (rows[0][1], moved))
    slot = packs[0][2]
    altered = slot[:-1] + ("1" if slot[-1] == "0" else "0")  # always a different slot
    archive.conn.execute("UPDATE blob SET slot = ? WHERE id = ?", (altered, packs[0][0]))
    pack_record = archive.conn.execute("SELECT id FROM record WHERE content_blob = ?", (packs[0][0],)).fetchone()[0]
    with pytest.raises(IntegrityError):
        search.open_record(archive, pack_record, identity, purpose="test")


def slow_inserts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the background writer lag, so later batches are deduplicated against unwritten ones."""
    real = schema.insert_rows

    def slow(conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
             verb: str = "INSERT") -> None:
        time.sleep(0.01)
        real(conn, table, columns, rows, verb)

    monkeypatch.setattr(schema, "insert_rows", slow)


def test_duplicates_across_unwritten_batches_stay_separate_and_link(
        archive_dir: Path, archive_with_limits: OpenWithLimits, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = archive_with_limits(batch_records=2)
    slow_inserts(monkeypatch)
    at = NOW - timedelta(days=1)

    def draft(body: str) -> RecordDraft:
        message = ParsedMessage("whatsapp", "Team", "Jane", at, None, body)
        return RecordDraft(message, "sent", False, ("jdoe", "whatsapp", "Team", "Jane", at.isoformat(), body))

    first_drafts = [draft("ok")] * 5 + [draft("fine"), draft("ok")]
    first = archive.ingest(CaptureInput("jdoe", "cli", "c1.txt", b"one", "test", NOW), first_drafts)
    assert (first.new_count, first.linked_count) == (7, 0)
    # Seven "ok" in a later capture: the six archived ones are linked (once each), one is new.
    second = archive.ingest(CaptureInput("jdoe", "cli", "c2.txt", b"two", "test", NOW),
                            [draft("ok")] * 7 + [draft("fine")] * 2)
    assert (second.new_count, second.linked_count) == (2, 7)
    assert len(set(second.linked_records)) == 7
    assert archive.conn.execute("SELECT count(*) FROM record").fetchone()[0] == 9
    assert verify_ok(archive_dir) == []


def test_overlapping_exports_link_across_batches_and_packs(
        archive_dir: Path, archive_with_limits: OpenWithLimits, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    archive = archive_with_limits(batch_records=64, pack_records=10)
    slow_inserts(monkeypatch)
    first = ingest_export(archive, write_export(tmp_path / "WhatsApp Chat with A.txt", 300))
    assert first.result is not None and first.result.new_count == 300
    # The same conversation exported again later, with 100 newer messages.
    (tmp_path / "later").mkdir()
    second = ingest_export(archive, write_export(tmp_path / "later" / "WhatsApp Chat with A.txt", 400))
    assert second.result is not None
    assert (second.result.new_count, second.result.linked_count) == (100, 300)
    assert ingest_export(archive, tmp_path / "later" / "WhatsApp Chat with A.txt").state == "duplicate"
    assert verify_ok(archive_dir) == []


def test_a_failing_background_insert_rolls_the_capture_back(
        archive_dir: Path, archive_with_limits: OpenWithLimits, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    archive = archive_with_limits(batch_records=16)
    real = schema.insert_rows

    def failing(conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                verb: str = "INSERT") -> None:
        if table == "record_terms":
            raise sqlite3.OperationalError("disk I/O error")
        real(conn, table, columns, rows, verb)

    tables = ("capture", "record", "blob", "ledger", "record_terms")
    before = {table: archive.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}
    monkeypatch.setattr(schema, "insert_rows", failing)
    export = write_export(tmp_path / "WhatsApp Chat with Counterpart.txt", 100)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        ingest_export(archive, export)
    assert not archive.conn.in_transaction
    for table in tables:  # as before: the archive's own entries (escrow) stay, nothing of the capture
        assert archive.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == before[table], table
    monkeypatch.setattr(schema, "insert_rows", real)
    outcome = ingest_export(archive, export)
    assert outcome.result is not None and outcome.result.new_count == 100
    assert verify_ok(archive_dir) == []


def test_an_attachments_media_type_is_in_clear_only_when_listed() -> None:
    assert entries.clear_content_type("image/jpeg") == "image/jpeg"
    assert entries.clear_content_type("application/x-budget-cuts-for-smith") == "application/unlisted"
    assert entries.clear_content_type("smith/budget") == "unlisted"
