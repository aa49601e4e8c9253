"""Signal exports (signal-export folders, sigtop text): what a records officer would see."""

from __future__ import annotations

import contextlib
import json
import random
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import detect_file, events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers import signal
from twentyday.parsers.base import DEFAULT_LIMITS, BytesSource, ExportSource, FileSource, Limits, ZipSource, read_head
from twentyday.parsers.whatsapp import looks_like_whatsapp
from twentyday.records import ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data" / "signal"
CHAT_MINER = DATA / "chat-miner"
EXPORT = DATA / "signal-export"
ALICE_MD = EXPORT / "AliceExample" / "chat.md"
TEAM_MD = EXPORT / "ProjectTeam" / "chat.md"
TEAM_JSON = EXPORT / "ProjectTeam" / "data.json"
SIGTOP = DATA / "sigtop" / "Alice Example.txt"
TELEGRAM = Path(__file__).resolve().parents[1] / "data" / "telegram"
WHATSAPP = Path(__file__).resolve().parents[1] / "data" / "whatsapp"

PHOTO_NAME = "2023-03-25T10-03-00.000_00_photo_(1).jpg"
PHOTO = b"\xff\xd8\xff\xe0 a tiny jpeg"



def hints(zone: str = "Europe/Berlin", source: str = "") -> ParseHints:
    return ParseHints(timezone=ZoneInfo(zone), zone_name=zone, source_name=source)


def parse(source: ExportSource, zone: str = "Europe/Berlin") -> list[Record]:
    return list(signal.parse(source, hints(zone)))








def utc_time(message: ParsedMessage) -> datetime:
    assert message.created_at is not None
    return message.created_at.astimezone(UTC)


def export_zip(tmp_path: Path, *, with_photo: bool = True, limits: Limits = DEFAULT_LIMITS) -> ZipSource:
    """signal-export's output folder, zipped as a user would, with the one media file it has."""
    path = tmp_path / "signal-export.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(EXPORT.rglob("*")):
            if file.is_file():
                archive.write(file, "signal-export/" + file.relative_to(EXPORT).as_posix())
        if with_photo:
            archive.writestr(f"signal-export/AliceExample/media/{PHOTO_NAME}", PHOTO)
    return ZipSource(path, limits=limits)


# --- chat-miner fixture (joweich/chat-miner, MIT): older "[YYYY-MM-DD, HH:MM]" layout -------------


def test_chat_miner_fixture_gives_the_upstream_messages() -> None:
    records = parse(FileSource(CHAT_MINER / "test_export.txt"))
    target = json.loads((CHAT_MINER / "target.json").read_text(encoding="utf-8"))
    got = messages(records)
    assert len(got) == 2 and not events(records)
    found = {(m.created_at.replace(tzinfo=None), m.sender, m.body.replace("\n", " ")) for m in got if m.created_at}
    assert found == {(datetime.fromisoformat(e["timestamp"]), e["author"], e["message"]) for e in target}
    assert got[1].body == "Hello\nJane!"  # a multi-line body keeps its line break
    assert utc_time(got[1]) == utc(2020, 1, 17, 20, 49)
    assert got[0].time is not None
    assert (got[0].time.raw, got[0].time.layout, got[0].time.decided_by, got[0].time.zone) == (
        "2019-12-24, 12:23",
        "signal-export %Y-%m-%d, %H:%M",
        "custodian_zone",
        "Europe/Berlin",
    )
    assert {m.conversation for m in got} == {"test_export"}


# --- signal-export folders -------------------------------------------------------------------------


def test_export_zip_reads_every_chat_folder(tmp_path: Path) -> None:
    records = parse(export_zip(tmp_path))
    assert Counter(m.conversation for m in messages(records)) == {"AliceExample": 8, "ProjectTeam": 4}
    assert Counter((e.conversation, e.kind) for e in events(records)) == {
        ("AliceExample", "deleted_message"): 1,
        ("AliceExample", "incomplete_copy"): 2,
        ("ProjectTeam", "deleted_message"): 1,
        ("ProjectTeam", "incomplete_copy"): 1,
    }
    assert {m.platform for m in messages(records)} == {"signal"}


