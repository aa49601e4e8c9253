"""Telegram Desktop HTML export (``messages.html``, ``messages2.html``, …): bytes in, records out.

HTML is the export's default format. The authority for the shape is tdesktop's
``Telegram/SourceFiles/export/output/export_output_html.cpp`` (``HtmlWriter``):

- a single-chat export is one folder: ``messages.html``, ``messages2.html``, … (1000
  messages a file, ``HtmlWriter::messagesFile``) beside ``css/``, ``js/``, ``images/``
  and the media folders (``photos/``, ``files/``, ``voice_messages/``, …);
- a full export adds ``export_results.html`` and ``lists/*.html`` and puts each chat in
  ``chats/chat_NNN/messages*.html``. Only the ``messages*.html`` pages hold messages.

Pages are read in numeric order (``messages10.html`` after ``messages9.html``), folder by
folder, with the standard library's ``html.parser`` fed one chunk at a time: memory is
bounded by one message (``Limits.message_chars``) plus one chunk, and nothing is ever
rendered, fetched or run (a ``<script>`` in a message is text tdesktop escaped).

What ``Wrap::pushMessage`` writes, and how it is read:

- ``<div class="message default clearfix" id="messageN">``; ``joined`` is added when the
  sender is the previous message's (``messageNeedsWrap``): its ``from_name`` is left out
  and carried over here from the message before it on the same page (each page starts
  a new group). A joined message with nothing to carry over is kept, flagged
  ``sender_unknown``.
- ``<div class="pull_right date details" title="DD.MM.YYYY HH:MM:SS UTC+HH:MM">``
  (``Data::FormatDateTime``). Older versions write no offset: the time is the exporting
  machine's wall time, read in the custodian's zone (``decided_by="custodian_zone"``).
  The offset tdesktop writes is the machine zone's *standard* offset
  (``QTimeZone::StandardTime``), not the one in force on the message's day; so when the
  custodian's zone has that standard offset, the wall time is read in the custodian's
  zone (a summer message is then right, not an hour off) and the reading says which was
  used. Any other title is kept as ``time.raw`` on an ``undated`` record.
- ``from_name`` (`` via @bot`` included), ``forwarded body`` (its own ``from_name`` and
  date span: flag ``forwarded``, ``extra["forwarded_from"]``), ``reply_to details`` (a
  ``GoToMessage``/``#go_to_messageN`` link: ``reply_to``), ``text`` (``<br>`` is a line
  break), ``signature details`` (``extra["author"]``).
- ``media_wrap``: a file the export holds is linked (``photo_wrap``, ``video_file_wrap``,
  ``animated_wrap``, ``sticker_wrap``, or ``media … block_link`` with a relative ``href``):
  it is read from the source (up to ``Limits.media_bytes``). A photo, video, voice or
  audio message, file or sticker with no link was left out (``NoFileDescription``: "Not
  included, change data exporting settings to download.", "Exceeds maximum size, …",
  "Unavailable, …"): an attachment with ``data=None``, flag ``media_omitted`` and an
  ``incomplete_copy`` event. A self-destructing photo or video also gives a
  ``disappearing_messages`` event. A call (``media_call``) is a ``system`` event.
- ``message service`` with a positive id (``pushServiceMessage``) is an event:
  "History cleared" → ``deleted_message``; auto-delete set → ``disappearing_messages``;
  "not supported by this version" → ``incomplete_copy``; the rest → ``system``. Service
  messages carry no time in HTML: the event has ``at=None`` and names the day from the
  date separator before it (negative ids, which are only that separator).

Identity: the HTML holds no chat id (a full export numbers its chat folders), so a
message cannot get the JSON export's ``chatid:msgid`` key; it gets no ``message_key``
and is deduplicated by its conversation, sender, time and text. A chat exported both as
JSON and as HTML is therefore stored twice. Its id within the chat is kept as
``text_key`` (``html:<chat>:<id>``, never used to deduplicate) so a reply in the same
export finds the message it answers. No edited mark: the HTML export writes none.
"""

