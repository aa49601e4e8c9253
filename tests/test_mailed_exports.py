"""Chat exports mailed from a phone: the mail is one capture, each export a capture of its own."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from twentyday.cli import cli
from twentyday.config import load
from twentyday.store import Archive

from .chatgen import android_line


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
