"""An e-mail capture (``.eml``): the message itself, or the original message inside a forward.

44 U.S.C. 2911's clock starts when the *original* message was created or sent,
so a forward is never the record: it is the capture (the store keeps its raw
bytes), and the record describes the original it carries — the original's
sender, To/Cc/Bcc (so an official address among them makes the record
``copied``), subject, date, body and attachments. What the forward says about
itself is kept in ``extra`` (``forwarded_by``, ``forward_date`` as written,
``forward_subject``, ``forward_depth``, ``forward_client``, ``forward_chain``)
and the record is flagged ``forwarded``.

How a forward is recognised, outermost first:

- **As an attachment**: ``message/rfc822``, ``message/global`` or
  ``message/news`` parts (also the whole message being one, as GroupWise sends
  it, and the parts of a ``multipart/digest``), outside ``multipart/report``
  (a bounce, complaint or receipt quotes a message; it does not forward it).
  An enclosure without any of From, To, Date, Subject or Message-ID is broken
  and stays a mere attachment; one whose transfer encoding cannot be undone
  (base64 cut off mid-way) is skipped and every record of the capture is
  flagged ``unreadable_enclosure`` (its raw bytes stay in the capture). At
  the top every usable enclosure is an original (this address receives
  forwards), one record each. Deeper, an
  enclosed message is only passed through when it is a relay itself: its
  subject carries a forward prefix, it is a digest or a bare ``message/*``, or
  it has no text of its own — otherwise it is the record, and what it attaches
  stays its attachment.
- **Inline**: :func:`forwarded.find_forwarded` on the body text (HTML-only
  mail is made text first). A message whose subject is a reply ("Re: ...")
  quoting a header block is the reply itself, not a forward. At the top a
  block under a subject with neither prefix is taken as forwarded (Outlook's
  forward and reply headers look alike, and this address receives forwards);
  below the top an inline block is followed only under a forward prefix.

Forwards of forwards end at the innermost original; every step is kept in
``forward_chain``. When the original's date cannot be read the record is
undated (``created_at`` None, the raw text kept in ``time``, flag
``undated_forward``): the forward's own date is never put in its place. So is
a message whose subject says it is a forward but in which no original is found
(flag ``original_not_found`` too; a mail carrying a chat export is exempt, the
export being the capture that counts), and so is a chain of attached forwards
still relaying at :data:`~twentyday.parsers.mail.message.MAX_DEPTH` hops (flag
``forward_chain_too_deep`` as well), and an original dated more than
:data:`CLOCK_SKEW` after a forward that carried it (flag
``original_after_forward``, its date's text kept in ``time``). An
inline forward that carries no attachments although the original refers to
some (a placeholder such as ``<image001.png>`` or ``[cid:...]``, or words like
"attached") gets placeholder attachments with ``data=None``, the flag
``media_omitted`` and an ``incomplete_copy`` event. (A forward as attachment
carries the original's own MIME, attachments included, so it is not judged
by its words: an original that says "attached" and has nothing attached was
sent that way.)

Chat exports attached to mail stay attachments of the mail record (flag
``chat_export_attached``); :func:`chat_export_attachments` hands them to the
pipeline so each is ingested as a capture of its own.
"""

from __future__ import annotations

import binascii
import dataclasses
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message

from twentyday.errors import ParseError
from twentyday.parsers.base import (
    DEFAULT_LIMITS,
    HEAD_BYTES,
    ZIP_MAGIC,
    BytesSource,
    ExportSource,
    Limits,
    ZipSource,
    read_head,
)
from twentyday.parsers.common import content_type, read_member
from twentyday.parsers.formats import CHAT_FORMATS
from twentyday.parsers.mail.dates import read_mail_date
from twentyday.parsers.mail.forwarded import ForwardedOriginal, find_forwarded, strip_forward_prefix
from twentyday.parsers.mail.message import (
    MAX_DEPTH,
    STDLIB_ERRORS,
    Budget,
    addresses,
    attachments,
    body_text,
    describe,
    filename,
    flatten,
    header,
    leaves,
    looks_like_email,
    original_time,
    part_bytes,
    part_name,
    require_headers,
)
from twentyday.parsers.mail.message import parse as parse_message
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "chat_export_attachments", "detect", "parse", "read_capture"]