from __future__ import annotations

import codecs
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import BinaryIO

from twentyday.errors import ParseError
from twentyday.parsers import common
from twentyday.parsers.base import ExportSource, Limits, detect_by_heads
from twentyday.records import EventKind, ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "parse"]

NAME = "telegram_html"

_PAGE = re.compile(r"(?:^|/)messages(\d*)\.html$")
#: What ``HtmlWriter::Wrap::composeStart`` and ``writeDialogOpening`` put at the top of every page.
_HEAD_MARKERS = ("<title>Exported Data</title>", 'onload="CheckLocation();"', 'class="page_body chat_page"')
_TITLE = re.compile(
    r"^(\d\d)\.(\d\d)\.(\d{4}) (\d\d):(\d\d):(\d\d)(?: (?:UTC|GMT)(?:([+-])(\d\d):(\d\d))?)?$"
)
_VIA = re.compile(r" via @(\w+)$")
_MESSAGE_ID = re.compile(r"^message(-?\d+)$")
_GO_TO = re.compile(r"(?:go_to_message|GoToMessage\()(\d+)")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
#: Generic media whose content is a file (``prepareMediaData``): no link means no file.
_FILE_MEDIA = {
    "media_photo": "photo",
    "media_video": "video",
    "media_voice_message": "voice message",
    "media_audio_file": "audio file",
    "media_file": "file",
}
#: Anchors ``pushPhotoMedia``/``pushVideoFileMedia``/``pushAnimatedMedia``/``pushStickerMedia`` write.
_FILE_ANCHORS = {"photo_wrap": "photo", "video_file_wrap": "video", "animated_wrap": "animation",
                 "sticker_wrap": "sticker"}
_SUMMARY_MEDIA = ("media_poll", "media_location", "media_live_location", "media_venue", "media_contact",
                  "media_game", "media_invoice")
_LAYOUT = "telegram-desktop-html %d.%m.%Y %H:%M:%S"


# --- public API -------------------------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Is this a Telegram Desktop HTML export (a page, or a folder/zip of them)? Never raises."""
    try:
        members = source.members()
        if any(m.lower().endswith("result.json") for m in members):
            return False  # "HTML and JSON" exports: the JSON parser reads the richer copy
    except Exception:
        return False
    return detect_by_heads(source, head, _head_matches, lambda: _pages(source))


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message and event of every chat's pages, page by page in numeric order."""
    pages = _pages(source)
    if not pages:
        raise ParseError(f"{source.name}: no messages.html (Telegram Desktop HTML export) in the source",
                         code="not_this_format")
    index = frozenset(source.members())
    for member in pages:
        yield from _parse_page(source, member, index, hints)


# --- which members ------------------------------------------------------------------------------


def _page_number(member: str) -> int:
    match = _PAGE.search(member)
    return int(match.group(1) or 1) if match else 0


def _pages(source: ExportSource) -> list[str]:
    """The ``messages*.html`` pages, folder by folder, each folder's pages in numeric order."""
    members = source.members()
    found = [m for m in members if _PAGE.search(m)]
    if not found and len(members) == 1 and members[0].lower().endswith((".html", ".htm")):
        return members  # one page dropped on its own, under another name
    return sorted(found, key=lambda m: (_natural(posixpath.dirname(m)), _page_number(m)))