def test_chat_md_messages_as_shown(tmp_path: Path) -> None:
    alice = [m for m in messages(parse(export_zip(tmp_path))) if m.conversation == "AliceExample"]
    hello, lines, reply, photo, deleted, voice, report, sticker = alice
    assert (hello.sender, hello.body, utc_time(hello)) == ("Alice", "Hello Bob", utc(2023, 3, 25, 9, 0))
    assert hello.time is not None and hello.time.layout == "signal-export %Y-%m-%d %H:%M:%S"
    assert lines.sender == "Me" and lines.body == "Line one\nline two\n[not a header] still body"
    assert reply.body == "Replying to you"
    assert reply.extra == {"quote": "Line one\nline two", "reactions": "Me: 👍, Alice: ❤"}
    assert photo.body == "Look" and photo.flags == ()
    assert [(a.name, a.content_type, a.data) for a in photo.attachments] == [(PHOTO_NAME, "image/jpeg", PHOTO)]
    assert (deleted.body, deleted.flags) == ("(This message was deleted)", ("deleted",))
    assert voice.body == "" and voice.flags == ("media_omitted",)
    assert [(a.name, a.data) for a in voice.attachments] == [("Voice message", None)]
    # an ordinary link in the body stays; only links into media/ are attachments
    assert report.body == "report attached, see [the site](https://example.org)"
    assert [(a.name, a.content_type, a.omitted) for a in report.attachments] == [
        ("2023-03-26T01-30-00.000_00_report.pdf", "application/pdf", True)
    ]
    assert sticker.body == "" and sticker.extra == {"sticker": "🐱"}
    # the night Berlin moved to summer time: 01:30 is +01:00, 03:30 is +02:00
    assert (utc_time(report), utc_time(sticker)) == (utc(2023, 3, 26, 0, 30), utc(2023, 3, 26, 1, 30))


def test_chat_md_events_name_what_is_missing(tmp_path: Path) -> None:
    alice = [e for e in events(parse(export_zip(tmp_path))) if e.conversation == "AliceExample"]
    assert [(e.kind, e.detail, e.at and e.at.astimezone(UTC)) for e in alice] == [
        ("deleted_message", "message from Alice shows as deleted", utc(2023, 3, 25, 9, 4)),
        ("incomplete_copy", "Alice: Voice message not exported", utc(2023, 3, 25, 9, 5)),
        (
            "incomplete_copy",
            "Me: 2023-03-26T01-30-00.000_00_report.pdf is linked by the export but is not in this copy",
            utc(2023, 3, 26, 0, 30),
        ),
    ]


def test_media_missing_from_the_copy_is_reported(tmp_path: Path) -> None:
    records = parse(export_zip(tmp_path, with_photo=False))
    photo = next(m for m in messages(records) if m.body == "Look")
    assert photo.flags == ("media_omitted",) and photo.attachments[0].data is None
    assert sum(e.kind == "incomplete_copy" for e in events(records)) == 4


def test_data_json_is_preferred_when_a_folder_has_both(tmp_path: Path) -> None:
    team = [m for m in messages(parse(export_zip(tmp_path))) if m.conversation == "ProjectTeam"]
    assert {m.time.layout for m in team if m.time} == {"signal-export-json iso8601"}
    morning, agenda, deleted, call = team
    assert (morning.sender, morning.body, utc_time(morning)) == ("Carol", "Morning all", utc(2023, 11, 14, 22, 13, 20))
    assert agenda.body == "Agenda:\n1. budget\n2. hiring"
    assert agenda.extra == {"quote": "Morning all", "reactions": "Carol: 👍"}
    assert [(a.name, a.omitted) for a in agenda.attachments] == [("2023-11-14T23-14-00.000_00_agenda.pdf", True)]
    assert deleted.flags == ("deleted",) and deleted.sender == "Dave"
    assert call.flags == ("call", "missed_call") and call.body == "Outgoing voice call (unanswered)"


