"""Telegram Desktop HTML exports (its default format): pages built as tdesktop writes them.

The pages come from ``tests/parsers/tdesktop_html.py``, a transcription of tdesktop's
``export_output_html.cpp`` (see that module and ``tests/data/telegram/SOURCES.md``).
"""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.parsers import tdesktop_html as td
from tests.parsers.conftest import events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers import registry, telegram, telegram_html
from twentyday.parsers.base import BytesSource, Limits, ZipSource
from twentyday.records import ParseHints, Record

PHOTO = "photos/photo_1@05-08-2023_09-15-00.jpg"


def hints(zone: str = "America/New_York") -> ParseHints:
    return ParseHints(timezone=ZoneInfo(zone), zone_name=zone, source_name="export.zip")


def parse(files: dict[str, bytes], zone: str = "America/New_York", limits: Limits | None = None) -> list[Record]:
    source = BytesSource("export.zip", files, limits) if limits else BytesSource("export.zip", files)
    return list(telegram_html.parse(source, hints(zone)))


def group_chat() -> list[td.Message | td.Service]:
    return [
        td.Service(-1, "5 August 2023"),
        td.Service(301, "Dana created group &laquo;Budget&raquo; with members Eli"),
        td.Message(302, "05.08.2023 09:14:07 UTC-05:00", "Dana Reyes", "Draft is up.\nSee page 2 & <b>3</b>"),
        td.Message(303, "05.08.2023 09:15:00 UTC-05:00", "Dana Reyes", "", joined=True, photo=PHOTO),
        td.Message(304, "05.08.2023 09:16:30 UTC-05:00", "Dana Reyes", "<script>alert('x')</script>",
                   joined=True),
        td.Message(305, "05.08.2023 09:20:00 UTC-05:00", "Eli Park", "Which figure?", reply_to=302,
                   photo_skipped=td.NOT_INCLUDED),
        td.Message(306, "05.08.2023 09:21:00 UTC-05:00", "Eli Park", "FYI", forwarded_from="Treasury Desk",
                   forwarded_title="04.08.2023 17:00:00 UTC-05:00"),
        td.Service(307, "History cleared"),
    ]


def test_messages_joined_service_reply_forward_and_media() -> None:
    files = td.chat_pages("Budget", group_chat(), per_page=1000)
    files[PHOTO] = b"\xff\xd8 photo bytes"
    records = parse(files)
    got = messages(records)
    assert [m.extra["message_id"] for m in got] == ["302", "303", "304", "305", "306"]
    assert {m.conversation for m in got} == {"Budget"} and {m.platform for m in got} == {"telegram"}
    # Joined messages carry no from_name: the sender is the message before's.
    assert [m.sender for m in got] == ["Dana Reyes"] * 3 + ["Eli Park"] * 2
    first = got[0]
    assert first.body == "Draft is up.\nSee page 2 & <b>3</b>"
    # America/New_York's standard offset is what tdesktop writes; on 5 August the wall time is EDT.
    assert first.created_at is not None and first.created_at.astimezone(ZoneInfo("UTC")) == utc(2023, 8, 5, 13, 14, 7)
    assert first.time is not None and first.time.raw == "05.08.2023 09:14:07 UTC-05:00"
    assert first.time.decided_by == "custodian_zone" and first.time.zone == "America/New_York"
    assert "standard offset" in first.time.layout
    # A photo the export holds is kept; one left out is flagged and reported.
    assert got[1].attachments[0].data == b"\xff\xd8 photo bytes" and not got[1].flags
    assert got[2].body == "<script>alert('x')</script>"  # escaped by tdesktop: text, never markup
    assert got[3].attachments[0].data is None and "media_omitted" in got[3].flags
    assert got[3].reply_to == got[0].text_key == "html:Budget:302"
    assert "forwarded" in got[4].flags and got[4].extra["forwarded_from"] == "Treasury Desk"
    incomplete = events(records, "incomplete_copy")
    assert len(incomplete) == 1 and "Not included" in incomplete[0].detail
    assert incomplete[0].at == got[3].created_at
    created, cleared = events(records, "system"), events(records, "deleted_message")
    assert len(created) == 1 and "created group «Budget»" in created[0].detail and "5 August 2023" in created[0].detail
    assert len(cleared) == 1 and cleared[0].at is None


def test_offset_is_read_as_written_when_it_is_not_the_custodians_standard_offset() -> None:
    files = td.chat_pages("Budget", group_chat(), per_page=1000)
    got = messages(parse(files, zone="Europe/Berlin"))
    assert got[0].created_at is not None
    assert got[0].created_at.utcoffset() == timedelta(hours=-5)
    assert got[0].created_at.astimezone(ZoneInfo("UTC")) == utc(2023, 8, 5, 14, 14, 7)
    assert got[0].time is not None and got[0].time.decided_by == "format" and got[0].time.zone == "-05:00"