NAME = "email"

ENCLOSURE_TYPES = frozenset({"message/rfc822", "message/global", "message/news"})
#: Reply prefixes in the languages mail clients write them (forward prefixes live in forwarded.py).
_REPLY_PREFIX = re.compile(
    r"\s*(?:re|aw|sv|antw|antwort|rif|r|res|odp|ynt|atb|vá|απ|отв|回复|答复)(?:\s*\[\d{1,3}\])?\s*:",
    re.IGNORECASE,
)
#: Placeholders mail clients leave where an attachment or inline image was.
_PLACEHOLDERS = (
    re.compile(r"\[cid:([^\]\s@]{1,200})(?:@[^\]\s]{0,200})?\]"),  # Outlook/Gmail inline image
    re.compile(r"\[image:\s?([^\]\n]{1,200})\]"),  # Gmail plain-text rendering
    re.compile(r"<<([^<>\n]{1,200})>>"),  # Outlook: <<Budget 2026.pdf>>
    re.compile(r"(?<!<)<([^<>\s@/\\:]{1,200}\.[A-Za-z0-9]{2,5})>(?!>)"),  # Outlook: <image001.png>
)
_MAX_PLACEHOLDERS = 50
#: Words by which an original refers to its attachments; "this e-mail and any attachments are
#: confidential" (a disclaimer under every message of some senders) is not a reference.
_REFERS_TO_ATTACHMENT = re.compile(
    r"\b(?:attached|(?<!any )(?<!and )(?<!its )(?<!or )(?<!no )attachments?|enclosed|enclosure"
    r"|anhang|angehängt|beigefügt|anbei|pièces? jointes?"
    r"|ci-joint(?:e|s|es)?|adjunt[oa]s?|allegat[oi]|in allegato|bijlage|bijgevoegd|anexos?|em anexo)\b",
    re.IGNORECASE,
)
REFERENCED_ATTACHMENT = "(referenced attachment)"
#: Inline forwards are looked for in this much of a body; past it the original's text is kept as written.
FORWARD_SCAN_CHARS = 1024 * 1024
#: Placeholders and references are looked for near the top; a huge body is not scanned to its end.
_SCAN_CHARS = 2 * 1024 * 1024
#: A sender's clock running fast, or a zone-less time read in the custodian's zone: an original up
#: to this much later than a forward carrying it keeps its date; any later, the date is not believed.
CLOCK_SKEW = timedelta(days=1)


def detect(source: ExportSource, head: bytes) -> bool:
    return len(source.members()) == 1 and looks_like_email(head)


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    members = source.members()
    if len(members) != 1:
        raise ParseError(f"{source.name}: an e-mail capture is one message, not {len(members)} files",
                         code="not_this_format")
    [member] = members
    limits = source.limits
    raw = read_member(source, member, limits.mail_message_bytes)
    if raw is None:
        raise ParseError(f"{source.name}: larger than {limits.mail_message_bytes} bytes for one e-mail message",
                         code="too_large")
    yield from read_capture(raw, hints, limits)


def read_capture(raw: bytes, hints: ParseHints, limits: Limits = DEFAULT_LIMITS) -> list[Record]:
    """The records one captured e-mail holds: the originals it forwards, or itself."""
    message = parse_message(raw, limits)
    require_headers(message)
    try:
        return _Reader(hints, limits).records(message)
    except STDLIB_ERRORS as error:
        raise ParseError(f"unreadable message: {type(error).__name__}", code="unreadable_message") from None


# --- forwards ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hop:
    """One forwarding step: how the next message was carried, and by whom."""

    how: str  # "attachment", "digest" or "inline:<client>"
    sender: str
    date: str
    subject: str
    levels: int = 1  # an inline forward of forwards counts each level
    at: datetime | None = None  # ``date`` read, when it can be

    def as_dict(self) -> dict[str, str | int]:
        return {"how": self.how, "from": self.sender, "date": self.date, "subject": self.subject, "levels": self.levels}


