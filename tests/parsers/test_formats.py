"""One list of chat formats and one set of limits for every way an export arrives.

A chat export dropped in the watched folder is chosen by the registry; the same export
mailed as an attachment is recognised by the e-mail parser so it is ingested on its own.
Both ask :data:`twentyday.parsers.formats.CHAT_FORMATS`, so a format is never known to
one path and not the other.
"""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.parsers.conftest import zip_dir
from twentyday.errors import ParseError
from twentyday.parsers import formats, registry
from twentyday.parsers.base import Limits, ParserModule, ZipSource
from twentyday.parsers.mail import email

DATA = Path(__file__).resolve().parents[1] / "data"


def _zipped(root: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "SOURCES.md":
                archive.write(path, prefix + path.relative_to(root).as_posix())
    return buffer.getvalue()


def _zipped_together(*roots: Path) -> bytes:
    """One zip of several exports' trees, as Takeout puts Chat and Voice side by side."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for root in roots:
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.name != "SOURCES.md":
                    archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


#: One real-shaped export of each chat format, as its owner would send or drop it: (file name, bytes).
SAMPLES = {
    "whatsapp": lambda: ("WhatsApp Chat with Team.txt", (DATA / "whatsapp" / "android_iso_am.txt").read_bytes()),
    "telegram": lambda: ("result.json", (DATA / "telegram" / "full_export" / "result.json").read_bytes()),
    "telegram_html": lambda: ("ChatExport_2023-08-06.zip", _zipped(DATA / "telegram" / "html_export")),
    "signal": lambda: ("signal-export.zip", _zipped(DATA / "signal" / "signal-export", "signal-export/")),
    "imessage": lambda: ("imessage_export.zip", _zipped(DATA / "imessage" / "txt-export", "imessage_export/")),
    "slack": lambda: ("Slack export.zip", (DATA / "slack" / "slack-export-viewer" / "testarchive.zip").read_bytes()),
    "sms_backup": lambda: ("sms-20231009.xml", (DATA / "sms" / "backup.xml").read_bytes()),
    "messenger": lambda: ("facebook-janedoe-2024.zip",
                          _zipped(DATA / "instagram" / "messenger_export", "facebook-janedoe-2024/")),
    "google_takeout": lambda: ("takeout-20240402.zip", _zipped_together(DATA / "google_chat", DATA / "google_voice")),
    "google_chat": lambda: ("takeout-20240401.zip", _zipped(DATA / "google_chat")),
    "google_voice": lambda: ("takeout-20240403.zip", _zipped(DATA / "google_voice")),
}


def mail_carrying(name: str, data: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane.doe@gmail.com>"
    message["To"] = "records@agency.example"
    message["Date"] = "Sat, 21 Nov 2026 10:00:00 +0000"
    message["Subject"] = "Chat export"
    message.set_content("Export attached.")
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(message)


def test_the_registry_and_the_mail_parser_share_one_list_in_one_order() -> None:
    assert registry.PARSERS[: len(formats.CHAT_FORMATS)] == formats.CHAT_FORMATS
    assert email.CHAT_FORMATS is formats.CHAT_FORMATS
    assert [parser.NAME for parser in formats.CHAT_FORMATS] == list(SAMPLES)  # every format has a sample


@pytest.mark.parametrize("parser", formats.CHAT_FORMATS, ids=lambda parser: parser.NAME)
def test_each_chat_format_is_recognised_dropped_and_mailed(parser: ParserModule) -> None:
    name, data = SAMPLES[parser.NAME]()
    source = registry.open_source(None, data, name)
    try:
        assert registry.choose(source) is parser
    finally:
        registry.close_source(source)
    assert email.chat_export_attachments(mail_carrying(name, data)) == [(name, data)]


def test_an_ordinary_attachment_is_not_a_chat_export() -> None:
    assert email.chat_export_attachments(mail_carrying("minutes.pdf", b"%PDF-1.4\n% minutes\n")) == []


def test_more_zip_entries_than_the_limit_are_refused(tmp_path: Path) -> None:
    """Moved from the hostile-file tests, where MAX_ENTRIES was monkeypatched: the same refusal, the limit passed in.

    (The CLI path to quarantine is covered there by 400,000 entries against the real limit.)
    """
    root = tmp_path / "export"
    root.mkdir()
    (root / "_chat.txt").write_bytes((DATA / "whatsapp" / "android_iso_am.txt").read_bytes())
    for number in range(50):
        (root / f"IMG-{number:04d}.jpg").write_bytes(b"\xff\xd8")
    path = zip_dir(root, tmp_path / "WhatsApp Chat with Bob.zip")
    with pytest.raises(ParseError, match="more than 50 zip entries"):
        ZipSource(path, limits=Limits(zip_entries=50))
    ZipSource(path, limits=Limits(zip_entries=51)).close()  # exactly at the limit: read
