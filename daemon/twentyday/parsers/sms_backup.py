"""SMS Backup & Restore XML parser: a phone's texts, MMS and call log, streamed.

Files are ``<smses>`` (``<sms>`` and ``<mms>`` records) or ``<calls>``
(``<call>`` records) and can be gigabytes of base64 MMS media, so they are
read with :func:`xml.etree.ElementTree.iterparse`, each record cleared once
yielded: memory stays bounded by the largest single record.

Hardened, with the standard library only:

- no DTD: a ``<!DOCTYPE`` or ``<!ENTITY`` anywhere in the stream (checked in
  the head before parsing, then in every chunk as it is read) raises
  :class:`ParseError` before expat sees it, so no entity can be declared
  (billion laughs) and ElementTree never fetches external entities anyway;
- the bytes are read as UTF-8 whatever the declaration says (the app writes
  UTF-8; a declaration cannot switch the guard above to another encoding);
- surrogate-pair character references (``&#55357;&#56832;``), which the app
  writes for emoji and expat rejects, are rewritten into the real character
  on the fly, a pair split across reads included; a lone surrogate or a
  reference to a character XML forbids (``&#1;``) becomes U+FFFD.

Records:

- ``<sms>``: ``date`` (ms, UTC); ``type`` 1 received, 2 sent, 3 draft,
  4 outbox, 5 failed, 6 queued (types 3-6 are kept and flagged with their
  name). The counterpart is ``address``; the custodian's side is the
  account owner, taken from ``hints.self_names`` (its first phone number):
  the backup itself never names the owner's number.
- ``<mms>``: ``msg_box`` as ``type`` above; ``<addr type>`` 137 from,
  151 to, 130 cc, 129 bcc (``insert-address-token`` is the owner);
  ``text/plain`` parts are the body (one carried only as base64 ``data``
  is kept as an attachment), ``application/smil`` is layout and ignored,
  other parts with base64 ``data`` are attachments with their bytes (a
  part over ``Limits.mms_part_bytes`` is omitted and flagged), parts without
  data are omitted attachments (``media_omitted``); any omission raises
  one ``incomplete_copy`` event per message.
- ``<call>``: a ``system`` event naming the number, contact, type and duration.
- ``"null"`` is a missing value. Conversation is ``contact_name`` or the
  sorted counterpart numbers. There is no reliable message id: message
  keys are empty and the store deduplicates by content. The record's
  attributes (minus bodies and media) are kept sealed in ``extra``.

A file that ends mid-record (an interrupted backup) yields every complete
record and then a ``truncated_export`` event; other malformed XML raises
:class:`ParseError` naming the line.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, Final

from twentyday.errors import ParseError
from twentyday.parsers.base import ExportSource
from twentyday.records import EventKind, ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "RepairingReader", "detect", "parse"]

NAME = "sms_backup"
PLATFORM: Final = "sms"

_READ_BYTES: Final = 1 << 16
_HEAD_BYTES: Final = 8192
_ROOT = re.compile(rb"<(smses|calls)[\s/>]")
_DTD_MARKERS: Final = (b"<!DOCTYPE", b"<!ENTITY")
_DTD_OVERLAP: Final = max(len(m) for m in _DTD_MARKERS) - 1
#: One character reference with at most 10 digits; longer ones are left to expat.
_CHAR_REF = re.compile(rb"&#(?:[xX](?P<hex>[0-9A-Fa-f]{1,8})|(?P<dec>[0-9]{1,10}));")
_PARTIAL_REF = re.compile(rb"&(?:#(?:[xX][0-9A-Fa-f]{0,8}|[0-9]{0,10}))?")
_MAX_REF: Final = len(b"&#4294967295;")
_REPLACEMENT: Final = "\ufffd".encode()
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_NULL: Final = "null"
_UNKNOWN_CONTACT: Final = "(Unknown)"
_OWNER_PLACEHOLDER: Final = "insert-address-token"
_PHONE = re.compile(r"\+?[\d\s().\-]{3,}")

#: sms ``type`` and mms ``msg_box`` values (Android Telephony).
_BOXES: Final = {"1": "received", "2": "sent", "3": "draft", "4": "outbox", "5": "failed", "6": "queued"}
_ADDR_FROM, _ADDR_TO, _ADDR_CC, _ADDR_BCC = "137", "151", "130", "129"
#: Android CallLog.Calls types.
_CALL_TYPES: Final = {
    "1": "incoming",
    "2": "outgoing",
    "3": "missed",
    "4": "voicemail",
    "5": "rejected",
    "6": "blocked",
    "7": "answered on another device",
}
#: CallLog presentation values when the network gave no number.
_HIDDEN_NUMBER: Final = {"2": "(private number)", "3": "(unknown number)", "4": "(payphone)"}
#: expat codes for input that stops mid-document: "no element found", "unclosed token", "partial character".
_TRUNCATION_CODES: Final = frozenset({3, 5, 6})
_SKIPPED_IN_EXTRA: Final = frozenset({"body", "text", "data"})



# --- public API ---------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Whether ``head`` starts an SMS Backup & Restore file (``<smses`` or ``<calls``)."""
    return _looks_like_backup(head)


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Read every backup file in ``source``; yield its messages and events in file order.

    The head of each file is checked now, so a source that is not a backup or
    declares a DTD raises :class:`ParseError` before any record.
    """
    heads = {member: _head(source, member) for member in source.members()}
    members = [m for m, head in heads.items() if _looks_like_backup(head)]
    if not members:
        raise ParseError(f"{source.name}: not an SMS Backup & Restore file (no <smses> or <calls> root)",
                         code="not_this_format")
    for member in members:
        _refuse_dtd(heads[member], _label(source, member), 0)
    owner = _owner(hints.self_names)
    return _records(source, members, owner)


class RepairingReader:
    """A read-only byte stream that makes an SMS backup safe and legal for expat.

    Refuses DTDs (``<!DOCTYPE``, ``<!ENTITY``) wherever they appear, rewrites
    surrogate-pair character references into the character and replaces
    lone surrogates and forbidden characters with U+FFFD. A reference pair
    cut by a read boundary is held back until its end arrives.
    """

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self._name = name
        self._carry = b""  # unprocessed bytes that may start a reference pair
        self._tail = b""  # last raw bytes seen, for markers cut by a read boundary
        self._offset = 0  # raw bytes read so far, for error messages
        self._ready = b""  # processed bytes not yet returned
        self.eof = False

    def read(self, size: int = -1) -> bytes:
        want = _READ_BYTES if size is None or size < 0 else max(size, 1)
        while not self._ready and not self.eof:
            self._fill(want)
        out, self._ready = self._ready[:want], self._ready[want:]
        return out

    def _fill(self, size: int) -> None:
        raw = self._stream.read(size)
        if not raw:
            self.eof = True
            self._ready, _ = _repair(self._carry, final=True)
            self._carry = b""
            return
        _refuse_dtd(self._tail + raw, self._name, self._offset - len(self._tail))
        self._tail = raw[-_DTD_OVERLAP:]
        self._offset += len(raw)
        data = self._carry + raw
        self._ready, used = _repair(data, final=False)
        self._carry = data[used:]


# --- detection and guards -----------------------------------------------------------


def _head(source: ExportSource, member: str) -> bytes:
    """The first bytes of a member, read until full: a pipe-like stream may return short reads."""
    chunks: list[bytes] = []
    size = 0
    with source.open(member) as stream:
        while size < _HEAD_BYTES and (chunk := stream.read(_HEAD_BYTES - size)):
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def _looks_like_backup(head: bytes) -> bool:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<") and _ROOT.search(text) is not None


def _refuse_dtd(data: bytes, name: str, offset: int) -> None:
    for marker in _DTD_MARKERS:
        at = data.find(marker)
        if at >= 0:
            raise ParseError(
                f"{name}: XML entity declarations are not allowed ({marker.decode()} at byte {offset + at + 1})",
                code="xml_entities",
            )


# --- character references -----------------------------------------------------------


def _repair(data: bytes, final: bool) -> tuple[bytes, int]:
    """Rewrite the character references expat rejects; leave every other byte alone.

    Returns the output and how many input bytes it covers. Unless ``final``,
    a reference cut off at the end, and a high surrogate that its low half
    may still follow, are left unconsumed for the next read to complete.
    """
    limit = len(data) if final else _partial_start(data)
    if data.find(b"&#", 0, limit) < 0:
        return data[:limit], limit
    pieces: list[bytes] = []
    done = 0
    high: re.Match[bytes] | None = None  # a high surrogate waiting for its low half
    for match in _CHAR_REF.finditer(data, 0, limit):
        point = _code_point(match)
        if high is not None:
            if _is_low(point) and match.start() == high.end():
                pieces += (data[done : high.start()], _combine(high, point))
                done, high = match.end(), None
                continue
            pieces += (data[done : high.start()], _REPLACEMENT)  # a high half with no low half
            done, high = high.end(), None
        if 0xD800 <= point <= 0xDBFF:
            high = match
        elif not _allowed(point):
            pieces += (data[done : match.start()], _REPLACEMENT)
            done = match.end()
    if high is not None:
        if not final and high.end() == limit:
            limit = high.start()  # its low half may start the next read
        else:
            pieces += (data[done : high.start()], _REPLACEMENT)
            done = high.end()
    pieces.append(data[done:limit])
    return b"".join(pieces), limit


def _partial_start(data: bytes) -> int:
    """Where a character reference cut off by the end of ``data`` starts (else its length)."""
    amp = data.rfind(b"&", max(0, len(data) - _MAX_REF))
    if amp >= 0 and _PARTIAL_REF.fullmatch(data, amp):
        return amp
    return len(data)


def _combine(high: re.Match[bytes], low_point: int) -> bytes:
    point = 0x10000 + ((_code_point(high) - 0xD800) << 10) + (low_point - 0xDC00)
    return chr(point).encode()


def _code_point(match: re.Match[bytes]) -> int:
    digits = match["hex"]
    return int(digits, 16) if digits is not None else int(match["dec"])


def _is_low(point: int) -> bool:
    return 0xDC00 <= point <= 0xDFFF


def _allowed(point: int) -> bool:
    """XML 1.0 Char production."""
    return (
        point in (0x9, 0xA, 0xD) or 0x20 <= point <= 0xD7FF or 0xE000 <= point <= 0xFFFD or 0x10000 <= point <= 0x10FFFF
    )


# --- records ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Party:
    """Who sent a message and who it went to."""

    sender: str
    recipients: tuple[str, ...]


def _records(source: ExportSource, members: list[str], owner: str) -> Iterator[Record]:
    for member in members:
        with source.open(member) as stream:
            yield from _member_records(stream, _label(source, member), owner, source.limits.mms_part_bytes)


def _label(source: ExportSource, member: str) -> str:
    return source.name if member == source.name else f"{source.name}: {member}"


def _member_records(stream: BinaryIO, name: str, owner: str, part_cap: int) -> Iterator[Record]:
    reader = RepairingReader(stream, name)
    # Safe without defusedxml: the stream reaching expat has no DTD (RepairingReader
    # refuses one), so no entity can be declared, and ElementTree never loads
    # external entities. Expat reads UTF-8 whatever the declaration says, so a
    # declared UTF-16 cannot slip a DOCTYPE past the byte-based guard.
    parser = ET.XMLParser(encoding="utf-8")  # noqa: S314
    events = ET.iterparse(reader, events=("start", "end"), parser=parser)  # noqa: S314
    root: ET.Element | None = None
    last: datetime | None = None
    count = 0
    try:
        for event, element in events:
            if root is None:
                root = _check_root(element, name)
                continue
            if event != "end" or element.tag not in ("sms", "mms", "call"):
                continue
            for record in _element_records(element, owner, part_cap):
                last = _time_of(record) or last
                count += 1
                yield record
            root.clear()  # drop the finished record (and its base64) from the tree
    except ET.ParseError as error:
        yield _truncated(error, reader, name, count, last)


def _check_root(element: ET.Element, name: str) -> ET.Element:
    if element.tag not in ("smses", "calls"):
        raise ParseError(f"{name}: not an SMS Backup & Restore file (root element <{element.tag}>)",
                         code="not_this_format")
    return element


def _truncated(error: ET.ParseError, reader: RepairingReader, name: str, count: int, last: datetime | None) -> Record:
    line, column = error.position
    if reader.eof and count and error.code in _TRUNCATION_CODES:
        detail = f"{name}: file ends mid-record after {count} records (line {line}): the backup looks cut short"
        return ParsedEvent(kind="truncated_export", conversation="", at=last, detail=detail)
    raise ParseError(f"{name}: not well-formed XML at line {line}, column {column}: {error.msg}",
                     code="bad_xml") from None


def _time_of(record: Record) -> datetime | None:
    return record.created_at if isinstance(record, ParsedMessage) else record.at


def _element_records(element: ET.Element, owner: str, part_cap: int) -> list[Record]:
    if element.tag == "sms":
        return _sms(element, owner)
    if element.tag == "mms":
        return _mms(element, owner, part_cap)
    return [_call(element)]


# --- sms --------------------------------------------------------------------------


def _sms(element: ET.Element, owner: str) -> list[Record]:
    address = _attr(element, "address") or ""
    box = _attr(element, "type") or ""
    party = _party_for_box(box, owner, address, [address] if address else [])
    at, reading = _read_date(_attr(element, "date"))
    message = ParsedMessage(
        platform=PLATFORM,
        conversation=_contact(element) or address or "(no address)",
        sender=party.sender,
        created_at=at,
        time=reading,
        body=_attr(element, "body") or "",
        recipients=party.recipients,
        subject=_attr(element, "subject") or "",
        flags=_box_flags(box) + (() if reading else ("undated",)),
        extra=_extra(element),
    )
    return [message]


def _party_for_box(box: str, owner: str, sender: str, others: list[str]) -> _Party:
    """Sent/draft/outbox/failed/queued are the owner's; everything else came in."""
    if box in _BOXES and box != "1":
        return _Party(owner, _unique(others, exclude=owner))
    return _Party(sender, _unique([owner, *others] if owner else others, exclude=sender))


