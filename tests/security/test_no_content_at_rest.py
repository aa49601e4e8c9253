"""Issue 12, item 5: nothing an attacker wrote is at rest in clear, or in the daemon's log.

The attacker is anyone who can put words into an item (a correspondent, the employee who
drops an export): every field they control carries a canary of its own. Through a real
``twentyday serve`` (SMTP and the watched folder):

- a mail whose From and To display names, Subject, Message-ID, References, body and an
  attachment's file name and media type are canaries; a mail starting a thread (its
  Message-ID names the conversation); a mail forwarding an original inline
  whose From display name, Subject, body and unreadable ``Date:`` text are canaries;
- a WhatsApp zip whose file name (the chat's name: WhatsApp names a chat by its export's
  file), chat file's member name, a participant, a line and a media member's name are
  canaries; a second one whose chat file is unreadable (bad CRC), so the parser's error
  quotes its member's name;
- a dropped folder (its name a canary) holding a symbolic link and a FIFO whose names are
  canaries.

The chat is dated long ago, so its capture is late on any day the test runs: an alert opens on
its conversation (the chat's name), and the test waits until the journal has been told of it
(no journal socket here: the daemon's stderr is its journal) before stopping the daemon.

Once everything is committed or quarantined and the daemon has stopped, every byte of every
file under ``data_dir`` (the index and its ``-wal`` and ``-shm``, the spool, the secrets) and
the daemon's stdout and stderr are searched for each canary, as written and lower-cased
(addresses are folded). None may be found, except the fields the design keeps in clear on
purpose to enforce the rule (docs/ARCHITECTURE.md, "Security model"; README, "What someone
who owns the disk learns"): :data:`ON_PURPOSE`. An officer still reads the full reasons
(``show cap-…``), and search still finds a body's words (the blind index).
"""

from __future__ import annotations

import json
import os
import smtplib
import sqlite3
import uuid
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import NOW
from tests.security.spool_attack import captures, serving, wait_for
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.store import search as search_module
from twentyday.store.archive import Archive

TAG = uuid.uuid4().hex[:12].upper()


def canary(field: str) -> str:
    return f"CANARY{field.upper()}{TAG}"


FIELDS = (
    "from_name", "to_name", "subject", "message_id", "references", "body", "attachment", "media_type",
    "thread_root",
    "fwd_subject", "orig_name", "orig_subject", "orig_body", "orig_date",
    "chat_name", "chat_member", "participant", "media_member", "line_body",
    "bad_chat_name", "bad_member", "folder", "symlink", "fifo",
)
C = {field: canary(field) for field in FIELDS}

#: What the design keeps in clear to enforce the rule, and where: a chat's name is its
#: conversation, a participant is a sender or recipient (only in the index: its rows, its
#: ledger). Nothing else an attacker wrote may be found.
ON_PURPOSE = {
    "chat_name": "the conversation of the chat's records (record.conversation)",
    "participant": "a chat participant (record.sender, record.recipients)",
}


def direct_mail() -> bytes:
    message = EmailMessage()
    message["From"] = f'"{C["from_name"]}" <jane.doe@gmail.com>'
    message["To"] = f'"{C["to_name"]}" <counterpart@partner.example>'
    message["Date"] = format_datetime(NOW)
    message["Subject"] = f"Budget {C['subject']}"
    message["Message-ID"] = f"<{C['message_id']}@gmail.com>"
    message["References"] = f"<{C['references']}@partner.example>"
    message.set_content(f"We agreed on the pelican schedule {C['body']}.")
    message.add_attachment(b"%PDF-1.4 minutes", maintype="application", subtype=f"x-{C['media_type']}",
                           filename=f"{C['attachment']}.pdf")
    return bytes(message)


def thread_starting_mail() -> bytes:
    """A mail that starts its thread: its own Message-ID names the conversation."""
    message = EmailMessage()
    message["From"] = "jane.doe@gmail.com"
    message["To"] = "counterpart@partner.example"
    message["Date"] = format_datetime(NOW)
    message["Subject"] = "Kickoff"
    message["Message-ID"] = f"<{C['thread_root']}@gmail.com>"
    message.set_content("Let us start.")
    return bytes(message)


