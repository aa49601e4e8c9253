"""WhatsApp .txt exports: what a records officer would see from each real-world layout."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.chatgen import WORDS, us_twelve_hour_export
from tests.parsers.conftest import events, messages, utc
from twentyday.errors import HeldForReview, ParseError
from twentyday.parsers.base import FileSource
from twentyday.parsers.registry import choose
from twentyday.parsers.whatsapp import MAX_LINE_BYTES, conversation_name, looks_like_whatsapp, parse_text
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data" / "whatsapp"
CHAT_MINER = DATA / "chat-miner"
CHAT_MINER_FILES = sorted(CHAT_MINER.glob("*.txt"))
OWN_FILES = sorted(DATA.glob("*.txt"))



def hints(
    zone: str = "UTC",
    day_first: bool | None = None,
    source: str = "WhatsApp Chat with Project Team.txt",
) -> ParseHints:
    return ParseHints(
        timezone=ZoneInfo(zone), zone_name=zone, day_first=day_first, source_name=source
    )


def parse(path: Path, **kwargs: Any) -> list[Record]:
    with path.open("rb") as stream:
        return list(parse_text(stream, hints(**kwargs)))








def utc_times(records: list[Record]) -> list[datetime]:
    return [m.created_at.astimezone(UTC) for m in messages(records) if m.created_at]


# --- chat-miner fixtures (joweich/chat-miner, MIT) -----------------------------------


@pytest.mark.parametrize("path", CHAT_MINER_FILES, ids=lambda p: p.name)
def test_chat_miner_fixture_yields_every_upstream_target_message(path: Path) -> None:
    records = parse(path, zone="Europe/Berlin")
    got = {
        (m.created_at.replace(tzinfo=None), m.sender, m.body.replace("\n", " "))
        for m in messages(records)
        if m.created_at
    }
    target = json.loads((CHAT_MINER / "target.json").read_text(encoding="utf-8"))
    for entry in target:
        key = (datetime.fromisoformat(entry["timestamp"]), entry["author"], entry["message"])
        assert key in got
    assert len(messages(records)) == 6
    assert [e.detail for e in events(records)] == [
        "John Doe:.",  # no ": " after the author: kept as a system line, not dropped
        '+12 345 578 created group "Groupname"',
        "You were added",
    ]
    assert {e.kind for e in events(records)} == {"system"}


@pytest.mark.parametrize(
    ("name", "layout", "day_first", "decided_by"),
    [
        ("test_ddmmyy_24hrs.txt", "whatsapp-android %d/%m/%y, %H:%M", True, "file"),
        ("test_mmddyy_24hrs.txt", "whatsapp-android %m/%d/%y, %H:%M", False, "file"),
        ("test_[mmddyy]_24hrs.txt", "whatsapp-ios %m/%d/%y %H:%M", False, "file"),
        ("test_mmddyyyy_12hrs.txt", "whatsapp-android %m/%d/%Y, %I:%M %p", False, "file"),
        ("test_yyyymmdd_24hrs.txt", "whatsapp-android %Y/%m/%d, %H:%M", None, "format"),
    ],
)
def test_chat_miner_layout_and_order_are_recorded(
    name: str, layout: str, day_first: bool | None, decided_by: str
) -> None:
    # The custodian's locale says the opposite; the file's own evidence wins.
    first = messages(parse(CHAT_MINER / name, zone="Europe/Berlin", day_first=not day_first))[0]
    assert first.time is not None
    assert first.time.layout == layout
    assert first.time.day_first is day_first
    assert first.time.decided_by == decided_by
    assert first.time.zone == "Europe/Berlin"


def test_chat_miner_times_in_utc_and_multiline_body() -> None:
    records = parse(CHAT_MINER / "test_ddmmyy_24hrs.txt", zone="Europe/Berlin")
    last = messages(records)[-1]
    assert last.time is not None and last.time.raw == "30/12/21, 22:01"
    assert last.created_at == utc(2021, 12, 30, 21, 1)  # CET, UTC+1
    assert last.body == "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit. Duis libero."
    summer = messages(records)[2]
    assert summer.sender == "John-John Doe"
    assert summer.body == "Lorem ipsum : dolor sit amet."
    assert summer.created_at == utc(2020, 6, 10, 13, 55)  # CEST, UTC+2


def test_chat_miner_12h_a_m_p_m_with_spaces() -> None:
    records = parse(CHAT_MINER / "test_mmddyyyy_12hrs.txt")
    assert utc_times(records) == [
        utc(2019, 1, 1, 11, 25),
        utc(2019, 1, 30, 20, 49),
        utc(2020, 6, 10, 15, 55),
        utc(2021, 12, 10, 10, 10),
        utc(2021, 12, 20, 12, 10),
        utc(2021, 12, 30, 22, 1),
    ]
    assert [e.at for e in events(records)][1] == utc(2020, 6, 20, 0, 8)  # "00:08 a. m."


# --- iOS -------------------------------------------------------------------------


def test_ios_crlf_with_marks_reads_every_kind_of_line() -> None:
    records = parse(DATA / "ios_crlf_marks.txt", zone="America/New_York")
    kinds = [type(r).__name__ if isinstance(r, ParsedMessage) else r.kind for r in records]
    assert kinds == [
        "system",
        "ParsedMessage",
        "ParsedMessage",
        "ParsedMessage",
        "incomplete_copy",
        "ParsedMessage",
        "deleted_message",
        "ParsedMessage",
        "ParsedMessage",
        "disappearing_messages",
        "ParsedMessage",
        "ParsedMessage",
        "deleted_message",
        "ParsedMessage",
    ]
    msgs = messages(records)
    assert [m.sender for m in msgs] == [
        "Alice Smith",
        "Alice Smith",
        "+1 202 555 0147",
        "Bob Jones",
        "Alice Smith",
        "Bob Jones",
        "Bob Jones",
        "Alice Smith",
        "Alice Smith",
    ]
    assert {m.conversation for m in msgs} == {"Project Team"}
    assert msgs[0].body == "Budget draft is ready\nsecond line of the draft note"
    assert msgs[0].created_at == utc(2022, 3, 18, 18, 57, 12)  # EDT, UTC-4
    assert msgs[0].time is not None and msgs[0].time.raw == "3/18/22, 14:57:12"
    assert all("\r" not in m.body for m in msgs)
    assert msgs[-1].created_at == utc(2022, 3, 19, 13, 0)
    assert records[0].detail.startswith(  # type: ignore[union-attr]
        "Project Team: Messages and calls are end-to-end encrypted."
    )


def test_ios_attachments_are_referenced_not_omitted() -> None:
    msgs = messages(parse(DATA / "ios_crlf_marks.txt"))
    photo, document = msgs[1], msgs[5]
    assert photo.attachments == (
        ParsedAttachment(name="00000035-PHOTO-2022-03-18-14-58-03.jpg", content_type="image/jpeg"),
    )
    assert photo.flags == ("media_referenced",)
    assert document.attachments == (
        ParsedAttachment(name="00000047-Resume.pdf", content_type="application/pdf"),
    )
    assert document.attachments[0].omitted  # the zip layer fills the data in


def test_ios_omitted_deleted_edited_and_location() -> None:
    records = parse(DATA / "ios_crlf_marks.txt")
    msgs = messages(records)
    image = msgs[2]
    assert image.flags == ("media_omitted",)
    assert image.attachments == (ParsedAttachment(name="image"),)
    assert records[4] == ParsedEvent(
        kind="incomplete_copy",
        conversation="Project Team",
        at=image.created_at,
        detail="image omitted from the export of a message from +1 202 555 0147",
    )
    deleted = msgs[3]
    assert deleted.flags == ("deleted",)
    assert deleted.body == "This message was deleted."
    assert records[6].kind == "deleted_message"  # type: ignore[union-attr]
    assert "Bob Jones" in records[6].detail  # type: ignore[union-attr]
    edited = msgs[4]
    assert (edited.body, edited.edited) == ("Meeting moved to 4pm", True)
    location = msgs[6]
    assert location.body == "Location: https://maps.google.com/?q=38.8977,-77.0365"
    assert location.flags == ()
    own_delete = msgs[7]
    assert own_delete.flags == ("deleted",)
    assert "Alice Smith" in records[12].detail  # type: ignore[union-attr]


def test_ios_disappearing_messages_event() -> None:
    records = parse(DATA / "ios_crlf_marks.txt", zone="America/New_York")
    (event,) = [e for e in events(records) if e.kind == "disappearing_messages"]
    assert event.at is not None and event.at.astimezone(UTC) == utc(2022, 3, 18, 19, 5)
    assert "Alice Smith turned on disappearing messages" in event.detail


def test_ios_narrow_nbsp_before_am_pm() -> None:
    records = parse(DATA / "ios_narrow_nbsp_ampm.txt", zone="Europe/London")
    assert utc_times(records) == [
        utc(2023, 12, 1, 0, 5),  # 12:05 AM
        utc(2023, 12, 1, 12, 30),  # 12:30 PM
        utc(2023, 12, 14, 22, 28, 9),
    ]
    first = messages(records)[0]
    assert first.time is not None
    assert first.time.raw == "1/12/23, 12:05:00\u202fAM"
    assert (first.time.day_first, first.time.decided_by) == (True, "file")


def test_ios_arabic_rlm_and_arabic_comma() -> None:
    records = parse(DATA / "ios_arabic_rlm.txt", zone="Asia/Riyadh")
    assert utc_times(records) == [utc(2022, 3, 27, 18, 41, 35), utc(2022, 4, 1, 5, 0)]
    assert [m.sender for m in messages(records)] == ["أحمد", "Sara"]
    assert messages(records)[0].body == "مرحبا"


def test_ios_arabic_indic_digits() -> None:
    records = parse(DATA / "ios_arabic_indic_digits.txt", zone="Asia/Riyadh")
    assert utc_times(records) == [utc(2022, 3, 27, 18, 41, 35), utc(2022, 3, 28, 5, 5, 0)]
    first = messages(records)[0]
    assert first.time is not None
    assert first.time.raw == "٢٧\u200f/٣\u200f/٢٠٢٢\u060c ٩:٤١:٣٥\u00a0م"
    assert first.time.day_first is True


def test_ios_buddhist_year() -> None:
    records = parse(DATA / "ios_buddhist_year.txt", zone="Asia/Bangkok")
    assert utc_times(records) == [utc(2022, 3, 27, 14, 41, 35), utc(2022, 3, 28, 2, 15)]
    assert messages(records)[0].time.layout == (  # type: ignore[union-attr]
        "whatsapp-ios %m/%d/%Y BE, %H:%M:%S"
    )


def test_ios_japanese_era_across_the_change_of_era() -> None:
    records = parse(DATA / "ios_japanese_era.txt", zone="Asia/Tokyo")
    assert utc_times(records) == [
        utc(2019, 4, 30, 14, 59),  # Heisei 31
        utc(2019, 4, 30, 15, 1),  # Reiwa 1, one minute past midnight in Tokyo
        utc(2022, 3, 27, 12, 41, 35),  # Reiwa 4
    ]


def test_ios_time_first() -> None:
    records = parse(DATA / "ios_time_first.txt", zone="Asia/Ho_Chi_Minh")
    assert utc_times(records) == [utc(2022, 3, 27, 14, 41, 35), utc(2022, 3, 28, 1, 0)]
    assert [m.body for m in messages(records)] == ["Xin chào", "Chào buổi sáng"]


def test_ios_dotted_time() -> None:
    records = parse(DATA / "ios_dotted_time.txt", zone="Asia/Jakarta")
    assert utc_times(records) == [utc(2022, 3, 27, 14, 41, 35), utc(2022, 3, 28, 0, 2, 9)]


def test_ios_before_2017_colon_separator() -> None:
    records = parse(DATA / "ios_pre2017.txt", zone="America/Los_Angeles")
    msgs = messages(records)
    assert utc_times(records) == [utc(2016, 7, 2, 0, 8, 8), utc(2016, 7, 13, 16, 0)]
    assert [m.sender for m in msgs] == ["Alice", "Bob"]
    assert msgs[1].body == "reply with a colon: inside\nand a second line"


STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_ios_iso_date_with_seconds() -> None:
    records = parse(DATA / "ios_iso_seconds.txt", zone="Europe/Stockholm")
    msgs = messages(records)
    assert [(m.sender, m.created_at, m.flags, m.edited) for m in msgs] == [
        ("Anna Berg", datetime(2019, 4, 16, 2, 9, 40, tzinfo=STOCKHOLM), (), False),
        ("Bo Ek", datetime(2019, 4, 16, 14, 10, 5, tzinfo=STOCKHOLM), (), False),
        ("Bo Ek", datetime(2019, 4, 16, 14, 11, 0, tzinfo=STOCKHOLM), ("media_referenced",), False),
        ("Anna Berg", datetime(2019, 4, 16, 23, 59, 59, tzinfo=STOCKHOLM), ("media_omitted",), False),
        ("Bo Ek", datetime(2019, 4, 17, 0, 0, 1, tzinfo=STOCKHOLM), ("deleted",), False),
        ("Anna Berg", datetime(2019, 4, 17, 8, 30, tzinfo=STOCKHOLM), (), True),
    ]
    assert utc_times(records)[0] == utc(2019, 4, 16, 0, 9, 40)  # CEST, +02:00
    assert msgs[1].body == "Thanks, reading it now\nit needs a second look at page 4"
    assert msgs[2].attachments == (
        ParsedAttachment("00000012-PHOTO-2019-04-16-14-11-00.jpg", "image/jpeg"),
    )
    assert msgs[5].body == "Meeting moved to 10:00"
    assert [(e.kind, e.at) for e in events(records)] == [
        ("system", datetime(2019, 4, 16, 2, 9, 11, tzinfo=STOCKHOLM)),  # E2E notice, under the chat's name
        ("system", datetime(2019, 4, 16, 2, 9, 11, tzinfo=STOCKHOLM)),  # group created
        ("incomplete_copy", datetime(2019, 4, 16, 23, 59, 59, tzinfo=STOCKHOLM)),
        ("deleted_message", datetime(2019, 4, 17, 0, 0, 1, tzinfo=STOCKHOLM)),
    ]
    time = msgs[0].time
    assert time is not None
    assert (time.raw, time.layout, time.day_first, time.decided_by, time.zone) == (
        "2019-04-16 02:09:40", "whatsapp-ios %Y-%m-%d %H:%M:%S", None, "format", "Europe/Stockholm",
    )


def test_ios_iso_date_without_seconds() -> None:
    records = parse(DATA / "ios_iso_minutes.txt", zone="Europe/Stockholm")
    msgs = messages(records)
    assert [(m.sender, m.created_at, m.flags) for m in msgs] == [
        ("Anna Berg", datetime(2019, 4, 16, 2, 9, tzinfo=STOCKHOLM), ()),
        ("Bo Ek", datetime(2019, 4, 16, 14, 10, tzinfo=STOCKHOLM), ()),
        ("Anna Berg", datetime(2019, 4, 16, 23, 59, tzinfo=STOCKHOLM), ("media_omitted",)),
        ("Bo Ek", datetime(2019, 4, 17, 0, 0, tzinfo=STOCKHOLM), ()),
    ]
    assert [e.kind for e in events(records)] == ["system", "incomplete_copy"]
    assert {m.time.layout for m in msgs if m.time} == {"whatsapp-ios %Y-%m-%d %H:%M"}


@pytest.mark.parametrize(
    ("head", "parser"),
    [
        # iOS's marks (LRM before a body, or before the bracket) name WhatsApp...
        ("[2019-04-16 02:09:11] Team: \u200eMessages and calls are end-to-end encrypted.\n", "whatsapp"),
        ("[2019-04-16 02:09:11] Anna: hi\n\u200e[2019-04-16 02:10:00] Bo: \u200eimage omitted\n", "whatsapp"),
        ("[2019-04-16, 02:09] Team: \u200eMessages and calls are end-to-end encrypted.\n", "whatsapp"),
        # ...no comma and no seconds is no form signal-export writes...
        ("[2019-04-16 02:09] Anna: hi\n", "whatsapp"),
        # ...and without marks, signal-export's own two forms stay Signal's.
        ("[2019-04-16 02:09:11] Anna: hi\n[2019-04-16 02:10:00] Bo: hello\n", "signal"),
        ("[2019-04-16, 02:09] Anna: hi\n", "signal"),
    ],
)
def test_bracketed_iso_headers_are_told_from_signal_export_by_content(
    tmp_path: Path, head: str, parser: str
) -> None:
    path = tmp_path / "chat.txt"
    path.write_text(head, encoding="utf-8")
    chosen = choose(FileSource(path))
    assert chosen is not None
    assert parser == chosen.NAME


# --- Android ---------------------------------------------------------------------


def test_android_media_deleted_edited_and_system_lines() -> None:
    records = parse(DATA / "android_media_deleted_edited.txt", zone="America/New_York")
    msgs = messages(records)
    assert len(msgs) == 10
    assert [e.kind for e in events(records)] == [
        "system",
        "incomplete_copy",
        "deleted_message",
        "deleted_message",
        "disappearing_messages",
        "system",  # turned *off*
        "incomplete_copy",  # the view-once "null"
    ]
    omitted, photo, voice = msgs[0], msgs[1], msgs[2]
    assert (omitted.flags, omitted.attachments) == (
        ("media_omitted",),
        (ParsedAttachment(name="media"),),
    )
    assert photo.flags == ("media_referenced",)
    assert photo.attachments == (
        ParsedAttachment(name="IMG-20221118-WA0002.jpg", content_type="image/jpeg"),
    )
    assert photo.body == "IMG-20221118-WA0002.jpg (file attached)\nSite photo, north wall"
    assert voice.sender == "Carol"  # "~ Carol": not a saved contact
    assert voice.attachments[0].name == "PTT-20221118-WA0003.opus"
    assert [m.flags for m in msgs[3:5]] == [("deleted",), ("deleted",)]
    assert (msgs[5].body, msgs[5].edited) == ("Invoice total is 4,200", True)
    assert msgs[7].sender == "+91 98335 84282"
    # A view-once photo or video exports as "null": sent, but its content is not in the copy.
    assert (msgs[8].body, msgs[8].flags, msgs[8].attachments) == (
        "null", ("media_omitted",), (ParsedAttachment(name="view-once media"),)
    )


def test_android_date_like_continuation_lines_stay_in_the_body() -> None:
    msgs = messages(parse(DATA / "android_media_deleted_edited.txt"))
    agenda = msgs[6]
    assert agenda.body == (
        "Agenda:\n11/19/22, 9:00 we meet at the office\n1/2/2023 deadline - confirm"
    )


def test_android_times_are_utc_correct_and_file_order_is_kept() -> None:
    records = parse(DATA / "android_media_deleted_edited.txt", zone="America/New_York")
    times = utc_times(records)
    assert times[0] == utc(2022, 11, 19, 1, 41)  # 8:41 PM EST
    assert times[-1] == utc(2022, 11, 19, 1, 25)  # out of order in the file, kept there
    assert records[0].at == datetime(  # type: ignore[union-attr]
        2022, 11, 18, 20, 40, tzinfo=ZoneInfo("America/New_York")
    )


def test_android_dots_without_comma_and_german_placeholders() -> None:
    records = parse(DATA / "android_dots_de.txt", zone="Europe/Berlin")
    msgs = messages(records)
    assert utc_times(records)[0] == utc(2022, 3, 18, 13, 56)
    assert msgs[0].flags == ("media_omitted",)
    assert msgs[1].attachments == (
        ParsedAttachment(name="IMG-20220318-WA0001.jpg", content_type="image/jpeg"),
    )
    assert (msgs[2].body, msgs[2].edited) == ("Termin um 10 Uhr", True)
    assert msgs[3].flags == ("deleted",)
    assert [e.kind for e in events(records)] == ["incomplete_copy", "deleted_message"]
    assert msgs[0].time is not None and msgs[0].time.layout == "whatsapp-android %d.%m.%y %H:%M"


def test_android_year_first_with_a_m_p_m_dots() -> None:
    records = parse(DATA / "android_iso_am.txt", zone="Asia/Kolkata")
    assert utc_times(records) == [utc(2019, 8, 6, 1, 33), utc(2019, 8, 6, 6, 45)]
    reading = messages(records)[0].time
    assert reading is not None
    assert (reading.day_first, reading.decided_by) == (None, "format")


def test_android_2013_layout_with_month_names() -> None:
    records = parse(DATA / "android_2013_month_names.txt", zone="Europe/London")
    assert utc_times(records) == [utc(2013, 9, 20, 18, 7), utc(2013, 9, 21, 7, 30)]


def test_android_layout_without_year_is_refused() -> None:
    with pytest.raises(ParseError, match="without a year"):
        parse(DATA / "android_no_year.txt")


def test_local_times_in_dst_gap_and_overlap_use_fold_0() -> None:
    records = parse(DATA / "android_dst_new_york.txt", zone="America/New_York")
    assert utc_times(records) == [
        utc(2022, 3, 13, 7, 30),  # 02:30 never happened; read with EST, the offset before
        utc(2022, 11, 6, 5, 30),  # 01:30 happened twice; the first (EDT) is taken
    ]


# --- day/month order -----------------------------------------------------------


def test_undecidable_order_without_locale_is_held_for_review() -> None:
    with pytest.raises(HeldForReview, match="cannot tell day/month order"):
        parse(DATA / "android_undecidable_order.txt")


@pytest.mark.parametrize(
    ("day_first", "expected"), [(True, utc(2022, 4, 3, 10, 0)), (False, utc(2022, 3, 4, 10, 0))]
)
def test_undecidable_order_uses_the_custodian_locale(day_first: bool, expected: datetime) -> None:
    records = parse(DATA / "android_undecidable_order.txt", day_first=day_first)
    first = messages(records)[0]
    assert first.created_at == expected
    assert first.time is not None
    assert (first.time.day_first, first.time.decided_by) == (day_first, "locale")
    assert len(messages(records)) == 3


def test_contradictory_order_names_both_lines() -> None:
    with pytest.raises(ParseError, match=r"line 2: .*decided from line 1"):
        parse(DATA / "android_contradictory_order.txt")


# --- one odd header costs only its own message ---------------------------------------


ODD_START = datetime(2018, 1, 29, 23, 29)  # message 30 falls at 23:59


def parse_bytes(data: bytes, **kwargs: Any) -> list[Record]:
    return list(parse_text(io.BytesIO(data), hints(**kwargs)))


def test_one_header_whose_hour_disagrees_with_pm_is_undated_and_the_rest_keep_their_times() -> None:
    export = us_twelve_hour_export(50, ODD_START, odd={30: "1/29/18, 23:59 PM"})
    records = parse_bytes(export.encode(), zone="America/New_York")
    found = messages(records)
    assert len(found) == 50
    new_york = ZoneInfo("America/New_York")
    for n, message in enumerate(found):
        assert message.body == f"message {n} {WORDS[n % len(WORDS)]}"
        if n == 30:
            continue
        assert message.created_at == (ODD_START + timedelta(minutes=n)).replace(tzinfo=new_york)
        assert message.flags == ()
    odd = found[30]
    assert (odd.sender, odd.created_at, odd.flags) == ("Counterpart", None, ("undated",))
    assert odd.time is not None
    assert odd.time.raw == "1/29/18, 23:59 PM"
    assert odd.time.layout == "whatsapp-android %m/%d/%y, %I:%M %p (not read: hour above 12 on a 12-hour clock)"
    assert (odd.time.day_first, odd.time.decided_by, odd.time.zone) == (False, "file", "America/New_York")
    # The times either side are not borrowed: 23:58 before it, 00:00 the next day after it.
    assert found[29].created_at == datetime(2018, 1, 29, 23, 58, tzinfo=new_york)
    assert found[31].created_at == datetime(2018, 1, 30, 0, 0, tzinfo=new_york)
    assert [e.kind for e in events(records)] == ["system"]


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("2/30/18, 9:00 AM", "not a calendar date and time"),  # no 30 February
        ("1/29/18, 9:61 AM", "not a calendar date and time"),
        ("13/29/18, 9:00 AM", "not a calendar date and time"),  # both fields above 12: no date at all
        ("1/29/18, 13:00 AM", "hour above 12 on a 12-hour clock"),
    ],
)
def test_a_header_that_is_no_time_is_undated_with_its_text(header: str, why: str) -> None:
    export = us_twelve_hour_export(5, ODD_START, odd={2: header})
    found = messages(parse_bytes(export.encode(), zone="America/New_York"))
    assert [m.created_at is None for m in found] == [False, False, True, False, False]
    assert found[2].time is not None
    layout = f"whatsapp-android %m/%d/%y, %I:%M %p (not read: {why})"
    assert (found[2].time.raw, found[2].time.layout) == (header, layout)
    assert found[3].created_at == datetime(2018, 1, 29, 23, 32, tzinfo=ZoneInfo("America/New_York"))


def test_an_odd_header_on_a_system_line_is_an_undated_event() -> None:
    data = b"1/29/18, 23:59 PM - You created group \"Ops\"\n1/30/18, 9:00 AM - Jane Doe: first\n"
    records = parse_bytes(data, zone="UTC")
    assert [(e.kind, e.at, e.detail) for e in events(records)] == [("system", None, 'You created group "Ops"')]
    assert [m.created_at for m in messages(records)] == [datetime(2018, 1, 30, 9, 0, tzinfo=ZoneInfo("UTC"))]


# --- unreadable input ------------------------------------------------------------


def test_invalid_utf8_names_the_line() -> None:
    with pytest.raises(ParseError, match=r"line 3: not valid UTF-8"):
        parse(DATA / "android_invalid_utf8.txt")


def test_line_longer_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "giant.txt"
    path.write_bytes(b"18/03/2022, 14:56 - Alice: x\n" + b"y" * (MAX_LINE_BYTES + 1) + b"\n")
    with pytest.raises(ParseError, match="line 2: longer than"):
        parse(path)


def test_line_at_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    header = b"18/03/2022, 14:56 - Alice: "
    path.write_bytes(header + b"y" * (MAX_LINE_BYTES - len(header)) + b"\r\n")
    (message,) = messages(parse(path))
    assert len(message.body) == MAX_LINE_BYTES - len(header)


def test_file_without_any_header_is_not_whatsapp(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Shopping list\nmilk\n", encoding="utf-8")
    with pytest.raises(ParseError, match="no message header"):
        parse(path)


def test_text_before_the_first_header_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "preamble.txt"
    path.write_bytes(b"\xef\xbb\xbfExported by a backup tool\n\n18/03/2022, 14:56 - Alice: hi\n")
    records = parse(path)
    assert records[0] == ParsedEvent(
        kind="system",
        conversation="Project Team",
        at=None,
        detail="text before the first message header:\nExported by a backup tool",
    )
    assert messages(records)[0].body == "hi"


class _NoBulkReads(io.BytesIO):
    """A stream that fails the test if the parser asks for unbounded reads."""

    def read(self, size: int | None = -1, /) -> bytes:
        raise AssertionError("parser read the stream in bulk")

    def readline(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0 or size > MAX_LINE_BYTES + 2:
            raise AssertionError(f"unbounded readline({size})")
        return super().readline(size)


def test_parser_reads_line_by_line_with_a_bound() -> None:
    data = (CHAT_MINER / "test_ddmmyy_24hrs.txt").read_bytes()
    records = list(parse_text(_NoBulkReads(data), hints()))
    assert len(messages(records)) == 6


# --- detection and names ---------------------------------------------------------


@pytest.mark.parametrize("path", CHAT_MINER_FILES + OWN_FILES, ids=lambda p: p.name)
def test_every_whatsapp_file_is_recognised(path: Path) -> None:
    assert looks_like_whatsapp(path.read_bytes()[:4096])


@pytest.mark.parametrize(
    "head",
    [
        b"[2019-12-24, 12:23] Jane Doe: Hello John!\n",  # signal-export, older
        b"[2019-12-24 12:23:45] Jane Doe: Hello John!\n",  # signal-export chat.md
        b"From: alice@example.org\nSubject: 12/03/2022, 10:00 - notes\n",
        b"Conversation: Alice (+12025550147)\n",
        b"",
    ],
)
def test_other_content_is_not_whatsapp(head: bytes) -> None:
    assert not looks_like_whatsapp(head)


def test_detection_survives_a_head_cut_inside_a_character() -> None:
    head = "\ufeff\u200e[3/18/22, 14:56:01] Ahmed: مرحبا".encode()
    assert looks_like_whatsapp(head[:-1])


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("WhatsApp Chat with Alice.txt", "Alice"),
        ("WhatsApp Chat - Project Team.zip", "Project Team"),
        ("/inbox/WhatsApp Chat with +1 202 555 0147.txt", "+1 202 555 0147"),
        ("Chat WhatsApp s uživatelem Jana.txt", "Jana"),
        ("Чат WhatsApp с контактом Иван.txt", "Иван"),
        ("WhatsApp-chat met Sanne.txt", "Sanne"),
        ("_chat.txt", "_chat.txt"),
        ("", ""),
    ],
)
def test_conversation_name_from_the_export_file_name(source: str, name: str) -> None:
    assert conversation_name(source) == name
