"""An alert edited or planted on the disk is not laundered by the next change twentyday makes to it.

Every change of an alert row is a ledger entry with the whole row. The attacker, with the index
file and no key, edits an open ``late_capture`` alert (its count and detail: fewer late records
than arrived) or plants an open alert of their own; then a real ingest raises the same alert
again. Bumping the edited row and ledgering the result would make the edit part of the alert's
signed history and ``verify`` would pass. It must instead keep naming the alert, and the
officers must be told of it (a planted open alert would otherwise swallow the real opening).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import make_mail
from tests.security.test_verify_every_table import filled  # noqa: F401  (the archive fixture)
from tests.security.verify_attacks import index, run


def test_an_edited_alert_stays_named_after_twentyday_raises_it_again(filled: Path, tmp_path: Path) -> None:  # noqa: F811
    conn = index(filled)
    try:
        [(alert_id, conversation)] = conn.execute(
            "SELECT id, conversation FROM alert WHERE kind = 'late_capture'").fetchall()
        conn.execute("UPDATE alert SET count = 0, detail = 'nothing late' WHERE id = ?", (alert_id,))
        conn.commit()
    finally:
        conn.close()
    # A later mail of the same thread (its References name the late mail) is late too: the same alert.
    mail = tmp_path / "reply.eml"
    mail.write_bytes(b"References: <b@x>\n" + make_mail(date=datetime.now(UTC) - timedelta(days=44),
                                                       message_id="<c@x>", body="reply"))
    code, output = run(filled / "twentyday.toml", "ingest", "--custodian", "jdoe", str(mail))
    assert code == 0, output
    conn = index(filled)
    try:
        assert conn.execute("SELECT conversation, count FROM alert WHERE id = ?", (alert_id,)).fetchone() == (
            conversation, 1)
    finally:
        conn.close()
    code, output = run(filled / "twentyday.toml", "verify")
    assert code == 5, output
    assert f"altered: alert {alert_id}" in output, output


def test_a_planted_open_alert_is_not_adopted_and_the_officers_hear_of_it(filled: Path, tmp_path: Path) -> None:  # noqa: F811
    conn = index(filled)
    try:
        stamp = datetime.now(UTC).isoformat()
        planted = conn.execute(
            "INSERT INTO alert (kind, severity, custodian, conversation, opened_at, updated_at, count, detail) "
            "VALUES ('late_capture', 'warning', 'jdoe', '(no thread)', ?, ?, 1, 'planted') RETURNING id",
            (stamp, stamp)).fetchone()[0]
        conn.commit()
    finally:
        conn.close()
    # A late mail with no thread raises late_capture for jdoe's '(no thread)': the planted row is bumped.
    mail = tmp_path / "nothread.eml"
    mail.write_bytes(make_mail(date=datetime.now(UTC) - timedelta(days=45), message_id="", body="alone"))
    code, output = run(filled / "twentyday.toml", "ingest", "--custodian", "jdoe", str(mail))
    assert code == 0, output
    conn = index(filled)
    try:
        assert conn.execute("SELECT count FROM alert WHERE id = ?", (planted,)).fetchone() == (2,)
        events = conn.execute("SELECT event FROM alert_event WHERE alert_id = ?", (planted,)).fetchall()
    finally:
        conn.close()
    assert events == [("opened",)]
    code, output = run(filled / "twentyday.toml", "verify")
    assert code == 5, output
    assert f"unaccounted: alert {planted}" in output, output
