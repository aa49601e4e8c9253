"""Issue 12, item 2: every table that carries evidence is covered by the ledger and by ``verify``.

A real archive gets a mail with an attachment on time and one late (``late_capture``). The
attacker, with the index file and no key, then edits one table each: a blob moved to another
slot or owner (its record no longer opens), an alert deleted or forged, a record's blind-word
row edited, removed or added (search would lie about it), a custodian's retention schedule,
an escrow holder. Before this issue ``verify`` passed every one of these; now each is named.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import make_mail
from tests.security.verify_attacks import index, run

Tamper = Callable[[sqlite3.Connection], str]


def move_pack_slot(conn: sqlite3.Connection) -> str:
    blob_id = conn.execute("SELECT id FROM blob WHERE slot LIKE 'pack:%' ORDER BY id LIMIT 1").fetchone()[0]
    conn.execute("UPDATE blob SET slot = 'pack:7:' || substr(slot, 8) WHERE id = ?", (blob_id,))
    return f"altered: blob {blob_id}"


def move_attachment_slot(conn: sqlite3.Connection) -> str:
    blob_id = conn.execute("SELECT id FROM blob WHERE slot = 'att:0' LIMIT 1").fetchone()[0]
    conn.execute("UPDATE blob SET slot = 'att:1' WHERE id = ?", (blob_id,))
    return f"altered: blob {blob_id}"


def move_raw_to_another_capture(conn: sqlite3.Connection) -> str:
    first, second = [r[0] for r in conn.execute("SELECT id FROM capture ORDER BY id")]
    blob_id = conn.execute("SELECT raw_blob FROM capture WHERE id = ?", (first,)).fetchone()[0]
    conn.execute("UPDATE blob SET capture_id = ?, owner = ? WHERE id = ?", (second, second, blob_id))
    return f"altered: blob {blob_id}"


def delete_alert(conn: sqlite3.Connection) -> str:
    alert_id = conn.execute("SELECT id FROM alert WHERE kind = 'late_capture'").fetchone()[0]
    conn.execute("DELETE FROM alert WHERE id = ?", (alert_id,))
    return f"missing: alert {alert_id}"


def resolve_alert(conn: sqlite3.Connection) -> str:
    alert_id = conn.execute("SELECT id FROM alert WHERE kind = 'late_capture'").fetchone()[0]
    conn.execute("UPDATE alert SET resolved_at = updated_at, count = 0 WHERE id = ?", (alert_id,))
    return f"altered: alert {alert_id}"


def forge_alert(conn: sqlite3.Connection) -> str:
    alert_id = conn.execute(
        "INSERT INTO alert (kind, severity, custodian, conversation, opened_at, updated_at, count, detail) "
        "SELECT kind, severity, custodian, 'another', opened_at, updated_at, 1, detail FROM alert "
        "RETURNING id").fetchone()[0]
    return f"unaccounted: alert {alert_id}"


def edit_terms(conn: sqlite3.Connection) -> str:
    record_id = conn.execute("SELECT record_id FROM record_terms ORDER BY record_id LIMIT 1").fetchone()[0]
    conn.execute("UPDATE record_terms SET terms = 'tnothing' WHERE record_id = ?", (record_id,))
    return f"altered: record {record_id}: search terms"


def delete_terms(conn: sqlite3.Connection) -> str:
    record_id = conn.execute("SELECT record_id FROM record_terms ORDER BY record_id LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM record_terms WHERE record_id = ?", (record_id,))
    return f"missing: record {record_id}: its search terms"


def add_terms(conn: sqlite3.Connection) -> str:
    record_id = conn.execute("SELECT record_id FROM record_terms ORDER BY record_id LIMIT 1").fetchone()[0]
    conn.execute("INSERT INTO record_terms (record_id, terms) VALUES (?, 'tplanted')", (record_id,))
    return f"unaccounted: record {record_id}: 2 rows of search terms"


def edit_custodian(conn: sqlite3.Connection) -> str:
    conn.execute("UPDATE custodian SET schedule = 'grs-6.1-012' WHERE id = 'jdoe'")
    return "altered: custodian jdoe"


def delete_custodian(conn: sqlite3.Connection) -> str:
    conn.execute("DELETE FROM custodian WHERE id = 'jdoe'")
    return "missing: custodian jdoe"


def edit_escrow(conn: sqlite3.Connection) -> str:
    recipient = conn.execute("SELECT recipient FROM escrow").fetchone()[0]
    conn.execute("UPDATE escrow SET sealed = zeroblob(64) WHERE recipient = ?", (recipient,))
    return f"altered: escrow {recipient}"


def delete_escrow(conn: sqlite3.Connection) -> str:
    recipient = conn.execute("SELECT recipient FROM escrow").fetchone()[0]
    conn.execute("DELETE FROM escrow WHERE recipient = ?", (recipient,))
    return f"missing: escrow {recipient}"


@pytest.fixture
def filled(archive_dir: Path, tmp_path: Path) -> Path:
    now = datetime.now(UTC)
    mails = {
        "on-time.eml": make_mail(date=now - timedelta(days=1), message_id="<a@x>",
                                 attachment=("minutes.pdf", b"%PDF-1.4 minutes" * 50)),
        "late.eml": make_mail(date=now - timedelta(days=40), message_id="<b@x>", body="late words"),
    }
    for name, mail in mails.items():
        (tmp_path / name).write_bytes(mail)
        code, output = run(archive_dir / "twentyday.toml", "ingest", "--custodian", "jdoe", str(tmp_path / name))
        assert code == 0, output
    assert run(archive_dir / "twentyday.toml", "verify")[0] == 0
    return archive_dir


@pytest.mark.parametrize("tamper", [
    move_pack_slot, move_attachment_slot, move_raw_to_another_capture,
    delete_alert, resolve_alert, forge_alert,
    edit_terms, delete_terms, add_terms,
    edit_custodian, delete_custodian, edit_escrow, delete_escrow,
], ids=lambda tamper: tamper.__name__)
def test_verify_names_each_change_to_an_evidence_table(filled: Path, tamper: Tamper) -> None:
    conn = index(filled)
    try:
        expected = tamper(conn)
    finally:
        conn.close()
    code, output = run(filled / "twentyday.toml", "verify")
    assert code == 5, output
    assert expected in output, output


def test_verify_names_a_capture_span_that_no_longer_matches_the_records(filled: Path) -> None:
    # Derived data, not evidence: no ledger entry, but verify recomputes it from the records and links.
    conn = index(filled)
    try:
        capture_id = conn.execute("SELECT min(capture_id) FROM capture_span").fetchone()[0]
        conn.execute("UPDATE capture_span SET messages = messages + 1 WHERE capture_id = ?", (capture_id,))
    finally:
        conn.close()
    code, output = run(filled / "twentyday.toml", "verify")
    assert code == 5, output
    assert (f"altered: capture_span: the rows of {capture_id} differ from the records and links they derive from"
            in output), output
