"""The alert lifecycle on a real archive: opened, updated, resolved, escalated, closed — every change
ledgered (verify agrees with the rows), one open alert per kind, custodian and conversation."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from twentyday.errors import InvalidArgument
from twentyday.pipeline import process as pipeline
from twentyday.store.alerts import open_alerts
from twentyday.store.archive import Archive
from twentyday.store.verify import verify_archive

CHAT = "WhatsApp Chat with Budget Team.txt"


def ingest(archive: Archive, name: str, data: bytes, received: datetime) -> pipeline.Outcome:
    outcome = pipeline.process(archive, pipeline.Item(name, "cli", received, data=data, custodian_id="jdoe"))
    assert outcome.state == "ingested", outcome.detail
    return outcome


def whatsapp(first: datetime, days: int, word: str) -> bytes:
    return "".join(f"{first + timedelta(days=n):%m/%d/%y, %H:%M} - Jane Doe: {word} {n}\n"
                   for n in range(days)).encode()


def mail(message_id: str, date: datetime, in_reply_to: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane.doe@gmail.com>"
    message["To"] = "counterpart@partner.example"
    message["Date"] = format_datetime(date)
    message["Subject"] = "Budget"
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content("See below.")
    return bytes(message)


def alerts_of(archive: Archive, kind: str, *, include_resolved: bool = False) -> list[tuple[str, str | None]]:
    return [(a.conversation, a.resolved_at) for a in open_alerts(archive.conn, include_resolved=include_resolved)
            if a.kind == kind]


def ledgered(archive: Archive, alert_id: int) -> list[dict[str, object]]:
    return [json.loads(p)["alert"] for (p,) in archive.conn.execute(
        "SELECT payload FROM ledger WHERE kind = 'alert' AND subject = ? ORDER BY seq", (str(alert_id),))]


def test_reminder_opens_on_its_day_escalates_and_a_new_export_resolves_it(archive: Archive) -> None:
    day = datetime(2026, 9, 1, 9, 0)
    ingest(archive, CHAT, whatsapp(day, 5, "first"), datetime(2026, 9, 6, 12, tzinfo=UTC))
    # Coverage ends 2026-09-05 09:00 New York; the reminder is due from 2026-09-20 00:00 EDT (04:00 UTC).
    archive.evaluate_alerts(datetime(2026, 9, 20, 3, 59, tzinfo=UTC))
    assert alerts_of(archive, "deadline_approaching") == []
    changes = archive.evaluate_alerts(datetime(2026, 9, 20, 4, 1, tzinfo=UTC))
    assert (changes.opened, changes.escalated) == (1, 0)
    [reminder] = [a for a in open_alerts(archive.conn) if a.kind == "deadline_approaching"]
    assert reminder.facts is not None and reminder.facts["export_by"] == "2026-09-25T23:59:59.999999-04:00"
    # Evaluated again: nothing changes, nothing is ledgered twice.
    assert not archive.evaluate_alerts(datetime(2026, 9, 20, 5, tzinfo=UTC)).any
    # Export-by passed: escalated to the records officers.
    assert archive.evaluate_alerts(datetime(2026, 9, 26, 4, 1, tzinfo=UTC)).escalated == 1
    # A new export that extends the coverage resolves it (and opens the next one only when that is due).
    ingest(archive, CHAT, whatsapp(day, 28, "again"), datetime(2026, 9, 29, 12, tzinfo=UTC))
    changes = archive.evaluate_alerts(datetime(2026, 9, 29, 12, 1, tzinfo=UTC))
    assert changes.resolved == 1
    assert alerts_of(archive, "deadline_approaching") == []
    history = ledgered(archive, reminder.id or 0)
    assert [(h["escalated_at"] is not None if "escalated_at" in h else False, h["resolved_at"]) for h in history] == [
        (False, None), (True, None), (True, "2026-09-29T12:01:00+00:00")]
    assert verify_archive(archive.config).ok


def test_thread_gap_found_and_cleared_when_the_original_arrives(archive: Archive) -> None:
    sent = datetime(2026, 9, 1, 14, 0, tzinfo=UTC)
    ingest(archive, "reply.eml", mail("<reply@x.test>", sent + timedelta(hours=2), in_reply_to="<root@x.test>"),
           sent + timedelta(days=1))
    archive.evaluate_alerts(sent + timedelta(days=1, minutes=1))
    [(conversation, _)] = alerts_of(archive, "thread_gap")
    assert conversation.startswith("thread:")
    [gap] = [a for a in open_alerts(archive.conn) if a.kind == "thread_gap"]
    assert gap.detail.startswith("1 record(s) reply to a message that is not in the archive (first rec-")
    ingest(archive, "root.eml", mail("<root@x.test>", sent), sent + timedelta(days=2))
    assert archive.evaluate_alerts(sent + timedelta(days=2, minutes=1)).resolved == 1
    assert alerts_of(archive, "thread_gap") == []
    assert alerts_of(archive, "thread_gap", include_resolved=True) == [(conversation, "2026-09-03T14:01:00+00:00")]
    assert verify_archive(archive.config).ok


def test_an_officer_closes_an_event_alert_with_a_note_but_not_a_condition_alert(archive: Archive) -> None:
    late = datetime(2026, 9, 1, 14, 0, tzinfo=UTC)
    ingest(archive, "late.eml", mail("<late@x.test>", late), late + timedelta(days=30))
    [alert] = [a for a in open_alerts(archive.conn) if a.kind == "late_capture"]
    closed = archive.close_alert(alert.id or 0, "Employee on leave; supervisor informed.", "officer1",
                                 late + timedelta(days=31))
    assert (closed.closed_by, closed.resolved_at) == ("officer1", "2026-10-02T14:00:00+00:00")
    assert ledgered(archive, alert.id or 0)[-1]["note"] == "Employee on leave; supervisor informed."
    assert verify_archive(archive.config).ok
    archive.evaluate_alerts(late + timedelta(days=31))
    silent_or_gap = [a for a in open_alerts(archive.conn) if a.kind == "thread_gap"]
    assert silent_or_gap == []
    ingest(archive, "r.eml", mail("<r2@x.test>", late, in_reply_to="<gone@x.test>"), late + timedelta(days=2))
    archive.evaluate_alerts(late + timedelta(days=32))
    [gap] = [a for a in open_alerts(archive.conn) if a.kind == "thread_gap"]
    with pytest.raises(InvalidArgument, match="resolves itself when its condition clears"):
        archive.close_alert(gap.id or 0, "no", "officer1", late + timedelta(days=32))


def test_a_silent_custodian_is_alerted_and_a_capture_resolves_it(archive: Archive, tmp_path: Path) -> None:
    began = datetime.fromisoformat(archive.conn.execute("SELECT min(at) FROM ledger").fetchone()[0])
    archive.evaluate_alerts(began + timedelta(days=29))
    assert alerts_of(archive, "custodian_silent") == []
    archive.evaluate_alerts(began + timedelta(days=32))
    assert alerts_of(archive, "custodian_silent") == [("", None)]
    ingest(archive, "m.eml", mail("<m@x.test>", began + timedelta(days=31)), began + timedelta(days=32, hours=1))
    assert archive.evaluate_alerts(began + timedelta(days=32, hours=2)).resolved == 1
    assert alerts_of(archive, "custodian_silent") == []


def signal_export(*entries: tuple[str, str, str]) -> bytes:
    """A signal-export folder zipped, one chat, data.json lines of (time, body, quote)."""
    lines = [json.dumps({"date": at, "sender": "Jane Doe", "body": body,
                         "quote": f"\n\n> {quote}\n\n" if quote else "", "sticker": "", "reactions": [],
                         "attachments": [], "deleted": False}) for at, body, quote in entries]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("signal-export/Budget Team/data.json", "\n".join(lines) + "\n")
    return buffer.getvalue()


def test_a_signal_reply_quoting_a_message_not_archived_is_a_thread_gap(archive: Archive) -> None:
    received = datetime(2026, 9, 2, 12, 0, tzinfo=UTC)
    ingest(archive, "signal.zip", signal_export(
        ("2026-09-01T09:00:00", "Shall we move the budget review?", ""),
        ("2026-09-01T09:05:00", "Yes, Thursday", "Shall we move the budget review?"),
        ("2026-09-01T09:10:00", "Agreed", "the earlier plan, as discussed on the call")), received)
    archive.evaluate_alerts(received + timedelta(minutes=1))
    [gap] = [a for a in open_alerts(archive.conn) if a.kind == "thread_gap"]
    assert gap.conversation == "Budget Team"
    assert gap.detail.startswith("1 record(s) reply to a message that is not in the archive")
    assert verify_archive(archive.config).ok


def test_a_mail_that_names_its_parent_only_in_references_is_checked_too(archive: Archive) -> None:
    sent = datetime(2026, 9, 1, 14, 0, tzinfo=UTC)
    message = EmailMessage()
    message["From"] = "Jane Doe <jane.doe@gmail.com>"
    message["To"] = "counterpart@partner.example"
    message["Date"] = format_datetime(sent)
    message["Subject"] = "Budget"
    message["Message-ID"] = "<only-refs@x.test>"
    message["References"] = "<root@x.test> <parent@x.test>"
    message.set_content("See below.")
    ingest(archive, "refs.eml", bytes(message), sent + timedelta(days=1))
    archive.evaluate_alerts(sent + timedelta(days=1, minutes=1))
    [(conversation, _)] = alerts_of(archive, "thread_gap")
    assert conversation.startswith("thread:")
