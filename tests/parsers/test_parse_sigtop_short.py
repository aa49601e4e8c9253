"""sigtop ``export-messages -f text-short``: one line a message, local times without a zone."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers import registry, signal
from twentyday.parsers.base import BytesSource, Limits
from twentyday.records import ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data"
SHORT = DATA / "signal" / "sigtop" / "text-short" / "Alice Example.txt"
ZONE = "America/New_York"
OWN_PHONE = "+1 202 555 0100"


def parse(raw: bytes, name: str = "Alice Example.txt", limits: Limits | None = None) -> list[Record]:
    hints = ParseHints(ZoneInfo(ZONE), ZONE, self_names=frozenset({OWN_PHONE, "jane doe"}))
    source = BytesSource(name, {name: raw}, limits) if limits else BytesSource(name, {name: raw})
    return list(signal.parse(source, hints))


def by_body(records: list[Record]) -> dict[str, ParsedMessage]:
    return {m.body.split("\n")[0]: m for m in messages(records)}


def test_every_line_is_a_record_or_an_event_named_after_the_file() -> None:
    records = parse(SHORT.read_bytes())
    assert len(messages(records)) == 9
    assert [e.detail for e in events(records) if e.kind in ("system", "disappearing_messages")] == [
        "keychange from Alice Example", "timer-notification from Alice Example", "group-v2-change"]
    assert events(records, "disappearing_messages")[0].at == utc(2024, 3, 10, 13, 2)
    assert {m.conversation for m in messages(records)} == {"Alice Example"}


def test_local_times_are_read_in_the_custodians_zone_across_the_dst_change() -> None:
    shown = by_body(parse(SHORT.read_bytes()))
    before, after = shown["Last one before bed:"], shown["Got them, thanks"]
    assert before.created_at == utc(2024, 3, 10, 6, 30)  # 01:30 EST (-05:00)
    assert after.created_at == utc(2024, 3, 10, 7, 15)  # 03:15 EDT (-04:00), after the 02:00 jump
    assert before.time is not None and after.time is not None
    assert (after.time.raw, after.time.layout, after.time.decided_by, after.time.zone) == (
        "2024-03-10 03:15", "sigtop text-short %Y-%m-%d %H:%M", "custodian_zone", ZONE)
    assert after.created_at is not None and after.created_at.utcoffset() is not None
    assert after.created_at.utcoffset().total_seconds() == -4 * 3600  # type: ignore[union-attr]


def test_outgoing_messages_are_the_custodians_and_incoming_are_the_contacts() -> None:
    shown = by_body(parse(SHORT.read_bytes()))
    mine = shown["Yes. I'll bring the permits."]
    assert mine.sender == OWN_PHONE and mine.extra["shown_sender"] == "You"
    assert shown["Are we still on for the site visit Monday?"].sender == "Alice Example"
    # A body holding ": " and brackets is not mistaken for a sender or for details.
    assert shown["Meeting at 10: agenda [draft] below"].sender == OWN_PHONE


def test_listed_attachments_are_incomplete_copies() -> None:
    records = parse(SHORT.read_bytes())
    shown = by_body(records)
    plans = shown["Floor plans attached"]
    assert [a.name for a in plans.attachments] == ["attachment 1 of 2", "attachment 2 of 2"]
    assert all(a.omitted for a in plans.attachments) and "media_omitted" in plans.flags
    bare = next(m for m in messages(records) if m.created_at == utc(2024, 3, 10, 13, 0))
    assert bare.body == "" and len(bare.attachments) == 1
    missing = [e for e in events(records, "incomplete_copy")]
    assert len(missing) == 4  # 2 + 1 (the edited reply) + 1
    assert missing[0].at == utc(2024, 3, 10, 4, 59) and "sigtop text-short names no file" in missing[0].detail


def test_reply_edit_multiline_empty_and_undated_messages() -> None:
    shown = by_body(parse(SHORT.read_bytes()))
    reply = shown["Got them, thanks"]
    assert reply.edited and reply.extra["quote_author"] == "Alice Example"
    assert reply.extra["quote_time"] == "2024-03-09 23:59" and len(reply.attachments) == 1
    assert shown["Last one before bed:"].body == (
        "Last one before bed:\nline two of the note\n\n  an indented line after a blank one")
    assert shown[""].created_at == utc(2024, 3, 10, 13, 40)  # a message with no text and no details
    undated = shown["Sent from an old phone"]
    assert undated.created_at is None and "undated" in undated.flags and undated.edited
    assert undated.time is not None and undated.time.raw == "unknown"


def test_a_bracketed_word_message_line_with_more_lines_is_a_message() -> None:
    records = parse(b"2024-01-05 09:00 Bob: [call-history message]\nreally, I typed this\n")
    assert [m.body for m in messages(records)] == ["[call-history message]\nreally, I typed this"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"2024-01-05 09:00 Bob: hello\n", "signal"),
        (b"2024-01-05 09:00 - Bob: hello\n", "whatsapp"),  # WhatsApp's year-first Android layout
        (b"[2024-01-05 09:00:00] Bob: hello\n", "signal"),  # signal-export chat.md
        (b"Conversation: Bob (+1)\n\nFrom: Bob (+1)\nType: incoming\nSent: Fri, 5 Jan 2024 09:00:00 +0100\n\nhi\n",
         "signal"),
        (b"2024-01-05 09:00:00 Bob: hello\n", None),  # seconds: not what sigtop writes
        (b"notes from 2024-01-05 09:00 Bob: hello\n", None),
    ],
)
def test_detection_tells_text_short_from_other_formats(raw: bytes, expected: str | None) -> None:
    source = registry.open_source(None, raw, "chat.txt")
    try:
        parser = registry.choose(source)
        assert (parser.NAME if parser else None) == expected
    finally:
        registry.close_source(source)


def test_text_short_is_not_read_as_sigtop_text_or_chat_md() -> None:
    head = SHORT.read_bytes()
    assert signal._sniff(head) == "sigtop-short"
    assert signal._sniff(b"[2024-01-05 09:00:00] Bob: hello\n") == "markdown"


def test_garbled_files_are_clear_parse_errors_naming_the_line() -> None:
    with pytest.raises(ParseError, match=r"line 2: not valid UTF-8") as caught:
        parse(b"2024-01-05 09:00 Bob: hello\n\xff\xfe garbage\n")
    assert "garbage" not in str(caught.value)
    long_body = b"2024-01-05 09:00 Bob: hi\n" + (b"y" * 50 + b"\n") * 20
    with pytest.raises(ParseError, match="message at line 1 is longer than 500"):
        parse(long_body, limits=Limits(signal_line_bytes=1024, message_chars=500))


def test_an_impossible_date_is_kept_undated_not_a_whole_file_failure() -> None:
    records = parse(b"2024-02-30 09:00 Bob: hello\n2024-03-01 09:00 Bob: later\n")
    first, second = messages(records)
    assert first.created_at is None and "undated" in first.flags and first.time is not None
    assert first.time.raw == "2024-02-30 09:00"
    assert second.created_at == utc(2024, 3, 1, 14, 0)


def test_damaged_copies_raise_only_parse_errors() -> None:
    rng = random.Random(15)
    original = SHORT.read_bytes()
    for _ in range(200):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(damaged))
            if rng.random() < 0.5:
                damaged[at] = rng.randrange(256)
            else:
                damaged[at:at] = rng.choice([b"\n", b"[", b"]", b": ", b"unknown ", b"2024-13-40 25:61 X: "])
        source = BytesSource("s.txt", {"s.txt": bytes(damaged)})
        signal.detect(source, bytes(damaged[:8192]))
        with contextlib.suppress(ParseError):
            list(signal.parse(source, ParseHints(ZoneInfo(ZONE), ZONE)))