def _box_flags(box: str) -> tuple[str, ...]:
    if box in ("1", "2"):
        return ()
    return (_BOXES[box],) if box in _BOXES else (f"type_unknown:{box or 'none'}",)


# --- mms --------------------------------------------------------------------------


@dataclass
class _Parts:
    """What an MMS's parts amount to."""

    texts: list[str]
    attachments: list[ParsedAttachment]
    omitted: list[str]  # "name (reason)" for the event
    flags: list[str]


def _mms(element: ET.Element, owner: str, part_cap: int) -> list[Record]:
    box = _attr(element, "msg_box") or ""
    party = _mms_party(element, box, owner)
    parts = _mms_parts(element, part_cap)
    at, reading = _read_date(_attr(element, "date"))
    conversation = _contact(element) or _counterparts(element, party) or "(no address)"
    message = ParsedMessage(
        platform=PLATFORM,
        conversation=conversation,
        sender=party.sender,
        created_at=at,
        time=reading,
        body="\n".join(parts.texts),
        recipients=party.recipients,
        subject=_attr(element, "sub") or "",
        attachments=tuple(parts.attachments),
        flags=(*_box_flags(box), "mms", *parts.flags, *(() if reading else ("undated",))),
        extra=_extra(element),
    )
    if not parts.omitted:
        return [message]
    detail = f"MMS from {message.sender or '(unknown)'}: not in the backup: {', '.join(parts.omitted)}"
    return [message, _event("incomplete_copy", conversation, at, detail)]


