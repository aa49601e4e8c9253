"""mbox files: every message kept apart, one bad message never losing the rest, memory bounded."""

from __future__ import annotations

import json
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import detect_file, events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers.base import BytesSource, ExportSource, FileSource, Limits, ZipSource
from twentyday.parsers.mail import mbox
from twentyday.records import ParsedEvent, ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[2] / "data"
MBOX = DATA / "mbox"
THREE = MBOX / "three.mbox"



def hints() -> ParseHints:
    return ParseHints(timezone=ZoneInfo("UTC"), zone_name="UTC")


def parse(source: ExportSource) -> list[Record]:
    return list(mbox.parse(source, hints()))








# --- a hand-written mbox -------------------------------------------------------------------


def test_three_messages_two_read_one_reported() -> None:
    records = parse(FileSource(THREE))
    assert [type(r).__name__ for r in records] == ["ParsedMessage", "ParsedMessage", "ParsedEvent"]
    first, second = messages(records)
    assert first.platform == "email"
    assert first.sender == "jane.doe@agency.example.gov"
    assert first.recipients == ("kofi@partner.example.org", "records@agency.example.gov")
    assert first.subject == "Pelican census"
    assert first.created_at == utc(2024, 3, 5, 9, 0, 0)
    assert first.message_key == "<census-1@agency.example.gov>"
    assert first.extra["mbox_from"] == "From jane.doe@agency.example.gov Tue Mar  5 09:00:00 2024"
    assert second.sender == "kofi@partner.example.org"
    assert second.created_at == utc(2024, 3, 5, 14, 30, 15)
    assert second.reply_to == "<census-1@agency.example.gov>"
    assert second.conversation == first.conversation == "<census-1@agency.example.gov>"
    (event,) = events(records)
    assert event == ParsedEvent(
        kind="system",
        conversation="three.mbox",
        at=None,
        detail="message 3 could not be read: unreadable message body: LookupError",
    )


def test_unescaped_from_line_in_a_body_does_not_split_the_message() -> None:
    first = messages(parse(FileSource(THREE)))[0]
    # The framing blank line before the next From_ line is not part of the message.
    assert first.body == "Kofi,\n\nFrom the desk of the census lead: counts are due Friday.\n\nJane\n"


def test_escaped_from_lines_lose_one_quote() -> None:
    second = messages(parse(FileSource(THREE)))[1]
    assert second.body == "Will do.\nFrom now on I will copy the records inbox.\n>From the old thread: nothing else.\n"


def test_crlf_mbox_reads_the_same() -> None:
    crlf = THREE.read_bytes().replace(b"\n", b"\r\n")
    records = parse(BytesSource("three.mbox", crlf))
    assert [type(r).__name__ for r in records] == ["ParsedMessage", "ParsedMessage", "ParsedEvent"]
    first, second = messages(records)
    assert first.created_at == utc(2024, 3, 5, 9, 0, 0)
    assert ">From the old thread" in second.body
    assert "\n>>From" not in second.body.replace("\r\n", "\n")


# --- real messages with real From_ lines (CPython test data, PSF-2.0) ----------------------------


def test_cpython_messages_joined_into_one_mbox() -> None:
    joined = (MBOX / "msg_25.txt").read_bytes() + b"\n" + (MBOX / "msg_43.txt").read_bytes()
    bounce, banned = messages(parse(BytesSource("bounces.mbox", joined)))
    assert bounce.sender == "mailer-daemon@zinfandel.lacita.com"
    assert bounce.subject.startswith("Returned mail: Too many hops 19 (17 max)")
    assert bounce.created_at == utc(2001, 4, 6, 17, 23, 6)
    assert bounce.extra["mbox_from"] == "From MAILER-DAEMON Fri Apr 06 16:46:09 2001"
    assert banned.subject == "Banned file: auto__mail.python.bat in mail from you"
    assert banned.created_at == utc(2004, 11, 27, 3, 41, 44)
    assert banned.recipients == ("webmaster@python.org",)
    assert banned.extra["mbox_from"].startswith("From SRS0=aO/p=ON=bag.python.org=None@bounce2.pobox.com  Fri Nov 26")


def test_zip_of_mbox_files_reads_each(tmp_path: Path) -> None:
    path = tmp_path / "takeout.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(THREE, "Takeout/Mail/Inbox.mbox")
        archive.write(MBOX / "msg_25.txt", "Takeout/Mail/Bounces.mbox")
        archive.writestr("Takeout/archive_browser.html", "<html></html>")
    records = parse(ZipSource(path))
    assert [m.subject[:20] for m in messages(records)] == [
        "Returned mail: Too m",  # Bounces.mbox sorts first
        "Pelican census",
        "Re: Pelican census",
    ]
    assert [e.conversation for e in events(records)] == ["Takeout/Mail/Inbox.mbox"]


# --- limits and broken files ----------------------------------------------------------------------


def test_oversized_message_is_reported_and_the_next_one_read() -> None:
    records = parse(FileSource(THREE, limits=Limits(mail_message_bytes=400)))
    # Message 1 is 335 bytes with its framing blank line, message 2 is 412, message 3 is 282.
    assert [type(r).__name__ for r in records] == ["ParsedMessage", "ParsedEvent", "ParsedEvent"]
    assert [e.detail for e in events(records)] == [
        "message 2 could not be read: larger than 400 bytes",
        "message 3 could not be read: unreadable message body: LookupError",
    ]


