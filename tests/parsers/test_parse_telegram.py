"""Telegram Desktop JSON exports: what a records officer would see from each case."""

from __future__ import annotations

import contextlib
import json
import random
import time
import tracemalloc
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import detect_file, events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers import telegram
from twentyday.parsers.base import DEFAULT_LIMITS, BytesSource, ExportSource, FileSource, Limits, ZipSource
from twentyday.records import ParsedEvent, ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data" / "telegram"
CHAT_MINER = DATA / "chat-miner"
FULL = DATA / "full_export" / "result.json"
OLDER = DATA / "older_local_dates.json"
MEDIA_CHAT = DATA / "media_chat" / "result.json"
SIGNAL = Path(__file__).resolve().parents[1] / "data" / "signal"
WHATSAPP = Path(__file__).resolve().parents[1] / "data" / "whatsapp"



def hints(zone: str = "Europe/Berlin") -> ParseHints:
    return ParseHints(timezone=ZoneInfo(zone), zone_name=zone, source_name="result.json")


def parse(source: ExportSource, zone: str = "Europe/Berlin") -> list[Record]:
    return list(telegram.parse(source, hints(zone)))








def by_key(records: list[Record]) -> dict[str, ParsedMessage]:
    return {m.message_key: m for m in messages(records)}




# --- chat-miner fixtures (joweich/chat-miner, MIT) -----------------------------------------


@pytest.mark.parametrize("name", ["test_single_export.json", "test_batch_export.json"])
def test_chat_miner_fixture_gives_the_upstream_messages(name: str) -> None:
    records = parse(FileSource(CHAT_MINER / name))
    target = json.loads((CHAT_MINER / "target.json").read_text(encoding="utf-8"))
    got = messages(records)
    assert len(got) == 2 and not events(records)
    for message, entry in zip(got, target, strict=True):
        assert message.created_at is not None
        assert message.created_at.astimezone(UTC).replace(tzinfo=None) == datetime.fromisoformat(entry["timestamp"])
        assert message.sender == entry["author"]
        assert message.time is not None and message.time.layout == "telegram-unixtime"
        assert message.time.decided_by == "format" and message.time.zone == "UTC"
    assert got[0].body == "Minimal Message"
    # chat-miner joins entity parts with a space; Telegram shows them run together.
    assert got[1].body == "Link:https://telegram.org/" and target[1]["message"] == "Link: https://telegram.org/"
    expected = "Chatname" if "batch" in name else "Telegram chat"
    assert {m.conversation for m in got} == {expected}


# --- full export -----------------------------------------------------------------------------


def test_full_export_reads_every_chat_and_left_chat_in_order() -> None:
    records = parse(FileSource(FULL))
    got = messages(records)
    assert len(got) == 11
    assert [m.conversation for m in got] == ["Alice Example"] * 5 + ["Project Team"] * 4 + [
        "Saved Messages",
        "Old Channel",
    ]
    assert Counter(e.kind for e in events(records)) == {
        "incomplete_copy": 4,
        "system": 2,
        "disappearing_messages": 1,
        "deleted_message": 1,
    }
    # contacts, sessions and profile pictures are not messages (sessions even hold a "messages" key)
    assert {m.platform for m in got} == {"telegram"}


def test_full_export_message_fields_as_shown() -> None:
    found = by_key(parse(FileSource(FULL)))
    first, reply = found["1001:1"], found["1001:2"]
    assert (first.sender, first.body, first.created_at) == ("Alice Example", "Hello Bob", utc(2023, 3, 26, 3, 6, 40))
    assert reply.body == "See the doc\nsecond line"  # array of strings and entities → plain text
    assert reply.reply_to == "1001:1" and reply.edited and reply.extra["edited_at"] == "1679800090"
    assert found["1001:8"].body == "tab\x0bvertical"  # tdesktop's non-JSON \x0B escape
    assert found["2002:2"].sender == "user999"  # deleted account: from is null
    assert found["2002:3"].flags == ("forwarded",) and found["2002:3"].extra["forwarded_from"] == "News Channel"
    assert found["2002:4"].body == "Poll: Lunch?\n- Yes (2 votes)\n- No (1 votes)"
    assert found["7:1"].conversation == "Saved Messages" and found["7:1"].extra["saved_from"] == "Alice Example"
    channel = found["4004:9"]
    assert (channel.conversation, channel.sender, channel.extra["author"]) == ("Old Channel", "Old Channel", "Editor")
    assert channel.created_at == utc(2023, 11, 14, 22, 16, 40)


