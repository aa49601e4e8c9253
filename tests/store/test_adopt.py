"""Upgrading an archive written before issue 12: its unledgered rows are adopted, once, signed.

The archive is a real one written by the code before issue 12 (``tests/data/pre_issue12``, see
its README): alerts, custodian and escrow rows with no ledger entry, capture and pack entries
that do not yet commit to blob rows or search terms. Everything goes through the real CLI.
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.store.conftest import embedded_only
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.errors import ArchiveVersionError, IntegrityError
from twentyday.store import schema
from twentyday.store.archive import Archive

FIXTURE = Path(__file__).parents[1] / "data" / "pre_issue12" / "archive.tar.gz"
#: What the old archive holds that no ledger entry covered (see the fixture's README).
ADOPTED_ROWS = {"alert": 5, "blob": 15, "custodian": 1, "escrow": 1, "record_terms": 13}


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


pytestmark = embedded_only("the archive upgraded is one written before issue 12, its sealed bytes in its "
                           "index; no archive of that schema ever had its blobs in a bucket")


@pytest.fixture
def old_archive(tmp_path: Path, backend: str) -> Path:
    """A copy of the pre-issue-12 archive, its ledger key pinned (as the upgrade notes ask), not migrated."""
    assert backend == "embedded"
    with tarfile.open(FIXTURE) as packed:
        packed.extractall(tmp_path, filter="data")
    config = tmp_path / "archive" / "twentyday.toml"
    code, output = run(config, "keys", "pin-ledger", "--write")
    assert code == 0, output
    return config


def index(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(config.parent / "data" / "index.db", isolation_level=None)


def schema_version(config: Path) -> int:
    conn = index(config)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def tamper(config: Path, sql: str) -> None:
    conn = index(config)
    try:
        assert conn.execute(sql).rowcount == 1, sql
    finally:
        conn.close()


def verify_json(config: Path) -> tuple[int, dict[str, object]]:
    code, output = run(config, "verify", "--json")
    return code, json.loads(output)


def test_verify_on_an_archive_that_needs_migrating_says_what_to_run_in_one_line(old_archive: Path) -> None:
    code, output = run(old_archive, "verify")
    assert code == ArchiveVersionError.exit_code == 8
    assert output.splitlines() == [
        "twentyday: the archive is at schema 2, written by an earlier twentyday; this one reads schema "
        f"{len(schema.MIGRATIONS)}: run 'twentyday migrate' (or start 'twentyday serve') first"]
    assert schema_version(old_archive) == 2  # verify is read-only: it migrated nothing
    # The officer's side holds no signing key: it cannot adopt, so it does not migrate either.
    code, output = run(old_archive, "show", "rec-x", "--identity", str(old_archive.parent / "officer.key"),
                       "--purpose", "a check")
    assert code == 8, output
    assert "run 'twentyday migrate'" in output
    assert schema_version(old_archive) == 2


def test_migrate_adopts_every_unledgered_row_once_and_verify_then_passes(old_archive: Path) -> None:
    code, output = run(old_archive, "migrate", "--json")
    assert code == 0, output
    migrated = json.loads(output[output.index("{"):])
    assert migrated["from_schema"] == 2 and migrated["schema"] == len(schema.MIGRATIONS)
    adopted = migrated["adopted"]
    assert adopted["tables"] == ADOPTED_ROWS
    assert adopted["rows"] == 35
    # One entry per alert, custodian and escrow row, per capture's blob rows, per pack's terms.
    assert adopted["entries"] == 5 + 1 + 1 + 4 + 4
    assert migrated["head_seq"] == 17 + adopted["entries"]  # signed at the last adopted entry

    code, report = verify_json(old_archive)
    assert code == 0, report
    assert report["ok"] is True and report["problems"] == []
    assert report["adopted"] == adopted  # when and how many: not vouched for before that time
    assert report["past_checkpoint"] == 0 and report["head"] == report["checkpoint"]
    code, text = run(old_archive, "verify")
    assert code == 0, text
    assert (f"adopted: 35 row(s) written before their tables were ledgered were adopted at {adopted['at']} "
            "(alert 5, blob 15, custodian 1, escrow 1, record_terms 13): the ledger vouches for them from then "
            "on, not before") in text.splitlines()

    # Once only: the next open (any writer) adopts nothing more.
    code, output = run(old_archive, "migrate")
    assert code == 0 and output.splitlines() == [f"schema {len(schema.MIGRATIONS)}, nothing to migrate"]
    conn = index(old_archive)
    assert conn.execute("SELECT count(*) FROM ledger WHERE kind = 'adopt'").fetchone()[0] == adopted["entries"]
    conn.close()


def test_serve_side_ingest_migrates_too_and_new_captures_verify(old_archive: Path, tmp_path: Path) -> None:
    mail = tmp_path / "new.eml"
    mail.write_bytes(make_mail(body="After the upgrade.", message_id="<after-upgrade@x>"))
    code, output = run(old_archive, "ingest", "--custodian", "jdoe", str(mail))
    assert code == 0, output
    assert schema_version(old_archive) == len(schema.MIGRATIONS)
    code, report = verify_json(old_archive)
    assert code == 0, report
    assert report["captures"] == 5 and report["records"] == 14
    assert report["adopted"]["tables"] == ADOPTED_ROWS  # type: ignore[index]


@pytest.mark.parametrize(("change", "named"), [
    ("UPDATE alert SET count = 9 WHERE id = 2", "altered: alert 2: index row differs from the ledger (alert.count)"),
    ("DELETE FROM alert WHERE id = 5", "missing: alert 5: in the ledger but not in the index"),
    ("INSERT INTO alert (kind, severity, custodian, conversation, opened_at, updated_at, count, detail) "
     "VALUES ('late_capture', 'warning', 'jdoe', 'Made up', '2026-01-01', '2026-01-01', 1, 'x')",
     "unaccounted: alert 6: in the index but not in the ledger"),
    ("UPDATE custodian SET schedule = 'grs-0' WHERE id = 'jdoe'",
     "altered: custodian jdoe: index row differs from the ledger (custodian.schedule)"),
    ("UPDATE escrow SET label = 'someone else'", "altered: escrow {escrow}: index row differs from the ledger "
                                                  "(escrow.label)"),
    ("UPDATE blob SET slot = 'raw' WHERE id = '{pack}'", "altered: blob {pack}: its row ({capture}, {capture}/raw) "
                                                         "differs from the ledger"),
    ("UPDATE record_terms SET terms = 'abc' WHERE record_id = '{record}'",
     "altered: record {record}: search terms differ from the ledger"),
])
def test_a_row_changed_after_adoption_is_named(old_archive: Path, change: str, named: str) -> None:
    assert run(old_archive, "migrate")[0] == 0
    conn = index(old_archive)
    pack, capture = conn.execute("SELECT id, capture_id FROM blob WHERE slot LIKE 'pack:%' ORDER BY rowid").fetchone()
    record = conn.execute("SELECT id FROM record WHERE content_blob = ? ORDER BY rowid", (pack,)).fetchone()[0]
    escrow = conn.execute("SELECT recipient FROM escrow").fetchone()[0]
    conn.close()
    names = {"pack": pack, "capture": capture, "record": record, "escrow": escrow}
    tamper(old_archive, change.format(**names))
    code, output = run(old_archive, "verify")
    assert code == IntegrityError.exit_code, output
    assert [line for line in output.splitlines() if not line.startswith(("adopted:", "FAILED:"))] == [
        named.format(**names)]


def test_an_upgrade_that_fails_leaves_the_archive_as_it_was(old_archive: Path) -> None:
    """Migration and adoption are one transaction: a failure in between keeps schema 2 and its ledger."""
    conn = index(old_archive)
    before = conn.execute("SELECT count(*), max(seq) FROM ledger").fetchone()
    # A ledger row in the way of the first adopted entry's sequence number: its insert fails.
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON ledger WHEN NEW.kind = 'adopt' "
                 "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    conn.close()
    code, output = run(old_archive, "migrate")
    assert code != 0, output
    assert schema_version(old_archive) == 2
    conn = index(old_archive)
    assert conn.execute("SELECT count(*), max(seq) FROM ledger").fetchone() == before
    assert conn.execute("SELECT count(*) FROM pragma_table_info('capture') WHERE name = 'delivered_by'"
                        ).fetchone()[0] == 0
    conn.close()


def test_an_adopted_open_alert_changes_like_any_other(old_archive: Path) -> None:
    # The open alerts an upgrade adopted are held to their adopt entry: escalating one (open
    # longer than alerts.escalate_after_days) is ledgered as its next change, not refused as an
    # alert edited on the disk.
    assert run(old_archive, "migrate")[0] == 0
    with Archive(config_module.load(old_archive)) as archive:
        adopted = [subject.split()[1] for (subject,) in archive.conn.execute(
            "SELECT subject FROM ledger WHERE kind = 'adopt' AND subject LIKE 'alert %'")]
        archive.evaluate_alerts(datetime.now(UTC) + timedelta(days=8))
        escalated = {str(alert_id) for (alert_id,) in archive.conn.execute(
            "SELECT id FROM alert WHERE escalated_at IS NOT NULL")}
        ledgered = {subject for (subject,) in archive.conn.execute(
            "SELECT subject FROM ledger WHERE kind = 'alert' AND payload LIKE '%escalated_at%'")}
    assert len(adopted) == 5 and set(adopted) <= escalated
    assert escalated <= ledgered
    code, report = verify_json(old_archive)
    assert code == 0, report