def test_a_date_that_overflows_leaves_its_message_undated_and_the_next_one_read() -> None:
    written = b"Date: Tue, 05 Mar 2024 09:00:00 +0000"
    overflow = THREE.read_bytes().replace(written, written[:-5] + b"+99999999999999999", 1)
    assert overflow != THREE.read_bytes()
    first, second = messages(parse(BytesSource("overflow.mbox", overflow)))
    assert first.created_at is None
    assert second.created_at == utc(2024, 3, 5, 14, 30, 15)


def test_from_at_the_start_of_a_long_lines_second_piece_does_not_split() -> None:
    head = THREE.read_bytes().split(b"\n\n", 1)[0] + b"\n\n"
    piece = b"x" * (1024 * 1024 - 1) + b" "  # exactly one read piece, no newline
    body = piece + b"From jane.doe@agency.example.gov Tue Mar  5 09:00:00 2024 not a separator\n"
    (message,) = messages(parse(BytesSource("long.mbox", head + body)))
    assert message.body.endswith(" From jane.doe@agency.example.gov Tue Mar  5 09:00:00 2024 not a separator\n")


def test_not_an_mbox_is_a_parse_error() -> None:
    eml = b"From: Jane <jane@example.org>\nSubject: hi\n\nbody\n"
    with pytest.raises(ParseError, match="not an mbox file: the first line is not a 'From ' line"):
        parse(BytesSource("note.mbox", eml))


def test_empty_mbox_has_no_records() -> None:
    assert parse(BytesSource("empty.mbox", b"")) == []
    assert parse(BytesSource("blank.mbox", b"\n\n")) == []


def test_zip_without_mbox_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"no \.mbox file"):
        parse(BytesSource("x.zip", {"a.txt": b"", "b.txt": b""}))


# --- detection ------------------------------------------------------------------------------------




@pytest.mark.parametrize("path", [THREE, MBOX / "msg_25.txt", MBOX / "msg_43.txt"], ids=lambda p: p.name)
def test_detects_mbox(path: Path) -> None:
    assert detect_file(mbox, path)


GROUPS = DATA / "google_chat" / "Takeout" / "Google Chat" / "Groups"


@pytest.mark.parametrize(
    "path",
    [
        DATA / "whatsapp" / "ios_crlf_marks.txt",
        DATA / "whatsapp" / "android_media_deleted_edited.txt",
        DATA / "instagram" / "chat-miner" / "test_export.json",
        GROUPS / "DM 2k64eoAAAAE" / "messages.json",
    ],
    ids=lambda p: p.name,
)
def test_does_not_detect_other_formats(path: Path) -> None:
    assert not detect_file(mbox, path)


@pytest.mark.parametrize(
    "head",
    [
        b"From: Jane <jane@example.org>\nTo: kofi@example.org\n\nhi\n",  # an .eml
        b"From here on we count pelicans at 10:00 every Monday.\nThanks\n",  # prose
        b"From jane@example.org Tue Mar  5 09:00:00 2024\n\nno header after the From_ line\n",
        json.dumps({"name": "Team", "type": "private_group", "id": 1, "messages": []}).encode(),  # Telegram
        b"",
    ],
)
def test_does_not_detect_lookalikes(head: bytes) -> None:
    assert not mbox.detect(BytesSource("x", head), head)


class _Unreadable(BytesSource):
    def open(self, member: str) -> BinaryIO:
        raise OSError("disk on fire")


def test_detect_never_raises() -> None:
    assert mbox.detect(_Unreadable("x.zip", {"a.mbox": b"", "b": b""}), b"") is False


# --- streaming --------------------------------------------------------------------------------------

_LINE = b"The pelican census continues; counts are due on Friday for every colony in the district.\n"


def _write_mbox(path: Path, size: int) -> int:
    body = _LINE * 700  # about 62 KiB, a plausible long e-mail
    count = 0
    with path.open("wb") as out:
        while out.tell() < size:
            count += 1
            out.write(b"From sender%d@example.org Tue Mar  5 09:00:00 2024\n" % count)
            out.write(b"From: Sender <sender%d@example.org>\nTo: records@agency.example.gov\n" % count)
            out.write(b"Date: Tue, 05 Mar 2024 09:00:00 +0000\nSubject: Census %d\n" % count)
            out.write(b"Message-ID: <m%d@example.org>\nContent-Type: text/plain; charset=utf-8\n\n" % count)
            out.write(body + b">From the archive: line %d\n\n" % count)
    return count


def test_100_mb_mbox_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.mbox"
    written = _write_mbox(path, 100 * 1024 * 1024)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        started = time.perf_counter()
        count = 0
        last = None
        for record in mbox.parse(FileSource(path), hints()):
            if isinstance(record, ParsedMessage):
                count += 1
                last = record
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == written
    assert last is not None and last.subject == f"Census {written}"
    assert last.body.endswith(f"From the archive: line {written}\n")
    assert peak < size / 20, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB mbox"
    print(
        f"\n{count} messages, {size / 1e6:.0f} MB in {elapsed:.1f} s under tracemalloc"
        f" ({count / elapsed:.0f} messages/s); peak traced memory {peak / 1e6:.2f} MB"
    )