def test_omitted_files_are_kept_by_name_flagged_and_reported() -> None:
    records = parse(FileSource(FULL))
    found = by_key(records)
    photo, video, report = found["1001:3"], found["1001:4"], found["2002:7"]
    assert photo.flags == ("media_omitted",)
    assert [(a.name, a.content_type, a.data) for a in photo.attachments] == [("photo", "image/jpeg", None)]
    assert [(a.name, a.content_type, a.omitted) for a in video.attachments] == [("video_file", "video/mp4", True)]
    assert video.body == "clip"
    # a real path, but this copy is the JSON alone
    assert [(a.name, a.omitted) for a in report.attachments] == [("report.pdf", True)]
    incomplete = [e for e in events(records) if e.kind == "incomplete_copy"]
    assert [e.at for e in incomplete] == [photo.created_at, video.created_at, None, report.created_at]
    assert "File not included" in incomplete[0].detail and "File exceeds maximum size" in incomplete[1].detail
    assert "unsupported" in incomplete[2].detail
    assert "chats/chat_002/files/report.pdf is named by the export but is not in this copy" in incomplete[3].detail


def test_service_messages_become_events() -> None:
    details = [
        (e.kind, e.conversation, e.detail) for e in events(parse(FileSource(FULL))) if e.kind != "incomplete_copy"
    ]
    assert details == [
        ("system", "Alice Example", "phone_call by Alice Example: duration_seconds=65; discard_reason=hangup"),
        ("disappearing_messages", "Alice Example", "set_messages_ttl by Bob Custodian: period=86400"),
        ("system", "Project Team", "invite_members by Alice Example: members=Carol, Dave"),
        ("deleted_message", "Project Team", "clear_history by Bob Custodian"),
    ]


def test_ttl_turned_off_is_a_system_event() -> None:
    doc = {
        "name": "A",
        "type": "personal_chat",
        "id": 1,
        "messages": [
            {
                "id": 1,
                "type": "service",
                "date_unixtime": "1700000000",
                "actor": "A",
                "action": "set_messages_ttl",
                "period": 0,
                "text": "",
            }
        ],
    }
    [event] = parse(BytesSource("result.json", json.dumps(doc).encode()))
    assert isinstance(event, ParsedEvent) and event.kind == "system"


# --- times -----------------------------------------------------------------------------------


def test_older_export_without_unixtime_reads_local_dates_in_the_custodian_zone() -> None:
    records = parse(FileSource(OLDER), zone="Europe/Berlin")
    winter, summer = messages(records)
    assert winter.created_at is not None and summer.created_at is not None
    assert winter.created_at.astimezone(UTC) == utc(2017, 1, 15, 8, 30)
    assert summer.created_at.astimezone(UTC) == utc(2017, 7, 15, 7, 30)
    assert summer.time is not None
    assert (summer.time.raw, summer.time.layout, summer.time.decided_by, summer.time.zone) == (
        "2017-07-15T09:30:00",
        "telegram-local",
        "custodian_zone",
        "Europe/Berlin",
    )
    assert summer.sender == "Bob Custodian" and summer.message_key == "5005:12"
    [pin] = events(records)
    assert pin.detail == "pin_message by Old Friend: message_id=12"
    new_york = messages(parse(FileSource(OLDER), zone="America/New_York"))[0]
    assert new_york.created_at is not None and new_york.created_at.astimezone(UTC) == utc(2017, 1, 15, 14, 30)


