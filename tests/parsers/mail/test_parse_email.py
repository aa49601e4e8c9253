"""E-mail captures: the record is the original message, never the forward that carried it.

Forwards are built here the way mail clients send them (real MIME bytes), around the
inline-forward fixtures of ``tests/data/email_forwarded`` (see its SOURCES.md) and
original messages written for these tests; every real-world message in
``tests/data/email`` (see its SOURCES.md) is parsed too.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from tests.parsers.conftest import events, messages
from twentyday.cli import cli
from twentyday.errors import ParseError
from twentyday.parsers.base import DEFAULT_LIMITS, BytesSource, Limits
from twentyday.parsers.mail import email
from twentyday.parsers.mail import message as mailfile
from twentyday.pipeline.process import draft
from twentyday.records import ParsedAttachment, ParsedMessage, ParseHints, Record
from twentyday.store.archive import Archive

from .test_parse_forwarded import CC, EXPECTED, SUBJECT, Expect

DATA = Path(__file__).resolve().parents[2] / "data"
FORWARDED = DATA / "email_forwarded"
MIME = DATA / "email"
ZONE = ZoneInfo("America/New_York")
PERSONAL = "Jane Doe <jane.doe@gmail.com>"
CAPTURE = "records+jdoe@capture.agency.example"
FORWARDED_AT = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
ORIGINAL_AT = datetime(2021, 10, 27, 9, 31, tzinfo=timezone(timedelta(hours=-4)))
PDF = b"%PDF-1.4\n% minutes of the pelican meeting\n"

#: A Gmail inline-forward header block of John's message; the body follows.
GMAIL_HEADERS = (
    "---------- Forwarded message ---------\nFrom: John Doe <john.doe@acme.com>\n"
    f"Date: Wed, Oct 27, 2021 at 9:31 AM\nSubject: {SUBJECT}\nTo: <bessie.berry@acme.com>\n\n"
)



def hints(day_first: bool | None = None) -> ParseHints:
    return ParseHints(timezone=ZONE, zone_name="America/New_York", day_first=day_first)


def parse(raw: bytes, day_first: bool | None = None, limits: Limits = DEFAULT_LIMITS) -> list[Record]:
    return list(email.parse(BytesSource("capture.eml", raw, limits), hints(day_first)))






def only(records: list[Record]) -> ParsedMessage:
    (record,) = messages(records)
    return record


def original(
    *,
    cc: str = "Walter Sheltan <walter.sheltan@acme.com>, Nicholas <nicholas@globex.corp>",
    date: str | None = format_datetime(ORIGINAL_AT),
    body: str = "Aenean quis diam urna.",
    attach: bool = True,
    subject: str = SUBJECT,
    message_id: str = "<original-1@acme.com>",
) -> bytes:
    """John Doe's message, as his client sent it."""
    message = EmailMessage()
    message["From"] = "John Doe <john.doe@acme.com>"
    message["To"] = "bessie.berry@acme.com"
    if cc:
        message["Cc"] = cc
    if date is not None:
        message["Date"] = date
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(body)
    if attach:
        message.add_attachment(PDF, maintype="application", subtype="pdf", filename="minutes.pdf")
    return bytes(message)