def _natural(path: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", path) if part)


def _head_matches(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace")
    return all(marker in text for marker in _HEAD_MARKERS)


# --- one message as read ---------------------------------------------------------------------------


@dataclass
class _Media:
    kind: str = ""
    href: str = ""
    title: list[str] = field(default_factory=list)
    description: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


@dataclass
class _Message:
    ident: int
    service: bool
    joined: bool
    date_title: str | None = None
    sender: list[str] = field(default_factory=list)
    forwarded: bool = False
    forwarded_from: list[str] = field(default_factory=list)
    forwarded_date: str = ""
    reply_text: list[str] = field(default_factory=list)
    reply_target: str = ""
    text: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    service_text: list[str] = field(default_factory=list)
    media: list[_Media] = field(default_factory=list)
    chars: int = 0
    #: The date separator's text before this message (service messages carry no time of their own).
    day: str = ""


@dataclass
class _Open:
    """An element open inside a message: its tag and the role its text has."""

    tag: str
    role: str


class _PageReader(HTMLParser):
    """Collects messages from a page's events; finished messages wait in ``done``."""

    def __init__(self, label: str, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.label = label
        self.limit = limit
        self.done: list[_Message] = []
        self.header: list[str] | None = None
        self.header_done = False
        self.day = ""
        self._stack: list[_Open] = []
        self._message: _Message | None = None
        self._header_depth = -1
        self.html_closed = False

    # - structure -

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        if tag == "br":
            self._append("\n")
            return
        if tag in _VOID:
            return
        if self._message is None:
            self._outside(tag, classes, attributes)
            return
        self._stack.append(_Open(tag, self._role(tag, classes, attributes)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "html":
            self.html_closed = True
        if self._message is None:
            if self._header_depth >= 0 and tag == "div":
                self._header_depth -= 1
                if self._header_depth < 0:
                    self.header_done = True
            return
        # Close up to the matching element; a stray end tag closes nothing.
        for position in range(len(self._stack) - 1, -1, -1):
            if self._stack[position].tag == tag:
                del self._stack[position:]
                break
        else:
            return
        if not self._stack:
            finished = self._message
            if finished.ident < 0:
                self.day = _clean(finished.service_text)
            self.done.append(finished)
            self._message = None

    def handle_data(self, data: str) -> None:
        if self._message is None:
            if self._header_depth >= 0 and self.header is not None:
                self.header.append(data)
            return
        self._append(data)

    # - roles -

    def _outside(self, tag: str, classes: list[str], attributes: dict[str, str]) -> None:
        if self._header_depth >= 0:
            if tag == "div":
                self._header_depth += 1
                if "text" in classes and "bold" in classes and self.header is None:
                    self.header = []
            return
        if tag == "div" and "page_header" in classes and not self.header_done:
            self._header_depth = 0
            return
        match = _MESSAGE_ID.match(attributes.get("id", "")) if tag == "div" else None
        if match is None or "message" not in classes:
            return
        # A negative id is a date separator (``pushServiceMessage(--_dateMessageId, …)``): the day of what follows.
        self._message = _Message(int(match.group(1)), service="service" in classes, joined="joined" in classes,
                                 day=self.day)
        self._stack = [_Open(tag, "message")]

    def _role(self, tag: str, classes: list[str], attributes: dict[str, str]) -> str:
        message = self._message
        assert message is not None  # only called inside a message
        parent = self._stack[-1].role if self._stack else "message"
        if parent == "ignore":
            return parent
        if message.service:
            return "service" if tag == "div" and "body" in classes else parent
        if parent == "media":
            return self._media_role(tag, classes, attributes)
        if parent in ("text", "reply", "sender", "forwarded_from", "signature"):
            if parent == "reply" and tag == "a":
                target = _GO_TO.search(attributes.get("href", "") + " " + attributes.get("onclick", ""))
                if target:
                    message.reply_target = target.group(1)
            if parent == "forwarded_from" and tag == "span":
                message.forwarded_date = attributes.get("title", "")
                return "ignore"  # the forward's date, written out after the name
            return parent
        if tag == "div" and "date" in classes and "pull_right" in classes:
            if message.date_title is None:
                message.date_title = attributes.get("title", "")
            return "ignore"
        if tag == "div" and "forwarded" in classes and "body" in classes:
            message.forwarded = True
            return "forwarded"
        if tag == "div" and "from_name" in classes:
            return "forwarded_from" if parent == "forwarded" else "sender"
        if tag == "div" and "reply_to" in classes:
            return "reply"
        if tag == "div" and "media_wrap" in classes:
            message.media.append(_Media())
            return "media"
        if tag == "div" and classes == ["text"]:
            return "text"
        if tag == "div" and "signature" in classes:
            return "signature"
        if tag == "div" and ("userpic_wrap" in classes or "reactions" in classes):
            return "ignore"
        return parent if parent in ("forwarded", "media_body") else "message"

    def _media_role(self, tag: str, classes: list[str], attributes: dict[str, str]) -> str:
        assert self._message is not None
        media = self._message.media[-1]
        for name in classes:
            kind = _FILE_ANCHORS.get(name) or _FILE_MEDIA.get(name) or (name if name in _SUMMARY_MEDIA else "")
            if kind or name == "media_call":
                media.kind = media.kind or kind or "call"
        href = attributes.get("href", "")
        if tag == "a" and href and not href.lower().startswith(("http://", "https://", "mailto:", "tel:", "#")):
            media.href = media.href or href
        if "title" in classes:
            return "media:title"
        if "description" in classes:
            return "media:description"
        if "status" in classes:
            return "media:status"
        return "media"

    def _append(self, data: str) -> None:
        message = self._message
        if message is None or not self._stack:
            return
        role = self._stack[-1].role
        target = {
            "text": message.text, "sender": message.sender, "forwarded_from": message.forwarded_from,
            "reply": message.reply_text, "signature": message.signature, "service": message.service_text,
        }.get(role)
        if target is None and role.startswith("media") and message.media:
            media = message.media[-1]
            target = {"media:title": media.title, "media:description": media.description,
                      "media:status": media.status}.get(role, media.other)
        if target is None:
            return
        message.chars += len(data)
        if message.chars > self.limit:
            raise ParseError(f"{self.label}: message {message.ident} is longer than {self.limit} characters; "
                             "not a Telegram message", code="message_too_long")
        target.append(data)

    def open_message(self) -> int | None:
        return self._message.ident if self._message is not None and self._message.ident > 0 else None


# --- one page ---------------------------------------------------------------------------------------


@dataclass
class _Page:
    source: ExportSource
    member: str
    folder: str
    index: frozenset[str]
    hints: ParseHints
    conversation: str = ""
    previous_sender: str = ""
    previous_forward: str = ""


def _parse_page(source: ExportSource, member: str, index: frozenset[str], hints: ParseHints) -> Iterator[Record]:
    limits = source.limits
    reader = _PageReader(member, limits.message_chars)
    page = _Page(source, member, posixpath.dirname(member), index, hints)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with source.open(member) as stream:
        while True:
            raw = _read(stream, limits, member)
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as error:
                raise ParseError(f"{member}: not valid UTF-8 near byte {offset + error.start}; "
                                 "not a Telegram Desktop HTML page", code="not_utf8") from None
            offset += len(raw)
            if offset == len(raw):
                text = text.removeprefix("\ufeff")
                if not all(marker in text for marker in _HEAD_MARKERS):
                    raise ParseError(f"{member}: no Telegram Desktop export header; not a messages page",
                                     code="not_this_format")
            reader.feed(text)
            # html.parser keeps an unfinished tag, comment or declaration; past one message's worth it is none.
            if len(reader.rawdata) > limits.message_chars:
                raise ParseError(f"{member}: an unterminated tag or comment near byte {offset}; "
                                 "the page is damaged", code="bad_html")
            if reader.header is not None and reader.header_done and not page.conversation:
                page.conversation = " ".join("".join(reader.header).split()) or "Deleted Account"
            for message in reader.done:
                yield from _records(message, page)
            reader.done.clear()
            if not raw:
                break
    reader.close()
    for message in reader.done:
        yield from _records(message, page)
    open_id = reader.open_message()
    if open_id is not None or not reader.html_closed:
        where = f"inside message {open_id}" if open_id is not None else "before </html>"
        raise ParseError(f"{member}: the page ends {where}; the file is truncated or damaged",
                         code="truncated_page")


def _read(stream: BinaryIO, limits: Limits, member: str) -> bytes:
    try:
        return stream.read(limits.telegram_chunk_bytes)
    except common.READ_ERRORS as error:
        raise ParseError(f"{member}: cannot be read ({error})", code="entry_unreadable") from None


# --- records ---------------------------------------------------------------------------------------


def _clean(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


def _text(parts: list[str]) -> str:
    """A ``text`` div's content: the writer's newline after the tag and indent before its end removed."""
    text = "".join(parts).removeprefix("\n")
    return re.sub(r"\n[ \t]*$", "", text)


def _records(message: _Message, page: _Page) -> list[Record]:
    if message.ident < 0:
        return []  # a date separator, or "No exported messages"
    conversation = page.conversation or "Telegram chat"
    if message.service:
        page.previous_sender = page.previous_forward = ""
        return [_service_event(message, conversation)]
    created_at, reading, undated = _time(message.date_title, page.hints)
    flags: list[str] = []
    extra: dict[str, str] = {"message_id": str(message.ident)}
    sender = _clean(message.sender)
    via = _VIA.search(sender)
    if via:
        sender, extra["via_bot"] = sender[: via.start()], via.group(1)
    if sender:
        page.previous_sender = sender
    elif message.joined and page.previous_sender:
        sender = page.previous_sender
    else:
        flags.append("sender_unknown")
    if undated:
        flags.append("undated")
    if message.forwarded:
        flags.append("forwarded")
        original = _clean(message.forwarded_from) or (page.previous_forward if message.joined else "")
        page.previous_forward = original
        if original:
            extra["forwarded_from"] = original
        if message.forwarded_date:
            extra["forwarded_date"] = message.forwarded_date
    else:
        page.previous_forward = ""
    if message.signature:
        extra["author"] = _clean(message.signature)
    attachments, missing, summaries, events = _media(message, page, conversation, sender, created_at, flags)
    body = _text(message.text) if message.text else "\n".join(summaries)
    reply_to = ""
    if message.reply_target:
        reply_to = f"html:{conversation}:{message.reply_target}"
    elif message.reply_text:
        extra["reply_to"] = _clean(message.reply_text)
    parsed = ParsedMessage(
        platform="telegram",
        conversation=conversation,
        sender=sender,
        created_at=created_at,
        time=reading,
        body=body,
        attachments=tuple(attachments),
        reply_to=reply_to,
        text_key=f"html:{conversation}:{message.ident}",
        flags=tuple(dict.fromkeys(flags)),
        extra=extra,
    )
    incomplete = [ParsedEvent("incomplete_copy", conversation, created_at, f"{sender}: {m}") for m in missing]
    return [parsed, *incomplete, *events]


def _time(title: str | None, hints: ParseHints) -> tuple[datetime | None, TimeReading | None, bool]:
    """The message's time from its date title; (None, raw reading, True) when it cannot be read."""
    if title is None:
        return None, None, True
    match = _TITLE.match(title.strip())
    wall = None
    if match:
        day, month, year, hour, minute, second = (int(match.group(n)) for n in range(1, 7))
        try:
            wall = datetime(year, month, day, hour, minute, second)
        except ValueError:
            wall = None
    if match is None or wall is None:
        return None, TimeReading(title, f"{_LAYOUT} (not read)", None, "format", ""), True
    has_zone = title.strip()[19:].strip() != ""
    if not has_zone:
        # Older tdesktop: the exporting machine's wall time, no offset; the custodian's zone is the best evidence.
        at = wall.replace(tzinfo=hints.timezone)
        return at, TimeReading(title, f"{_LAYOUT} (no offset: exporting machine's wall time)", None,
                               "custodian_zone", hints.zone_name), False
    sign, hours, minutes = match.group(7), match.group(8), match.group(9)
    seconds = 0 if sign is None else (int(hours) * 3600 + int(minutes) * 60) * (-1 if sign == "-" else 1)
    stated = timedelta(seconds=seconds)
    label = "+00:00" if sign is None else f"{sign}{hours}:{minutes}"
    local = wall.replace(tzinfo=hints.timezone)
    offset, dst = local.utcoffset(), local.dst()
    if offset is not None and offset != stated and dst and offset - dst == stated:
        # tdesktop writes the zone's standard offset; this day was in daylight time in the custodian's zone.
        layout = f"{_LAYOUT} UTC%z (standard offset; daylight time in the custodian's zone)"
        return local, TimeReading(title, layout, None, "custodian_zone", hints.zone_name), False
    at = wall.replace(tzinfo=timezone(stated))
    return at, TimeReading(title, f"{_LAYOUT} UTC%z", None, "format", label), False


def _media(message: _Message, page: _Page, conversation: str, sender: str, at: datetime | None,
           flags: list[str]) -> tuple[list[ParsedAttachment], list[str], list[str], list[Record]]:
    attachments: list[ParsedAttachment] = []
    missing: list[str] = []
    summaries: list[str] = []
    events: list[Record] = []
    for media in message.media:
        title, description, status = _clean(media.title), _clean(media.description), _clean(media.status)
        if media.kind == "call":
            events.append(ParsedEvent("system", conversation, at, f"phone call by {sender}: {title} {status}".strip()))
            summaries.append(f"Call: {status}".strip())
            continue
        if media.kind in _SUMMARY_MEDIA and not media.href:
            words = " ".join(w for w in (title, description, status, _clean(media.other)) if w)
            summaries.append(f"{media.kind.removeprefix('media_').replace('_', ' ').capitalize()}: {words}")
            continue
        if title.startswith("Self-destructing"):
            detail = f"{sender}: {title.lower()} ({status})" if status else f"{sender}: {title.lower()}"
            events.append(ParsedEvent("disappearing_messages", conversation, at, detail))
        if not media.href and not media.kind:
            continue  # an empty media_wrap: nothing was shown
        attachment, flag, reason = _attachment(media, title, description, page)
        attachments.append(attachment)
        if flag:
            flags.append(flag)
        if reason:
            missing.append(reason)
    return attachments, missing, summaries, events


def _attachment(media: _Media, title: str, description: str, page: _Page) -> tuple[ParsedAttachment, str, str]:
    kind = media.kind or "file"
    if not media.href:
        name = title if kind == "file" and title else kind
        reason = description or "no file in the export"
        content_type = "image/jpeg" if kind == "photo" else common.content_type(name)
        return ParsedAttachment(name=name, content_type=content_type), "media_omitted", \
            f"{kind} not in the export: {reason}"
    name = posixpath.basename(media.href) or media.href
    content_type = "image/jpeg" if kind == "photo" else common.content_type(name)
    return common.exported_file(page.source, page.index, page.folder, media.href, name, content_type)


_SERVICE_KINDS: tuple[tuple[re.Pattern[str], EventKind], ...] = (
    (re.compile(r"^History cleared$"), "deleted_message"),
    (re.compile(r"not (?:to )?auto-delete"), "system"),
    (re.compile(r"auto-delete in"), "disappearing_messages"),
    (re.compile(r"not supported by this version of Telegram Desktop"), "incomplete_copy"),
)


def _service_event(message: _Message, conversation: str) -> ParsedEvent:
    text = _clean(message.service_text)
    kind: EventKind = "system"
    for pattern, found in _SERVICE_KINDS:
        if pattern.search(text):
            kind = found
            break
    on = message.day
    detail = f"service message {message.ident}: {text}" + (f" (on {on}; the HTML export gives no time)" if on else "")
    return ParsedEvent(kind=kind, conversation=conversation, at=None, detail=detail)