def forwarding_mail() -> bytes:
    message = EmailMessage()
    message["From"] = "jane.doe@gmail.com"
    message["To"] = "records@agency.example"
    message["Date"] = format_datetime(NOW)
    message["Subject"] = f"Fwd: {C['fwd_subject']}"
    message["Message-ID"] = "<fwd-at-rest@gmail.com>"
    message.set_content(
        "See below.\n\n"
        "---------- Forwarded message ---------\n"
        f'From: "{C["orig_name"]}" <bob@partner.example>\n'
        f"Date: sometime {C['orig_date']} around noon\n"
        f"Subject: {C['orig_subject']}\n"
        "To: Jane Doe <jane.doe@gmail.com>\n"
        "\n"
        f"The original text {C['orig_body']}.\n")
    return bytes(message)


def whatsapp_zip(path: Path, member: str, lines: str, media: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"WhatsApp Chat with {member}.txt", lines)
        for name, data in media.items():
            archive.writestr(name, data)
    return path


def corrupt(path: Path, needle: bytes) -> None:
    """Change a stored member's bytes in place: its CRC no longer matches (the zip is still a zip)."""
    data = path.read_bytes()
    at = data.index(needle)
    path.write_bytes(data[:at] + bytes(b ^ 0x20 for b in needle) + data[at + len(needle):])


def drop_everything(inbox: Path, staging: Path) -> list[Path]:
    """The watched folder's items, built aside and moved in whole; returns what must leave the inbox."""
    media = f"IMG-{C['media_member']}.jpg"
    lines = (f"13/10/2020, 08:00 - Jane Doe: morning {C['line_body']}\n"
             f"13/10/2020, 08:01 - Pat {C['participant']}: {media} (file attached)\n"
             "13/10/2020, 08:02 - Jane Doe: thanks\n")
    good = whatsapp_zip(staging / f"WhatsApp Chat with {C['chat_name']}.zip", C["chat_member"], lines,
                        {media: b"\xff\xd8\xff\xe0 not really a jpeg"})
    bad_lines = "13/10/2026, 08:00 - Jane Doe: UNIQUE-BYTES-TO-BREAK\n"
    bad = whatsapp_zip(staging / f"WhatsApp Chat with {C['bad_chat_name']}.zip", C["bad_member"], bad_lines, {})
    corrupt(bad, b"UNIQUE-BYTES-TO-BREAK")
    folder = staging / C["folder"]
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing any parser reads\n")
    (folder / C["symlink"]).symlink_to("/etc/passwd")
    os.mkfifo(folder / C["fifo"])
    moved = []
    for item in (good, bad, folder):
        target = inbox / item.name
        item.rename(target)
        moved.append(target)
    return moved


def found_in(data: bytes, text: str) -> bool:
    return text.encode() in data or text.lower().encode() in data.lower()


def scan(data_dir: Path, log: Path) -> dict[str, list[str]]:
    """Every canary found, and where: every file under data_dir (raw bytes), and the daemon's output."""
    places = [path for path in sorted(data_dir.rglob("*")) if path.is_file()] + [log]
    found: dict[str, list[str]] = {}
    for path in places:
        data = path.read_bytes()
        for field, text in C.items():
            if found_in(data, text):
                found.setdefault(field, []).append(path.name)
    return found


def journal_told_of_the_chat(data_dir: Path) -> bool:
    """Has the alert deliverer written an alert on the chat's conversation to the journal (here stderr)?"""
    conn = sqlite3.connect(f"file:{data_dir / 'index.db'}?mode=ro", uri=True)
    try:
        states = [state for (state,) in conn.execute(
            "SELECT delivery.state FROM delivery JOIN alert ON alert.id = delivery.alert_id "
            "WHERE delivery.sink = 'journal' AND alert.conversation = ?", (C["chat_name"],))]
    finally:
        conn.close()
    return bool(states) and all(state == "delivered" for state in states)