def test_unixtime_wins_over_local_date() -> None:
    message = by_key(parse(FileSource(FULL), zone="Pacific/Auckland"))["1001:1"]
    assert message.created_at == utc(2023, 3, 26, 3, 6, 40)
    assert message.time is not None and message.time.raw == "1679800000"


# --- zips with media -------------------------------------------------------------------------


def write_zip(path: Path, entries: dict[str, bytes], limits: Limits = DEFAULT_LIMITS) -> ZipSource:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return ZipSource(path, limits=limits)


PHOTO = b"\xff\xd8\xff\xe0 a tiny jpeg"
VOICE = b"OggS voice"


def media_zip(tmp_path: Path, limits: Limits = DEFAULT_LIMITS) -> ZipSource:
    base = "ChatExport_2023-11-15/"
    return write_zip(
        tmp_path / "Telegram.zip",
        {
            base + "photos/photo_1@14-11-2023_23-13-20.jpg": PHOTO,
            base + "result.json": MEDIA_CHAT.read_bytes(),
            base + "voice_messages/audio_1@14-11-2023_23-13-25.ogg": VOICE,
        },
        limits,
    )


def test_zip_media_next_to_result_json_are_read(tmp_path: Path) -> None:
    records = parse(media_zip(tmp_path))
    photo, voice, minutes = messages(records)
    assert [(a.name, a.content_type, a.data) for a in photo.attachments] == [
        ("photo_1@14-11-2023_23-13-20.jpg", "image/jpeg", PHOTO)
    ]
    assert photo.flags == () and photo.body == "a photo"
    assert [(a.name, a.content_type, a.data) for a in voice.attachments] == [
        ("audio_1@14-11-2023_23-13-25.ogg", "audio/ogg", VOICE)
    ]
    assert voice.extra["media_type"] == "voice_message"
    assert minutes.flags == ("media_omitted",) and minutes.attachments[0].data is None
    [missing] = events(records)
    assert missing.kind == "incomplete_copy" and "files/minutes.pdf" in missing.detail


def test_full_export_zip_reads_chat_media_relative_to_result_json(tmp_path: Path) -> None:
    base = "Telegram Desktop/DataExport_2023-11-15/"
    source = write_zip(
        tmp_path / "export.zip",
        {base + "result.json": FULL.read_bytes(), base + "chats/chat_002/files/report.pdf": b"%PDF-1.4 report"},
    )
    report = by_key(parse(source))["2002:7"]
    assert [(a.name, a.content_type, a.data) for a in report.attachments] == [
        ("report.pdf", "application/pdf", b"%PDF-1.4 report")
    ]
    assert report.flags == ()


def test_attachment_over_the_cap_is_named_not_read(tmp_path: Path) -> None:
    records = parse(media_zip(tmp_path, Limits(media_bytes=12)))
    photo, voice, _ = messages(records)
    assert photo.flags == ("attachment_too_large",) and photo.attachments[0].data is None
    assert voice.attachments[0].data == VOICE  # 10 bytes: under the cap
    assert any("larger than 12 bytes" in e.detail for e in events(records))


def test_every_result_json_in_a_zip_is_read(tmp_path: Path) -> None:
    source = write_zip(
        tmp_path / "two.zip",
        {"a/result.json": OLDER.read_bytes(), "b/result.json": (CHAT_MINER / "test_single_export.json").read_bytes()},
    )
    assert len(messages(parse(source))) == 4


# --- streaming reader --------------------------------------------------------------------------


def test_tiny_chunks_give_the_same_records() -> None:
    """Values split across reads (mid-string, mid-escape, mid-UTF-8) are reassembled exactly."""
    whole = parse(FileSource(FULL))
    for size in (1, 7, 64):
        assert parse(FileSource(FULL, limits=Limits(telegram_chunk_bytes=size))) == whole