@dataclass(frozen=True)
class _Enclosed:
    """An enclosed original and the steps that led to it.

    ``too_deep``: ``message`` is not the original but a relay still forwarding at the
    hop limit (:data:`MAX_DEPTH`); the original lies deeper than is read.
    """

    message: Message
    hops: tuple[_Hop, ...]
    too_deep: bool = False


def _hop(message: Message, how: str, levels: int = 1) -> _Hop:
    found = addresses(message, "From")
    sender = found[0] if found else header(message, "From")
    at, _ = original_time(message)
    return _Hop(how, sender, header(message, "Date"), header(message, "Subject"), levels, at)


def has_forward_prefix(subject: str) -> bool:
    return strip_forward_prefix(subject) != subject.strip()


def _is_reply(subject: str) -> bool:
    return not has_forward_prefix(subject) and _REPLY_PREFIX.match(subject) is not None


def _usable(message: Message) -> bool:
    return any(message.get(name) is not None for name in ("From", "To", "Date", "Subject", "Message-ID"))


class _Reader:
    """Resolves one parsed capture into records, spending one decoding budget."""

    def __init__(self, hints: ParseHints, limits: Limits) -> None:
        self.hints = hints
        self.limits = limits
        self.budget = Budget(limits.mail_decoded_bytes)
        #: An enclosed message whose transfer encoding could not be undone (e.g. cut-off base64).
        self.unreadable_enclosure = False

    def records(self, top: Message) -> list[Record]:
        found = self._resolve(top)
        if not self.unreadable_enclosure:
            return found
        # The other enclosures are still recorded; the flag sends a reviewer to the capture's raw
        # bytes for the one that could not be read (it may be an original with a clock of its own).
        return [
            dataclasses.replace(record, flags=(*record.flags, "unreadable_enclosure"))
            if isinstance(record, ParsedMessage)
            else record
            for record in found
        ]

    def _resolve(self, top: Message) -> list[Record]:
        originals = self._originals(top, at_top=True, hops=())
        if originals:
            out: list[Record] = []
            for enclosed in originals:
                out += self._enclosed_record(top, enclosed)
            return out
        body = body_text(top, self.budget)
        if top.get_content_type() != "multipart/report":
            found = self._inline(top, body[0], at_top=True)
            if found is not None:
                return self._inline_record(top, top, body[1], found, ())
        record = self._with_chat_flag(describe(top, self.budget, body))
        if has_forward_prefix(header(top, "Subject")) and "chat_export_attached" not in record.flags:
            return self._original_not_found(top, record)
        return [record]

    def _original_not_found(self, top: Message, record: ParsedMessage) -> list[Record]:
        """A forward ("Fwd: ...") in which no original can be found: undated, never the forward's date.

        The original's sender and time are unknown (its header block was cut, or is in a
        form not recognised), so the record is the forward's own text, flagged for review;
        its 20-day clock cannot be checked, which the undated record's alert says.
        """
        record = dataclasses.replace(record, created_at=None, time=None,
                                     flags=(*record.flags, "original_not_found"))
        return self._forward(top, record, (_hop(top, "inline:not-found"),), "", inline=True)

    # --- attachments ---

    def _originals(self, message: Message, *, at_top: bool, hops: tuple[_Hop, ...]) -> list[_Enclosed]:
        """The innermost originals enclosed in ``message``, each with the steps that led to it."""
        found = self._enclosures(message)
        if not found:
            return []
        if not at_top and not self._relays(message, found):
            return []
        if len(hops) >= MAX_DEPTH:
            # Still relaying at the limit: returning nothing would make this forward the original.
            return [_Enclosed(message, hops, too_deep=True)]
        out: list[_Enclosed] = []
        for enclosed, in_digest in found:
            path = (*hops, _hop(message, "digest" if in_digest else "attachment"))
            deeper = self._originals(enclosed, at_top=False, hops=path)
            out += deeper or [_Enclosed(enclosed, path)]
        return out

    def _enclosures(self, message: Message) -> list[tuple[Message, bool]]:
        """Usable enclosed messages, in order, with whether a digest holds them; reports are skipped."""
        found: list[tuple[Message, bool]] = []
        stack = [(message, False)]
        while stack:
            part, in_digest = stack.pop()
            kind = part.get_content_type()
            payload = part.get_payload()
            if kind == "multipart/report":
                continue
            if part.get_content_maintype() == "message":
                enclosed = self._enclosed(part) if kind in ENCLOSURE_TYPES else None
                if enclosed is not None and _usable(enclosed):
                    found.append((enclosed, in_digest))
            elif isinstance(payload, list):
                inner = in_digest or kind == "multipart/digest"
                stack.extend(reversed([(child, inner) for child in payload if isinstance(child, Message)]))
        return found

    def _enclosed(self, part: Message) -> Message | None:
        payload = part.get_payload()
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], Message):
            return None
        inner = payload[0]
        encoding = header(part, "Content-Transfer-Encoding").lower()
        if encoding not in ("base64", "quoted-printable"):
            return inner
        # RFC 6532 lets message/global be encoded; the stdlib parsed the encoded text as a message.
        encoded = flatten(inner)
        try:
            data = binascii.a2b_base64(encoded) if encoding == "base64" else binascii.a2b_qp(encoded)
        except binascii.Error:
            self.unreadable_enclosure = True  # truncated or damaged: this enclosure is lost, not its siblings
            return None
        self.budget.spend(len(data))
        try:
            return parse_message(data, self.limits)
        except ParseError:
            return None

    def _relays(self, message: Message, found: list[tuple[Message, bool]]) -> bool:
        """Does an enclosed ``message`` only pass its own enclosures on (see the module doc)?"""
        if has_forward_prefix(header(message, "Subject")) or message.get_content_maintype() == "message":
            return True
        if any(in_digest for _, in_digest in found):
            return True
        return not body_text(message, self.budget)[0].strip()

    def _enclosed_record(self, top: Message, original: _Enclosed) -> list[Record]:
        if original.too_deep:
            return self._beyond_hop_limit(top, original)
        enclosed, hops = original.message, original.hops
        body = body_text(enclosed, self.budget)
        found = self._inline(enclosed, body[0], at_top=False)
        if found is not None:
            return self._inline_record(top, enclosed, body[1], found, hops)
        record = describe(enclosed, self.budget, body)
        raw_date = record.time.raw if record.time else ""
        # An enclosure is the original's own MIME, attachments and all: complete by construction.
        return self._forward(top, record, hops, raw_date, inline=False)

    def _beyond_hop_limit(self, top: Message, found: _Enclosed) -> list[Record]:
        """Forwards nested past the hop limit: undated for review, like a forward without an original.

        The record is the last relay read, whose own Date is a forward's and never the original's.
        """
        record = describe(found.message, self.budget)
        record = dataclasses.replace(record, created_at=None, time=None,
                                     flags=(*record.flags, "original_not_found", "forward_chain_too_deep"))
        return self._forward(top, record, found.hops, "", inline=False)

    # --- inline ---

    def _inline(self, message: Message, body: str, *, at_top: bool) -> ForwardedOriginal | None:
        if not body.strip():
            return None
        subject = header(message, "Subject")
        if not has_forward_prefix(subject) and (not at_top or _is_reply(subject)):
            return None  # a reply quoting its thread is the reply; below the top only "Fwd:" relays
        # find_forwarded costs up to ~0.25 s per MB of hostile text; forward headers sit near the top.
        found = find_forwarded(
            body[:FORWARD_SCAN_CHARS],
            default_zone=self.hints.timezone,
            zone_name=self.hints.zone_name,
            day_first=self.hints.day_first,
        )
        if found is not None and len(body) > FORWARD_SCAN_CHARS:
            found = dataclasses.replace(found, body=found.body + body[FORWARD_SCAN_CHARS:])
        return found

    def _inline_record(
        self,
        top: Message,
        carrier: Message,
        body_part: Message | None,
        found: ForwardedOriginal,
        hops: tuple[_Hop, ...],
    ) -> list[Record]:
        """The original recovered from ``carrier``'s body; its attachments came with the carrier."""
        path = (*hops, _hop(carrier, f"inline:{found.client}", found.depth))
        references = header(carrier, "References").split() or header(carrier, "In-Reply-To").split()
        record = ParsedMessage(
            platform="email",
            # The forward's References name the original's thread when the client kept them.
            conversation=references[0] if references else "(no thread)",
            sender=found.sender_address or found.sender,
            created_at=found.created_at,
            time=found.time or self._unread_time(found),
            body=found.body,
            recipients=tuple(_identity(entry) for entry in (*found.to, *found.cc, *found.bcc)),
            subject=found.subject,
            attachments=attachments(carrier, body_part, self.budget),
            extra={"original_from": found.sender},
        )
        return self._forward(top, record, path, found.date_text, inline=True)

    def _unread_time(self, found: ForwardedOriginal) -> TimeReading | None:
        if not found.date_text:
            return None
        reading = read_mail_date(
            found.date_text,
            default_zone=self.hints.timezone,
            zone_name=self.hints.zone_name,
            day_first=self.hints.day_first,
        )
        return TimeReading(
            raw=found.date_text,
            layout=f"{found.client}-unreadable: {reading.problem}",
            day_first=None,
            decided_by="format",
            zone="",
        )

    # --- the record of a forward ---

    def _forward(
        self, top: Message, record: ParsedMessage, hops: tuple[_Hop, ...], original_date: str, *, inline: bool
    ) -> list[Record]:
        forwarders = addresses(top, "From")
        extra = {
            **record.extra,
            "forwarded_by": header(top, "From"),
            "forwarded_by_address": forwarders[0] if forwarders else "",
            "forward_date": header(top, "Date"),
            "forward_subject": header(top, "Subject"),
            "forward_message_id": header(top, "Message-ID"),
            "forward_depth": str(sum(hop.levels for hop in hops)),
            "forward_client": hops[-1].how,
            "forward_chain": json.dumps([hop.as_dict() for hop in hops], ensure_ascii=False),
            "original_date": original_date,
        }
        flags = ["forwarded"]
        if record.created_at is not None and _dated_after_a_forward(record.created_at, hops):
            record = _untrusted_date(record)
            flags.append("original_after_forward")
        if record.created_at is None:
            flags.append("undated_forward")
        record = self._with_chat_flag(dataclasses.replace(record, flags=(*record.flags, *flags), extra=extra))
        return _completeness(record) if inline else [record]

    def _with_chat_flag(self, record: ParsedMessage) -> ParsedMessage:
        if any(a.data is not None and _looks_like_chat_export(a.name, a.data, self.limits) for a in record.attachments):
            return dataclasses.replace(record, flags=(*record.flags, "chat_export_attached"))
        return record


