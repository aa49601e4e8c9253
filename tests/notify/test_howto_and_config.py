"""The reminder texts (pure), the [alerts] config, and verify's view of the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.notify.conftest import Clock, make_archive, open_alert
from twentyday.config import load
from twentyday.errors import ConfigError
from twentyday.notify.deliver import Deliverer
from twentyday.notify.howto import Reminder, render_reminder
from twentyday.store.archive import Archive
from twentyday.store.verify import verify_archive


def reminder(platform: str, conversation: str = "Budget team") -> Reminder:
    return Reminder(custodian_id="jdoe", custodian_name="Jane Doe", zone="America/New_York", platform=platform,
                    conversation=conversation, covered_until=datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
                    export_by=datetime(2026, 3, 28, 3, 59, 59, tzinfo=UTC),
                    forward_address="records+jdoe@agency.example", watched_folder="/srv/inbox/jdoe")


def test_reminder_names_the_chat_the_last_message_the_date_and_the_address() -> None:
    mail = render_reminder(reminder("whatsapp"))
    assert mail.subject == "Export by Fri 27 Mar 2026: Budget team (whatsapp)"
    lines = mail.body.splitlines()
    # 06:30 UTC on 8 Mar 2026 is 01:30 EST, half an hour before the clocks went forward.
    assert "Last message we have:  Sun 8 Mar 2026, 01:30 EST" in lines
    assert "Export by:  Fri 27 Mar 2026 (end of that day, America/New_York)" in lines
    steps = [line for line in lines if line[:2] in {"1.", "2.", "3.", "4.", "5."}]
    assert len(steps) == 5
    assert steps[4].startswith("5. Mail the file (or zip) it makes to records+jdoe@agency.example "
                               "(or copy it into /srv/inbox/jdoe on the records computer).")
    assert "Your forwarding address: records+jdoe@agency.example" in lines


@pytest.mark.parametrize(("platform", "says"), [
    ("signal", ["Signal has no chat export on the phone", "Settings > Linked devices",
                "transfer your message history", "signal-export or sigtop", "partial"]),
    ("telegram", ["Telegram Desktop", "Export chat history", '"Machine-readable JSON"']),
    ("sms", ["SMS Backup & Restore", "iPhone: iOS has no text-message export", "imessage-exporter"]),
    ("imessage", ["iOS has no iMessage export on the phone", "imessage-exporter with -f html", "-a iOS",
                  "say the original date"]),
    ("google_voice", ["Google Takeout", "Voice only"]),
    ("slack", ["workspace owner or admin", "Import/Export Data"]),
    ("email", ['"Forward as attachment"', "records+jdoe@agency.example"]),
])
def test_each_platform_says_how(platform: str, says: list[str]) -> None:
    body = render_reminder(reminder(platform)).body
    for words in says:
        assert words in body


def test_a_conversation_name_cannot_forge_a_line_or_header() -> None:
    mail = render_reminder(reminder("whatsapp", "Team\nSubject: forged"))
    assert "\n" not in mail.subject and "Team\\nSubject: forged" in mail.subject
    assert "\nSubject: forged" not in mail.body


@pytest.mark.parametrize(("extra", "message"), [
    ('[alerts.email]\nrelay = "mail.example:25"\nfrom_adress = "x@y.z"\n', r"alerts\.email\.from_adress: unknown key"),
    ('[alerts.email]\nrelay = "mail.example"\nfrom_address = "x@y.z"\n', r"alerts\.email\.relay: expected host:port"),
    ('[alerts.email]\nrelay = "mail.example:25"\n', r"alerts\.email\.from_address: needed with"),
    ('[alerts.webhook]\nurl = "https://hooks.example/x"\n', r"alerts\.webhook\.secret_file: a webhook needs"),
    ('[alerts.webhook]\nurl = "file:///etc/passwd"\nsecret_file = "s"\n', r"alerts\.webhook\.url: expected an http"),
    ('[alerts.journal]\nsocket = 3\n', r"alerts\.journal\.socket: expected str"),
])
def test_alert_sink_settings_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(make_archive(tmp_path, extra))


def test_a_webhook_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "webhook.secret"
    secret.write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
    secret.chmod(0o644)
    config = make_archive(tmp_path, f'[alerts.webhook]\nurl = "https://hooks.example/x"\nsecret_file = "{secret}"\n')
    with pytest.raises(ConfigError, match=r"unsafe permissions on alerts\.webhook\.secret_file.*chmod go-rwx"):
        load(config)


def test_verify_accounts_for_the_outbox_and_names_an_edited_delivery(
        tmp_path: Path, opened: Callable[[str], Archive]) -> None:
    archive = opened(f'[alerts.journal]\nsocket = "{tmp_path / "none.sock"}"\n')
    open_alert(archive, "late_capture", "jdoe", "Budget team", "1 record(s) captured after the deadline")
    Deliverer(archive, clock=Clock()).drain()
    assert verify_archive(archive.config).ok
    archive.conn.execute("UPDATE delivery SET state = 'failed'")
    archive.conn.execute("DELETE FROM alert_event")
    problems = {(p.kind, p.object) for p in verify_archive(archive.config).problems}
    assert problems == {("altered", "delivery 1"), ("missing", "alert_event 1")}