def test_chat_fields_after_messages_fall_back_to_the_chat_type() -> None:
    doc = (
        b'{"messages": [{"id": 1, "type": "message", "date_unixtime": "1", "from": "A", "text": "x"}], "name": "Late"}'
    )
    [message] = messages(parse(BytesSource("result.json", doc)))
    assert message.conversation == "Telegram chat" and message.created_at == utc(1970, 1, 1, 0, 0, 1)


def test_streaming_keeps_memory_bounded_on_a_large_export(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    count = 200_000
    with path.open("w", encoding="utf-8") as out:
        out.write('{\n "name": "Big chat",\n "type": "private_supergroup",\n "id": 42,\n "messages": [')
        for i in range(count):
            entry = {
                "id": i,
                "type": "message",
                "date": "2023-11-14T23:13:20",
                "date_unixtime": str(1700000000 + i),
                "from": f"User {i % 7}",
                "from_id": f"user{i % 7}",
                "text": [f"message number {i} with some words ", {"type": "bold", "text": "and bold"}],
            }
            out.write(("," if i else "") + "\n  " + json.dumps(entry, ensure_ascii=False))
        out.write("\n ]\n}\n")
    size = path.stat().st_size
    started = time.perf_counter()
    seen = sum(1 for _ in telegram.parse(FileSource(path), hints()))
    rate = seen / (time.perf_counter() - started)
    tracemalloc.start()
    try:
        last = None
        for record in telegram.parse(FileSource(path), hints()):
            last = record
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"\ntelegram: {seen} messages from {size} bytes at {rate:,.0f} messages/s; peak {peak:,} bytes traced")
    assert seen == count
    assert isinstance(last, ParsedMessage) and last.message_key == f"42:{count - 1}"
    assert peak < size / 10


# --- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [CHAT_MINER / "test_single_export.json", CHAT_MINER / "test_batch_export.json", FULL, OLDER, MEDIA_CHAT],
    ids=lambda p: p.parent.name + "/" + p.name,
)
def test_detects_telegram_exports(path: Path) -> None:
    assert detect_file(telegram, path)


def test_detects_a_zip_by_its_result_json(tmp_path: Path) -> None:
    source = media_zip(tmp_path)
    # whatever head the caller passes (the zip's own bytes, or a photo), the member decides
    assert telegram.detect(source, (tmp_path / "Telegram.zip").read_bytes()[:4096])
    assert telegram.detect(source, PHOTO)


@pytest.mark.parametrize(
    "path",
    [
        CHAT_MINER / "target.json",
        SIGNAL / "chat-miner" / "test_export.txt",
        SIGNAL / "signal-export" / "ProjectTeam" / "data.json",
        SIGNAL / "sigtop" / "Alice Example.txt",
        WHATSAPP / "ios_crlf_marks.txt",
        WHATSAPP / "chat-miner" / "test_yyyymmdd_24hrs.txt",
    ],
    ids=lambda p: p.name,
)
def test_does_not_detect_other_formats(path: Path) -> None:
    assert not detect_file(telegram, path)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b'{"participants": [{"name": "A"}], "messages": [{"sender_name": "A", "timestamp_ms": 1, "type": "Generic"}]}',
        b'{"messages": [{"creator": {"name": "A"}, "created_date": "Sunday, November 18, 2018"}]}',
        b'[{"type": "message", "user": "U1", "text": "hi", "ts": "1452845865.000008"}]',
    ],
)
def test_does_not_detect_other_json_or_garbage(head: bytes) -> None:
    assert not telegram.detect(BytesSource("x.json", head), head)



# --- malformed input ---------------------------------------------------------------------------

