"""Messenger / Instagram JSON: what a records officer would see from a Meta export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import detect_file, events, messages, utc, zip_dir
from twentyday.errors import ParseError
from twentyday.parsers import messenger
from twentyday.parsers.base import BytesSource, ExportSource, FileSource, Limits, ZipSource
from twentyday.records import ParsedEvent, ParseHints, Record, TimeReading

DATA = Path(__file__).resolve().parents[1] / "data"
IG = DATA / "instagram"
FB_EXPORT = IG / "messenger_export"
IG_EXPORT = IG / "instagram_export"
THREAD = "your_facebook_activity/messages/inbox/pelicanbudget_987"
CHAT_MINER = IG / "chat-miner" / "test_export.json"



def hints(source_name: str = "") -> ParseHints:
    return ParseHints(timezone=ZoneInfo("UTC"), zone_name="UTC", source_name=source_name)




def parse(source: ExportSource, source_name: str = "") -> list[Record]:
    return list(messenger.parse(source, hints(source_name)))








@pytest.fixture
def facebook_zip(tmp_path: Path) -> ZipSource:
    # Meta's zips put everything below one folder named after the account.
    return ZipSource(zip_dir(FB_EXPORT, tmp_path / "facebook-janedoe-2024.zip", "facebook-janedoe-2024/"))


def thread_json(messages_: list[dict[str, object]], **top: object) -> bytes:
    return json.dumps({"participants": [{"name": "A"}, {"name": "B"}], "messages": messages_, **top}).encode()


# --- the chat-miner Instagram fixture (joweich/chat-miner, MIT) -------------------------


def test_chat_miner_fixture_yields_every_upstream_target_message() -> None:
    records = parse(FileSource(CHAT_MINER))
    got = [(m.created_at, m.sender, m.body) for m in messages(records)]
    target = json.loads((IG / "chat-miner" / "target.json").read_text(encoding="utf-8"))
    # Upstream's targets are the UTC wall times of timestamp_ms.
    expected = [(datetime.fromisoformat(t["timestamp"]).replace(tzinfo=UTC), t["author"], t["message"]) for t in target]
    assert got == expected
    assert events(records) == []


def test_platform_follows_where_the_file_sits() -> None:
    plain = messages(parse(FileSource(CHAT_MINER)))
    assert {m.platform for m in plain} == {"messenger"}
    named = messages(parse(FileSource(CHAT_MINER), source_name="instagram-jane-2024/test_export.json"))
    assert {m.platform for m in named} == {"instagram"}
    # No participants and no title: the conversation is named after the file.
    assert {m.conversation for m in named} == {"test_export.json"}
    assert all(m.recipients == () for m in named)


# --- a Messenger group thread written the way Meta writes it ------------------------------


def test_messenger_thread_records_in_file_order(facebook_zip: ZipSource) -> None:
    records = parse(facebook_zip)
    assert [(type(r).__name__, r.kind if isinstance(r, ParsedEvent) else r.sender) for r in records] == [
        ("ParsedMessage", "Jane Doe"),  # message_1.json, newest first as exported
        ("ParsedEvent", "deleted_message"),
        ("ParsedEvent", "system"),
        ("ParsedMessage", "Jane Doe"),
        ("ParsedEvent", "incomplete_copy"),
        ("ParsedMessage", "Zoë Čapek"),
        ("ParsedMessage", "Jane Doe"),
        ("ParsedMessage", "Kofi Mensah"),  # then message_2.json
    ]
    assert [m.created_at for m in messages(records)] == [
        utc(2023, 11, 14, 23, 3, 20),
        utc(2023, 11, 14, 22, 30, 0),
        utc(2023, 11, 14, 22, 13, 20),
        datetime(2023, 11, 14, 22, 13, 19, 999000, tzinfo=UTC),  # ...999 ms, not rounded up
        utc(2023, 7, 22, 4, 26, 40),
    ]


def test_messenger_mojibake_is_repaired_everywhere(facebook_zip: ZipSource) -> None:
    found = messages(parse(facebook_zip))
    assert {m.conversation for m in found} == {"Pelican budget ’24"}
    done = found[2]
    assert done.sender == "Zoë Čapek"
    assert done.body == "It’s done 👍 — see the doc"
    assert done.recipients == ("Jane Doe", "Kofi Mensah")
    assert done.extra == {"share_link": "https://example.org/budget-2024", "reactions": "❤ Jane Doe; 😂 Kofi Mensah"}
    assert found[3].body == "Can you send the čísla?"
    assert found[3].recipients == ("Zoë Čapek", "Kofi Mensah")


def test_messenger_times_are_exact_utc_milliseconds(facebook_zip: ZipSource) -> None:
    last = messages(parse(facebook_zip))[3]
    assert last.time == TimeReading(
        raw="1699999999999", layout="epoch-ms", day_first=None, decided_by="format", zone="UTC"
    )


def test_messenger_photo_present_is_read_and_missing_one_is_reported(facebook_zip: ZipSource) -> None:
    records = parse(facebook_zip)
    photo_message = messages(records)[1]
    present, missing = photo_message.attachments
    assert present.name == "účet_1.png"  # the uri's own mojibake repaired to find the file
    assert present.content_type == "image/png"
    assert present.data == (FB_EXPORT / THREAD / "photos" / "účet_1.png").read_bytes()
    assert missing.name == "whiteboard_2.jpg"
    assert missing.content_type == "image/jpeg"
    assert missing.omitted
    assert photo_message.flags == ("media_omitted",)
    (incomplete,) = events(records, "incomplete_copy")
    assert incomplete.at == utc(2023, 11, 14, 22, 30, 0)
    assert incomplete.conversation == "Pelican budget ’24"
    assert incomplete.detail == (
        "media of a message from Jane Doe not in the export: whiteboard_2.jpg (not in the export)"
    )


def test_messenger_unsent_message_is_kept_and_reported(facebook_zip: ZipSource) -> None:
    records = parse(facebook_zip)
    unsent = messages(records)[0]
    assert unsent.flags == ("deleted",)
    assert unsent.body == ""
    (deleted,) = events(records, "deleted_message")
    assert deleted == ParsedEvent(
        kind="deleted_message",
        conversation="Pelican budget ’24",
        at=utc(2023, 11, 14, 23, 3, 20),
        detail="message from Jane Doe was unsent",
    )


def test_messenger_call_becomes_a_system_event(facebook_zip: ZipSource) -> None:
    (call,) = events(parse(facebook_zip), "system")
    assert call.at == utc(2023, 11, 14, 22, 46, 40)
    assert call.detail == "call from Zoë Čapek, 125 seconds: The call ended."


def test_messenger_thread_file_alone_has_every_photo_omitted() -> None:
    records = parse(FileSource(FB_EXPORT / THREAD / "message_1.json"))
    assert len(messages(records)) == 4
    (incomplete,) = events(records, "incomplete_copy")
    assert incomplete.detail == (
        "media of a message from Jane Doe not in the export: "
        "účet_1.png (not in the export); whiteboard_2.jpg (not in the export)"
    )
    assert all(a.omitted for m in messages(records) for a in m.attachments)


def test_message_files_are_read_in_numeric_order() -> None:
    def part(n: int) -> bytes:
        return thread_json([{"sender_name": "A", "timestamp_ms": n, "content": f"part {n}"}])

    members = {f"messages/inbox/t_1/message_{n}.json": part(n) for n in (10, 2, 1)}
    found = messages(parse(BytesSource("x.zip", members)))
    assert [m.body for m in found] == ["part 1", "part 2", "part 10"]


def test_instagram_export(tmp_path: Path) -> None:
    source = ZipSource(zip_dir(IG_EXPORT, tmp_path / "instagram-janedoe-2024.zip"))
    liked, photo = messages(parse(source))
    assert (liked.platform, liked.conversation, liked.sender) == ("instagram", "Kofi Mensah", "Jane Doe")
    assert liked.body == "Liked a message"  # Instagram's notices arrive as ordinary content
    assert liked.created_at == utc(2024, 3, 9, 16, 1, 0)
    assert photo.recipients == ("Jane Doe",)
    (picture,) = photo.attachments
    assert picture.name == "site_visit.png"
    photo_path = IG_EXPORT / "your_instagram_activity/messages/inbox/kofimensah_17841400000000000/photos"
    assert picture.data == (photo_path / "site_visit.png").read_bytes()
    assert photo.flags == ()


# --- repair -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (r"\u00e2\u009d\u00a4", "❤"),
        (r"\u00e2\u0080\u0099", "’"),
        (r"\u00c4\u008d", "č"),
        (r"\u00f0\u009f\u0091\u008d", "👍"),
        (r"Zo\u00c3\u00ab", "Zoë"),
        ("plain ascii", "plain ascii"),
        (r"Zo\u00eb", "Zoë"),  # already correct (not valid UTF-8 as bytes): kept
        (r"\u2019", "’"),  # beyond latin-1: kept
    ],
)
def test_repair(stored: str, shown: str) -> None:
    """``stored`` is the JSON text as Meta writes it."""
    assert messenger.repair(json.loads(f'"{stored}"')) == shown


# --- limits and broken files ---------------------------------------------------------------


def test_media_too_large_is_omitted_not_read(tmp_path: Path) -> None:
    path = zip_dir(FB_EXPORT, tmp_path / "facebook-janedoe-2024.zip", "facebook-janedoe-2024/")
    records = parse(ZipSource(path, limits=Limits(media_bytes=10)))
    assert all(a.omitted for m in messages(records) for a in m.attachments)
    (incomplete,) = events(records, "incomplete_copy")
    assert "účet_1.png (larger than 10 bytes)" in incomplete.detail


def test_media_uri_cannot_reach_outside_the_export() -> None:
    body = thread_json([{"sender_name": "A", "timestamp_ms": 1, "files": [{"uri": "../../../../etc/passwd"}]}])
    source = BytesSource("x.zip", {"messages/inbox/t_1/message_1.json": body, "etc/passwd": b"secret"})
    (message,) = messages(parse(source))
    assert message.attachments[0].omitted


class _HugeSource(BytesSource):
    def size(self, member: str) -> int:
        return self.limits.json_bytes + 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"participants": [], "messages": [', "message_1.json: not valid JSON"),
        (b"[1, 2]", "message_1.json: top level is not a JSON object"),
        (b'{"participants": []}', 'message_1.json: no "messages" list'),
        (thread_json([{"sender_name": "A", "timestamp_ms": "1700000000000"}]), "message 1: timestamp_ms is '17"),
        (thread_json([{"sender_name": "A", "content": "no time"}]), "message 1: timestamp_ms is None"),
        (thread_json([{"sender_name": "A", "timestamp_ms": 1, "content": 5}]), "message 1: content is int, not text"),
        (thread_json(["text"]), "message 1 is not a JSON object"),
        (thread_json([{"sender_name": "A", "timestamp_ms": 1, "photos": "x.jpg"}]), "photos is not a list"),
        (b"\xff\xfe{", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_broken_thread_file_raises_a_clear_parse_error(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(BytesSource("message_1.json", data))
    assert reason in str(caught.value)


def test_oversized_thread_file_is_refused_before_reading() -> None:
    with pytest.raises(ParseError, match="larger than"):
        parse(_HugeSource("message_1.json", b"{}"))


def test_zip_without_thread_files_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no Messenger or Instagram"):
        parse(BytesSource("x.zip", {"a.txt": b"", "b.txt": b""}))


# --- detection --------------------------------------------------------------------------------




def test_detects_meta_exports(facebook_zip: ZipSource, tmp_path: Path) -> None:
    assert messenger.detect(facebook_zip, b"PK\x03\x04")
    assert messenger.detect(ZipSource(zip_dir(IG_EXPORT, tmp_path / "ig.zip")), b"PK\x03\x04")
    assert detect_file(messenger, FB_EXPORT / THREAD / "message_1.json")
    assert detect_file(messenger, CHAT_MINER)


TELEGRAM = json.dumps(
    {"name": "Team", "type": "private_group", "id": 1, "messages": [
        {"id": 1, "type": "message", "date": "2024-03-05T09:00:00", "date_unixtime": "1709629200",
         "from": "Jane", "from_id": "user1", "text": "hi"}]}
).encode()  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        DATA / "whatsapp" / "ios_crlf_marks.txt",
        DATA / "google_chat" / "Takeout" / "Google Chat" / "Groups" / "DM 2k64eoAAAAE" / "messages.json",
        DATA / "mbox" / "three.mbox",
        DATA / "mbox" / "msg_25.txt",
    ],
    ids=lambda p: p.name,
)
def test_does_not_detect_other_formats(path: Path) -> None:
    assert not detect_file(messenger, path)


def test_does_not_detect_telegram_json_or_garbage() -> None:
    assert not messenger.detect(BytesSource("result.json", TELEGRAM), TELEGRAM)
    assert not messenger.detect(BytesSource("x.bin", b"\x00\xff" * 100), b"\x00\xff" * 100)


class _Unreadable(BytesSource):
    def open(self, member: str) -> BinaryIO:
        raise OSError("disk on fire")


def test_detect_never_raises() -> None:
    source = _Unreadable("x.zip", {"messages/inbox/t/message_1.json": b"", "other": b""})
    assert messenger.detect(source, b"") is False
