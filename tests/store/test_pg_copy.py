"""Copying an archive's SQLite index into PostgreSQL (store/pg_copy.py): every row as it is, nothing else.

The archive is made through the product (CLI ingest, a WhatsApp export through the pipeline, a
quarantined mail, a hold, a disclosure, alerts with their events and deliveries, signed
checkpoints), on each blob backend (an S3-backed archive's chunk rows are pointers); the copy goes
into a real PostgreSQL database (``pg_dsn``) and is compared row by row with the file it came from.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.chatgen import ANDROID_E2E, android_line
from tests.conftest import NOW, make_mail
from tests.pg import LocalPG
from tests.store.conftest import not_on_postgresql
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.errors import ArchiveVersionError, ConfigError, IntegrityError
from twentyday.notify.outbox import enqueue_alert_event
from twentyday.parsers import whatsapp
from twentyday.parsers.base import BytesSource
from twentyday.pipeline import process as pipeline
from twentyday.records import ParsedMessage
from twentyday.store import outbox, pg_copy, pg_schema
from twentyday.store.alerts import raise_alert
from twentyday.store.archive import INDEX_FILE, Archive
from twentyday.store.writer import CaptureInput

#: Tables the made archive must hold rows in, so the copy of each kind of row is tested.
MADE = ("alert", "alert_event", "attachment", "blob", "capture", "capture_span", "checkpoint", "chunk", "custodian",
        "delivery", "disclosure", "escrow", "event", "hold", "keyslot", "ledger", "meta", "record", "record_capture",
        "record_participant", "record_terms", "record_terms_row")

# What is copied is an index in SQLite; an index in PostgreSQL is copied with pg_dump.
pytestmark = not_on_postgresql("the copy reads an index in SQLite")


def run(archive_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    assert result.exit_code in (0, 4), result.output  # 4: the unreadable mail, quarantined
    return result.output


@pytest.fixture
def made(archive_dir: Path, tmp_path: Path) -> Path:
    """An archive holding each kind of row the store writes; returns its index file (closed: no -wal left)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mails = {
        "late.eml": make_mail(date=NOW - timedelta(days=30), attachment=("minutes.pdf", b"%PDF-1.4 minutes")),
        "cc.eml": make_mail(to="Alice <alice@partner.example>", cc="bob@partner.example", message_id="<m2@x>",
                            subject="Budget", body="pelican budget numbers"),
        # a header nested past the parser's depth: quarantined, sealed, with an ingest_failed alert
        "bad.eml": b"From: a@b.example\r\nTo: " + b"(" * 5000 + b"x" + b")" * 5000 + b"\r\nSubject: s\r\n\r\nb\r\n",
    }
    for name, raw in mails.items():
        (inbox / name).write_bytes(raw)
        run(archive_dir, "ingest", str(inbox / name))
    config = config_module.load(archive_dir / "twentyday.toml")
    with Archive(config) as archive:
        # The chat exported twice, the second time longer: its first 40 messages are seen again (record_capture)
        for count in (40, 60):
            (inbox / str(count)).mkdir()
            export = inbox / str(count) / "WhatsApp Chat with Budget team.txt"
            lines = [android_line(n, datetime(2026, 10, 13, 8, 0)) for n in range(count)]
            export.write_text(f"13/10/2026, 07:59 - {ANDROID_E2E}\n" + "".join(lines))  # a system line: an event
            outcome = pipeline.process(archive, pipeline.Item(export.name, "cli", NOW, path=export,
                                                              custodian_id="jdoe"))
            assert outcome.state == "ingested", outcome
        with outbox.change(archive.conn, archive.secrets.signing_key, NOW.isoformat()):
            raise_alert(archive.conn, "late_capture", "jdoe", "Budget team", "2 record(s) late", NOW)
        [alert] = [row for row in outbox.open_alert_rows(archive.conn) if row["conversation"] == "Budget team"]
        with outbox.change(archive.conn, archive.secrets.signing_key, NOW.isoformat()) as ledger:
            enqueue_alert_event(archive.conn, ledger, alert, "escalated", NOW, archive.config)
    officer = str(archive_dir / "officer.key")
    run(archive_dir, "hold", "add", "--name", "Matter 7", "--reason", "litigation", "--custodian", "jdoe",
        "--text", "pelican", "--identity", officer)
    [record] = json.loads(run(archive_dir, "search", "--json", "--participant", "alice@partner.example"))
    run(archive_dir, "show", str(record["id"]), "--identity", officer, "--purpose", "FOIA 2026-0042")
    assert CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "verify"]).exit_code == 0
    index = config.data_dir / INDEX_FILE
    with sqlite3.connect(index) as conn:
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in MADE}
        assert conn.execute("SELECT count(*) FROM capture WHERE state = 'quarantined'").fetchone()[0] == 1
    conn.close()
    assert [table for table, count in counts.items() if not count] == []
    return index


