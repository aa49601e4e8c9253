"""What parsers produce and the store seals: messages, attachments, events.

Parsers are pure (bytes in, these out). Everything here is plain data; the
store decides what goes into the clear index and what is sealed:

- clear (needed to enforce the rule): platform, conversation, sender,
  recipients, direction, times and how they were read, flags;
- sealed: subject, body, attachment names and contents.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Literal, overload

#: How a timestamp's day/month order (or its zone) was decided.
DecidedBy = Literal["file", "locale", "format", "header", "custodian_zone"]

#: Stable event kinds a parser can report (a subset of the alert kinds in docs/ARCHITECTURE.md).
EventKind = Literal[
    "deleted_message",
    "disappearing_messages",
    "incomplete_copy",
    "truncated_export",
    "system",
]

Direction = Literal["sent", "received", "unknown"]


@dataclass(frozen=True)
class TimeReading:
    """How an original timestamp was read: evidence, kept with the record.

    ``raw`` is the text exactly as it appeared; ``layout`` names the format
    used to read it (e.g. ``"whatsapp-android %d/%m/%y, %H:%M"``, ``"rfc5322"``,
    ``"unix-seconds"``); ``day_first`` is None when the layout has no day/month
    ambiguity; ``decided_by`` says what settled the ambiguity or the zone;
    ``zone`` names the zone the wall time was read in (``"UTC"``, ``"+02:00"``,
    ``"America/New_York"``).
    """

    raw: str
    layout: str
    day_first: bool | None
    decided_by: DecidedBy
    zone: str


@dataclass(frozen=True)
class ParsedAttachment:
    """A file that came with a message. ``data`` is None when the export omitted it."""

    name: str
    content_type: str = "application/octet-stream"
    data: bytes | None = None

    @property
    def omitted(self) -> bool:
        return self.data is None


@dataclass(frozen=True)
class ParsedMessage:
    """One message as the original showed it.

    ``created_at`` is timezone-aware, or None when the original time could not
    be established (the record becomes ``undated``; nobody guesses).
    ``message_key`` is the platform's own identity for the message when it has
    one (Message-ID, Telegram id, Slack ts); the store uses it for dedup.
    ``recipients`` are every other addressee/participant as the original
    named them (e-mail: To, Cc, Bcc in that order).
    """

    platform: str
    conversation: str
    sender: str
    created_at: datetime | None
    time: TimeReading | None
    body: str
    recipients: tuple[str, ...] = ()
    subject: str = ""
    message_key: str = ""
    attachments: tuple[ParsedAttachment, ...] = ()
    edited: bool = False
    reply_to: str = ""
    #: Where an export has no message ids (Signal): a key from the message's own text, which a
    #: quote of it (``reply_to``) can be matched by to find a reply to a message not archived.
    #: Never used to deduplicate (two messages may share their first words).
    text_key: str = ""
    #: free-form markers, e.g. "media_omitted", "system", "forwarded"
    flags: tuple[str, ...] = ()
    #: headers or fields worth keeping sealed with the body (e.g. full e-mail headers)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedEvent:
    """Something an export shows that is not itself a message but matters for the record."""

    kind: EventKind
    conversation: str
    at: datetime | None
    detail: str


#: What a parser yields: a message, or an event about the conversation.
Record = ParsedMessage | ParsedEvent

#: What stands in a record's names and keys for U+0000 (NUL), which PostgreSQL's text cannot hold.
NUL_REPLACEMENT = "\ufffd"


@overload
def nul_replaced(record: ParsedMessage) -> ParsedMessage: ...


@overload
def nul_replaced(record: ParsedEvent) -> ParsedEvent: ...


def nul_replaced(record: Record) -> Record:
    """The record with U+0000 in its names and keys replaced by U+FFFD (the record itself when none has one).

    An export may spell a name with U+0000 (a WhatsApp line ``Counter\\x00part: yes``). SQLite's text
    keeps it; PostgreSQL's cannot, so the same export would be stored on one database and refused
    on the other. Replaced here, once, as the record leaves its parser (``pipeline.guarded_parse``,
    which every path passes: SMTP, the watched folder, ``ingest``, the read-ahead helper, ``dry-run``),
    the index rows, the content documents, the ledger payloads, the search words and the dedup
    identity all see the same text on both databases. Nothing is lost: the sealed raw capture keeps
    the original bytes, U+0000 included.

    Replaced: every field that reaches a text column, or that is matched with one (a message's
    conversation, sender, recipients, message_key, reply_to, text_key; an event's conversation),
    and the subject, attachment names and an event's detail, so that what is sealed reads like
    what is listed. Kept as written: the body, the time as written and ``extra`` (the mail's
    headers), which are only ever sealed, where U+0000 is stored as it is (JSON's ``\\u0000``).

    Most records have none: a message costs one search of its names joined (~0.15 µs).
    """
    if isinstance(record, ParsedEvent):
        if "\x00" in record.conversation or "\x00" in record.detail:
            return dataclasses.replace(record, conversation=_replaced(record.conversation),
                                       detail=_replaced(record.detail))
        return record
    message = record
    if not ("\x00" in f"{message.conversation}{message.sender}{message.subject}{message.message_key}"
                      f"{message.reply_to}{message.text_key}"
            or (message.recipients and "\x00" in "".join(message.recipients))
            or (message.attachments and any("\x00" in a.name for a in message.attachments))):
        return message
    return dataclasses.replace(
        message, conversation=_replaced(message.conversation), sender=_replaced(message.sender),
        recipients=tuple(_replaced(r) for r in message.recipients), subject=_replaced(message.subject),
        message_key=_replaced(message.message_key), reply_to=_replaced(message.reply_to),
        text_key=_replaced(message.text_key),
        attachments=tuple(dataclasses.replace(a, name=_replaced(a.name)) if "\x00" in a.name else a
                          for a in message.attachments))


def _replaced(text: str) -> str:
    return text.replace("\x00", NUL_REPLACEMENT)


@dataclass(frozen=True)
class ParseHints:
    """What a pure parser may know about the custodian (no I/O, no clock).

    ``timezone`` reads zone-less local times; ``day_first`` comes from the
    custodian's locale and is None when no locale is configured (an export
    whose order the file cannot decide is then held for review);
    ``self_names`` are the custodian's own display names, numbers and addresses.
    """

    timezone: tzinfo
    zone_name: str
    day_first: bool | None = None
    self_names: frozenset[str] = frozenset()
    source_name: str = ""