def show(archive_dir: Path, capture_id: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "show", capture_id,
                                      "--identity", str(archive_dir / "officer.key"), "--purpose",
                                      "review of a quarantined item", "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.output)
    return document


def test_no_attacker_field_is_at_rest_or_in_the_log(archive_dir: Path, tmp_path: Path) -> None:
    data_dir = archive_dir / "data"
    settings = archive_dir / "twentyday.toml"
    settings.write_text('log_level = "debug"\n' + settings.read_text()  # the most the log ever says
                        # No journal: alert events are lines of the log (stderr), scanned with it.
                        + f'\n[alerts.journal]\nsocket = "{tmp_path / "no-journal.sock"}"\n')
    log = tmp_path / "serve.log"
    staging = tmp_path / "staging"
    staging.mkdir()
    with serving(archive_dir, log) as (_, port):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], direct_mail())
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], forwarding_mail())
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], thread_starting_mail())
        dropped = drop_everything(archive_dir / "inbox" / "jdoe", staging)
        # Three mails, two zips, the folder's files and the record of what in it was refused.
        try:
            wait_for(lambda: len(captures(data_dir)) >= 7 and not any(p.exists() for p in dropped), seconds=120)
        except AssertionError:
            states = [(row["state"], row["reason"], row["parser"]) for row in captures(data_dir)]
            raise AssertionError(f"not all taken: {states}, inbox {[p.name for p in dropped if p.exists()]}, "
                                 f"log: {log.read_text()[-3000:]}") from None
        # Committed; the spool forgets each container within the worker's step after that.
        wait_for(lambda: not list((data_dir / "spool").glob("seg-*")) and not list(
            (data_dir / "spool" / "files").glob("*")), seconds=30)
        # The deliverer's round (every few seconds) has told the journal of the chat's late capture.
        wait_for(lambda: journal_told_of_the_chat(data_dir), seconds=60)

    found = scan(data_dir, log)
    leaked = {field: where for field, where in found.items()
              if field not in ON_PURPOSE or any(not name.startswith("index.db") for name in where)}
    assert leaked == {}, f"in clear at rest or in the log: {leaked}"
    # The scan does find what the design keeps in clear: it reads the index and its WAL.
    assert "chat_name" in found and "participant" in found

    rows = {row["id"]: row for row in captures(data_dir)}
    by_state = sorted((row["state"], row["reason"]) for row in rows.values())
    assert ("quarantined", "zip_entry_unreadable") in by_state, by_state
    assert ("quarantined", "unrecognised_format") in by_state, by_state
    assert ("quarantined", "not_regular_files: 2 entries skipped: 1 FIFO, 1 symbolic link") in by_state, by_state

    # An officer reads what the index keeps only as a code: the name, the full reason.
    bad = next(capture_id for capture_id, row in rows.items() if row["reason"] == "zip_entry_unreadable")
    detail = show(archive_dir, bad)["detail"]
    assert isinstance(detail, dict)
    assert detail["name"] == f"WhatsApp Chat with {C['bad_chat_name']}.zip"
    assert C["bad_member"] in detail["reason"] and "cannot be read" in detail["reason"]

    config = config_module.load(archive_dir / "twentyday.toml")
    with Archive(config) as archive:
        # Search still works: the blind index finds a body's word and a subject's.
        for word in (C["body"], C["subject"], C["orig_body"], C["line_body"]):
            assert list(search_module.search(archive, search_module.Filters(text=word))), word
        undated = list(search_module.search(archive, search_module.Filters(status="undated")))
    # The forward's unreadable Date text is sealed with the content: the officer sees it.
    assert len(undated) == 1
    with Archive(config, officer=True) as archive:
        identity = keys.load_identity(archive_dir / "officer.key", None)
        record = search_module.open_record(archive, undated[0]["id"], identity, purpose="check the date")
    assert C["orig_date"] in record["time_reading"]["raw"]