def files_of(index: Path) -> dict[str, str]:
    """The index file and its write-ahead log, by name: sha256 of the bytes. Not the ``-shm``: SQLite's
    map of the log, which any reader (a read-only one too) makes, and which holds no row."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in (index, index.with_name(index.name + "-wal")) if path.exists() and path.stat().st_size}


def pg_tables(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        names = [name for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "ORDER BY table_name")]
        return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def test_the_copy_holds_every_row_of_the_archive_and_reads_the_file_only(made: Path, pg_dsn: str) -> None:
    before = files_of(made)
    seen: dict[str, tuple[int, int]] = {}
    report = pg_copy.copy_index(made, pg_dsn, progress=lambda table, done, total: seen.update({table: (done, total)}))
    assert pg_copy.compare_indexes(made, pg_dsn) == []
    assert files_of(made) == before
    with sqlite3.connect(f"{made.as_uri()}?mode=ro", uri=True) as conn:
        in_sqlite = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in report.rows}
    conn.close()
    assert report.rows == in_sqlite
    assert {table: done for table, (done, total) in seen.items() if done == total} == in_sqlite
    assert pg_tables(pg_dsn) == {**in_sqlite, pg_schema.VERSION_TABLE: 1}
    assert report.schema_version == pg_schema.SCHEMA_VERSION
    with psycopg.connect(pg_dsn) as pg:
        pg_schema.check_current(pg)
        assert pg.execute("SELECT count(*) FROM capture WHERE state = 'quarantined'").fetchone() == (1,)
        # Bytes stay bytes: the sealed chunks as SQLite holds them (with S3, the pointer rows' bytes)
        chunks = pg.execute("SELECT blob_id, seq, data FROM chunk ORDER BY rowid").fetchall()
    with sqlite3.connect(f"{made.as_uri()}?mode=ro", uri=True) as conn:
        assert chunks == conn.execute("SELECT blob_id, seq, data FROM chunk ORDER BY rowid").fetchall()
    conn.close()


def test_the_triggers_derived_nothing_twice_and_run_again_after_the_copy(made: Path, pg_dsn: str) -> None:
    pg_copy.copy_index(made, pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        assert pg.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname"
                          ).fetchall() == [("record_participant_insert", "O"), ("record_search_index_delete", "O")]
        participants = pg.execute("SELECT count(*) FROM record_participant").fetchone()[0]
        pg.execute("DELETE FROM record WHERE id = (SELECT record_id FROM record_participant "
                   "WHERE participant = 'alice@partner.example')")
        assert pg.execute("SELECT count(*) FROM record_participant").fetchone()[0] == participants - 2  # alice, bob
    assert pg_copy.compare_indexes(made, pg_dsn)  # and so the copy is no longer the archive


def test_new_rows_get_numbers_above_the_copied_ones(made: Path, pg_dsn: str) -> None:
    report = pg_copy.copy_index(made, pg_dsn)
    identities = {(table, column) for table in pg_schema.ROWID_TABLES for column in ["rowid"]}
    identities |= set(pg_schema.AUTO_IDS)
    assert set(report.identities) == {f"{table}.{column}" for table, column in identities}
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        for table, column in sorted(identities):
            copied = pg.execute(f"SELECT max({column}) FROM {table}").fetchone()[0]
            assert copied == report.identities[f"{table}.{column}"]
            new = pg.execute(_insert_like_the_last(pg, table, column)).fetchone()
            assert new == (copied + 1,), table


def _insert_like_the_last(pg: psycopg.Connection[Any], table: str, identity: str) -> str:
    """An INSERT of the table's last row again, without its identity, each unique text column made new."""
    columns = [name for (name,) in pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s AND column_name <> %s ORDER BY ordinal_position", (table, identity))]
    unique = {name for (name,) in pg.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisunique "
        "AND a.atttypid = 'text'::regtype", (table,))}
    values = [f"{name} || '.new'" if name in unique else name for name in columns]
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {table} "
            f"ORDER BY {identity} DESC LIMIT 1 RETURNING {identity}")


