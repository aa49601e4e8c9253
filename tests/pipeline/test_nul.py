"""U+0000 (NUL) in a record's names and keys leaves the parser as U+FFFD (records.nul_replaced).

PostgreSQL's text cannot hold U+0000, SQLite's can: replaced once, in pipeline.guarded_parse, which
every path passes (ingest and the worker's pipeline.process, the read-ahead helper's pipeline.prepare,
dry-run), both databases are given the same text. The sealed raw capture keeps the original bytes.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import NOW
from twentyday import config as config_module
from twentyday.initialise import init_archive
from twentyday.pipeline import process as pipeline
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, TimeReading, nul_replaced

AT = datetime(2026, 10, 13, 8, 0, tzinfo=UTC)


def message(text: str) -> ParsedMessage:
    return ParsedMessage("telegram", f"Chat{text}", f"Counter{text}part", AT,
                         TimeReading(f"13/10{text}", "layout", None, "file", "UTC"), f"body{text}",
                         recipients=("Jane Doe", f"Bob{text}"), subject=f"Minutes{text}", message_key=f"key{text}",
                         attachments=(ParsedAttachment(f"notes{text}.pdf", "application/pdf", b"\x00%PDF"),
                                      ParsedAttachment("plain.pdf")),
                         reply_to=f"reply{text}", text_key=f"text{text}", extra={"header": f"value{text}"})


def test_names_and_keys_get_u_fffd_and_what_is_only_sealed_is_kept_as_written() -> None:
    replaced = nul_replaced(message("\x00"))
    assert replaced == ParsedMessage(
        "telegram", "Chat\ufffd", "Counter\ufffdpart", AT, TimeReading("13/10\x00", "layout", None, "file", "UTC"),
        "body\x00", recipients=("Jane Doe", "Bob\ufffd"), subject="Minutes\ufffd", message_key="key\ufffd",
        attachments=(ParsedAttachment("notes\ufffd.pdf", "application/pdf", b"\x00%PDF"),
                     ParsedAttachment("plain.pdf")),
        reply_to="reply\ufffd", text_key="text\ufffd", extra={"header": "value\x00"})


def test_each_field_alone_is_found() -> None:
    """The check joins the fields: one holding U+0000 is enough, wherever it is."""
    plain = message("")
    for field in ("conversation", "sender", "subject", "message_key", "reply_to", "text_key"):
        one = dataclasses.replace(plain, **{field: getattr(plain, field) + "\x00"})
        assert getattr(nul_replaced(one), field) == getattr(plain, field) + "\ufffd", field
    assert nul_replaced(dataclasses.replace(plain, recipients=("a", "b\x00"))).recipients == ("a", "b\ufffd")
    named = dataclasses.replace(plain, attachments=(ParsedAttachment("x\x00"),))
    assert nul_replaced(named).attachments == (ParsedAttachment("x\ufffd"),)


def test_a_record_without_u0000_is_given_back_as_it_is() -> None:
    plain = message("")
    assert nul_replaced(plain) is plain
    body_only = dataclasses.replace(plain, body="a\x00b")
    assert nul_replaced(body_only) is body_only
    event = ParsedEvent("system", "Chat", AT, "Bob joined")
    assert nul_replaced(event) is event


def test_an_event_s_conversation_and_detail_get_u_fffd() -> None:
    assert nul_replaced(ParsedEvent("system", "Chat\x00", None, "Bob\x00 joined")) == ParsedEvent(
        "system", "Chat\ufffd", None, "Bob\ufffd joined")


def test_mail_read_ahead_by_serve_s_helper_is_given_the_same_text(tmp_path: Path) -> None:
    """pipeline.prepare (the read-ahead helper's parse) passes guarded_parse too; the mail's own
    headers keep U+0000 in the sealed ``extra`` and raw capture."""
    init_archive(tmp_path / "arch", passphrase=None, demo=False, now=NOW)
    config = config_module.load(tmp_path / "arch" / "twentyday.toml")
    raw = (b"From: Jane Doe <jane.doe@gmail.com>\r\nTo: counterpart@partner.example\r\n"
           b"Subject: =?utf-8?q?Minutes=00draft?=\r\nMessage-ID: <a\x00b@x>\r\n"
           b"Date: Tue, 13 Oct 2026 08:00:00 +0000\r\n\r\nbody\x00here\r\n")
    prepared = pipeline.prepare(config, pipeline.Item("m.eml", "smtp", NOW, data=raw))
    assert prepared is not None
    plan = prepared.plan
    assert isinstance(plan, pipeline._Parse), plan
    [mail] = [r for r in plan.records if isinstance(r, ParsedMessage)]
    assert (mail.subject, mail.message_key, mail.conversation) == ("Minutes\ufffddraft", "<a\ufffdb@x>", "<a\ufffdb@x>")
    assert mail.body == "body\x00here\r\n"