def _mms_party(element: ET.Element, box: str, owner: str) -> _Party:
    addrs = [(_attr(a, "address") or "", _attr(a, "type") or "") for a in element.iterfind("addrs/addr")]
    if not addrs:  # old backups have only the '~'-joined address attribute
        others = (_attr(element, "address") or "").split("~")
        sender = others[0] if len(others) == 1 and box == "1" else ""
        return _party_for_box(box, owner, sender, [o for o in others if o])
    senders = [a for a, kind in addrs if kind == _ADDR_FROM]
    sender = senders[0] if senders else ""
    if sender == _OWNER_PLACEHOLDER or (not sender and box in _BOXES and box != "1"):
        sender = owner
    to = [a for kind in (_ADDR_TO, _ADDR_CC, _ADDR_BCC) for a, k in addrs if k == kind]
    return _Party(sender, _unique([owner if a == _OWNER_PLACEHOLDER else a for a in to], exclude=sender))


def _counterparts(element: ET.Element, party: _Party) -> str:
    """The conversation's other numbers, sorted: the thread's identity when no contact is named."""
    listed = [a for a in (_attr(element, "address") or "").split("~") if a]
    numbers = listed or [a for a in (party.sender, *party.recipients) if a]
    return ", ".join(sorted(set(numbers)))


