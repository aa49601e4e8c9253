"""Google Chat from Takeout: what a records officer would see from each group folder."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import detect_file, events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers import google_chat
from twentyday.parsers.base import BytesSource, ExportSource, FileSource, ZipSource
from twentyday.records import ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

DATA = Path(__file__).resolve().parents[1] / "data"
TAKEOUT = DATA / "google_chat"
GROUPS = TAKEOUT / "Takeout" / "Google Chat" / "Groups"



def hints() -> ParseHints:
    return ParseHints(timezone=ZoneInfo("America/New_York"), zone_name="America/New_York")


def parse(source: ExportSource) -> list[Record]:
    return list(google_chat.parse(source, hints()))








@pytest.fixture(scope="module")
def takeout(tmp_path_factory: pytest.TempPathFactory) -> ZipSource:
    out = tmp_path_factory.mktemp("takeout") / "takeout-20240401.zip"
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(TAKEOUT.rglob("*")):
            if path.is_file() and path.name != "SOURCES.md":
                archive.write(path, path.relative_to(TAKEOUT).as_posix())
    return ZipSource(out)


@pytest.fixture(scope="module")
def records(takeout: ZipSource) -> list[Record]:
    return parse(takeout)


# --- the wjcarpenter/gvoice-sms-takeout-xml fixtures (BSD-2-Clause) -------------------------


def test_every_message_of_every_group_is_read(records: list[Record]) -> None:
    per_group: dict[str, int] = {}
    for message in messages(records):
        per_group[message.extra["group"]] = per_group.get(message.extra["group"], 0) + 1
    assert per_group == {
        "DM 1pRI-QAAAAE": 51,
        "DM 2k64eoAAAAE": 2,
        "Space AAAAPelican": 6,  # seven entries, one of them deleted
        "Space AAAATeQdkhI": 9,
        "Space AAAAdvGdRgs": 5,
    }
    assert len(events(records, "incomplete_copy")) == 7
    assert len(events(records, "deleted_message")) == 1
    assert len(events(records, "system")) == 1


def test_dm_message_as_the_user_saw_it(records: list[Record]) -> None:
    dm = messages(records, "Alan A Milne, Maria S Curie")
    assert len(dm) == 51
    first = dm[0]
    assert first.platform == "google_chat"
    assert first.sender == "aamilne@authors.example.com"
    assert first.extra["sender_name"] == "Alan A Milne"
    assert first.recipients == ("mssc@science.example.org",)
    assert first.body == "$95.00"
    assert first.created_at == utc(2015, 4, 15, 0, 51, 8)  # "12:51:08 AM" is just after midnight
    assert first.time == TimeReading(
        raw="Wednesday, April 15, 2015 at 12:51:08\u202fAM UTC",  # Takeout puts U+202F before AM/PM
        layout="google-chat %A, %B %-d, %Y at %-I:%M:%S %p %Z",
        day_first=None,
        decided_by="format",
        zone="UTC",
    )
    assert first.message_key == "1pRI-QAAAAE/Zz55N1gqWfo/Zz55N1gqWfo"
    assert first.reply_to == ""  # the first message of its topic
    assert dm[2].body == "I've heard of polymaths, but I think you might be the first demi-math"
    assert dm[-1].created_at == utc(2020, 11, 14, 16, 7, 51)


def test_space_names_and_non_ascii_people(records: list[Record]) -> None:
    space = [m for m in messages(records, "Group Chat") if m.extra["group"] == "Space AAAATeQdkhI"]
    soren = [m for m in space if m.extra["sender_name"] == "Søren Aabye Kierkegaard"]
    assert [m.sender for m in soren] == ["søren@authors.example.com"] * 3
    assert soren[0].recipients == ("mssc@science.example.org",)
    assert soren[1].body == (
        # The NBSPs around the handle are in the export; kept as written.
        '"\n\n This Tweet from\u00a0@NTarnopolsky\u00a0has been withheld'
        ' in response to a report from the copyright holder."'
    )


def test_attachment_present_is_read(records: list[Record]) -> None:
    cat = [m for m in messages(records) if m.extra["group"] == "Space AAAAdvGdRgs"][-1]
    (attachment,) = cat.attachments
    assert attachment.name == "Cat_Hilarious.png"
    assert attachment.content_type == "image/png"
    assert attachment.data == (GROUPS / "Space AAAAdvGdRgs" / "File-Cat_Hilarious.png").read_bytes()
    assert cat.body == ""
    assert cat.flags == ()


def test_attachment_missing_is_kept_by_name_and_reported(records: list[Record]) -> None:
    dm = messages(records, "Alan A Milne, Maria S Curie")
    iceland = next(m for m in dm if m.message_key == "1pRI-QAAAAE/KOkx9Bb7sXI/KOkx9Bb7sXI")
    (photo,) = iceland.attachments
    assert (photo.name, photo.content_type, photo.omitted) == ("2015-04-19.jpg", "image/jpeg", True)
    assert iceland.flags == ("media_omitted",)
    reported = [e for e in events(records, "incomplete_copy") if e.at == iceland.created_at]
    assert [e.detail for e in reported] == [
        "attachment of a message from Maria S Curie not in the export: 2015-04-19.jpg (not in the export)"
    ]


def test_files_no_message_names_are_reported(records: list[Record]) -> None:
    (notice,) = events(records, "system")
    assert notice.conversation == "Alan A Milne, Maria S Curie"
    assert notice.detail == (
        "files in the export that no message names: File-2016-01-15.png, File-Callouts_Internet_LMAO(1).png, "
        "File-Callouts_Internet_LMAO(2).png, File-Selection_004(1).png, File-Selection_005.png"
    )


# --- our own group: threads, zones, deleted messages -----------------------------------------


@pytest.fixture(scope="module")
def pelican(records: list[Record]) -> list[ParsedMessage]:
    return messages(records, "Pelican Ops")


def test_threaded_reply_points_at_its_topic(pelican: list[ParsedMessage]) -> None:
    reply = pelican[1]
    assert reply.message_key == "AAAAPelican/T1aaaa/R1bbbb"
    assert reply.reply_to == "AAAAPelican/T1aaaa/T1aaaa"
    assert reply.body == "I do — draft by Friday"
    assert reply.created_at == utc(2024, 3, 5, 14, 30, 15)  # 24-hour clock
    assert reply.recipients == ("jane.doe@agency.example.gov", "zoe@partner.example.org")
    assert json.loads(reply.extra["reactions"]) == [
        {"emoji": {"unicode": "👍"}, "reactor_emails": ["jane.doe@agency.example.gov"]}
    ]


def test_numeric_offset_is_kept(pelican: list[ParsedMessage]) -> None:
    zoe = pelican[2]
    assert zoe.created_at == utc(2024, 3, 6, 4, 45, 0)
    assert zoe.created_at is not None and zoe.created_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert zoe.time is not None and zoe.time.zone == "+05:30"
    assert zoe.extra["sender_name"] == "Zoë Čapek"


def test_account_id_file_is_found_under_its_disk_name(pelican: list[ParsedMessage], records: list[Record]) -> None:
    census, budget = pelican[2].attachments
    assert census.name == "census?account_id=3.png"
    assert census.data == (GROUPS / "Space AAAAPelican" / "File-census_account_id=3.png").read_bytes()
    assert (budget.name, budget.omitted) == ("budget.xlsx", True)
    assert pelican[2].flags == ("media_omitted",)


@pytest.mark.parametrize(
    ("index", "zone", "layout"),
    [
        (3, "PST", "google-chat %A, %B %-d, %Y at %-I:%M:%S %p %Z"),  # zone named, offset not given
        (4, "", "google-chat unrecognised"),  # Hungarian-locale Takeout
        (5, "UTC", "google-chat %A, %B %-d, %Y at %-I:%M:%S %p %Z"),  # Monday, March 6, 2024 was a Wednesday
    ],
)
def test_unreadable_dates_leave_the_message_undated(
    pelican: list[ParsedMessage], index: int, zone: str, layout: str
) -> None:
    message = pelican[index]
    assert message.created_at is None
    assert message.time is not None
    assert (message.time.zone, message.time.layout) == (zone, layout)
    assert message.time.raw in json.loads((GROUPS / "Space AAAAPelican" / "messages.json").read_text())["messages"][
        index
    ].get("created_date", "")


def test_deleted_message_becomes_an_event(records: list[Record]) -> None:
    (deleted,) = events(records, "deleted_message")
    assert deleted == ParsedEvent(
        kind="deleted_message",
        conversation="Pelican Ops",
        at=utc(2024, 3, 7, 20, 44, 40),
        detail="message AAAAPelican/T1aaaa/D1gggg from (unknown) was deleted (deletion type CREATOR)",
    )


# --- created_date ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Sunday, November 18, 2018 at 6:02:21 PM UTC", utc(2018, 11, 18, 18, 2, 21)),
        ("Sunday, November 18, 2018 at 6:02:21\u202fPM UTC", utc(2018, 11, 18, 18, 2, 21)),
        ("Sunday, November 18, 2018 at 6:02:21\u00a0PM GMT", utc(2018, 11, 18, 18, 2, 21)),
        ("Sunday, November 18, 2018 at 12:02:21 PM UTC", utc(2018, 11, 18, 12, 2, 21)),
        ("Sunday, November 18, 2018 at 12:02:21 AM UTC", utc(2018, 11, 18, 0, 2, 21)),
        ("Sunday, November 18, 2018 at 18:02:21 UTC", utc(2018, 11, 18, 18, 2, 21)),
        ("Sunday, November 18, 2018 at 6:02:21 PM -0700", utc(2018, 11, 19, 1, 2, 21)),
        ("Sunday, November 18, 2018 at 6:02:21 PM UTC-7", utc(2018, 11, 19, 1, 2, 21)),
        ("Sunday, November 18, 2018 at 6:02:21 PM GMT+05:45", utc(2018, 11, 18, 12, 17, 21)),
        ("Sunday, November 18, 2018 at 6:02:21 PM PST", None),
        ("Sunday, November 18, 2018 at 6:02:21 PM CET", None),
        ("Sunday, November 18, 2018 at 6:02:21 PM +15:00", None),
        ("Sunday, November 18, 2018 at 13:02:21 PM UTC", None),
        ("Sunday, November 18, 2018 at 24:02:21 UTC", None),
        ("Sunday, February 30, 2018 at 6:02:21 PM UTC", None),
        ("Monday, November 18, 2018 at 6:02:21 PM UTC", None),
        ("Sonntag, November 18, 2018 at 6:02:21 PM UTC", None),
        ("Sunday, Nov 18, 2018 at 6:02:21 PM UTC", None),
        ("18 November 2018 18:02:21 UTC", None),
        ("", None),
    ],
)
def test_read_created_date(raw: str, expected: datetime | None) -> None:
    at, reading = google_chat.read_created_date(raw)
    assert at == expected
    assert reading.raw == raw
    assert reading.decided_by == "format"
    assert reading.day_first is None


def test_offset_zone_names() -> None:
    at, reading = google_chat.read_created_date("Sunday, November 18, 2018 at 6:02:21 PM -0700")
    assert reading.zone == "-07:00"
    assert at is not None and at.tzinfo == timezone(timedelta(hours=-7))


# --- other shapes, broken files -------------------------------------------------------------------


def test_lone_messages_json_has_its_attachments_omitted() -> None:
    records = parse(FileSource(GROUPS / "Space AAAAdvGdRgs" / "messages.json"))
    found = messages(records)
    assert len(found) == 5
    assert {m.conversation for m in found} == {"messages.json"}  # no group_info.json beside it
    assert found[-1].attachments[0].omitted
    assert len(events(records, "incomplete_copy")) == 1


def group(messages_: object, info: object | None = None) -> BytesSource:
    prefix = "Google Chat/Groups/Space AAAAx/"
    files = {prefix + "messages.json": json.dumps(messages_).encode()}
    if info is not None:
        files[prefix + "group_info.json"] = json.dumps(info).encode()
    return BytesSource("takeout.zip", files)


def test_dm_without_name_is_named_after_its_members() -> None:
    info = {"members": [{"name": "A B", "email": "a@x.org"}, {"name": "C D", "email": "c@x.org"}]}
    entry = {"creator": {"name": "A B", "email": "a@x.org"}, "text": "hi", "message_id": "x/t/t"}
    (message,) = messages(parse(group({"messages": [entry]}, info)))
    assert message.conversation == "A B, C D"
    assert message.recipients == ("c@x.org",)
    assert (message.created_at, message.time) == (None, None)  # no created_date at all


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "top level is not a JSON object"),
        ({"messages": "none"}, 'no "messages" list'),
        ({"messages": [1]}, "message 1 is not a JSON object"),
        ({"messages": [{"creator": "Jane"}]}, "message 1: creator is not a JSON object"),
        ({"messages": [{"text": 5}]}, "message 1: text is int, not text"),
        ({"messages": [{"attached_files": {"export_name": "x"}}]}, "attached_files is not a list"),
        ({"messages": [{"created_date": ["Sunday"]}]}, "created_date is list, not text"),
    ],
)
def test_broken_messages_json_raises_a_clear_parse_error(document: object, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(group(document))
    assert reason in str(caught.value)


def test_invalid_json_and_no_groups_are_parse_errors() -> None:
    broken = BytesSource("takeout.zip", {"Google Chat/Groups/DM x/messages.json": b'{"messages": [', "y": b""})
    with pytest.raises(ParseError, match=r"DM x/messages\.json: not valid JSON"):
        parse(broken)
    with pytest.raises(ParseError, match="no Google Chat"):
        parse(BytesSource("takeout.zip", {"a": b"", "b": b""}))


# --- detection -----------------------------------------------------------------------------------




def test_detects_takeout_and_lone_messages_json(takeout: ZipSource) -> None:
    assert google_chat.detect(takeout, b"PK\x03\x04")
    assert detect_file(google_chat, GROUPS / "DM 2k64eoAAAAE" / "messages.json")
    assert detect_file(google_chat, GROUPS / "Space AAAAPelican" / "messages.json")


@pytest.mark.parametrize(
    "path",
    [
        DATA / "whatsapp" / "ios_crlf_marks.txt",
        DATA / "instagram" / "chat-miner" / "test_export.json",
        DATA / "mbox" / "three.mbox",
        GROUPS / "DM 2k64eoAAAAE" / "group_info.json",
    ],
    ids=lambda p: p.name,
)
def test_does_not_detect_other_formats(path: Path) -> None:
    assert not detect_file(google_chat, path)


def test_does_not_detect_telegram_json() -> None:
    telegram = json.dumps(
        {"name": "Team", "type": "private_group", "id": 1, "messages": [
            {"id": 1, "type": "message", "date": "2024-03-05T09:00:00", "from": "Jane", "text": "hi"}]}
    ).encode()  # fmt: skip
    assert not google_chat.detect(BytesSource("result.json", telegram), telegram)


class _Unreadable(BytesSource):
    def open(self, member: str) -> BinaryIO:
        raise OSError("disk on fire")


def test_detect_never_raises() -> None:
    source = _Unreadable("x.zip", {"Google Chat/Groups/DM x/messages.json": b"", "other": b""})
    assert google_chat.detect(source, b"") is False