def test_chat_md_and_data_json_say_the_same_thing() -> None:
    from_md = messages(parse(BytesSource("x", {"ProjectTeam/chat.md": TEAM_MD.read_bytes()})))
    from_json = messages(parse(BytesSource("x", {"ProjectTeam/data.json": TEAM_JSON.read_bytes()})))
    assert [(m.sender, m.body, m.created_at, "deleted" in m.flags) for m in from_md] == [
        (m.sender, m.body, m.created_at, "deleted" in m.flags) for m in from_json
    ]
    assert from_md[1].extra == from_json[1].extra
    assert [a.name for a in from_md[1].attachments] == [a.name for a in from_json[1].attachments]
    # only data.json says which entries are calls
    assert from_json[3].flags == ("call", "missed_call") and from_md[3].flags == ()


def test_chat_md_wins_when_it_holds_more_messages() -> None:
    """signal-export --old merges history into chat.md only; data.json then holds just the new part."""
    merged = b"[2023-11-01 09:00:00] Carol: from an older export  \n\n" + TEAM_MD.read_bytes()
    records = parse(BytesSource("x", {"ProjectTeam/chat.md": merged, "ProjectTeam/data.json": TEAM_JSON.read_bytes()}))
    assert len(messages(records)) == 5
    assert messages(records)[0].body == "from an older export"


def test_a_lone_chat_md_is_named_after_its_folder() -> None:
    records = parse(FileSource(ALICE_MD, name="AliceExample/chat.md"))
    assert len(messages(records)) == 8 and {m.conversation for m in messages(records)} == {"AliceExample"}


def test_attachment_over_the_cap_is_named_not_read(tmp_path: Path) -> None:
    records = parse(export_zip(tmp_path, limits=Limits(media_bytes=8)))
    photo = next(m for m in messages(records) if m.body == "Look")
    assert photo.flags == ("attachment_too_large",) and photo.attachments[0].data is None
    assert any("larger than 8 bytes" in e.detail for e in events(records))


# --- sigtop text -------------------------------------------------------------------------------------


def test_sigtop_text_messages_as_shown() -> None:
    records = parse(FileSource(SIGTOP))
    hello, paragraphs, nice, edited = messages(records)
    assert {m.conversation for m in messages(records)} == {"Alice Example"}
    assert hello.sender == "Alice Example (+49 30 7654321)" and hello.body == "Hello Bob"
    assert hello.created_at == utc(2023, 3, 25, 9, 0) and hello.time is not None
    assert (hello.time.raw, hello.time.layout, hello.time.decided_by, hello.time.zone) == (
        "Sat, 25 Mar 2023 10:00:00 +0100",
        "rfc2822",
        "format",
        "+01:00",
    )
    assert paragraphs.sender == "You"
    assert paragraphs.body == (
        "First paragraph\n\nType: words with spaces after a blank line stay in the body\nlast line"
    )
    assert [(a.name, a.content_type, a.data) for a in paragraphs.attachments] == [("photo.jpg", "image/jpeg", None)]
    assert paragraphs.flags == ("media_omitted",)
    assert paragraphs.extra["reactions"] == "👍 from Alice Example (+49 30 7654321)"
    assert nice.body == "Nice photo" and nice.extra["quote"].endswith("\n\nFirst paragraph")
    assert edited.edited and edited.body == "See you at 11"
    assert "See you at 10" in edited.extra["edit_history"]
    assert edited.created_at == utc(2023, 3, 26, 8, 6)


def test_sigtop_text_events() -> None:
    found = [(e.kind, e.detail, e.at) for e in events(parse(FileSource(SIGTOP)))]
    assert found == [
        (
            "incomplete_copy",
            "You: attachment photo.jpg (image/jpeg, 123456 bytes) is listed; sigtop text has no files",
            utc(2023, 3, 26, 8, 0),
        ),
        ("disappearing_messages", "timer-notification from Alice Example (+49 30 7654321)", utc(2023, 3, 26, 8, 8)),
        ("system", "keychange", utc(2023, 3, 26, 8, 9)),  # no Sent: the Received time is used
    ]


