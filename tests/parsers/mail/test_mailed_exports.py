"""Chat exports mailed from a phone: the mail is one capture, each export a capture of its own."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from tests.chatgen import android_line
from twentyday.cli import cli
from twentyday.config import load
from twentyday.store.archive import Archive


def export_text(count: int) -> bytes:
    return "".join(android_line(n, datetime(2026, 10, 13, 8, 0)) for n in range(count)).encode()


def mail_with(name: str, data: bytes, maintype: str, subtype: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane.doe@gmail.com>"
    message["To"] = "records@agency.example"
    message["Date"] = "Sat, 21 Nov 2026 10:00:00 +0000"
    message["Subject"] = "WhatsApp Chat with Team"
    message["Message-ID"] = "<export-mail@phone.example>"
    message.set_content("Chat export attached.")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(message)


def ingest(archive_dir: Path, path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "ingest", str(path)])
    return result.exit_code, result.output


def captures(archive_dir: Path) -> list[tuple[str, str, int, str | None]]:
    archive = Archive(load(archive_dir / "twentyday.toml"))
    try:
        return archive.conn.execute(
            "SELECT id, parser, message_count, parent_capture FROM capture ORDER BY parent_capture IS NOT NULL"
        ).fetchall()
    finally:
        archive.close()


def test_a_mailed_txt_export_becomes_its_own_linked_capture(archive_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "mail.eml"
    path.write_bytes(mail_with("WhatsApp Chat with Team.txt", export_text(40), "text", "plain"))
    code, output = ingest(archive_dir, path)
    assert code == 0, output
    (mail_id, mail_parser, mail_count, mail_parent), (chat_id, chat_parser, chat_count, chat_parent) = \
        captures(archive_dir)
    assert (mail_parser, mail_count, mail_parent) == ("email", 1, None)
    assert (chat_parser, chat_count, chat_parent) == ("whatsapp", 40, mail_id)
    assert chat_id in output
    rows = json.loads(CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "search",
                                               "--platform", "whatsapp", "--json"]).output)
    assert len(rows) == 40
    assert {r["conversation"] for r in rows} == {"Team"}


def test_a_mailed_zip_export_is_read_from_memory_not_disk(archive_dir: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("_chat.txt", export_text(12))
    path = tmp_path / "mail.eml"
    path.write_bytes(mail_with("WhatsApp Chat - Team.zip", buffer.getvalue(), "application", "zip"))
    code, output = ingest(archive_dir, path)
    assert code == 0, output
    rows = captures(archive_dir)
    assert [(parser, count) for _, parser, count, _ in rows] == [("email", 1), ("whatsapp", 12)]
    assert not list(tmp_path.glob("*.zip"))


def test_an_exports_file_name_stays_sealed_with_its_mail(archive_dir: Path, tmp_path: Path) -> None:
    # An attachment's name is content: the capture made of it is named after the mail's. (The
    # chat's name, "Team (budget cuts)" here, is the conversation's, kept in clear by design.)
    path = tmp_path / "mail.eml"
    path.write_bytes(mail_with("WhatsApp Chat with Team (budget cuts).txt", export_text(5), "text", "plain"))
    code, output = ingest(archive_dir, path)
    assert code == 0, output
    assert "(budget cuts).txt" not in output
    archive = Archive(load(archive_dir / "twentyday.toml"))
    try:
        [(mail_id,)] = archive.conn.execute("SELECT id FROM capture WHERE parent_capture IS NULL").fetchall()
        assert archive.conn.execute("SELECT source_name FROM capture WHERE parent_capture = ?",
                                    (mail_id,)).fetchall() == [(f"attachment 1 of {mail_id}",)]
    finally:
        archive.close()
    for stored in (archive_dir / "data").rglob("index.db*"):
        assert b"(budget cuts).txt" not in stored.read_bytes()


def test_an_ordinary_zip_attachment_is_not_taken_for_an_export(archive_dir: Path, tmp_path: Path) -> None:
    # Documents in a zip are an attachment of the mail, sealed with it: no capture of their
    # own, and no "ingest failed" alert for an export that never was.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as documents:
        documents.writestr("reorg-plan.docx", b"PK\x03\x04 a word document")
        documents.writestr("figures.xlsx", b"PK\x03\x04 a spreadsheet")
    path = tmp_path / "mail.eml"
    path.write_bytes(mail_with("reorg-plan.zip", buffer.getvalue(), "application", "zip"))
    code, output = ingest(archive_dir, path)
    assert code == 0, output
    assert [(parser, count) for _, parser, count, _ in captures(archive_dir)] == [("email", 1)]
    alerts = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "alerts", "--json"])
    assert [a["kind"] for a in json.loads(alerts.output)] == []
