"""imessage-exporter text and HTML output (iPhone/Mac iMessage and SMS): what a records officer would see."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import detect_file, events, messages, utc, zip_dir
from twentyday.errors import ParseError
from twentyday.parsers import imessage, registry
from twentyday.parsers.base import BytesSource, ExportSource, FileSource, Limits, ZipSource, read_head
from twentyday.records import ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data" / "imessage"
TXT = DATA / "txt-export"
HTML = DATA / "html-export"
OWN_NUMBER = "+12025550100"
ZONE = "America/New_York"


def hints(zone: str = ZONE) -> ParseHints:
    return ParseHints(timezone=ZoneInfo(zone), zone_name=zone, self_names=frozenset({OWN_NUMBER, "Jane Doe"}))


def folder(root: Path) -> BytesSource:
    """An export folder as the watched folder hands it over (members relative to the folder)."""
    return BytesSource(root.name, {p.relative_to(root).as_posix(): p.read_bytes()
                                   for p in sorted(root.rglob("*")) if p.is_file()})


def parse(source: ExportSource, zone: str = ZONE) -> list[Record]:
    return list(imessage.parse(source, hints(zone)))


def at_utc(message: ParsedMessage) -> datetime:
    assert message.created_at is not None
    return message.created_at.astimezone(UTC)


def by_body(records: list[Record], start: str) -> ParsedMessage:
    [found] = [m for m in messages(records) if m.body.startswith(start)]
    return found


def test_text_export_messages_times_senders_across_the_spring_dst_change() -> None:
    records = parse(folder(TXT))
    chat = messages(records, "+15555550123")
    assert len(chat) == 12  # every block is a record, the whole-message unsend too
    first, second = chat[0], chat[1]
    # Mar 09 11:50 PM is EST (-5); Mar 10 3:05 AM is after the 2 AM jump: EDT (-4).
    assert (at_utc(first), first.sender, first.body) == (utc(2024, 3, 10, 4, 50), "+15555550123", "Are you still up?")
    assert at_utc(second) == utc(2024, 3, 10, 7, 5, 10)
    assert second.sender == OWN_NUMBER  # "Me" is the custodian: the pipeline files it as sent
    assert second.recipients == ("+15555550123",) and first.recipients == (OWN_NUMBER,)
    assert second.time is not None
    assert (second.time.raw, second.time.layout, second.time.decided_by, second.time.zone) == (
        "Mar 10, 2024  3:05:10 AM", "imessage-exporter %b %d, %Y %l:%M:%S %p", "custodian_zone", ZONE)
    assert second.extra["read_receipt"] == "(Read by them after 1 minute, 2 seconds)"
    # Tapbacks are not messages: they are kept with the message they react to.
    assert second.extra["tapbacks"] == "Liked by +15555550123"
    assert not any(m.body.startswith("Liked by") for m in chat)


def test_text_export_attachments_present_and_missing() -> None:
    records = parse(folder(TXT))
    permit = by_body(records, "Yes. Sending the permit")
    [attachment] = permit.attachments
    assert (attachment.name, attachment.content_type) == ("permit.pdf", "application/pdf")
    assert attachment.data is not None and attachment.data.startswith(b"%PDF")
    gate = by_body(records, "Photo of the gate")
    assert [(a.name, a.omitted) for a in gate.attachments] == [("IMG_0042.heic", True)]
    assert "media_omitted" in gate.flags
    on_mac = [m for m in messages(records) if m.attachments and m.attachments[0].name == "contract.pdf"]
    assert on_mac[0].attachments[0].omitted and on_mac[0].sender == OWN_NUMBER
    missing = events(records, "incomplete_copy")
    assert [(e.at.astimezone(UTC) if e.at else None) for e in missing] == [utc(2024, 3, 10, 7, 6),
                                                                           utc(2024, 3, 10, 13, 25)]
    assert "IMG_0042.heic" in missing[0].detail and "left on the Mac" in missing[1].detail


def test_text_export_edited_unsent_deleted_reply() -> None:
    records = parse(folder(TXT))
    edited = by_body(records, "Mar 10, 2024  9:15:30 AM Meet at 10")
    assert edited.edited and "edited" in edited.flags and at_utc(edited) == utc(2024, 3, 10, 13, 15, 30)
    # The reply shown indented under it is the same message the tool writes at its own place.
    assert edited.extra["replies_shown"] == "1" and "On my way" not in edited.body
    reply = by_body(records, "On my way")
    assert "reply" in reply.flags and at_utc(reply) == utc(2024, 3, 10, 13, 30)
    unsent_part = by_body(records, "They unsent this message part")
    assert {"unsent", "deleted"} <= set(unsent_part.flags)
    deleted = by_body(records, "Call me when you land.")
    assert "deleted" in deleted.flags and deleted.sender == OWN_NUMBER
    whole = by_body(records, "+15555550123 unsent a message!")
    assert at_utc(whole) == utc(2024, 3, 11, 14, 0) and whole.sender == "+15555550123"
    deletions = [e.at.astimezone(UTC) for e in events(records, "deleted_message") if e.at]
    assert deletions == [utc(2024, 3, 10, 13, 20), utc(2024, 3, 10, 13, 21), utc(2024, 3, 11, 14, 0)]
    # A body line after a blank line that starts with a time is still body text.
    notes = by_body(records, "Notes for Tuesday:")
    assert notes.body.endswith("Mar 12, 2024  1:00:00 PM works for the inspector")


def test_unreadable_time_and_the_apple_epoch_are_undated_with_their_raw_text() -> None:
    records = parse(folder(TXT))
    no_date = by_body(records, "This one has no real date")
    assert no_date.created_at is None and "undated" in no_date.flags
    assert no_date.time is not None and no_date.time.raw == "Feb 30, 2024  1:00:00 PM"
    assert "not a calendar date" in no_date.time.layout
    epoch = by_body(records, "Legacy row without a date")
    assert epoch.created_at is None and "undated" in epoch.flags
    assert epoch.time is not None and "Apple epoch" in epoch.time.layout


def test_group_chat_announcements_are_events_and_messages_records() -> None:
    records = parse(folder(TXT))
    group = "Project Team - 7"
    chat = messages(records, group)
    assert [(m.sender, at_utc(m), m.body) for m in chat] == [
        (OWN_NUMBER, utc(2024, 3, 1, 13, 2, 15), "Welcome, both."),
        ("Bob Example", utc(2024, 3, 1, 13, 3), "Thanks!"),
    ]
    assert chat[1].attachments[0].data is not None and chat[1].extra["tapbacks"] == "Loved by Alice Example"
    system = [e for e in events(records, "system") if e.conversation == group]
    assert [(e.at.astimezone(UTC) if e.at else None, e.detail) for e in system] == [
        (utc(2024, 3, 1, 13, 0), "You renamed the conversation to Project Team"),
        (utc(2024, 3, 1, 13, 1), "You added Bob Example to the conversation."),
        (utc(2024, 3, 1, 13, 4), "Alice Example left the conversation."),
    ]


def test_html_export_messages_keys_service_and_the_autumn_dst_change() -> None:
    records = parse(folder(HTML))
    chat = messages(records, "Alice Example")
    assert [m.message_key for m in chat] == ["A1", "A2", "A3", "A4", "A5", "A6", "", "A7", "A8"]
    # 1:30 AM on Nov 3 occurs twice in New York: read with the earlier offset (EDT), as zoneinfo does.
    assert [at_utc(m) for m in chat[:3]] == [utc(2024, 11, 3, 3, 58), utc(2024, 11, 3, 5, 30),
                                             utc(2024, 11, 3, 8, 0)]
    photo = chat[2]
    assert (photo.sender, photo.extra["service"], photo.extra["tapbacks"]) == (OWN_NUMBER, "iMessage",
                                                                               "Loved by Alice Example")
    assert photo.attachments[0].name == "IMG_0001.jpeg" and photo.attachments[0].data is not None
    assert chat[3].extra["service"] == "SMS" and chat[3].edited
    assert chat[3].body == "Lunch at noon\nEdited 1 minute later Lunch at 1"


def test_html_markup_in_a_message_is_text_and_nothing_runs() -> None:
    chat = messages(parse(folder(HTML)), "Alice Example")
    assert chat[0].body == "Draft is <script>alert(1)</script> safe?"
    assert chat[1].body == "steal()Agenda"  # a raw <script> in an app balloon: its text, kept


def test_html_missing_attachments_unsent_and_replies() -> None:
    records = parse(folder(HTML))
    chat = messages(records, "Alice Example")
    assert [(a.name, a.omitted) for a in chat[4].attachments] == [("voice.caf", True), ("clip.mov", True)]
    assert len([e for e in events(records, "incomplete_copy") if e.at == chat[4].created_at]) == 2
    assert "unsent" in chat[5].flags and chat[6].sender == OWN_NUMBER and "unsent" in chat[6].flags
    assert len(events(records, "deleted_message")) == 2
    [renamed] = events(records, "system")
    assert renamed.detail == "Alice Example named the conversation Trip & Plans"
    # The reply is one record (its own place), not also a second one from the thread view.
    assert [m.body for m in chat if m.body == "Yes, 1 works"] == ["Yes, 1 works"]
    assert "reply" in chat[8].flags


def test_a_garbled_text_file_is_a_clear_parse_error() -> None:
    source = BytesSource("+15555550123.txt", b"\x00\x01garbage that is no export\nmore\n")
    with pytest.raises(ParseError, match=r"line 1: text before the first message time"):
        parse(source)
    html = BytesSource("chat.html", b"<html><body><p>nothing here</p></body></html>")
    with pytest.raises(ParseError, match="no imessage-exporter message"):
        parse(html)


def test_an_unterminated_tag_is_refused_within_one_message_of_memory() -> None:
    """A page that opens a tag and never closes it: html.parser would buffer (and re-scan) all of it."""
    head = (HTML / "Alice Example.html").read_bytes()[:400]
    page = head + b'<div class="message" title="' + b"x" * 300_000
    source = BytesSource("chat.html", page, Limits(message_chars=100_000))
    with pytest.raises(ParseError, match="unterminated tag") as refused:
        list(imessage.parse(source, hints()))
    assert "xxxx" not in str(refused.value)


def test_detection_of_files_folders_and_zips(tmp_path: Path) -> None:
    assert detect_file(imessage, TXT / "+15555550123.txt")
    assert detect_file(imessage, HTML / "Alice Example.html")
    zipped = ZipSource(zip_dir(TXT, tmp_path / "export.zip", prefix="imessage_export/"))
    try:
        assert registry.choose(zipped) is imessage
        assert len(messages(parse(zipped))) == 14
    finally:
        zipped.close()
    single = FileSource(TXT / "Project Team - 7.txt")
    assert registry.choose(single) is imessage


@pytest.mark.parametrize("area", ["whatsapp", "signal", "telegram", "sms", "slack", "email", "google_chat"])
def test_other_formats_are_not_taken(area: str) -> None:
    for path in sorted((Path(__file__).resolve().parents[1] / "data" / area).rglob("*")):
        if path.is_file() and path.suffix.lower() in (".txt", ".html", ".json", ".xml", ".eml", ".md"):
            source = FileSource(path)
            assert not imessage.detect(source, read_head(source, source.name)), path