def test_sigtop_files_in_a_zip_are_each_read(tmp_path: Path) -> None:
    path = tmp_path / "sigtop.zip"
    text = SIGTOP.read_bytes()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("messages/Alice Example.txt", text)
        archive.writestr(
            "messages/Team (group).txt", text.replace(b"Alice Example (+49 30 7654321)\n\n", b"Team (group)\n\n", 1)
        )
    records = parse(ZipSource(path))
    assert Counter(m.conversation for m in messages(records)) == {"Alice Example": 4, "Team": 4}


# --- detection -----------------------------------------------------------------------------------------




@pytest.mark.parametrize(
    "path", [CHAT_MINER / "test_export.txt", ALICE_MD, TEAM_MD, TEAM_JSON, SIGTOP], ids=lambda p: p.name
)
def test_detects_signal_exports(path: Path) -> None:
    assert detect_file(signal, path)
    # and the WhatsApp parser leaves them alone
    assert not looks_like_whatsapp(read_head(FileSource(path), path.name))


def test_detects_an_export_zip_whatever_head_it_is_given(tmp_path: Path) -> None:
    source = export_zip(tmp_path)
    assert signal.detect(source, (tmp_path / "signal-export.zip").read_bytes()[:4096])
    assert signal.detect(source, PHOTO)


@pytest.mark.parametrize(
    "path",
    [
        CHAT_MINER / "target.json",
        TELEGRAM / "full_export" / "result.json",
        TELEGRAM / "chat-miner" / "test_single_export.json",
        *sorted((WHATSAPP / "chat-miner").glob("*.txt")),
        WHATSAPP / "ios_crlf_marks.txt",
        WHATSAPP / "ios_narrow_nbsp_ampm.txt",
        WHATSAPP / "android_iso_am.txt",
    ],
    ids=lambda p: p.name,
)
def test_does_not_detect_other_formats(path: Path) -> None:
    assert not detect_file(signal, path)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"[3/27/22, 21:41:35] Alice: hi\n",
        b"[2022-03-27, 21:41:35] Alice: iOS year-first with comma and seconds\n",
        b"Conversation: but nothing after it\n",
        b'{"date": 1, "sender": "A"}\n',
    ],
)
def test_does_not_detect_lookalikes(head: bytes) -> None:
    assert not signal.detect(BytesSource("x.txt", head), head)



# --- malformed input -----------------------------------------------------------------------------------