CHAT = '{"name": "C", "type": "personal_chat", "id": 1, "messages": [%s]}'
MESSAGE = '{"id": 1, "type": "message", "date_unixtime": "1700000000", "from": "A", "text": %s}'


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"name": "C"}', "no 'messages', 'chats' or 'left_chats'"),
        (b'{"messages": {}}', "'messages' is not an array"),
        (b'{"messages": [1]}', "is not a JSON object"),
        (b'{"chats": {"list": [1]}}', "not a chat object"),
        (b'{"chats": []}', "'chats' is not a JSON object"),
        ((CHAT % (MESSAGE % '"x"')).encode()[:-4], "invalid JSON (Unterminated string starting at) at character"),
        ((CHAT % (MESSAGE % '"x"')).encode()[:-2] + b",", "unexpected end of file"),
        ((CHAT % (MESSAGE % '"x"')).encode()[:-2], "expected ',' or ']' after an element, found 'end of file'"),
        ((CHAT % (MESSAGE % '"x" "y"')).encode(), "invalid JSON (Expecting ',' delimiter)"),
        ((CHAT % (MESSAGE % '"x"')).encode() + b" trailing", "text after the end"),
        ((CHAT % (MESSAGE % "12")).encode(), "text is int"),
        ((CHAT % (MESSAGE % "[3]")).encode(), "text array holds int"),
        ((CHAT % (MESSAGE % '"bad \\q escape"')).encode(), "invalid JSON (Invalid \\escape)"),
        ((CHAT % '{"id": 1, "type": "message", "date_unixtime": "soon", "text": ""}').encode(), "not a number"),
        ((CHAT % '{"id": 1, "type": "message", "date_unixtime": "99999999999999", "text": ""}').encode(), "range"),
        ((CHAT % '{"id": 1, "type": "message", "date": "yesterday", "text": ""}').encode(), "not an ISO date"),
        ((CHAT % '{"id": 1, "type": "message", "date_unixtime": "1", "from": 5, "text": ""}').encode(), "from is int"),
        ((CHAT % '{"id": 1, "type": "message", "date_unixtime": "1", "photo": 5}').encode(), "photo is int"),
        (b'{"name": 5, "messages": []}', "chat name is int"),
        (b'{"about": "x", "contacts": ' + b"[" * 100 + b"]" * 100 + b', "chats": {}}', "nested deeper"),
        (b'{"messages": [' + b"[" * 5000 + b"]" * 5000 + b"]}", "nested too deeply"),
        ('{"messages": [], "name": "caf\u00e9'.encode("latin-1") + b'"}', "not valid UTF-8"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else None,
)
def test_malformed_input_is_a_parse_error(document: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=r"result\.json") as caught:
        parse(BytesSource("result.json", document))
    assert message in str(caught.value)


def test_a_giant_value_is_refused() -> None:
    limits = Limits(message_chars=4096, telegram_chunk_bytes=1024)
    document = (CHAT % (MESSAGE % json.dumps("x" * 100_000))).encode()
    with pytest.raises(ParseError, match="longer than 4096 characters"):
        parse(BytesSource("result.json", document, limits))


def test_no_result_json_in_a_zip(tmp_path: Path) -> None:
    source = write_zip(tmp_path / "other.zip", {"a.txt": b"x", "b.txt": b"y"})
    with pytest.raises(ParseError, match=r"no result\.json"):
        parse(source)


def test_damaged_copies_raise_only_parse_errors() -> None:
    """Seeded random damage to a real-shaped export: records or a ParseError, nothing else."""
    rng = random.Random(20)
    original = FULL.read_bytes()
    inserts = [b"{", b"[", b"]", b"}", b'"', b",", b"\\", b"\\x", b"null", b"1e9", b"\xff", b'"date": "x"']
    for _ in range(300):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(damaged) or 1)
            if rng.random() < 0.5 and damaged:
                damaged[at] = rng.randrange(256)
            else:
                damaged[at:at] = rng.choice(inserts)
        source = BytesSource("result.json", bytes(damaged))
        telegram.detect(source, bytes(damaged[:8192]))
        with contextlib.suppress(ParseError):
            parse(source)