def test_older_export_without_offset_is_read_in_the_custodians_zone() -> None:
    items: list[td.Message | td.Service] = [td.Message(9, "26.02.2020 20:48:53", "Ana", "hello")]
    got = messages(parse(td.chat_pages("Ana", items, 1000), zone="Europe/Berlin"))
    assert got[0].created_at is not None
    assert got[0].created_at.astimezone(ZoneInfo("UTC")) == utc(2020, 2, 26, 19, 48, 53)
    assert got[0].time is not None and got[0].time.decided_by == "custodian_zone"
    assert got[0].time.zone == "Europe/Berlin" and "no offset" in got[0].time.layout


def test_unreadable_time_is_an_undated_record_not_a_failure() -> None:
    items: list[td.Message | td.Service] = [td.Message(1, "31.02.2023 25:00:00 UTC+01:00", "Ana", "odd"),
                                           td.Message(2, "01.03.2023 10:00:00 UTC+01:00", "Ana", "fine")]
    got = messages(parse(td.chat_pages("Ana", items, 1000)))
    assert got[0].created_at is None and "undated" in got[0].flags
    assert got[0].time is not None and got[0].time.raw == "31.02.2023 25:00:00 UTC+01:00"
    assert got[1].created_at is not None


def test_pages_are_read_in_numeric_order() -> None:
    items: list[td.Message | td.Service] = [
        td.Message(n, f"01.03.2023 10:{n:02d}:00 UTC+00:00", "Ana" if n % 3 else "Bo", f"m{n}") for n in range(1, 31)
    ]
    files = td.chat_pages("Ana", items, per_page=3)
    assert "messages10.html" in files and "messages2.html" in files
    shuffled = dict(sorted(files.items()))  # messages10.html before messages2.html, as a zip may list them
    got = messages(parse(shuffled))
    assert [m.body for m in got] == [f"m{n}" for n in range(1, 31)]


def test_full_export_chats_folders_and_zip_detection() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("DataExport_2023-08-06/export_results.html", b"<!DOCTYPE html><html></html>")
        for number, chat in ((1, "Budget"), (2, "Ana")):
            items = group_chat() if chat == "Budget" else [td.Message(7, "06.08.2023 08:00:00 UTC-05:00", "Ana", "hi")]
            for name, data in td.chat_pages(chat, items, 1000, base="../../").items():
                archive.writestr(f"DataExport_2023-08-06/chats/chat_{number:03d}/{name}", data)
    source = ZipSource(io.BytesIO(buffer.getvalue()), "export.zip")
    assert registry.choose(source) is telegram_html
    got = messages(telegram_html.parse(source, hints()))
    assert [m.conversation for m in got] == ["Budget"] * 5 + ["Ana"]
    assert "media_omitted" in got[1].flags  # the photo is named but this copy lacks it


def test_detection_does_not_take_other_files_or_the_json_export() -> None:
    page = td.chat_pages("Ana", [td.Message(1, "01.03.2023 10:00:00", "Ana", "x")], 1000)["messages.html"]
    assert telegram_html.detect(BytesSource("messages.html", page), page[:8192])
    other = b"<!DOCTYPE html><html><head><title>Signal</title></head><body>hi</body></html>"
    assert not telegram_html.detect(BytesSource("index.html", other), other)
    both = {"messages.html": page, "result.json": b'{"name": "Ana", "type": "personal_chat", "id": 1, "messages": []}'}
    assert not telegram_html.detect(BytesSource("export.zip", both), b"")
    assert not telegram.detect(BytesSource("messages.html", page), page[:8192])


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_truncated_page_is_a_clear_parse_error(cut: float) -> None:
    page = td.chat_pages("Budget", group_chat(), 1000)["messages.html"]
    with pytest.raises(ParseError, match="truncated or damaged") as raised:
        parse({"messages.html": page[: int(len(page) * cut)]})
    assert "Dana" not in str(raised.value) and "Draft" not in str(raised.value)


def test_garbled_page_is_a_clear_parse_error() -> None:
    page = td.chat_pages("Budget", group_chat(), 1000)["messages.html"]
    with pytest.raises(ParseError, match="not valid UTF-8"):
        parse({"messages.html": page[:2000] + b"\xff\xfe" + page[2000:]})
    with pytest.raises(ParseError, match="unterminated tag or comment"):
        parse({"messages.html": page[:2000] + b"<!-- " + b"x" * 5000}, limits=Limits(message_chars=4096,
                                                                                      telegram_chunk_bytes=1024))


def test_a_message_longer_than_the_limit_is_refused() -> None:
    items: list[td.Message | td.Service] = [td.Message(1, "01.03.2023 10:00:00", "Ana", "y" * 10_000)]
    with pytest.raises(ParseError, match="longer than 4096 characters"):
        parse(td.chat_pages("Ana", items, 1000), limits=Limits(message_chars=4096, telegram_chunk_bytes=512))