def _dated_after_a_forward(moment: datetime, hops: tuple[_Hop, ...]) -> bool:
    """Is the original dated later than a forward that carried it, beyond clock skew?"""
    return any(hop.at is not None and moment > hop.at + CLOCK_SKEW for hop in hops)


def _untrusted_date(record: ParsedMessage) -> ParsedMessage:
    """Undated, the date's text kept: an original cannot be sent after its forward.

    A mistyped or hostile Date would otherwise start the 20-day clock in the future
    and keep a late record looking on time.
    """
    time = record.time
    if time is not None:
        time = dataclasses.replace(time, layout=f"{time.layout}-untrusted: dated after its forward")
    return dataclasses.replace(record, created_at=None, time=time)


def _identity(entry: str) -> str:
    """ "Walter Sheltan <walter.sheltan@acme.com>" -> the address; a bare name stays a name."""
    start, end = entry.rfind("<"), entry.rfind(">")
    if 0 <= start < end and "@" in entry[start:end]:
        return entry[start + 1 : end].strip().lower()
    return entry.strip().lower() if "@" in entry else entry.strip()


# --- incomplete copies ---------------------------------------------------------------------------


def placeholders(text: str) -> list[str]:
    """Names of attachments a client left placeholders for, in order, without repeats."""
    found: list[tuple[int, str]] = []
    for pattern in _PLACEHOLDERS:
        for count, match in enumerate(pattern.finditer(text)):
            if count >= _MAX_PLACEHOLDERS:
                break
            found.append((match.start(), match.group(1).strip()))
    names = dict.fromkeys(name for _, name in sorted(found) if name)
    return list(names)[:_MAX_PLACEHOLDERS]


