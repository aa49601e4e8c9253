"""The e-mail sink against a real aiosmtpd relay on 127.0.0.1: reminders, notices, escalation, digest."""

from __future__ import annotations

import email
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.notify.conftest import NOW, Clock, free_port, ingest_whatsapp, open_alert, secret_file
from twentyday.notify.deliver import Deliverer
from twentyday.notify.outbox import enqueue_alert_event
from twentyday.store import outbox
from twentyday.store.archive import Archive

PASSWORD = "relay-pw-8c1f0e"  # a canary: it must never appear in a log, the outbox or the ledger


@dataclass
class Relay:
    port: int
    mails: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.original_content)))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"twentyday" and data.password == PASSWORD.encode()
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)


@pytest.fixture
def relay() -> Iterator[Relay]:
    sink = Relay(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, authenticator=sink.authenticate,
                            auth_require_tls=False)
    controller.start()
    yield sink
    controller.stop()


def email_config(tmp_path: Path, port: int, digest_hour: int = -1) -> str:
    password = secret_file(tmp_path / "relay.password", PASSWORD)
    return f"""
[alerts.email]
relay = "127.0.0.1:{port}"
from_address = "twentyday@agency.example"
starttls = false
user = "twentyday"
password_file = "{password}"
officers = ["records.officer@agency.example"]
digest_hour = {digest_hour}
digest_timezone = "America/New_York"

[alerts.journal]
enabled = false
"""


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def test_deadline_reminder_reaches_the_custodian_and_says_how(
        tmp_path: Path, relay: Relay, opened: Callable[[str], Archive], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    archive = opened(email_config(tmp_path, relay.port))
    conversation = ingest_whatsapp(archive, tmp_path)
    alert_id = open_alert(archive, "deadline_approaching", "jdoe", conversation, "coverage ends 2026-10-13")

    done = Deliverer(archive, clock=Clock()).drain()

    assert (done.delivered, done.retried, done.failed) == (1, 0, 0)
    assert relay.logins == ["LOGIN"] or relay.logins == ["PLAIN"]
    [(rcpt, mail)] = relay.mails
    assert rcpt == ["jane.doe@agency.example"]
    assert mail["Subject"] == f"Export by Mon 2 Nov 2026: {conversation} (whatsapp)"
    assert mail["Auto-Submitted"] == "auto-generated"
    text = body(mail)
    # The last message covered, in her zone (EDT before the 1 Nov change), and the day by which to export:
    # 20 calendar days after 13 Oct in New York, after the change to EST.
    assert "Last message we have:  Tue 13 Oct 2026, 08:02 EDT" in text
    assert "Export by:  Mon 2 Nov 2026 (end of that day, America/New_York)" in text
    assert f'Open WhatsApp and the chat "{conversation}".' in text
    assert "2. Android: tap the three dots (More options) > More > Export chat." in text
    assert "3. iPhone: tap the chat's name at the top > scroll down > Export Chat." in text
    assert '"Include media" (Android) or "Attach Media" (iPhone)' in text
    assert "Your forwarding address: records+jdoe@agency.example" in text
    assert "message 1 " not in text and "budget" not in text  # nothing of the chat's content
    [row] = outbox.deliveries(archive.conn)
    assert (row["alert_id"], row["event"], row["sink"], row["state"], row["attempts"]) == \
        (alert_id, "opened", "email", "delivered", 1)
    assert mail["Message-ID"] == f"<{row['message_id']}@agency.example>"
    # The password went to the relay only.
    assert PASSWORD not in caplog.text
    dump = "\n".join(archive.conn.iterdump())
    assert PASSWORD not in dump


def test_escalation_and_officer_only_kinds_go_to_the_officers(
        tmp_path: Path, relay: Relay, opened: Callable[[str], Archive]) -> None:
    archive = opened(email_config(tmp_path, relay.port))
    late = open_alert(archive, "late_capture", "jdoe", "Budget team", "2 record(s) captured after the deadline")
    open_alert(archive, "ingest_failed", "jdoe", "", "cap-0123: bad_json")
    deliverer = Deliverer(archive, clock=Clock())
    deliverer.drain()
    with outbox.change(archive.conn, archive.secrets.signing_key, NOW.isoformat()) as ledger:
        enqueue_alert_event(archive.conn, ledger, outbox.alert_row(archive.conn, late) or {}, "escalated", NOW,
                            archive.config)
    deliverer.drain()
    sent = [(rcpt, mail["Subject"]) for rcpt, mail in relay.mails]
    assert sent == [
        (["jane.doe@agency.example"], "[twentyday] opened: late_capture - Budget team"),
        (["records.officer@agency.example"], "[twentyday] opened: ingest_failed"),
        (["records.officer@agency.example"], "[twentyday] escalated: late_capture - Budget team"),
    ]
    text = body(relay.mails[2][1])
    assert "Alert 1 escalated to the records officers: late_capture (warning)" in text
    assert "What:          2 record(s) captured after the deadline" in text


def test_daily_digest_per_officer_once_a_day_at_its_hour(
        tmp_path: Path, relay: Relay, opened: Callable[[str], Archive]) -> None:
    archive = opened(email_config(tmp_path, relay.port, digest_hour=7).replace(
        '["records.officer@agency.example"]', '["records.officer@agency.example", "deputy@agency.example"]'))
    open_alert(archive, "undated_record", "jdoe", "Budget team", "1 record(s) without an original time")
    clock = Clock(NOW.replace(hour=10))  # 06:00 in New York: before the digest's hour
    deliverer = Deliverer(archive, clock=clock)
    deliverer.drain()
    assert [m["Subject"] for _, m in relay.mails] == ["[twentyday] opened: undated_record - Budget team"]
    clock.at = NOW.replace(hour=11, minute=5)  # 07:05 in New York
    assert deliverer.drain().digests == 2
    clock.at += timedelta(hours=3)
    assert deliverer.drain().digests == 0  # once a day
    digests = [(rcpt, m) for rcpt, m in relay.mails if "open alert(s)" in str(m["Subject"])]
    assert [rcpt for rcpt, _ in digests] == [["records.officer@agency.example"], ["deputy@agency.example"]]
    assert digests[0][1]["Subject"] == "[twentyday] 1 open alert(s) on Fri 30 Oct 2026"
    assert "undated_record" in body(digests[0][1]) and "Budget team" in body(digests[0][1])
    clock.at += timedelta(days=1)
    assert deliverer.drain().digests == 2


def test_relay_down_is_retried_with_backoff_then_delivered(tmp_path: Path, opened: Callable[[str], Archive]) -> None:
    port = free_port()
    archive = opened(email_config(tmp_path, port))
    open_alert(archive, "late_capture", "jdoe", "Budget team", "1 record(s) captured after the deadline")
    clock = Clock()
    deliverer = Deliverer(archive, clock=clock)
    done = deliverer.drain()
    assert (done.attempted, done.retried) == (1, 1)
    [row] = outbox.deliveries(archive.conn)
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "connection_refused")
    assert deliverer.drain().attempted == 0  # not due before its backoff (30 s and jitter)
    sink = Relay(port)
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=sink.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        clock.at += timedelta(seconds=34)
        assert deliverer.drain().delivered == 1
    finally:
        controller.stop()
    assert len(sink.mails) == 1
    [row] = outbox.deliveries(archive.conn)
    assert (row["state"], row["attempts"]) == ("delivered", 2)


