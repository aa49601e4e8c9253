"""The one-part shortcut of mailfile.parse (its private _single_part) gives exactly the stdlib parser's structure."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from twentyday.parsers.mail import message as mailfile

DATA = Path(__file__).resolve().parents[2] / "data"
MAIL_FILES = sorted(p for p in (DATA / "email").rglob("*") if p.is_file() and p.suffix != ".md")
FORWARDED_BODIES = sorted((DATA / "email_forwarded").glob("*_body*.txt"))


def forwarding_mail(body: str) -> bytes:
    """A forwarded body as the SMTP address receives it: one text part, CRLF line ends."""
    mail = EmailMessage()
    mail["From"] = "Jane Doe <jane.doe@gmail.com>"
    mail["To"] = "records@agency.example"
    mail["Subject"] = "Fwd: minutes"
    mail.set_content(body)
    return mail.as_bytes(policy=policy.SMTP)


def stdlib(raw: bytes) -> Message:
    return BytesParser(policy=policy.compat32).parsebytes(raw)


def same_structure(ours: Message, theirs: Message) -> None:
    assert ours.items() == theirs.items()
    assert ours.get_unixfrom() == theirs.get_unixfrom()
    assert ours.is_multipart() is theirs.is_multipart() is False
    assert ours.get_payload() == theirs.get_payload()
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]


def test_every_one_part_fixture_gets_the_stdlib_structure() -> None:
    mails = [p.read_bytes() for p in MAIL_FILES]
    mails += [forwarding_mail(p.read_text(encoding="utf-8")) for p in FORWARDED_BODIES]
    shortcut = 0
    for raw in mails:
        ours = mailfile._single_part(raw, mailfile._content_fields(raw))
        if ours is not None:
            same_structure(ours, stdlib(raw))
            shortcut += 1
    # The MIME fixtures are mostly multipart; every forwarding mail is one part.
    assert len(MAIL_FILES) > 90 and shortcut >= len(FORWARDED_BODIES) + 20 and len(FORWARDED_BODIES) > 100


@pytest.mark.parametrize("raw", [
    b"Subject: a\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n",
    b"Subject: a\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n",
    b"From jane Mon Nov 16 2026\r\nSubject: a\r\n\r\nbody\r\n",  # an mbox From_ line
    b"Subject: a\r\nnot a header line\r\n\r\nbody\r\n",
    b"Subject: a\x0cb\r\n\r\nbody\r\n",  # the stdlib splits lines at a form feed
    b"Subject: a\rTo: b\r\n\r\nbody\r\n",  # and at a bare CR
    b"Subject: no blank line and no body",
])
def test_anything_unusual_goes_to_the_stdlib_parser(raw: bytes) -> None:
    assert mailfile._single_part(raw, mailfile._content_fields(raw)) is None


@pytest.mark.parametrize("raw", [
    b"Subject: caf\xc3\xa9\r\nX-Folded: one\r\n two\r\n\r\n\xff\xfe bytes\r\n.dot\n\rodd\x0c\r\n",
    b"Subject: lf only\n\nbody\nmore\n",
    b" leading continuation\r\nSubject: x\r\n\r\nbody",
    b"Subject: x\r\n\r\n",
])
def test_odd_but_one_part_messages_match_the_stdlib(raw: bytes) -> None:
    ours = mailfile._single_part(raw, mailfile._content_fields(raw))
    assert ours is not None
    same_structure(ours, stdlib(raw))