def forward_inline(
    body: str, subject: str = f"Fwd: {SUBJECT}", *, sender: str = PERSONAL, files: tuple[tuple[str, bytes], ...] = ()
) -> bytes:
    """A forward with the original pasted into the body, as every client's "Forward" button makes it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = CAPTURE
    message["Date"] = format_datetime(FORWARDED_AT)
    message["Subject"] = subject
    message["Message-ID"] = "<forward-1@gmail.com>"
    message.set_content(body)
    for name, data in files:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(message)


def forward_attached(
    enclosed: bytes,
    *,
    kind: str = "message/rfc822",
    subject: str = f"Fwd: {SUBJECT}",
    sender: str = PERSONAL,
    note: str = "FYI, for the record.",
    encoding: str = "",
) -> bytes:
    """A forward "as attachment": the original travels whole, as a message/* part."""
    if encoding == "base64":
        enclosed = base64.encodebytes(enclosed)
    cte = f"Content-Transfer-Encoding: {encoding}\r\n" if encoding else ""
    mark = f"fwd{len(enclosed)}"  # one boundary per level, as clients make them
    return (
        (
            f"From: {sender}\r\nTo: {CAPTURE}\r\nDate: {format_datetime(FORWARDED_AT)}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{mark}@gmail.com>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{mark}"\r\n\r\n'
            f"--{mark}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{note}\r\n"
            f'--{mark}\r\nContent-Type: {kind}\r\nContent-Disposition: attachment; filename="original.eml"\r\n{cte}\r\n'
        ).encode()
        + enclosed
        + f"\r\n--{mark}--\r\n".encode()
    )


def digest(*enclosed: bytes) -> bytes:
    """A forward of several messages as a multipart/digest (parts default to message/rfc822)."""
    parts = b"".join(b"--digest\r\n\r\n" + one + b"\r\n" for one in enclosed)
    return (
        (
            f"From: {PERSONAL}\r\nTo: {CAPTURE}\r\nDate: {format_datetime(FORWARDED_AT)}\r\n"
            f"Subject: Fwd: messages for the record\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/digest; boundary="digest"\r\n\r\n'
        ).encode()
        + parts
        + b"--digest--\r\n"
    )


def assert_is_johns_original(record: ParsedMessage) -> None:
    assert record.sender == "john.doe@acme.com"
    assert record.recipients == ("bessie.berry@acme.com", "walter.sheltan@acme.com", "nicholas@globex.corp")
    assert record.subject == SUBJECT
    assert record.created_at == ORIGINAL_AT
    assert record.time is not None and record.time.raw == format_datetime(ORIGINAL_AT)
    assert record.body.strip() == "Aenean quis diam urna."
    assert record.attachments == (ParsedAttachment("minutes.pdf", "application/pdf", PDF),)
    assert "forwarded" in record.flags
    assert record.extra["forwarded_by_address"] == "jane.doe@gmail.com"
    assert record.extra["forward_date"] == format_datetime(FORWARDED_AT)


# --- inline forwards: every client and language of the forwarded-body fixtures ---------------------------


def _forward_subject(name: str) -> str:
    path = FORWARDED / f"{name.replace('_body', '_subject')}.txt"
    return path.read_text(encoding="utf-8").strip() if path.exists() else f"Fwd: {SUBJECT}"


def _inline_fixture(name: str) -> tuple[bytes, str]:
    subject = _forward_subject(name)
    return forward_inline((FORWARDED / f"{name}.txt").read_text(encoding="utf-8"), subject), subject


#: Fixtures whose matching subject is a reply ("Re: ..."): recorded as the reply itself (tested below).
REPLIES = sorted(name for name in EXPECTED if _forward_subject(name).startswith("Re:"))


#: Fixtures whose date a reader sees but cannot be read without guessing (each says why).
UNREADABLE = sorted(name for name, expect in EXPECTED.items() if expect.undated)


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - set(REPLIES) - set(UNREADABLE)))
def test_inline_forward_is_recorded_as_the_original(name: str) -> None:
    expect: Expect = EXPECTED[name]
    raw, subject = _inline_fixture(name)
    records = parse(raw, day_first=expect.locale)
    record = messages(records)[0]
    assert len(messages(records)) == 1
    assert "forwarded" in record.flags
    assert record.sender == (expect.sender or expect.name)
    assert ("bessie.berry@acme.com" in record.recipients) is expect.to
    assert (set(record.recipients) >= CC) is (expect.cc or expect.copies_in_to)
    assert record.subject == expect.subject
    assert record.created_at is not None
    assert record.created_at.date().isoformat() == expect.day
    assert record.created_at.strftime("%H:%M") == expect.hhmm
    assert record.created_at.year != FORWARDED_AT.year  # never the forward's own date
    assert record.extra["forward_date"] == format_datetime(FORWARDED_AT)
    assert record.extra["forward_subject"] == subject
    assert record.extra["forwarded_by_address"] == "jane.doe@gmail.com"
    assert record.extra["forward_client"].startswith("inline:")
    assert record.body.startswith(("Aenean quis diam urna", "Unicum iter ad supremum"))


@pytest.mark.parametrize("name", UNREADABLE)
def test_inline_forward_with_an_unreadable_fixture_date_is_undated_with_the_reason(name: str) -> None:
    raw, _ = _inline_fixture(name)
    record = only(parse(raw))
    assert record.created_at is None
    assert "undated_forward" in record.flags
    assert record.sender == EXPECTED[name].sender
    assert record.time is not None and record.time.layout.startswith(("yahoo-unreadable: unknown word",))
    assert record.time.raw in (FORWARDED / f"{name}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e.locale is not None))
def test_inline_forward_with_undecidable_day_month_order_is_undated_not_guessed(name: str) -> None:
    raw, _ = _inline_fixture(name)
    record = only(parse(raw))
    assert record.created_at is None
    assert record.time is not None and "undecidable" in record.time.layout
    assert record.time.raw == record.extra["original_date"]
    assert record.time.raw in (FORWARDED / f"{name}.txt").read_text(encoding="utf-8")
    assert set(record.flags) >= {"forwarded", "undated_forward"}


def test_three_fixtures_have_reply_subjects() -> None:
    assert REPLIES == [
        "new_outlook_2019_en_body_variant_4",
        "outlook_2019_en_body_variant_4",
        "outlook_live_en_body_variant_4",
    ]


@pytest.mark.parametrize("name", REPLIES)
def test_reply_quoting_a_message_is_the_reply(name: str) -> None:
    # "Re: ..." with text of its own above the quoted message: the reply is what was sent
    # (here by the employee, to the capture address), so it is the record, at its own date.
    raw, subject = _inline_fixture(name)
    assert subject.startswith("Re:")
    record = only(parse(raw))
    assert record.sender == "jane.doe@gmail.com"
    assert record.created_at == FORWARDED_AT
    assert "forwarded" not in record.flags
    assert record.body.startswith("That's true!")


def test_forward_of_a_forward_keeps_the_chain() -> None:
    body = (
        "Please file this.\n\n---------- Forwarded message ---------\n"
        "From: Bessie Berry <bessie.berry@acme.com>\nDate: Mon, Nov 8, 2021 at 4:00 PM\n"
        f"Subject: Fwd: {SUBJECT}\nTo: <jane.doe@gmail.com>\n\n"
        "---------- Forwarded message ---------\nFrom: John Doe <john.doe@acme.com>\n"
        f"Date: Wed, Oct 27, 2021 at 9:31 AM\nSubject: {SUBJECT}\nTo: <bessie.berry@acme.com>\n\n"
        "Aenean quis diam urna.\n"
    )
    record = only(parse(forward_inline(body, f"Fwd: Fwd: {SUBJECT}")))
    assert record.sender == "john.doe@acme.com"
    assert record.created_at == datetime(2021, 10, 27, 9, 31, tzinfo=ZONE)
    assert record.extra["forward_depth"] == "2"
    [hop] = json.loads(record.extra["forward_chain"])
    assert hop["how"] == "inline:gmail" and hop["levels"] == 2 and hop["from"] == "jane.doe@gmail.com"


# --- forwards as attachments ---------------------------------------------------------------------------


def test_forward_as_message_rfc822_attachment() -> None:
    record = only(parse(forward_attached(original())))
    assert_is_johns_original(record)
    assert record.message_key == "<original-1@acme.com>"  # the same original forwarded twice is one record
    assert record.extra["forward_client"] == "attachment"


def test_forward_as_message_global_with_utf8_headers() -> None:
    enclosed = (
        original()
        .replace(b"From: John Doe", "From: Jürgen Doe".encode())
        .replace(f"Subject: {SUBJECT}".encode(), f"Subject: {SUBJECT} – résumé".encode())
    )
    record = only(parse(forward_attached(enclosed, kind="message/global")))
    assert record.sender == "john.doe@acme.com"
    assert record.subject == f"{SUBJECT} – résumé"
    assert record.created_at == ORIGINAL_AT


def test_forward_as_base64_message_global() -> None:
    # RFC 6532 allows message/global to be transfer-encoded; the stdlib does not decode it.
    assert_is_johns_original(only(parse(forward_attached(original(), kind="message/global", encoding="base64"))))


def _base64_enclosure(encoded: bytes, name: str) -> bytes:
    """One message/global part of a multipart/mixed with boundary "b", its base64 in 76-column lines."""
    lines = b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    return (
        b'--b\r\nContent-Type: message/global\r\nContent-Disposition: attachment; filename="%s"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n" % (name.encode(), lines)
    )


def test_a_truncated_base64_enclosure_is_flagged_and_its_good_sibling_still_recorded() -> None:
    # A mail cut short inside the second of two attached originals: one base64 character past a
    # whole group, which binascii refuses outright.
    second = base64.b64encode(original(subject="Second message", message_id="<second@acme.com>"))
    truncated = second[: len(second) // 8 * 4 + 1]
    good = _base64_enclosure(base64.b64encode(original()), "original.eml")  # its MIME boundary is random
    raw = (
        (
            f"From: {PERSONAL}\r\nTo: {CAPTURE}\r\nDate: {format_datetime(FORWARDED_AT)}\r\n"
            'Subject: Fwd: two messages\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        ).encode()
        + good
        + _base64_enclosure(truncated, "second.eml")
        + b"--b--\r\n"
    )
    record = only(parse(raw))
    assert_is_johns_original(record)
    assert "unreadable_enclosure" in record.flags
    # Alone, the cut-off original leaves a forward without any original: undated, for review.
    alone = raw.replace(good, b"")
    record = only(parse(alone))
    assert record.created_at is None
    assert set(record.flags) >= {"original_not_found", "unreadable_enclosure"}


def test_forward_of_a_forward_as_attachments_yields_the_innermost() -> None:
    middle = forward_attached(original(), sender="Bessie Berry <bessie.berry@acme.com>", note="see below")
    record = only(parse(forward_attached(middle, subject=f"Fwd: Fwd: {SUBJECT}")))
    assert_is_johns_original(record)
    assert record.extra["forward_depth"] == "2"
    chain = json.loads(record.extra["forward_chain"])
    assert [(hop["how"], hop["from"]) for hop in chain] == [
        ("attachment", "jane.doe@gmail.com"),
        ("attachment", "bessie.berry@acme.com"),
    ]


def _forwarded_as_base64(times: int) -> bytes:
    """John's original forwarded as a base64 attachment ``times`` times: each level parses on its own."""
    raw = original()
    for _ in range(times):
        raw = forward_attached(raw, encoding="base64")
    return raw


def test_forwards_nested_up_to_the_hop_limit_yield_the_original() -> None:
    record = only(parse(_forwarded_as_base64(mailfile.MAX_DEPTH)))
    assert_is_johns_original(record)
    assert record.extra["forward_depth"] == str(mailfile.MAX_DEPTH)


def test_forwards_nested_past_the_hop_limit_are_undated_never_dated_by_a_forward() -> None:
    record = only(parse(_forwarded_as_base64(mailfile.MAX_DEPTH + 1)))
    assert record.created_at is None and record.time is None
    assert set(record.flags) >= {"forwarded", "undated_forward", "original_not_found", "forward_chain_too_deep"}
    assert record.extra["original_date"] == ""


def test_inline_forward_inside_an_attached_forward() -> None:
    # Bessie forwarded John's mail inline; the employee forwarded Bessie's forward as an attachment.
    middle = forward_inline(
        GMAIL_HEADERS + "Aenean quis diam urna.\n",
        sender="Bessie Berry <bessie.berry@acme.com>",
        files=(("minutes.pdf", PDF),),
    )
    record = only(parse(forward_attached(middle, subject=f"Fwd: Fwd: {SUBJECT}")))
    assert record.sender == "john.doe@acme.com"
    assert record.created_at == datetime(2021, 10, 27, 9, 31, tzinfo=ZONE)
    assert [a.name for a in record.attachments] == ["minutes.pdf"]
    chain = json.loads(record.extra["forward_chain"])
    assert [(hop["how"], hop["from"]) for hop in chain] == [
        ("attachment", "jane.doe@gmail.com"),
        ("inline:gmail", "bessie.berry@acme.com"),
    ]


def test_html_only_outlook_forward() -> None:
    html = (
        "<html><body><p>FYI</p><hr><div><b>From:</b> John Doe &lt;john.doe@acme.com&gt;<br>"
        "<b>Sent:</b> Wednesday, October 27, 2021 3:14 PM<br><b>To:</b> Bessie Berry &lt;bessie.berry@acme.com&gt;"
        f"<br><b>Subject:</b> {SUBJECT}</div><div><p>Aenean quis diam urna.</p></div></body></html>"
    )
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = PERSONAL, CAPTURE, f"FW: {SUBJECT}"
    message["Date"] = format_datetime(FORWARDED_AT)
    message.set_content(html, subtype="html")
    record = only(parse(bytes(message)))
    assert record.sender == "john.doe@acme.com"
    assert record.recipients == ("bessie.berry@acme.com",)
    assert record.created_at == datetime(2021, 10, 27, 15, 14, tzinfo=ZONE)
    assert record.body == "Aenean quis diam urna."


def test_an_original_that_attaches_a_message_is_itself_the_record() -> None:
    # John attached an older mail to his own message (no "Fwd:", text of his own): the record
    # is John's message, and the older mail stays his attachment.
    older = original(
        subject="Census 2020", attach=False, date="Mon, 05 Oct 2020 10:00:00 -0400", message_id="<older@acme.com>"
    )
    johns = forward_attached(older, sender="John Doe <john.doe@acme.com>", subject=SUBJECT, note="Last year's.")
    record = only(parse(forward_attached(johns)))
    assert record.sender == "john.doe@acme.com"
    assert record.subject == SUBJECT
    assert record.created_at == FORWARDED_AT  # John's message's own Date (built with the same helper)
    assert [a.content_type for a in record.attachments] == ["message/rfc822"]


def test_forward_inside_a_digest_yields_each_original() -> None:
    second = original(subject="Second message", attach=False, cc="", message_id="<second@acme.com>")
    records = messages(parse(digest(original(), second)))
    assert [r.subject for r in records] == [SUBJECT, "Second message"]
    assert_is_johns_original(records[0])
    assert records[0].extra["forward_client"] == "digest"


def test_whole_message_enclosed_groupwise_style() -> None:
    record = only(parse((MIME / "cpython" / "msg_46.txt").read_bytes()))
    assert record.sender == "sender@example.net"
    assert record.recipients == ("recipient@example.com",)
    assert record.created_at == datetime(2010, 2, 1, 12, 18, 40, tzinfo=timezone(timedelta(hours=1)))
    assert record.message_key == "<4B66B890.4070408@teconcept.de>"
    assert record.extra["forward_date"] == "Mon, 01 Feb 2010 12:21:16 +0100"


def test_bounce_quoting_a_message_is_not_a_forward() -> None:
    record = only(parse((MIME / "flanker" / "bounce" / "delayed.eml").read_bytes()))
    assert record.sender == "mailer-daemon@cs.example.com"
    assert "forwarded" not in record.flags
    assert any(a.content_type == "message/rfc822" for a in record.attachments)


# --- copied, undated, incomplete ---------------------------------------------------------------------


def test_original_with_official_address_in_cc_is_copied(archive: Archive) -> None:
    custodian = archive.config.custodian("jdoe")
    assert custodian is not None
    copied = only(parse(forward_attached(original(cc="Jane Doe <Jane.Doe@agency.example>"))))
    assert "jane.doe@agency.example" in copied.recipients
    assert draft(custodian, copied).copied is True
    not_copied = only(parse(forward_attached(original())))
    assert draft(custodian, not_copied).copied is False
    # The forwarder's own (personal) address is not a recipient of the original.
    assert "jane.doe@gmail.com" not in not_copied.recipients


def test_inline_forward_from_the_sent_folder_keeps_the_bcc(archive: Archive) -> None:
    # Forwarding your own sent mail shows its Bcc: the official copy made it "copied" at the time.
    body = (
        "---------- Forwarded message ---------\nFrom: Jane Doe <jane.doe@gmail.com>\n"
        f"Date: Wed, Oct 27, 2021 at 9:31 AM\nSubject: {SUBJECT}\nTo: <kofi@partner.example>\n"
        "Bcc: Jane Doe <jane.doe@agency.example>\n\nAenean quis diam urna.\n"
    )
    record = only(parse(forward_inline(body)))
    assert record.recipients == ("kofi@partner.example", "jane.doe@agency.example")
    custodian = archive.config.custodian("jdoe")
    assert custodian is not None
    made = draft(custodian, record)
    assert made.copied is True and made.direction == "sent"


def _cli(archive_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_ingested_forward_is_dated_and_judged_by_the_original(archive_dir: Path, tmp_path: Path) -> None:
    sent = original(cc="jane.doe@agency.example", message_id="<sent-1@gmail.com>").replace(
        b"From: John Doe <john.doe@acme.com>", b"From: Jane Doe <jane.doe@gmail.com>"
    )
    for name, raw in (("copied.eml", forward_attached(sent)), ("late.eml", forward_attached(original()))):
        (tmp_path / name).write_bytes(raw)
        _cli(archive_dir, "ingest", "--custodian", "jdoe", str(tmp_path / name))
    rows = {row["sender"]: row for row in json.loads(_cli(archive_dir, "search", "--json"))}
    assert rows["jane.doe@gmail.com"]["status"] == "copied"
    assert rows["jane.doe@gmail.com"]["direction"] == "sent"
    assert rows["john.doe@acme.com"]["status"] == "late"
    assert str(rows["john.doe@acme.com"]["created_at"]).startswith("2021-10-27T09:31")


def test_attached_forward_without_a_date_is_undated() -> None:
    record = only(parse(forward_attached(original(date=None))))
    assert record.created_at is None
    assert record.time is None
    assert set(record.flags) >= {"forwarded", "undated_forward"}


def test_inline_forward_with_an_unreadable_date_keeps_the_text_and_is_undated() -> None:
    body = (
        "---------- Forwarded message ---------\nFrom: John Doe <john.doe@acme.com>\n"
        f"Date: sometime last autumn\nSubject: {SUBJECT}\nTo: <bessie.berry@acme.com>\n\nAenean.\n"
    )
    record = only(parse(forward_inline(body)))
    assert record.created_at is None
    assert record.time is not None and record.time.raw == "sometime last autumn"
    assert "undated_forward" in record.flags


def test_forward_that_lost_the_originals_attachments_is_flagged_incomplete() -> None:
    body = GMAIL_HEADERS + "The pelican minutes are in the file.\n\n<image001.png>\n[cid:chart.png@01D7C9A2.6C5B1C70]\n"
    records = parse(forward_inline(body))
    record = only(records)
    assert record.attachments == (
        ParsedAttachment("image001.png", "image/png", None),
        ParsedAttachment("chart.png", "image/png", None),
    )
    assert "media_omitted" in record.flags
    [event] = events(records)
    assert event.kind == "incomplete_copy"
    assert event.at == record.created_at and event.conversation == record.conversation
    assert "pelican" not in event.detail and "image001" not in event.detail


@pytest.mark.parametrize(
    "text",
    [
        "Please see attached.",
        "Die Unterlagen sind im Anhang.",
        "Ci-joint le compte rendu.",
        "<<Minutes 2021.pdf>>",
        "[image: logo.png]",
    ],
)
def test_references_to_attachments_in_several_forms(text: str) -> None:
    records = parse(forward_inline(GMAIL_HEADERS + text + "\n"))
    assert "media_omitted" in only(records).flags
    assert [e.kind for e in events(records)] == ["incomplete_copy"]


def test_a_disclaimer_about_any_attachments_is_not_a_reference() -> None:
    body = GMAIL_HEADERS + "Aenean.\n\nThis e-mail and any attachments are confidential.\n"
    records = parse(forward_inline(body))
    assert only(records).attachments == ()
    assert events(records) == []


def test_forward_that_carries_the_attachments_is_complete() -> None:
    body = GMAIL_HEADERS + "Please see attached.\n"
    records = parse(forward_inline(body, files=(("minutes.pdf", PDF),)))
    record = only(records)
    assert [a.name for a in record.attachments] == ["minutes.pdf"]
    assert "media_omitted" not in record.flags
    assert events(records) == []


def test_an_enclosed_original_is_complete_by_construction() -> None:
    # Forwarded as an attachment, the original travels with its own MIME: what it says is what it was.
    records = parse(forward_attached(original(body="Please see attached.", attach=False)))
    assert only(records).attachments == ()
    assert events(records) == []


def test_words_alone_give_one_referenced_attachment() -> None:
    record = only(parse(forward_inline(GMAIL_HEADERS + "The agenda is enclosed.\n")))
    assert record.attachments == (ParsedAttachment(email.REFERENCED_ATTACHMENT, data=None),)


# --- chat exports sent by mail -------------------------------------------------------------------------


#: Reply bodies written by mail clients (see tests/data/email_replies/SOURCES.md).
REPLY_FIXTURES = sorted((DATA / "email_replies").rglob("*.txt"))


def test_all_reply_fixtures_are_here() -> None:
    assert len(REPLY_FIXTURES) == 111


@pytest.mark.parametrize("path", REPLY_FIXTURES, ids=lambda path: path.stem)
def test_reply_fixture_sent_as_a_reply_is_the_reply_itself(path: Path) -> None:
    record = only(parse(forward_inline(path.read_text(encoding="utf-8"), "Re: Quarterly budget")))
    assert record.sender == "jane.doe@gmail.com"
    assert record.created_at == FORWARDED_AT
    assert not {"forwarded", "original_not_found"} & set(record.flags)


@pytest.mark.parametrize("path", REPLY_FIXTURES, ids=lambda path: path.stem)
def test_a_forward_is_never_dated_by_the_forward(path: Path) -> None:
    # "Fwd:" over a reply thread: the quoted original when its header is recognised (dated from
    # that header's own text), else the forward's text, undated and flagged for review.
    text = path.read_text(encoding="utf-8")
    record = only(parse(forward_inline(text, "Fwd: Quarterly budget")))
    assert "forwarded" in record.flags
    assert record.extra["forward_date"] == format_datetime(FORWARDED_AT)
    if record.created_at is None:
        assert "undated_forward" in record.flags
    else:
        assert record.time is not None and record.time.raw in text
        assert record.created_at < FORWARDED_AT
        assert "original_not_found" not in record.flags
    if "original_not_found" in record.flags:
        assert record.sender == "jane.doe@gmail.com"  # who forwarded it: the original's sender is unknown
        assert record.created_at is None and record.time is None


def test_forward_without_any_original_is_undated_for_review() -> None:
    record = only(parse(forward_inline("See below, for the file.\n", f"Fwd: {SUBJECT}")))
    assert record.created_at is None
    assert set(record.flags) >= {"forwarded", "undated_forward", "original_not_found"}
    assert record.extra["forward_client"] == "inline:not-found"
    assert record.body.startswith("See below")


def test_forward_whose_header_block_cannot_be_read_is_undated_not_dated_by_a_quote() -> None:
    body = (
        # Keys in no language of forward_keys (made up): the block cannot be read.
        "FYI\n\n________________________________\nQfrom: Nikos <nikos@example.gr>\n"
        "Qsent: 10.03.2025 9:31\nQto: me@example.com\nQsubject: RE: contract\n\nAgreed.\n\n"
        "On Mon, Feb 3, 2025 at 9:31 AM Bob Smith <bob@example.com> wrote:\n> Please sign the contract.\n"
    )
    record = only(parse(forward_inline(body, "FW: contract")))
    assert record.created_at is None
    assert set(record.flags) >= {"forwarded", "undated_forward", "original_not_found"}
    assert record.sender == "jane.doe@gmail.com"


def test_forwarded_chat_export_mail_is_not_held_to_a_missing_original() -> None:
    # A phone's "WhatsApp Chat with ..." mail forwarded on: the export is the capture that counts.
    files = (("WhatsApp Chat with Alice Smith.txt", CHAT_FILES["WhatsApp Chat with Alice Smith.txt"].read_bytes()),)
    record = only(parse(forward_inline("Chat attached.\n", "Fwd: WhatsApp Chat with Alice Smith", files=files)))
    assert record.created_at == FORWARDED_AT
    assert "original_not_found" not in record.flags


CHAT_FILES = {
    "WhatsApp Chat with Alice Smith.txt": DATA / "whatsapp" / "android_media_deleted_edited.txt",
    "result.json": DATA / "telegram" / "full_export" / "result.json",
    "sms-20231009.xml": DATA / "sms" / "backup.xml",
}


def test_chat_export_attachments_are_exposed_and_kept() -> None:
    files = tuple((name, path.read_bytes()) for name, path in CHAT_FILES.items())
    files += (("WhatsApp Chat - Team.zip", b"PK\x03\x04 not inspected"), ("photo.jpg", b"\xff\xd8\xff\xe0 jpeg"))
    raw = forward_inline("Exports of this week's chats.\n", "chat exports", files=files)
    found = email.chat_export_attachments(raw)
    assert found == list(files[:4])  # the photo is not a chat export
    record = only(parse(raw))
    assert [a.name for a in record.attachments] == [name for name, _ in files]
    assert "chat_export_attached" in record.flags


def test_chat_export_attached_to_an_enclosed_original_is_found() -> None:
    export = CHAT_FILES["result.json"].read_bytes()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "john.doe@acme.com", "bessie.berry@acme.com", "chats"
    message["Date"] = format_datetime(ORIGINAL_AT)
    message.set_content("Telegram export attached.")
    message.add_attachment(export, maintype="application", subtype="json", filename="result.json")
    assert email.chat_export_attachments(forward_attached(bytes(message))) == [("result.json", export)]


# --- not a forward -------------------------------------------------------------------------------------


def test_plain_message_is_its_own_record() -> None:
    message = EmailMessage()
    message["From"] = PERSONAL
    message["To"] = "Kofi <kofi@partner.example>"
    message["Cc"] = "jane.doe@agency.example"
    message["Bcc"] = CAPTURE
    message["Date"] = format_datetime(FORWARDED_AT)
    message["Subject"] = "Pelican census"
    message["Message-ID"] = "<m1@gmail.com>"
    message.set_content("Counts are due Friday.")
    record = only(parse(bytes(message)))
    assert record.sender == "jane.doe@gmail.com"
    assert record.recipients == ("kofi@partner.example", "jane.doe@agency.example", CAPTURE)
    assert record.created_at == FORWARDED_AT
    assert record.flags == ()
    assert record.body == "Counts are due Friday.\n"


def test_html_only_body_becomes_text_and_utf8_file_names_survive() -> None:
    raw = (
        "From: a@example.org\r\nDate: Tue, 05 Mar 2024 09:00:00 -0000\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n'
        "<html><style>p {color: red}</style><p>Hello&nbsp;there</p><p>Second &amp; last</p></html>\r\n"
        '--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="Übersicht.pdf"\r\n\r\n'
        "%PDF\r\n--b--\r\n"
    ).encode()
    message = mailfile.read_message(raw)
    assert message.body == "Hello there\n\nSecond & last"
    assert [a.name for a in message.attachments] == ["Übersicht.pdf"]
    # "-0000" is a UTC time from a host whose own zone is unknown (RFC 5322 3.3).
    assert message.created_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)


def test_date_without_a_zone_is_undated_with_its_text_kept() -> None:
    message = mailfile.read_message(b"From: a@example.org\r\nDate: Tue, 05 Mar 2024 09:00:00\r\n\r\nhi\r\n")
    assert message.created_at is None
    assert message.time is not None and message.time.raw == "Tue, 05 Mar 2024 09:00:00"


@pytest.mark.parametrize(
    "date",
    [
        "Mon, 3 Mar 2025 10:00:00 +99999999999999999",  # an offset no int of C can hold
        "Mon, 3 Mar 99999999999999999999 10:00:00 +0000",
        "Mon, 3 Mar 2025 99999999999999999999:00:00 +0000",
    ],
)
def test_date_with_overflowing_numbers_is_undated_not_a_crash(date: str) -> None:
    raw = f"From: a@example.org\r\nSubject: x\r\nDate: {date}\r\n\r\nhi\r\n".encode()
    message = mailfile.read_message(raw)
    assert message.created_at is None
    assert message.time is not None and message.time.raw == date
    enclosed = original().replace(format_datetime(ORIGINAL_AT).encode(), date.encode())
    attached = only(parse(forward_attached(enclosed)))
    assert attached.created_at is None
    assert set(attached.flags) >= {"forwarded", "undated_forward"}


@pytest.mark.parametrize("charset", ["undefined", "idna", "x-no-such-charset"])
def test_encoded_word_in_a_charset_that_cannot_decode_is_read_as_utf8(charset: str) -> None:
    # "undefined" refuses every input and "idna" refuses the "replace" handler, with UnicodeError.
    raw = (
        f"From: =?{charset}?q?J=C3=BCrgen?= <juergen@example.org>\r\nSubject: =?{charset}?q?caf=C3=A9?=\r\n"
        "Date: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\nhi\r\n"
    ).encode()
    record = only(parse(raw))
    assert record.subject == "café"
    assert record.sender == "juergen@example.org"
    assert record.created_at == datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date", "year"),
    [
        # RFC 5322 section 4.3: 00-49 are 2000-2049, 50-99 are 1950-1999, three digits add 1900.
        ("Fri, 3 Mar 56 10:00:00 +0000", None),  # 1956, before any e-mail this archive keeps; never 2056
        ("Mon, 3 Mar 25 10:00:00 +0000", 2025),
        ("Wed, 3 Mar 99 10:00:00 +0000", 1999),
        ("Mon, 3 Mar 125 10:00:00 +0000", 2025),
        ("Fri, 3 Mar 2056 10:00:00 +0000", 2056),  # written in full: taken as written
    ],
)
def test_abbreviated_years_are_read_as_rfc_5322_says(date: str, year: int | None) -> None:
    message = mailfile.read_message(f"From: a@example.org\r\nDate: {date}\r\n\r\nhi\r\n".encode())
    assert (message.created_at and message.created_at.year) == year
    assert message.time is not None and message.time.raw == date
    enclosed = original().replace(format_datetime(ORIGINAL_AT).encode(), date.encode())
    record = only(parse(forward_attached(enclosed)))
    after_the_forward = year is not None and year > FORWARDED_AT.year
    assert (record.created_at and record.created_at.year) == (None if after_the_forward else year)


def test_an_attached_original_dated_after_its_forward_is_undated() -> None:
    # A typo'd or hostile year (2056), or two days after the forward: neither can start the 20-day clock.
    for moment in (datetime(2056, 3, 3, 10, tzinfo=UTC), FORWARDED_AT + timedelta(days=2)):
        date = format_datetime(moment)
        record = only(parse(forward_attached(original(date=date))))
        assert record.created_at is None
        assert set(record.flags) >= {"forwarded", "undated_forward", "original_after_forward"}
        assert record.time is not None and record.time.raw == date
        assert record.extra["original_date"] == date


def test_an_inline_original_dated_after_its_forward_is_undated() -> None:
    body = GMAIL_HEADERS.replace("Wed, Oct 27, 2021 at 9:31 AM", "Thu, Oct 27, 2033 at 9:31 AM") + "Aenean.\n"
    record = only(parse(forward_inline(body)))
    assert record.created_at is None
    assert set(record.flags) >= {"forwarded", "undated_forward", "original_after_forward"}
    assert record.time is not None and record.time.raw == "Thu, Oct 27, 2033 at 9:31 AM"


def test_an_original_a_little_after_its_forward_is_clock_skew_and_stays_dated() -> None:
    skewed = FORWARDED_AT + timedelta(hours=3)  # a sender's clock running fast, or a zone mistaken
    record = only(parse(forward_attached(original(date=format_datetime(skewed)))))
    assert record.created_at == skewed
    assert "original_after_forward" not in record.flags


def test_detects_a_single_message_even_after_a_padding_line() -> None:
    raw = (MIME / "flanker" / "enclosed.eml").read_bytes()
    assert raw.startswith(b" ")
    assert email.detect(BytesSource("m.eml", raw), raw[:8192])
    assert not email.detect(BytesSource("x", {"a.eml": raw, "b.eml": raw}), b"")
    assert not email.detect(BytesSource("x.txt", b"Hello\nFrom: me\n"), b"Hello\nFrom: me\n")


# --- every real message; hostile mail ---------------------------------------------------------------------


MIME_FILES = sorted(p for p in MIME.rglob("*") if p.is_file() and p.name != "SOURCES.md")
#: Not messages at all (HTML fragments, header-less MIME parts): refused with a reason.
NOT_MESSAGES = {
    "cpython/msg_18.txt", "cpython/msg_19.txt", "cpython/msg_37.txt", "cpython/msg_38.txt", "cpython/msg_39.txt",
    "cpython/msg_40.txt", "talon/OLK_SRC_BODY_SECTION.html", "talon/reply-separated-by-hr.html",
    "talon/standard_replies/iphone_reply_text", "talon/standard_replies/sparrow_reply_text",
    *(f"talon/html_replies/{p.name}" for p in (MIME / "talon" / "html_replies").glob("*.html")),
}  # fmt: skip


def test_every_fixture_is_listed_in_sources() -> None:
    sources = (MIME / "SOURCES.md").read_text(encoding="utf-8")
    assert len(MIME_FILES) == 111
    assert all(f"`{p.relative_to(MIME).as_posix()}`" in sources for p in MIME_FILES)


@pytest.mark.parametrize("path", MIME_FILES, ids=lambda p: p.relative_to(MIME).as_posix())
def test_every_real_message_parses_or_is_refused_with_a_reason(path: Path) -> None:
    name = path.relative_to(MIME).as_posix()
    started = time.perf_counter()
    try:
        records = parse(path.read_bytes())
    except ParseError as error:
        assert name in NOT_MESSAGES, str(error)
        assert "not an e-mail message" in str(error)
        return
    finally:
        assert time.perf_counter() - started < 1.0
    assert name not in NOT_MESSAGES
    for record in messages(records):
        assert record.platform == "email"
        assert record.created_at is None or record.created_at.tzinfo is not None
        assert "forwarded_by" in record.extra or "forwarded" not in record.flags


def _timed_parse(raw: bytes) -> list[Record] | ParseError:
    started = time.perf_counter()
    try:
        return parse(raw)
    except ParseError as error:
        return error
    finally:
        assert time.perf_counter() - started < 1.0


def test_thousands_of_encoded_words_finish_within_a_second() -> None:
    words = " ".join(["=?utf-8?q?caf=C3=A9?="] * 4000)
    raw = f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {words}\r\n\r\nbody\r\n".encode()
    result = _timed_parse(raw)
    assert not isinstance(result, ParseError)
    assert only(result).subject == "café" * 4000


def test_thousand_nested_parentheses_in_to_finish_within_a_second() -> None:
    raw = b"From: a@example.org\r\nTo: " + b"(" * 1000 + b"x" + b")" * 1000 + b" <b@example.org>\r\n\r\nhi\r\n"
    result = _timed_parse(raw)
    assert isinstance(result, ParseError)
    assert "nested" in str(result)


def _nested_multiparts(depth: int, filler: bytes = b"hi\r\n") -> bytes:
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    return b"From: a@example.org\r\nMIME-Version: 1.0\r\n" + head + b"Content-Type: text/plain\r\n\r\n" + filler


def _many_parts() -> bytes:
    head = b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    return head + b"--b\r\n\r\nx\r\n" * 1001 + b"--b--\r\n"


def _many_addresses() -> bytes:
    return b"From: a@example.org\r\nTo: " + b", ".join(b"p%d@example.org" % i for i in range(1001)) + b"\r\n\r\nx"


def _long_parameters() -> bytes:
    return _nested_multiparts(1).replace(b"\r\n\r\nhi", b'; a="x;' * 200_000 + b"\r\n\r\nhi")


#: Hostile messages (built when the test runs, not held for the session) and the reason they are refused.
HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "depth-21": (lambda: _nested_multiparts(21), "nested more than 20 deep"),
    "depth-2000": (lambda: _nested_multiparts(2000), "RecursionError"),
    "costly": (lambda: _nested_multiparts(40, b"x\n" * 500_000), "too costly to parse"),
    "parts-1001": (_many_parts, "more than 1000 MIME parts"),
    "addresses-1001": (_many_addresses, "more than 1000 addresses"),
    "header-300k": (lambda: b"From: a@example.org\r\nX-Long: " + b"y" * 300_000 + b"\r\n\r\nx", "header block larger"),
    "parameters": (_long_parameters, "Content-Type header longer than"),
    "bare-cr-lines": (lambda: b"From: a@example.org\r\n\r\n" + b"a\r" * 17_000_000, "too costly to parse"),
    # 10 MB in 5 million lines, one level deep: cheap in line-levels, but the stdlib parser keeps
    # one str per line (about 450 MB).
    "lines-5m": (lambda: _nested_multiparts(1, b"x\n" * 5_242_880), "more than 1000000 lines"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_structure_is_refused_quickly_with_a_reason(case: str) -> None:
    build, reason = HOSTILE[case]
    result = _timed_parse(build())
    assert isinstance(result, ParseError)
    assert reason in str(result)


def test_a_one_part_message_of_many_lines_is_still_read() -> None:
    # The one-part shortcut never splits the body into lines: only the stdlib parser is capped.
    raw = b"From: a@example.org\r\nSubject: log\r\n\r\n" + b"x\n" * (mailfile.MAX_PARSE_LINES + 1)
    result = _timed_parse(raw)
    assert not isinstance(result, ParseError)
    assert only(result).body.count("\n") == mailfile.MAX_PARSE_LINES + 1


FOLDED = b"; x=" + b"y" * 70  # one folded continuation line of a parameter header


@pytest.mark.parametrize(("raw", "refused"), [
    # Folded over many short lines, in lower case, after CRLF or bare LF: one field, too long.
    (b"From: a@example.org\r\ncontent-disposition: attachment" + b"\r\n\t" * 1 + FOLDED * 2
     + (b"\r\n " + FOLDED) * 150 + b"\r\n\r\nhi", "Content-Disposition header longer than"),
    (b"From: a@example.org\nCONTENT-TYPE: text/plain" + (b"\n " + FOLDED) * 150 + b"\n\nhi",
     "Content-Type header longer than"),
    # The same bytes not at a line start, or not folded, are not one long field.
    (b"From: a@example.org\r\nX-Note: content-type: text/plain" + FOLDED * 150 + b"\r\n\r\nhi", None),
    (b"From: a@example.org\r\nContent-Type: text/plain\r\n" + (b"X-Other: " + FOLDED + b"\r\n") * 150
     + b"\r\nhi", None),
])
def test_parameter_headers_are_measured_with_their_folded_lines(raw: bytes, refused: str | None) -> None:
    if refused is None:
        # Read as the mail it is: its sender and its one-word body, not refused and not emptied.
        record = mailfile.read_message(raw)
        assert (record.sender, record.body.strip()) == ("a@example.org", "hi")
    else:
        with pytest.raises(ParseError, match=refused):
            mailfile.parse(raw)


def test_folded_multipart_headers_count_toward_the_parse_cost() -> None:
    limits = Limits(mail_parse_work=100)
    lines = b"x\r\n" * 30  # about 40 lines: under the limit once, over it with two multipart levels
    plain = b"From: a@example.org\r\nContent-Type: text/plain\r\n\r\n" + lines
    assert mailfile.read_message(plain, limits).body.split() == ["x"] * 30
    nested = (b"From: a@example.org\r\nContent-Type:\r\n multipart/mixed; boundary=a\r\n\r\n--a\r\n"
              b"content-type: \tMULTIPART/alternative; boundary=b\r\n\r\n--b\r\n\r\n" + lines + b"--b--\r\n--a--\r\n")
    with pytest.raises(ParseError, match="2 multipart headers"):
        mailfile.parse(nested, limits)


def test_a_long_inline_forward_keeps_its_whole_text() -> None:
    tail = "Aenean quis diam urna.\n" * 60_000  # 1.4 MB: past the part searched for forward headers
    record = only(parse(forward_inline(GMAIL_HEADERS + tail)))
    assert record.sender == "john.doe@acme.com"
    assert record.body.replace("\n", "") == tail.replace("\n", "")


def test_decoded_size_is_bounded() -> None:
    with pytest.raises(ParseError, match="decodes to more than 1000 bytes"):
        parse(forward_inline("x", files=(("big.bin", b"\0" * 2000),)), limits=Limits(mail_decoded_bytes=1000))


def test_compat32_structure_with_needed_headers_is_faster_than_policy_default() -> None:
    message = EmailMessage()
    message["From"] = "=?utf-8?q?J=C3=BCrgen?= <juergen@example.org>"
    message["To"] = ", ".join(f"Person {i} <p{i}@example.org>" for i in range(6))
    message["Subject"] = "=?utf-8?q?Budget_r=C3=A9vision?="
    message["Date"] = format_datetime(FORWARDED_AT)
    for i in range(8):
        message["Received"] = f"from mx{i}.example.org by mx.example.net; {format_datetime(FORWARDED_AT)}"
    text = "The pelican census continues; counts are due on Friday for every colony in the district. " * 40
    message.set_content(text)
    message.add_alternative(f"<p>{text}</p>", subtype="html")
    raw = bytes(message)  # about 10 KB

    def rate(read: object) -> float:
        assert callable(read)
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < 0.5:
            read()
            count += 1
        return count / (time.perf_counter() - started)

    def stdlib_default() -> None:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        [str(parsed[h]) for h in ("From", "To", "Subject", "Date")]
        parsed.get_body(preferencelist=("plain", "html"))

    ours, default = rate(lambda: mailfile.read_message(raw)), rate(stdlib_default)
    print(f"\n{len(raw)} B message: twentyday {ours:.0f}/s, policy.default {default:.0f}/s")
    assert ours > 2 * default


@pytest.mark.parametrize(
    "date",
    [
        "Mon, Oct 27, 2021 at 9:31 AM",  # English: 27 October 2021 was a Wednesday
        "lun. 27 oct. 2021 à 09:31",  # French
        "Mo., 27. Okt. 2021 um 09:31",  # German
    ],
)
def test_inline_forward_whose_weekday_contradicts_its_date_is_undated_with_the_reason(date: str) -> None:
    body = (
        "---------- Forwarded message ---------\nFrom: John Doe <john.doe@acme.com>\n"
        f"Date: {date}\nSubject: {SUBJECT}\nTo: <bessie.berry@acme.com>\n\nAenean.\n"
    )
    record = only(parse(forward_inline(body)))
    assert record.created_at is None
    assert "undated_forward" in record.flags
    assert record.time is not None and record.time.raw == date
    assert record.time.layout == (
        "gmail-unreadable: the weekday written contradicts the date (2021-10-27 is a Wednesday)"
    )
