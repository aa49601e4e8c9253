"""Issue 13's end-to-end test: the 20-day clock through the real CLI on a real archive.

Time is never faked: message dates are chosen relative to the real now, and the future is looked
at with ``alerts --as-of`` (read-only). Two WhatsApp exports of one chat a month apart leave a gap;
the first shows a deleted message, the second omits media; a forwarded mail arrives late; a forward
whose original has no date is undated. Then a later export with the whole history closes the gap
and moves the reminder out of sight.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
CHAT = "WhatsApp Chat with Budget Team.txt"


def twentyday(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twentyday", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def as_json(config: Path, *args: str) -> Any:
    done = twentyday("--config", str(config), *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def chat_lines(days: list[date], texts: dict[int, str] | None = None) -> str:
    texts = texts or {}
    return "".join(f"{day:%m/%d/%y}, 09:{n:02d} - Jane Doe: {texts.get(n, f'budget line {day:%m%d}')}\n"
                   for n, day in enumerate(days))


def forward(original_headers: str, body: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane.doe@gmail.com>"
    message["To"] = "records@agency.example"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Subject"] = "Fwd: Visit"
    message["Message-ID"] = message_id
    message.set_content(f"For the record.\n\n---------- Forwarded message ---------\n{original_headers}\n{body}\n")
    return bytes(message)


def test_statuses_alerts_and_the_reminder_through_the_cli(tmp_path: Path) -> None:
    assert twentyday("init", "--no-passphrase", str(tmp_path / "a")).returncode == 0
    config = tmp_path / "a" / "twentyday.toml"
    today = datetime.now(NEW_YORK).date()
    first = [today - timedelta(days=n) for n in (45, 44, 43, 42)]
    second = [today - timedelta(days=n) for n in (13, 12, 11, 10)]
    files = tmp_path / "in"
    for folder in ("one", "two", "three"):
        (files / folder).mkdir(parents=True)
    (files / "one" / CHAT).write_text(chat_lines(first, {1: "This message was deleted"}))
    (files / "two" / CHAT).write_text(chat_lines(second, {2: "<Media omitted>"}))
    late_day = today - timedelta(days=30)
    sent = format_datetime(datetime(late_day.year, late_day.month, late_day.day, 10, tzinfo=NEW_YORK))
    (files / "late.eml").write_bytes(forward(
        f"From: John Doe <john.doe@acme.com>\nDate: {sent}\n"
        "Subject: Visit\nTo: <jane.doe@gmail.com>\n", "The visit is on.", "<late-fwd@gmail.com>"))
    (files / "undated.eml").write_bytes(forward(
        "From: John Doe <john.doe@acme.com>\nSubject: Visit\nTo: <jane.doe@gmail.com>\n", "No date here.",
        "<undated-fwd@gmail.com>"))
    for path in ("one", "two"):
        done = twentyday("--config", str(config), "ingest", "--custodian", "jdoe", str(files / path / CHAT))
        assert done.returncode == 0, done.stderr
    for name in ("late.eml", "undated.eml"):
        done = twentyday("--config", str(config), "ingest", "--custodian", "jdoe", str(files / name))
        assert done.returncode == 0, done.stderr

    # Statuses and days late: a record is due at the end of the 20th local day after it was made.
    records = as_json(config, "search")
    chat = sorted((r for r in records if r["platform"] == "whatsapp"), key=lambda r: r["created_at"])
    captured_on = datetime.fromisoformat(chat[0]["captured_at"]).astimezone(NEW_YORK).date()
    assert [(r["status"], r["days_late"]) for r in chat] == [
        *[("late", (captured_on - day).days - 20) for day in first], *[("on_time", 0) for _ in second]]
    assert (captured_on - first[0]).days - 20 == 25 or captured_on != today
    [late] = [r for r in records if r["platform"] == "email" and r["status"] == "late"]
    assert late["days_late"] == (captured_on - late_day).days - 20 == 10 or captured_on != today
    [undated] = [r for r in records if r["status"] == "undated"]
    assert (undated["created_at"], undated["deadline_at"], undated["days_late"]) == (None, None, None)

    # Alerts now: each kind for the right conversation; no reminder yet (coverage ended 10 days ago).
    opened = {(a["kind"], a["conversation"]) for a in as_json(config, "alerts")}
    assert {("deleted_message", "Budget Team"), ("incomplete_copy", "Budget Team"),
            ("coverage_gap", "Budget Team"), ("late_capture", "Budget Team")} <= opened
    assert ("late_capture", late["conversation"]) in opened
    assert ("undated_record", undated["conversation"]) in opened
    assert not any(kind == "deadline_approaching" for kind, _ in opened)
    [gap] = [a for a in as_json(config, "alerts", "--all") if a["kind"] == "coverage_gap"]
    [hole] = gap["facts"]["holes"]
    assert datetime.fromisoformat(hole["from"]).astimezone(NEW_YORK).date() == first[-1]
    assert datetime.fromisoformat(hole["to"]).astimezone(NEW_YORK).date() == second[0]

    # Five days ahead: coverage ended 15 local days before, so the reminder is open, with its export-by date.
    ahead = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    [reminder] = [a for a in as_json(config, "alerts", "--as-of", ahead) if a["kind"] == "deadline_approaching"]
    assert (reminder["conversation"], reminder["id"]) == ("Budget Team", None)
    export_by = datetime.fromisoformat(reminder["facts"]["export_by"]).astimezone(NEW_YORK)
    assert (export_by.date(), export_by.strftime("%H:%M")) == (second[-1] + timedelta(days=20), "23:59")
    # --as-of wrote nothing. The one reminder the table holds was opened when the first export
    # arrived (its coverage had ended 42 days before) and resolved by the second.
    [(first_reminder, resolved)] = [(a["facts"], a["resolved_at"]) for a in as_json(config, "alerts", "--all")
                                    if a["kind"] == "deadline_approaching"]
    assert datetime.fromisoformat(first_reminder["covered_until"]).astimezone(NEW_YORK).date() == first[-1]
    assert resolved is not None

    # A later export with the whole history: the gap resolves, and five days ahead no reminder is due.
    middle = [today - timedelta(days=n) for n in (30, 20)]
    newest = [today - timedelta(days=n) for n in (2, 1)]
    (files / "three" / CHAT).write_text(chat_lines(first, {1: "This message was deleted"})
                                        + chat_lines(middle).replace("09:0", "10:0")
                                        + chat_lines(second, {2: "<Media omitted>"})
                                        + chat_lines(newest).replace("09:0", "11:0"))
    done = twentyday("--config", str(config), "ingest", "--custodian", "jdoe", str(files / "three" / CHAT))
    assert done.returncode == 0, done.stderr
    [gap] = [a for a in as_json(config, "alerts", "--all") if a["kind"] == "coverage_gap"]
    assert gap["resolved_at"] is not None and gap["closed_by"] is None
    assert not any(a["kind"] == "deadline_approaching" for a in as_json(config, "alerts", "--as-of", ahead))
    still = {(a["kind"], a["conversation"]) for a in as_json(config, "alerts")}
    assert ("coverage_gap", "Budget Team") not in still and ("deleted_message", "Budget Team") in still
    # And a fortnight later, the reminder for the new end of coverage is due.
    later = (datetime.now(UTC) + timedelta(days=16)).isoformat()
    assert [a["conversation"] for a in as_json(config, "alerts", "--as-of", later)
            if a["kind"] == "deadline_approaching"] == ["Budget Team"]
    verified = twentyday("--config", str(config), "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
