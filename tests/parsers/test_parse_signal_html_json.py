"""signal-export's index.html and sigtop's JSON: the records a records officer would see."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import detect_file, events, messages, utc, zip_dir
from twentyday.errors import ParseError
from twentyday.parsers import signal, slack, telegram, whatsapp
from twentyday.parsers.base import BytesSource, ExportSource, FileSource, Limits, ZipSource, read_head
from twentyday.records import ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data" / "signal"
HTML_NEW = DATA / "signal-export-html" / "3.9"
HTML_CLASSIC = DATA / "signal-export-html" / "classic"
SIGTOP_JSON = DATA / "sigtop" / "Alice Example.json"
CHAT_MD = DATA / "signal-export" / "AliceExample" / "chat.md"
BERLIN = ZoneInfo("Europe/Berlin")


def parse(source: ExportSource) -> list[Record]:
    return list(signal.parse(source, ParseHints(timezone=BERLIN, zone_name="Europe/Berlin")))


def html_zip(root: Path, tmp_path: Path) -> ZipSource:
    return ZipSource(zip_dir(root, tmp_path / "signal-export.zip"))


def minute(message: ParsedMessage) -> str:
    assert message.created_at is not None
    return message.created_at.strftime("%Y-%m-%d %H:%M %Z")


# --- signal-export index.html, 3.9 layout ------------------------------------------------------------


def test_index_html_3_9_messages_times_and_senders(tmp_path: Path) -> None:
    found = messages(parse(html_zip(HTML_NEW, tmp_path)))
    assert [m.conversation for m in found] == ["Alice Example"] * 8
    assert [m.sender for m in found] == ["Alice Example", "Alice Example", "Me", "Alice Example", "Alice Example",
                                         "Alice Example", "Me", "Me"]
    first, _grouped, photo, reply, deleted, script, link, report = found
    # Wall times of the exporting machine, read in the custodian's zone, across the DST change.
    assert minute(first) == "2023-03-25 10:00 CET"
    assert first.created_at == utc(2023, 3, 25, 9, 0)
    assert minute(photo) == "2023-03-26 10:00 CEST"
    assert photo.created_at == utc(2023, 3, 26, 8, 0)
    assert first.time is not None and first.time.decided_by == "custodian_zone"
    assert first.time.raw == "2023-03-25T10:00:00"
    assert first.body == "Hello Bob, fish & chips at 5 < 6?"  # entities decoded
    assert reply.extra["quote"] == "Here is the photo" and reply.body == "Nice photo"
    assert photo.extra["reactions"] == "Alice Example: 👍"
    assert link.body == "See https://example.org/a?b=1&c=2 and this second line"
    assert [m.created_at for m in (deleted, script, link, report)] == [
        utc(2023, 3, 26, 8, 6), utc(2023, 3, 26, 9, 30), utc(2023, 3, 27, 7, 15), utc(2023, 3, 27, 7, 16)]


def test_a_grouped_bubble_has_no_time_and_is_undated_not_guessed(tmp_path: Path) -> None:
    grouped = messages(parse(html_zip(HTML_NEW, tmp_path)))[1]
    assert grouped.body == "Second line right after"
    assert grouped.sender == "Alice Example"  # signal-export groups only one sender's bubbles
    assert grouped.created_at is None and "undated" in grouped.flags
    assert grouped.time is not None and grouped.time.raw == "2023-03-25"
    assert "2023-03-25T10:00:00" in grouped.extra["time_note"]


def test_index_html_3_9_files_deletions_and_calls(tmp_path: Path) -> None:
    records = parse(html_zip(HTML_NEW, tmp_path))
    found = messages(records)
    photo, deleted, report = found[2], found[4], found[7]
    assert [(a.name, a.data is not None) for a in photo.attachments] == [("photo.jpg", True),
                                                                          ("Audio not exported", False)]
    assert photo.attachments[0].data == (HTML_NEW / "Alice Example" / "media" / "photo.jpg").read_bytes()
    assert "media_omitted" in photo.flags
    assert [(a.name, a.content_type) for a in report.attachments] == [("report.pdf", "application/pdf")]
    assert deleted.body == "(This message was deleted)" and "deleted" in deleted.flags
    assert [e.at for e in events(records, "deleted_message")] == [utc(2023, 3, 26, 8, 6)]
    missing = events(records, "incomplete_copy")
    assert [e.at for e in missing] == [utc(2023, 3, 26, 8, 0)]
    assert "Audio not exported" in missing[0].detail
    calls = events(records, "system")
    assert [(e.at, e.detail) for e in calls] == [(utc(2023, 3, 26, 9, 0), "call (missed): Missed voice call")]


def test_a_script_in_a_body_is_read_as_text(tmp_path: Path) -> None:
    script = messages(parse(html_zip(HTML_NEW, tmp_path)))[5]
    assert script.body == '<script> alert("boo") </script>\nplain'
    # The page's own <script src=…> in <head> is no message.
    assert len(messages(parse(html_zip(HTML_NEW, tmp_path)))) == 8


# --- signal-export index.html, classic layout ----------------------------------------------------------


def test_index_html_classic_layout(tmp_path: Path) -> None:
    records = parse(html_zip(HTML_CLASSIC, tmp_path))
    found = messages(records)
    assert len(found) == 9
    assert [minute(m) for m in found[:3]] == ["2023-03-25 10:00 CET", "2023-03-25 10:02 CET", "2023-03-26 10:00 CEST"]
    assert found[0].time is not None and found[0].time.raw == "2023-03-25 10:00:00"
    assert [m.sender for m in found[:3]] == ["Alice Example", "Alice Example", "Me"]
    assert found[2].extra["reactions"] == "Alice Example: 👍"
    # The classic page links a file even when the copy lacks it: the copy is checked.
    assert [(a.name, a.data is not None) for a in found[2].attachments] == [("photo.jpg", True),
                                                                             ("voice note.m4a", False)]
    assert len(events(records, "incomplete_copy")) == 1
    assert found[6].body == '<script> alert("boo") </script>\nplain'


def test_a_lone_index_html_is_detected_and_named_after_its_folder() -> None:
    path = HTML_NEW / "Alice Example" / "index.html"
    assert detect_file(signal, path)
    source = BytesSource("chat.zip", {"Alice Example/index.html": path.read_bytes()})
    found = messages(parse(source))
    assert len(found) == 8 and found[0].conversation == "Alice Example"


def test_data_json_or_chat_md_is_still_preferred_over_index_html() -> None:
    page = (HTML_NEW / "Alice Example" / "index.html").read_bytes()
    chat = "".join(f"[2023-03-25 1{i}:00:00] Alice Example: text {i}\n\n" for i in range(5)).encode()
    source = BytesSource("x.zip", {"Alice Example/chat.md": chat, "Alice Example/index.html": page})
    md_count = len(messages(parse(BytesSource("x.zip", {"Alice Example/chat.md": chat}))))
    found = messages(parse(source))
    # chat.md holds fewer messages than the page: the page, with more, is read.
    assert md_count == 5 and len(found) == 8
    short_page = page.split(b'<div class="page" id="pg1">')[0] + b"</main></body></html>\n"  # 4 bubbles
    found = messages(parse(BytesSource("x.zip", {"Alice Example/chat.md": chat,
                                                 "Alice Example/index.html": short_page})))
    assert len(found) == md_count and found[0].time is not None and "signal-export %" in found[0].time.layout


def test_another_tools_index_html_is_not_taken() -> None:
    page = b"<!DOCTYPE html><html><body><p>Just a page</p></body></html>"
    assert not signal.detect(BytesSource("index.html", page), page)
    source = BytesSource("x.zip", {"site/index.html": page, "Alice/chat.md": CHAT_MD.read_bytes()})
    assert all(m.conversation == "Alice" for m in messages(parse(source)))


def test_other_formats_do_not_take_index_html() -> None:
    path = HTML_NEW / "Alice Example" / "index.html"
    for other in (whatsapp, telegram, slack):
        assert not detect_file(other, path)


def test_garbled_or_hostile_html_is_a_clear_parse_error() -> None:
    head = (HTML_NEW / "Alice Example" / "index.html").read_bytes().split(b"<main>")[0] + b"<main>"
    with pytest.raises(ParseError, match="no signal-export message bubbles"):
        parse(BytesSource("index.html", head + b"\x00garbage</main>"))
    with pytest.raises(ParseError, match="not UTF-8"):
        parse(BytesSource("index.html", head + b"<div class='msg'>\xff\xfe</div>"))
    unclosed = head + b"<div class='msg'><div class='body'><script>" + b"x" * 5000
    with pytest.raises(ParseError, match="unclosed tag or script"):
        list(signal.parse(BytesSource("index.html", unclosed, Limits(signal_line_bytes=4096)),
                          ParseHints(timezone=BERLIN, zone_name="Europe/Berlin")))
    deep = head + b"<div class='msg'>" + b"<b>" * 1000
    with pytest.raises(ParseError, match="nested deeper"):
        parse(BytesSource("index.html", deep))


# --- sigtop export-messages -f json ------------------------------------------------------------------


def test_sigtop_json_messages() -> None:
    assert detect_file(signal, SIGTOP_JSON)
    records = parse(FileSource(SIGTOP_JSON))
    found = messages(records)
    assert [m.conversation for m in found] == ["Alice Example"] * 6
    assert [m.sender for m in found] == ["+4915112345678", "You", *["+4915112345678"] * 4]
    assert [m.created_at for m in found] == [utc(2023, 3, 25, 9, 0), utc(2023, 3, 26, 8, 0), utc(2023, 3, 26, 8, 5),
                                             utc(2023, 3, 26, 8, 6), utc(2023, 3, 26, 8, 10), utc(2023, 3, 26, 8, 11)]
    first = found[0]
    assert first.time is not None
    assert (first.time.raw, first.time.decided_by, first.time.zone) == ("1679734800000", "format", "UTC")
    assert first.body == "Hello Bob & co <b>"
    assert [m.extra["type"] for m in found[:2]] == ["incoming", "outgoing"]


def test_sigtop_json_attachments_quotes_reactions_edits_deletions() -> None:
    records = parse(FileSource(SIGTOP_JSON))
    _, photo, reply, edited, deleted, view_once = messages(records)
    assert [(a.name, a.content_type, a.data) for a in photo.attachments] == [("photo.jpg", "image/jpeg", None)]
    assert "media_omitted" in photo.flags and photo.extra["reactions"].startswith("👍 from ")
    assert reply.extra["quote"] == "First paragraph"
    assert edited.edited and edited.body == "typo fixed" and "tpyo" in edited.extra["edit_history"]
    assert edited.created_at == utc(2023, 3, 26, 8, 6)  # the original send, not the edit
    assert deleted.body == "(This message was deleted)" and "deleted" in deleted.flags
    assert "view_once" in view_once.flags
    assert [e.at for e in events(records, "deleted_message")] == [utc(2023, 3, 26, 8, 10)]
    assert [e.at for e in events(records, "incomplete_copy")] == [utc(2023, 3, 26, 8, 0), utc(2023, 3, 26, 8, 11)]


def test_sigtop_json_non_messages_are_events() -> None:
    records = parse(FileSource(SIGTOP_JSON))
    assert [(e.at, e.detail.split(" ")[0]) for e in events(records, "disappearing_messages")] == [
        (utc(2023, 3, 26, 8, 11, 40), "timer-notification")]
    assert [(e.at, e.detail) for e in events(records, "system")] == [(None, "keychange")]


def test_sigtop_json_a_message_without_a_time_is_undated() -> None:
    data = b'[\n{"type":"incoming","conversationId":"c","body":"hi","received_at":12}\n]\n'
    (message,) = messages(parse(BytesSource("Bob.json", data)))
    assert message.created_at is None and "undated" in message.flags and message.conversation == "Bob"


def test_sigtop_json_garbled_is_a_clear_parse_error() -> None:
    data = SIGTOP_JSON.read_bytes().replace(b'"body":"Nice photo"}', b'"body":"Nice photo"')
    with pytest.raises(ParseError, match=r"Alice Example.json: line 4: not a JSON object"):
        parse(BytesSource("Alice Example.json", data))


def test_sigtop_json_is_not_taken_by_others_nor_others_by_it() -> None:
    for other in (whatsapp, telegram, slack):
        assert not detect_file(other, SIGTOP_JSON)
    slack_like = b'[\n    {\n        "type": "message",\n        "user": "U1",\n        "ts": "1.0"\n    }\n]\n'
    assert not signal.detect(BytesSource("2023-01-01.json", slack_like), slack_like)
    assert read_head(FileSource(SIGTOP_JSON), SIGTOP_JSON.name).startswith(b"[\n{")