HEADER = "[2023-03-25 10:00:00] Alice: "
SIGTOP_HEAD = "Conversation: Alice (+1)\n\nFrom: Alice (+1)\nType: incoming\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("A/chat.md", b"preamble\n" + HEADER.encode() + b"hi\n", "line 1: text before the first"),
        ("A/chat.md", b"[2023-02-30 10:00:00] Alice: hi\n", "line 1: '2023-02-30 10:00:00' is not a valid date"),
        ("A/chat.md", HEADER.encode() + b"caf\xe9\n", "line 1: not valid UTF-8"),
        ("A/data.json", b'{"date": "2023-01-01T10:00:00", "sender": "A"\n', "line 1: not a JSON object"),
        ("A/data.json", b"[1]\n", "line 1: not a JSON object"),
        ("A/data.json", b'{"date": "soon", "sender": "A", "body": ""}\n', "line 1: date 'soon' is not an ISO date"),
        ("A/data.json", b'{"date": "2023-01-01T10:00:00", "sender": 5}\n', "sender is int, not text"),
        ("A/data.json", b'{"date": "2023-01-01T10:00:00", "attachments": "x"}\n', "attachments is not a list"),
        ("A/data.json", b'{"date": "2023-01-01T10:00:00", "body": ' + b"[" * 50_000 + b"\n", "not a JSON object"),
        ("s.txt", (SIGTOP_HEAD + "Sent: yesterday\n\nhi\n").encode(), "line 3: Sent: 'yesterday' is not an RFC 2822"),
        ("s.txt", (SIGTOP_HEAD + "Sent: Mon, 30 Feb 2023 10:00:00 +0100\n").encode(), "is not a valid date"),
        ("nothing.txt", b"just some notes\n", "no signal-export chat.md/data.json or sigtop text"),
    ],
    ids=lambda v: v[:40].decode(errors="replace") if isinstance(v, bytes) else None,
)
def test_malformed_input_is_a_parse_error(name: str, text: bytes, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(BytesSource(name, {name: text}))
    assert message in str(caught.value)


def test_text_files_that_are_not_chats_are_passed_over() -> None:
    source = BytesSource("x", {"a.txt": SIGTOP.read_bytes(), "b.txt": b"From: A\nType: incoming\n"})
    records = parse(source)  # b.txt is not recognised as a chat file, so only a.txt is read
    assert len(messages(records)) == 4


def test_overlong_lines_and_messages_are_refused() -> None:
    short_lines = Limits(signal_line_bytes=64)
    with pytest.raises(ParseError, match="line 2: longer than 64 bytes"):
        parse(BytesSource("A/chat.md", {"A/chat.md": (HEADER + "hi\n" + "x" * 100 + "\n").encode()}, short_lines))
    short_messages = Limits(signal_line_bytes=1024, message_chars=500)
    body = (HEADER + "hi\n" + ("y" * 50 + "\n") * 20).encode()
    with pytest.raises(ParseError, match="message at line 1 is longer than 500"):
        parse(BytesSource("A/chat.md", {"A/chat.md": body}, short_messages))
    sigtop = (SIGTOP_HEAD + "Sent: Sat, 25 Mar 2023 10:00:00 +0100\n\n" + ("z" * 50 + "\n") * 20).encode()
    with pytest.raises(ParseError, match="longer than 500"):
        parse(BytesSource("s.txt", {"s.txt": sigtop}, short_messages))


@pytest.mark.parametrize("path", [ALICE_MD, TEAM_JSON, SIGTOP], ids=lambda p: p.name)
def test_damaged_copies_raise_only_parse_errors(path: Path) -> None:
    """Seeded random damage to each layout: records or a ParseError, nothing else."""
    rng = random.Random(20)
    original = path.read_bytes()
    name = f"{path.parent.name}/{path.name}"
    inserts = [b"\n", b"\n\n", b"Type: x\n", b"[2023-01-01 10:00:00] A: ", b"> ", b"| ", b"(x not exported)", b"\xff"]
    for _ in range(200):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(damaged) or 1)
            if rng.random() < 0.5 and damaged:
                damaged[at] = rng.randrange(256)
            else:
                damaged[at:at] = rng.choice([*inserts, b"{", b'"', b"]("])
        source = BytesSource(name, {name: bytes(damaged)})
        signal.detect(source, bytes(damaged[:8192]))
        with contextlib.suppress(ParseError):
            parse(source)


def test_a_quote_is_matched_by_the_first_words_of_the_message_it_quotes() -> None:
    # Signal's exports name a quoted message by its text: the quote's key is the quoted message's.
    team = BytesSource("x", {"ProjectTeam/data.json": TEAM_JSON.read_bytes()})
    morning, agenda, deleted, _ = messages(parse(team))
    assert morning.text_key and agenda.reply_to == morning.text_key
    assert morning.reply_to == "" and deleted.text_key == ""  # a deleted message shows no text to quote
    assert morning.message_key == ""  # never an identity: two messages may begin alike
    # A quote of a long message shows its beginning: the first 64 characters decide.
    long_text = "word " * 40
    lines = [json.dumps({"date": "2023-11-14T23:13:20", "sender": "Carol", "body": long_text, "quote": ""}),
             json.dumps({"date": "2023-11-14T23:14:00", "sender": "Me", "body": "yes",
                         "quote": "\n\n> " + long_text[:70] + "…\n\n"}),
             json.dumps({"date": "2023-11-14T23:15:00", "sender": "Me", "body": "nice", "quote": "\n\n> Photo\n\n"})]
    first, reply, photo = messages(parse(BytesSource("x", {"Team/data.json": "\n".join(lines).encode()})))
    assert reply.reply_to == first.text_key
    assert photo.reply_to == ""  # a quoted photo has no words to match