def test_the_indexes_are_those_a_new_index_has(made: Path, pg_dsn: str, postgres: LocalPG) -> None:
    """The copy builds some indexes after the rows are in: they must come out as pg_schema declares them."""
    pg_copy.copy_index(made, pg_dsn)
    name = f"fresh_{hashlib.sha256(pg_dsn.encode()).hexdigest()[:12]}"
    fresh = postgres.create_database(name)
    try:
        with psycopg.connect(fresh, autocommit=True) as conn:
            pg_schema.create(conn)
        listed = []
        for dsn in (pg_dsn, fresh):
            with psycopg.connect(dsn) as conn:
                listed.append(conn.execute("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                           "WHERE schemaname = current_schema() ORDER BY 1, 2").fetchall())
        assert listed[0] == listed[1]
    finally:
        postgres.drop_database(name)


def test_a_database_that_holds_anything_is_refused_and_left_as_it_was(made: Path, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE TABLE notes (line text)")
        pg.execute("INSERT INTO notes VALUES ('kept')")
    with pytest.raises(ConfigError, match="already holds 1 table"):
        pg_copy.copy_index(made, pg_dsn)
    assert pg_tables(pg_dsn) == {"notes": 1}
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("DROP TABLE notes")
    pg_copy.copy_index(made, pg_dsn)
    copied = pg_tables(pg_dsn)
    with pytest.raises(ConfigError, match="already holds twentyday's index at schema"):
        pg_copy.copy_index(made, pg_dsn)
    assert pg_tables(pg_dsn) == copied
    assert pg_copy.compare_indexes(made, pg_dsn) == []


@pytest.mark.parametrize(("change", "found"), [
    ("UPDATE record SET sender = sender || '.changed' WHERE rowid = 2", "record: .* first difference: row \\d+ "
                                                                         "\\(rowid 2\\), column\\(s\\) sender$"),
    ("DELETE FROM record_participant WHERE participant = 'bob@partner.example'",
     "record_participant: (\\d+) rows in SQLite .*, (?!\\1)\\d+ in PostgreSQL"),
    ("UPDATE chunk SET data = data || '\\x00'::bytea WHERE rowid = 1", "chunk: .*\\(rowid 1\\), column\\(s\\) data$"),
    ("INSERT INTO meta VALUES ('zz', 'added')", "meta: .*first difference: row \\d+ in PostgreSQL only$"),
    ("UPDATE schema_version SET version = 11", "schema version: 12 in SQLite, 11 in PostgreSQL"),
])
def test_a_row_changed_after_the_copy_is_found_and_its_table_named(made: Path, pg_dsn: str, change: str,
                                                                  found: str) -> None:
    pg_copy.copy_index(made, pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        assert pg.execute(change).rowcount == 1
    differences = pg_copy.compare_indexes(made, pg_dsn)
    assert len(differences) == 1, differences
    assert re.match(found, differences[0]), differences


@pytest.mark.parametrize(("change", "refusal"), [
    ("UPDATE record SET conversation = conversation || char(0) || 'x' WHERE rowid = 1",
     "record.conversation: 1 row\\(s\\) \\(the first at rowid 1\\) hold the character U\\+0000"),
    ("UPDATE record_terms SET terms = terms || char(0) WHERE rowid = 3", "record_terms.terms: 1 row.* rowid 3\\)"),
    ("UPDATE record SET days_late = 'many' WHERE rowid = 1", "record.days_late: 1 row\\(s\\) hold a value that is "
                                                             "not integer"),
    ("UPDATE keyslot SET sealed = hex(sealed) WHERE rowid = 1",
     "keyslot.sealed: 1 row\\(s\\) hold a value that is not blob"),
])
def test_a_value_postgresql_cannot_hold_is_refused_before_anything_is_written(
        made: Path, pg_dsn: str, tmp_path: Path, change: str, refusal: str) -> None:
    changed = tmp_path / "changed.db"
    shutil.copyfile(made, changed)
    with sqlite3.connect(changed) as conn:
        conn.execute(change)
    conn.close()
    with pytest.raises(IntegrityError, match=refusal):
        pg_copy.copy_index(changed, pg_dsn)
    assert pg_tables(pg_dsn) == {}


def test_an_archive_written_with_u0000_in_a_sender_s_name_is_refused_by_the_copy(
        archive_dir: Path, tmp_path: Path, pg_dsn: str) -> None:
    """Before the pipeline replaced U+0000 in names (records.nul_replaced), the store kept a name as the
    export spelled it; PostgreSQL's text cannot hold one: the copy says where, and writes nothing (the
    ledgered rows need a form both hold first: not the copy's decision)."""
    raw = b"13/10/2026, 08:00 - Jane Doe: hello\n13/10/2026, 08:01 - Counter\x00part: yes\n"
    config = config_module.load(archive_dir / "twentyday.toml")
    custodian = config.custodian("jdoe")
    assert custodian is not None
    # The records as such a version drafted them: the parser's own, with no replacement.
    records = list(whatsapp.parse(BytesSource("WhatsApp Chat with Budget team.txt", raw),
                                  pipeline.hints_for(custodian, "WhatsApp Chat with Budget team.txt")))
    assert [r.sender for r in records if isinstance(r, ParsedMessage)] == ["Jane Doe", "Counter\x00part"]
    with Archive(config) as archive:
        archive.ingest(CaptureInput("jdoe", "cli", "file given to twentyday ingest", raw, "whatsapp", NOW),
                       [pipeline.draft(custodian, r) for r in records if isinstance(r, ParsedMessage)])
    with pytest.raises(IntegrityError, match=re.escape(
            "record.sender: 1 row(s) (the first at rowid 2) hold the character U+0000, which PostgreSQL's text "
            "cannot hold; nothing was copied")):
        pg_copy.copy_index(config.data_dir / INDEX_FILE, pg_dsn)
    assert pg_tables(pg_dsn) == {}


def test_an_index_at_another_schema_version_is_refused(made: Path, pg_dsn: str, tmp_path: Path) -> None:
    earlier = tmp_path / "earlier.db"
    shutil.copyfile(made, earlier)
    with sqlite3.connect(earlier) as conn:
        conn.execute(f"PRAGMA user_version = {pg_schema.SCHEMA_VERSION - 1}")
    conn.close()
    with pytest.raises(ArchiveVersionError, match="run 'twentyday migrate'"):
        pg_copy.copy_index(earlier, pg_dsn)
    assert pg_tables(pg_dsn) == {}


def test_the_copy_reads_one_snapshot_while_the_archive_is_written(made: Path, pg_dsn: str) -> None:
    """A write that commits while the copy runs (a daemon still running) is not half in the copy."""
    writer = sqlite3.connect(made, isolation_level=None)

    def write_meanwhile(table: str, done: int, total: int) -> None:
        if table == "alert":  # the first table copied; record and meta come later
            writer.execute("INSERT INTO meta VALUES ('during_the_copy', 'x')")
            writer.execute("UPDATE record SET status = 'changed'")

    try:
        pg_copy.copy_index(made, pg_dsn, progress=write_meanwhile)
        differences = pg_copy.compare_indexes(made, pg_dsn)
    finally:
        writer.close()
    assert [line.split(":")[0] for line in differences] == ["meta", "record"]
    with psycopg.connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM record WHERE status = 'changed'").fetchone() == (0,)