def _completeness(record: ParsedMessage) -> list[Record]:
    """A forward without the attachments its original refers to is an incomplete copy (docs/ARCHITECTURE.md)."""
    if record.attachments:
        return [record]
    text = record.body[:_SCAN_CHARS]
    names = placeholders(text)
    if not names and not _REFERS_TO_ATTACHMENT.search(text):
        return [record]
    omitted = tuple(ParsedAttachment(name=name, content_type=content_type(name)) for name in names)
    omitted = omitted or (ParsedAttachment(name=REFERENCED_ATTACHMENT),)
    record = dataclasses.replace(record, attachments=omitted, flags=(*record.flags, "media_omitted"))
    detail = (
        f"forwarded copy carries none of the {len(names)} attachment(s) the original shows placeholders for"
        if names
        else "forwarded copy carries no attachments although the original refers to one"
    )
    return [record, ParsedEvent("incomplete_copy", record.conversation, record.created_at, detail)]


# --- chat exports sent by mail -------------------------------------------------------------------


def _looks_like_chat_export(name: str, data: bytes, limits: Limits) -> bool:
    """Would the folder path read this file as a chat export? Asked of the same list, :data:`CHAT_FORMATS`."""
    if data[:4] == ZIP_MAGIC:
        return _zip_looks_like_chat_export(name, data, limits)
    return _detected(BytesSource(name, data, limits), data[:HEAD_BYTES])