def test_the_clock_opens_the_reminder_and_a_later_export_resolves_it_both_mailed(
        tmp_path: Path, relay: Relay, opened: Callable[[str], Archive]) -> None:
    # No alert opened by hand: the scheduler's evaluation finds the conversation whose coverage
    # ended 13 Oct (over 14 days before 30 Oct), and the reminder carries its facts.
    archive = opened(email_config(tmp_path, relay.port))
    conversation = ingest_whatsapp(archive, tmp_path)
    archive.evaluate_alerts(NOW)
    [(alert_id,)] = archive.conn.execute(
        "SELECT id FROM alert WHERE kind = 'deadline_approaching' AND resolved_at IS NULL").fetchall()
    Deliverer(archive, clock=Clock()).drain()
    [(rcpt, mail)] = [(r, m) for r, m in relay.mails if "Export by" in str(m["Subject"])]
    assert rcpt == ["jane.doe@agency.example"]
    assert mail["Subject"] == f"Export by Mon 2 Nov 2026: {conversation} (whatsapp)"
    assert "Last message we have:  Tue 13 Oct 2026, 08:02 EDT" in body(mail)
    # She exports again, with newer messages: that reminder resolves (a new one names the new end of
    # coverage, still over 14 days old), and she is told it is resolved.
    relay.mails.clear()
    later = tmp_path / "later"
    later.mkdir()
    ingest_whatsapp(archive, later, count=60)  # one message a minute: coverage now ends at 08:59
    archive.evaluate_alerts(NOW + timedelta(hours=1))
    assert archive.conn.execute("SELECT resolved_at IS NOT NULL FROM alert WHERE id = ?", (alert_id,)).fetchone() \
        == (1,)
    Deliverer(archive, clock=Clock(NOW + timedelta(hours=1))).drain()
    events = [(row["alert_id"], row["event"], row["sink"], row["state"]) for row in outbox.deliveries(archive.conn)
              if row["alert_id"] == alert_id]
    assert sorted(events) == [(alert_id, "opened", "email", "delivered"), (alert_id, "resolved", "email", "delivered")]
    assert any(rcpt == ["jane.doe@agency.example"] for rcpt, _ in relay.mails)