def _mms_parts(element: ET.Element, part_cap: int) -> _Parts:
    parts = _Parts([], [], [], [])
    for index, part in enumerate(element.iterfind("parts/part")):
        _add_part(parts, part, index, part_cap)
    if parts.omitted and "media_omitted" not in parts.flags:
        parts.flags.append("media_omitted")
    return parts


def _add_part(parts: _Parts, part: ET.Element, index: int, part_cap: int) -> None:
    """One MMS part: text, an attachment decoded from base64, or an omission (over ``part_cap`` bytes)."""
    content_type = _attr(part, "ct") or "application/octet-stream"
    kind = content_type.lower()
    if kind == "application/smil":
        return  # slide layout, not content
    text, data = _attr(part, "text"), _attr(part, "data")
    if kind.startswith("text/plain") and (text is not None or data is None):
        if text:
            parts.texts.append(text)
        return
    name = _attr(part, "cl") or _attr(part, "name") or _attr(part, "fn") or f"part-{_attr(part, 'seq') or index}"
    if data is None:
        _omit(parts, name, content_type, "no data in the backup")
        return
    if len(data) // 4 * 3 > part_cap:
        _omit(parts, name, content_type, f"larger than {part_cap} bytes", "media_too_large")
        return
    try:
        decoded = base64.b64decode(data)
    except (binascii.Error, ValueError):
        _omit(parts, name, content_type, "data is not valid base64", "media_unreadable")
        return
    parts.attachments.append(ParsedAttachment(name=name, content_type=content_type, data=decoded))