def _zip_looks_like_chat_export(name: str, data: bytes, limits: Limits) -> bool:
    """WhatsApp-with-media, Telegram, Slack, Takeout and Messenger exports are zips; an ordinary
    zip (documents, photos) is only an attachment of its mail, sealed with it."""
    try:
        source = ZipSource(io.BytesIO(data), name, limits)
    except ParseError:
        return True  # damaged or hostile: the pipeline quarantines it with the reason, for review
    try:
        members = source.members()
        head = read_head(source, members[0]) if len(members) == 1 else b""
        return _detected(source, head)
    except ParseError:
        return True
    finally:
        source.close()


def _detected(source: ExportSource, head: bytes) -> bool:
    for module in CHAT_FORMATS:
        try:
            if module.detect(source, head):
                return True
        except (ParseError, OSError, UnicodeError, *STDLIB_ERRORS):
            continue  # a detector that fails on odd bytes has not recognised them
    return False


def _files(message: Message, budget: Budget) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every named file in the message, enclosed messages' files included."""
    number = 0
    stack = [message]
    while stack:
        for part, _ in leaves(stack.pop()):
            payload = part.get_payload()
            if part.get_content_maintype() == "message" and isinstance(payload, list):
                stack.extend(child for child in payload if isinstance(child, Message))
                continue
            if part.get_content_disposition() == "attachment" or filename(part):
                number += 1
                yield part_name(part, number), part_bytes(part, budget)


def chat_export_attachments(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, bytes]]:
    """Attachments (at any depth) that look like chat exports, as (file name, bytes).

    The pipeline ingests each as a capture of its own, linked to the mail's capture;
    the mail record keeps them as attachments too. Raises ParseError for mail that
    cannot be read within the same bounds as :func:`parse`.
    """
    lowered = raw.lower()
    if b"name" not in lowered and b"attachment" not in lowered:
        # No header can give a part a file name ("name=", "filename*0*=") or make it an
        # attachment, so no part is a file: skip parsing the message again.
        return []
    message = parse_message(raw, limits)
    try:
        return [(name, data) for name, data in _files(message, Budget(limits.mail_decoded_bytes))
                if _looks_like_chat_export(name, data, limits)]
    except STDLIB_ERRORS as error:
        raise ParseError(f"unreadable message: {type(error).__name__}", code="unreadable_message") from None