def _omit(parts: _Parts, name: str, content_type: str, reason: str, flag: str = "media_omitted") -> None:
    parts.attachments.append(ParsedAttachment(name=name, content_type=content_type, data=None))
    parts.omitted.append(f"{name} ({reason})")
    if flag not in parts.flags:
        parts.flags.append(flag)


# --- calls ------------------------------------------------------------------------


def _call(element: ET.Element) -> ParsedEvent:
    number = _attr(element, "number") or _HIDDEN_NUMBER.get(_attr(element, "presentation") or "", "(no number)")
    contact = _contact(element)
    raw_type = _attr(element, "type") or ""
    kind = _CALL_TYPES.get(raw_type, f"type {raw_type or 'unknown'}")
    duration = _attr(element, "duration") or "0"
    at, _ = _read_date(_attr(element, "date"))
    who = f"{number} ({contact})" if contact else number
    detail = f"call: {kind}, number {who}, duration {duration} s"
    return _event("system", contact or number, at, detail)


# --- shared helpers ---------------------------------------------------------------


def _attr(element: ET.Element, key: str) -> str | None:
    """An attribute's value, with the app's literal "null" read as missing."""
    value = element.get(key)
    return None if value is None or value == _NULL else value


def _contact(element: ET.Element) -> str:
    name = _attr(element, "contact_name") or ""
    return "" if name == _UNKNOWN_CONTACT else name


def _read_date(raw: str | None) -> tuple[datetime | None, TimeReading | None]:
    """Epoch milliseconds in UTC; an unreadable date leaves the record undated, never guessed."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 15:
        return None, None
    try:
        at = _EPOCH + timedelta(milliseconds=int(raw))
    except OverflowError:
        return None, None
    return at, TimeReading(raw=raw, layout="epoch-ms", day_first=None, decided_by="format", zone="UTC")


def _extra(element: ET.Element) -> dict[str, str]:
    """The record's own fields, sealed with it: the app's evidence of what the phone held."""
    return {k: v for k, v in element.attrib.items() if k not in _SKIPPED_IN_EXTRA and v != _NULL}


def _event(kind: EventKind, conversation: str, at: datetime | None, detail: str) -> ParsedEvent:
    return ParsedEvent(kind=kind, conversation=conversation, at=at, detail=detail)


def _unique(items: list[str], exclude: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i and i != exclude))


def _owner(self_names: frozenset[str]) -> str:
    """The custodian's number as the backup's owner: the first phone-like self name, else any."""
    ordered = sorted(self_names)
    phones = [n for n in ordered if _PHONE.fullmatch(n.strip())]
    return (phones or ordered or [""])[0]
