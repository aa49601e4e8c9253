"""Signal Desktop exports (signal-export folders, sigtop text, text-short and JSON): bytes in, records out.

Pure and streaming: every file is read line by line, each line and each
message bounded in size (``index.html`` is parsed as a stream, its buffer
bounded). Two exporters are read (docs/FORMATS.md §3):

**signal-export** (carderne, MIT) writes one folder per chat with ``chat.md``,
``data.json``, ``index.html`` and ``media/``. In ``chat.md`` a message starts
with ``[YYYY-MM-DD HH:MM:SS] Sender: `` (older versions: ``[YYYY-MM-DD, HH:MM]``;
like the tool's own merge code both are accepted, with or without the comma
and seconds) and runs until the next such line. What the tool appends to a
body is taken back off, from the end, in the reverse of the order it wrote
it: attachment links ``![name](./media/…)`` / ``[name](./media/…)`` and
``(<kind> not exported)`` placeholders on the last line, a sticker
``[emoji](../exported_stickers/…)`` or ``(( emoji ))``, a reactions line
``(- Name: 👍, Name2: ❤ -)``, and a leading quote (``> `` lines). A
``(This message was deleted)`` body gives a ``deleted_message`` event.
``data.json`` holds one JSON object per message with the same fields; it is
read instead of ``chat.md`` when a folder has both, unless ``chat.md`` holds
more messages (see :func:`_choose`).
Times are the exporting machine's wall time without a zone: they are read in
the custodian's zone (``decided_by="custodian_zone"``). The conversation is the
chat's folder name. The exporting account's own messages (sender ``Me``; in
``index.html`` the ``msg me`` bubbles) are the custodian's: their first phone-like
own identity is the sender, so ingest files them as sent (``extra["shown_sender"]``
keeps what the export showed).

**sigtop** ``export-messages -f text`` (tbvdm, ISC) writes ``Conversation: Name
(detail)``, a blank line, then per message ``From:`` (absent for some incoming
messages), ``Type:``, ``Sent:`` (RFC 2822 with an offset: ``decided_by="format"``),
``Received:``, ``Attachment:``, ``Reaction:``, ``Edited:`` lines, then an
optional ``>``-prefixed quote and the body, each after a blank line. Edited
messages carry ``|``-prefixed versions, newest first; the newest is the body.
A message starts at a ``From:``/``Type:`` block after a blank line, so a body
that itself holds a blank line followed by ``Type: word`` is misread (the
format has no other marker). Types other than ``incoming``/``outgoing``
(group changes, calls, safety-number changes, timers) become events.
sigtop's text files never hold the attachment files themselves, so listed
attachments are kept by name and reported as ``incomplete_copy``.

**signal-export** ``index.html`` (:mod:`twentyday.parsers.signal_html` reads its
bubbles) is read when it is a chat folder's only file, or holds more messages
than its ``data.json``/``chat.md``: it shows less. Times are the same zone-less
wall times (``custodian_zone``). Version 3.9 shows a bubble grouped under the one
before (same sender, under five minutes) without its time: such a record is
``undated`` (``time.raw`` is the day divider, ``extra["time_note"]`` names the
time above it), its sender the group's. A file the 3.9 page says was not
exported is kept by its label (``Audio not exported``); calls are ``system``
events. An ``index.html`` whose head is not signal-export's is passed over.

**sigtop** ``export-messages -f json`` writes ``[``, one Signal Desktop message
object per line, ``]``. ``sent_at`` (ms since the epoch) is the time, read as
UTC (``decided_by="format"``); without one the record is ``undated``. Outgoing
messages are the custodian's (their first phone-like own identity, so ingest files them
as sent; ``extra["shown_sender"]="You"``, as sigtop's text formats name them), incoming ones
from ``source`` (a phone number) or the sender's service id. Listed attachments
and stickers are ``incomplete_copy``; ``deletedForEveryone`` a deletion;
``editHistory`` kept with the newest body; ``isViewOnce`` flagged. Other types
(``timer-notification``, ``keychange``, group changes, calls) are events.

Attachments found in the source are read up to ``Limits.media_bytes``;
missing or larger ones are kept by name with ``data=None``, a flag and an
``incomplete_copy`` event.

**sigtop** ``export-messages -f text-short`` (``fmt_text_short.go``) writes one
``<conversation>.txt`` with no header, one line a message:
``YYYY-MM-DD HH:MM Name: [reply to X on YYYY-MM-DD HH:MM, edited, N attachments] body``
(the details present, in that order; ``unknown`` for a time sigtop lacks). The
time is the exporting machine's wall time without a zone: read in the
custodian's zone (``custodian_zone``). ``You`` (outgoing) is the custodian's
first phone-like own identity (``extra["shown_sender"]="You"``); others are
their display name. A body's further lines follow unmarked until the next
line that starts with a time and a name, so a body line that itself starts
so is misread, and a name holding ``": "`` is cut there (the format has no
other marker). The N listed attachments are kept as ``attachment i of N``,
``incomplete_copy``; a quote is kept by its author and time
(``extra["quote_author"]``/``["quote_time"]``); reactions are not written by
sigtop in this format. ``[<type> message]`` alone on its line is an event.
The conversation is the file name.

Not supported: signalbackup-tools output.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, Literal

from twentyday.errors import ParseError
from twentyday.parsers import common, signal_html
from twentyday.parsers.base import ExportSource, detect_by_heads, read_head
from twentyday.parsers.common import json_objects as _objects
from twentyday.parsers.common import json_string as _string
from twentyday.records import EventKind, ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "parse"]

NAME = "signal"
Kind = Literal["markdown", "jsonl", "sigtop", "html", "sigtop-json", "sigtop-short"]

_SNIFF_LINES = 20
_DETECT_CANDIDATES = 5
_FOLDER_FILES = ("data.json", "chat.md", "index.md", "index.html")  # index.md: signal-export's older name

# Detection accepts only what signal-export writes (the new form has seconds and no
# comma, the old form a comma and no seconds): the other two combinations are
# WhatsApp iOS year-first headers. The WhatsApp parser, asked first, leaves these two
# to us unless the file carries the LRM marks iOS WhatsApp writes (then it is WhatsApp's).
_MD_DETECT = re.compile(r"\[\d{4}-\d\d-\d\d(?: \d\d:\d\d:\d\d|, \d\d:\d\d)\] [^\n]*?:(?: |$)")
_MD_HEADER = re.compile(
    r"\[(?P<date>\d{4}-\d\d-\d\d)(?P<comma>,?) (?P<time>\d\d:\d\d(?::\d\d)?)\] (?P<sender>.*?):(?: (?P<rest>.*))?$"
)
_JSONL_DETECT = re.compile(r'\{"date": "\d{4}-\d\d-\d\dT[^"]*", "sender": ')
_SIGTOP_DETECT = re.compile(r"Conversation: [^\n]*\n\r?\n(?:From: [^\n]*\n)?Type: ")
# sigtop -f json: "[", then one Signal Desktop message object a line (fmt_json.go).
_SIGTOP_JSON_DETECT = re.compile(r'\[\r?\n\{"[^\n]*"conversationId":"')
# sigtop -f text-short: "YYYY-MM-DD HH:MM Name:" starts every message (fmt_text_short.go). WhatsApp's
# year-first Android layout ("2020-12-31 10:00 - Name: text") has " - " where the name starts.
_SHORT_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d"
_SHORT_DETECT = re.compile(_SHORT_TIME + r" (?!- )[^\n]*?:(?: |$)")
_SHORT_HEADER = re.compile(rf"(?P<time>{_SHORT_TIME}|unknown) (?P<sender>(?!- ).+?):(?: (?P<rest>.*))?$")
_SHORT_EVENT = re.compile(r"\[(?P<type>[a-z0-9-]*) message\]")
_SHORT_ITEM = rf"(?:reply to .+? on (?:{_SHORT_TIME}|unknown)|edited|[1-9]\d* attachments?)"
_SHORT_DETAILS = re.compile(rf"\[(?P<items>{_SHORT_ITEM}(?:, {_SHORT_ITEM})*)\](?: (?P<body>.*))?$", re.DOTALL)
_SHORT_ITEMS = re.compile(rf"(?:reply to (?P<quoted>.+?) on (?P<quoted_at>{_SHORT_TIME}|unknown))?(?:, )?"
                          r"(?P<edited>edited)?(?:, )?(?:(?P<count>[1-9]\d*) attachments?)?")
_SIGTOP_TYPE = re.compile(r"Type: [a-z0-9-]+$")
_SIGTOP_FIELD = re.compile(r"(?P<key>[A-Z][a-z]+): (?P<value>.*)$")
_SIGTOP_ATTACHMENT = re.compile(r"(?P<name>.*) \((?P<mime>[^(),]*), (?P<size>\d+) bytes\)$")
_RFC2822 = re.compile(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$")
_DETAIL = re.compile(r"(?P<name>.*?) \((?P<detail>[^()]*)\)$")
_MESSAGE_TYPES = frozenset({"incoming", "outgoing"})

_DELETED = "(This message was deleted)"
_NOT_EXPORTED = " not exported)"
_MEDIA_PREFIXES = ("./media/", "media/", "../exported_stickers/")
_EXTRA_TYPES = {".webp": "image/webp", ".m4a": "audio/mp4", ".ogg": "audio/ogg", ".opus": "audio/ogg"}


# --- public API -------------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Is this a signal-export chat (or folder zip) or a sigtop text export? Never raises."""
    return detect_by_heads(source, head, lambda data: _sniff(data) is not None,
                           lambda: _candidates(source.members()), count=_DETECT_CANDIDATES)


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message and event of every chat file in the source, chat by chat, in file order."""
    plan = _plan(source, hints)
    if not plan:
        raise ParseError(f"{source.name}: no signal-export chat.md/data.json or sigtop text export in the source",
                         code="not_this_format")
    context = _Context(source, frozenset(source.members()), hints)
    for kind, member, conversation in plan:
        if kind == "markdown":
            yield from _parse_markdown(context, member, conversation)
        elif kind == "jsonl":
            yield from _parse_jsonl(context, member, conversation)
        elif kind == "html":
            yield from _parse_html(context, member, conversation)
        elif kind == "sigtop-json":
            yield from _parse_sigtop_json(context, member, conversation)
        elif kind == "sigtop-short":
            yield from _parse_sigtop_short(context, member, conversation)
        else:
            yield from _parse_sigtop(context, member)


# --- which members ------------------------------------------------------------------------


def _sniff(head: bytes) -> Kind | None:
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if signal_html.looks_like_index_html(text):
        return "html"
    if _SIGTOP_JSON_DETECT.match(text):
        return "sigtop-json"
    for line in text.split("\n", _SNIFF_LINES)[:_SNIFF_LINES]:
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if _MD_DETECT.match(line):
            return "markdown"
        if _JSONL_DETECT.match(line):
            return "jsonl"
        if line.startswith("Conversation: ") and _SIGTOP_DETECT.match(text.lstrip()):
            return "sigtop"
        if _SHORT_DETECT.match(line):
            return "sigtop-short"
        return None
    return None


def _candidates(members: list[str]) -> list[str]:
    """Members that may be chat files (a single-file source is one, whatever its name)."""
    if len(members) == 1:
        return members
    return [m for m in members if m.lower().endswith((".md", ".txt", ".json", "index.html"))]


def _plan(source: ExportSource, hints: ParseHints) -> list[tuple[Kind, str, str]]:
    """What to read, in member order: (kind, member, conversation); one file per chat folder."""
    members = source.members()
    folders: dict[str, dict[str, str]] = {}
    order: list[tuple[str, Kind | None, str]] = []  # (folder or member, kind for a lone file, member)
    for member in _candidates(members):
        folder, base = posixpath.split(member)
        if base.lower() == "index.html" and _sniff(read_head(source, member)) != "html":
            continue  # another tool's page: never read as a signal-export chat
        if base.lower() in _FOLDER_FILES:
            if folder not in folders:
                order.append((folder, None, member))
            folders.setdefault(folder, {})[base.lower()] = member
            continue
        kind = _sniff(read_head(source, member))
        if kind is not None:
            order.append((member, kind, member))
    plan: list[tuple[Kind, str, str]] = []
    for key, kind, member in order:
        if kind is not None:
            plan.append((kind, member, _fallback_name(member, source, hints)))
        else:
            name = posixpath.basename(key) or _fallback_name(member, source, hints)
            plan.append((*_choose(source, folders[key]), name))
    return plan


def _choose(source: ExportSource, files: dict[str, str]) -> tuple[Kind, str]:
    """Which file of a signal-export chat folder to read."""
    markdown = files.get("chat.md") or files.get("index.md")
    data = files.get("data.json")
    page = files.get("index.html")
    # index.html is read only when it is the folder's one file or holds more messages than
    # the one chosen below: it shows less (grouped bubbles have no time, no file names).
    if page is not None:
        if data is None and markdown is None:
            return "html", page
        kind, member = _choose(source, {k: v for k, v in files.items() if k != "index.html"})
        return ("html", page) if _count(source, page, "html") > _count(source, member, kind) else (kind, member)
    # Prefer data.json: its fields (date, sender, body, quote, reactions, attachments,
    # deleted) are structured, so nothing hangs on reading markdown that a body can
    # imitate (a line that looks like a header, a trailing "[x](./media/y)", a
    # "(- … -)" line). But signal-export's --old merge writes the merged history to
    # chat.md only (its JSON output does not support merging); when chat.md holds
    # more messages it is the complete record, and it is read instead.
    if data is None:
        return "markdown", markdown or ""
    if markdown is None or _count(source, data, "jsonl") >= _count(source, markdown, "markdown"):
        return "jsonl", data
    return "markdown", markdown


def _count(source: ExportSource, member: str, kind: Kind) -> int:
    if kind == "jsonl":
        return sum(1 for _, line in _lines(source, member) if line.strip())
    if kind == "html":
        return sum(1 for _ in _html_entries(source, member))
    return sum(1 for _, line in _lines(source, member) if _MD_HEADER.match(line))


def _fallback_name(member: str, source: ExportSource, hints: ParseHints) -> str:
    """A chat file outside a folder is named after itself (or the source) without its extension."""
    folder = posixpath.basename(posixpath.dirname(member))
    if folder:
        return folder
    name = posixpath.basename((hints.source_name or source.name).replace("\\", "/"))
    return name.rpartition(".")[0] or name


# --- reading lines ------------------------------------------------------------------------


def _lines(source: ExportSource, member: str) -> Iterator[tuple[int, str]]:
    """Decoded lines without their ending, numbered from 1; bounded in length."""
    try:
        with source.open(member) as stream:
            yield from _stream_lines(stream, member, source.limits.signal_line_bytes)
    except common.READ_ERRORS as error:
        raise ParseError(f"{member}: cannot be read ({error})", code="entry_unreadable") from None


def _stream_lines(stream: BinaryIO, member: str, max_bytes: int) -> Iterator[tuple[int, str]]:
    try:
        yield from common.text_lines(stream, max_bytes)
    except ParseError as error:
        raise ParseError(f"{member}: {error}", code=error.code) from None


# --- shared: context, times, attachments ------------------------------------------------------


@dataclass
class _Context:
    source: ExportSource
    index: frozenset[str]
    hints: ParseHints


@dataclass
class _Media:
    """Attachments of one message, its flags, and one sentence per file the copy lacks."""

    attachments: list[ParsedAttachment] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def omitted(self, name: str, flag: str, reason: str, content_type: str = "") -> None:
        self.attachments.append(ParsedAttachment(name=name, content_type=content_type or _content_type(name)))
        if flag not in self.flags:
            self.flags.append(flag)
        self.missing.append(reason)

    def linked(self, context: _Context, folder: str, name: str, path: str) -> None:
        """A file the export links to (``media/…``), read from the source when it is there."""
        member = _resolve(context.index, folder, path)
        if member is None:
            self.omitted(name, "media_omitted", f"{name} is linked by the export but is not in this copy")
            return
        cap = context.source.limits.media_bytes
        data = common.read_member(context.source, member, cap)
        if data is None:
            reason = f"{name} is larger than {cap} bytes; not kept"
            self.omitted(name, "attachment_too_large", reason)
            return
        self.attachments.append(ParsedAttachment(name=name, content_type=_content_type(name), data=data))


def _resolve(index: frozenset[str], folder: str, path: str) -> str | None:
    # signal-export writes whitespace in paths as %20; a literal "%20" is tried first.
    for candidate in dict.fromkeys((path, path.replace("%20", " "))):
        member = posixpath.normpath(posixpath.join(folder, candidate))
        if not member.startswith("../") and member in index:
            return member
    return None



def _content_type(name: str) -> str:
    suffix = posixpath.splitext(name)[1].lower()
    return _EXTRA_TYPES.get(suffix) or common.content_type(name)


def _local_time(wall: datetime, raw: str, layout: str, hints: ParseHints) -> tuple[datetime, TimeReading]:
    """A zone-less wall time read in the custodian's zone (signal-export wrote local time)."""
    at = wall.replace(tzinfo=hints.timezone)
    return at, TimeReading(raw, layout, None, "custodian_zone", hints.zone_name)


def _finish(message: ParsedMessage, media: _Media, deleted: bool) -> list[Record]:
    """The message, then the events it raises (deletion, each missing file).

    Signal's exports name a quoted message by its text, not an id: the message gets a key from
    its own first words and a quote the key of the words it shows, so a reply to a message that
    is not in the archive can be found (``thread_gap``)."""
    conversation = message.conversation
    message = dataclasses.replace(
        message, text_key="" if deleted else _text_key(conversation, message.body),
        reply_to=_text_key(conversation, message.extra.get("quote", ""), quote=True))
    records: list[Record] = [message]
    at, conversation, who = message.created_at, message.conversation, message.sender or "(no name)"
    if deleted:
        records.append(ParsedEvent("deleted_message", conversation, at, f"message from {who} shows as deleted"))
    records += [ParsedEvent("incomplete_copy", conversation, at, f"{who}: {reason}") for reason in media.missing]
    return records


#: How many first characters of a message (whitespace collapsed) a quote is matched by: Signal
#: may shorten the text it quotes, never its beginning.
QUOTE_PREFIX = 64
#: What a quote of a message without text shows: nothing to match it by.
_MEDIA_QUOTES = frozenset({"Photo", "Video", "Voice message", "Audio", "GIF", "Image", "Sticker", "File",
                           "Attachment"})


def _text_key(conversation: str, text: str, *, quote: bool = False) -> str:
    words = " ".join(text.split())[:QUOTE_PREFIX]
    if not words or (quote and words in _MEDIA_QUOTES):
        return ""
    return f"text:{conversation}\0{words}"


# --- signal-export chat.md ------------------------------------------------------------------------


@dataclass
class _Block:
    """One chat.md message being collected until the next header line."""

    header: re.Match[str]
    lineno: int
    lines: list[str]
    size: int = 0


def _parse_markdown(context: _Context, member: str, conversation: str) -> Iterator[Record]:
    folder = posixpath.dirname(member)
    for block in _header_blocks(context, member, _MD_HEADER, "'[date time] Sender:'"):
        yield from _markdown_records(context, block, member, folder, conversation)


def _header_blocks(context: _Context, member: str, header_line: re.Pattern[str], shown: str) -> Iterator[_Block]:
    """Each message of a file where a header line starts a message and unmarked lines continue it."""
    most = context.source.limits.message_chars
    block: _Block | None = None
    for lineno, line in _lines(context.source, member):
        header = header_line.match(line)
        if header is not None:
            if block is not None:
                yield block
            block = _Block(header, lineno, [header["rest"] or ""])
        elif block is not None:
            block.lines.append(line)
            block.size += len(line) + 1
            if block.size > most:
                raise ParseError(f"{member}: message at line {block.lineno} is longer than {most} chars",
                                 code="line_too_long")
        elif line.strip():
            raise ParseError(f"{member}: line {lineno}: text before the first {shown} line", code="bad_layout")
    if block is not None:
        yield block


def _markdown_records(context: _Context, block: _Block, member: str, folder: str, conversation: str) -> list[Record]:
    header = block.header
    at, reading = _markdown_time(header, context.hints, f"{member}: line {block.lineno}")
    lines = block.lines
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()  # signal-export separates messages with a blank line
    media = _Media()
    extra: dict[str, str] = {}
    deleted = len(lines) == 1 and lines[0].strip() == _DELETED
    body = lines[0].strip() if deleted else _markdown_body(lines, media, extra, context, folder)
    message = ParsedMessage(
        platform="signal",
        conversation=conversation,
        sender=_export_sender(context.hints, header["sender"], extra),
        created_at=at,
        time=reading,
        body=body,
        attachments=tuple(media.attachments),
        flags=tuple(["deleted"] if deleted else media.flags),
        extra=extra,
    )
    return _finish(message, media, deleted)


def _markdown_time(header: re.Match[str], hints: ParseHints, where: str) -> tuple[datetime, TimeReading]:
    raw = f"{header['date']}{header['comma']} {header['time']}"
    seconds = len(header["time"]) == 8
    layout = "signal-export %Y-%m-%d" + ("," if header["comma"] else "") + (" %H:%M:%S" if seconds else " %H:%M")
    try:
        wall = datetime.fromisoformat(f"{header['date']}T{header['time']}")
    except ValueError:
        raise ParseError(f"{where}: {raw!r} is not a valid date and time", code="bad_date") from None
    return _local_time(wall, raw, layout, hints)


def _markdown_body(lines: list[str], media: _Media, extra: dict[str, str], context: _Context, folder: str) -> str:
    """Take signal-export's additions off the message's lines; what is left is the body."""
    last, items = _peel_items(lines[-1])
    lines[-1] = last
    for item in items:
        if item[0] == "omitted":
            media.omitted(item[1], "media_omitted", f"{item[1]} not exported")
        else:
            media.linked(context, folder, item[1], item[2])
    if len(lines) > 1 and lines[-1].startswith("(( ") and lines[-1].endswith(" ))"):
        extra["sticker"] = lines.pop()[3:-3]
    if len(lines) > 1 and lines[-1].startswith("(- ") and lines[-1].endswith(" -)"):
        extra["reactions"] = lines.pop()[3:-3]
    start = 0
    if len(lines) > 2 and not lines[0] and not lines[1] and lines[2].startswith(">"):
        end = 2
        while end < len(lines) and lines[end].startswith(">"):
            end += 1
        extra["quote"] = "\n".join(line[2:] if line.startswith("> ") else line[1:] for line in lines[2:end])
        start = end + 1  # the blank line after the quote
    return "\n".join(lines[start:]).rstrip()


def _peel_items(line: str) -> tuple[str, list[tuple[str, str, str]]]:
    """Attachment links and ``(… not exported)`` placeholders from the end of the last line.

    Each is found with ``rfind`` from the end, so a hostile line costs time
    linear in its length; only links into ``media/`` or ``exported_stickers/``
    count, so a body that ends with an ordinary link keeps it.
    """
    items: list[tuple[str, str, str]] = []
    rest = line
    while True:
        text = rest.rstrip(" ")
        if text.endswith(_NOT_EXPORTED) and (start := text.rfind("(")) >= 0:
            items.append(("omitted", text[start + 1 : -len(_NOT_EXPORTED)], ""))
            rest = text[:start]
            continue
        link = _trailing_link(text)
        if link is None:
            break
        start, name, path = link
        items.append(("link", name, path))
        rest = text[:start]
    items.reverse()
    return (rest if items else line), items


def _trailing_link(text: str) -> tuple[int, str, str] | None:
    """``![name](path)`` or ``[name](path)`` ending ``text``: (start, name, path)."""
    if not text.endswith(")"):
        return None
    middle = text.rfind("](")
    if middle < 0:
        return None
    path = text[middle + 2 : -1]
    if not path.startswith(_MEDIA_PREFIXES) or "\n" in path:
        return None
    # The name is the file's name; prefer the "[" that makes it so over a "[" inside it.
    expected = posixpath.basename(path).replace("%20", " ")
    if text[:middle].endswith("[" + expected):
        opening = middle - len(expected) - 1
    else:
        opening = text.rfind("[", 0, middle)
        if opening < 0:
            return None
    start = opening - 1 if opening > 0 and text[opening - 1] == "!" else opening
    return start, text[opening + 1 : middle], path


# --- signal-export data.json ------------------------------------------------------------------------


def _parse_jsonl(context: _Context, member: str, conversation: str) -> Iterator[Record]:
    folder = posixpath.dirname(member)
    for lineno, line in _lines(context.source, member):
        if not line.strip():
            continue
        where = f"{member}: line {lineno}"
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as error:
            raise ParseError(f"{where}: not a JSON object ({error})", code="bad_json") from None
        if not isinstance(entry, dict):
            raise ParseError(f"{where}: not a JSON object", code="bad_json")
        yield from _jsonl_records(context, entry, folder, conversation, where)


def _jsonl_records(
    context: _Context, entry: dict[str, Any], folder: str, conversation: str, where: str
) -> list[Record]:
    raw = _string(entry, "date", where)
    try:
        wall = datetime.fromisoformat(raw)
    except ValueError:
        raise ParseError(f"{where}: date {raw[:40]!r} is not an ISO date", code="bad_date") from None
    if wall.tzinfo is None:
        at, reading = _local_time(wall, raw, "signal-export-json iso8601", context.hints)
    else:
        at, reading = wall, TimeReading(raw, "signal-export-json iso8601", None, "format", _offset_name(wall))
    media = _Media()
    for item in _objects(entry, "attachments", where):
        path = _string(item, "path", where)
        name = _string(item, "name", where) or posixpath.basename(path)
        media.linked(context, folder, name, path)
    deleted = entry.get("deleted") is True
    flags = ["deleted"] if deleted else list(media.flags)
    if entry.get("call") is True:
        flags.append("call")
    if entry.get("missed") is True:
        flags.append("missed_call")
    extra = _jsonl_extra(entry, where)
    message = ParsedMessage(
        platform="signal",
        conversation=conversation,
        sender=_export_sender(context.hints, _string(entry, "sender", where), extra),
        created_at=at,
        time=reading,
        body=_DELETED if deleted else _string(entry, "body", where).rstrip(),
        attachments=tuple(media.attachments),
        flags=tuple(flags),
        extra=extra,
    )
    return _finish(message, media, deleted)


def _jsonl_extra(entry: dict[str, Any], where: str) -> dict[str, str]:
    extra: dict[str, str] = {}
    quote = _string(entry, "quote", where).strip("\n")
    if quote:
        extra["quote"] = "\n".join(line[2:] if line.startswith("> ") else line for line in quote.split("\n"))
    sticker = entry.get("sticker")
    if isinstance(sticker, dict):
        sticker = sticker.get("emoji") or sticker.get("label")
    if isinstance(sticker, str) and sticker:
        extra["sticker"] = sticker
    reactions = entry.get("reactions")
    if isinstance(reactions, list) and reactions:
        extra["reactions"] = ", ".join(_reaction(r) for r in reactions)
    return extra


def _reaction(value: object) -> str:
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{value[0]}: {value[1]}"
    if isinstance(value, dict):
        return f"{value.get('name', '')}: {value.get('emoji', '')}"
    return str(value)






def _offset_name(at: datetime) -> str:
    offset = at.strftime("%z")
    return f"{offset[:3]}:{offset[3:]}" if offset else "UTC"


# --- signal-export index.html ------------------------------------------------------------------

#: signal-export groups a bubble under the one before when the sender is the same and the
#: gap under five minutes (sigexport/html.py ``GROUP_WINDOW``); a grouped bubble shows no time.
_GROUP_NOTE = "shown without a time: grouped under the message above (same sender, under 5 minutes after it)"


def _html_entries(source: ExportSource, member: str) -> Iterator[signal_html.HtmlEntry]:
    limits = source.limits
    try:
        with source.open(member) as stream:
            yield from signal_html.entries(stream, member, max_pending=limits.signal_line_bytes,
                                           max_chars=limits.message_chars)
    except common.READ_ERRORS as error:
        raise ParseError(f"{member}: cannot be read ({error})", code="entry_unreadable") from None


def _parse_html(context: _Context, member: str, conversation: str) -> Iterator[Record]:
    folder = posixpath.dirname(member)
    leader: tuple[str, str] | None = None  # (sender, time) of the bubble a grouped one hangs under
    seen = 0
    for entry in _html_entries(context.source, member):
        seen += 1
        where = f"{member}: line {entry.line}"
        at, reading = _html_time(entry, context.hints, where)
        if entry.kind == "event":
            leader = None  # signal-export never groups a bubble under a call
            flags = " (missed)" if "missed" in entry.classes else ""
            yield ParsedEvent("system", conversation, at, f"call{flags}: {entry.body}" if entry.body else "call")
            continue
        extra: dict[str, str] = {}
        sender = entry.sender
        grouped = not entry.sender and "cont" in entry.classes
        if grouped and leader is not None:
            sender = leader[0]
            extra["time_note"] = f"{_GROUP_NOTE}; that message: {leader[1]}"
            reading = TimeReading(entry.day, "signal-export-html day only", None, "custodian_zone",
                                  context.hints.zone_name)
        elif entry.sender:
            leader = (entry.sender, reading.raw if reading else "")
        if "me" in entry.classes:  # the exporting account's own bubble, whatever name it shows
            sender = _outgoing_sender(context.hints, sender or _SIGNAL_EXPORT_SELF, extra)
        yield from _html_records(context, entry, folder, conversation, sender, at, reading, extra)
    if seen == 0:
        raise ParseError(f"{member}: no signal-export message bubbles in the page", code="bad_layout")


def _html_time(entry: signal_html.HtmlEntry, hints: ParseHints,
               where: str) -> tuple[datetime | None, TimeReading | None]:
    """3.9: ``<time datetime>`` (local wall time, ISO); classic: the date and time spans."""
    if entry.iso:
        raw, layout = entry.iso, "signal-export-html datetime %Y-%m-%dT%H:%M:%S"
    elif entry.date and entry.time:
        raw, layout = f"{entry.date} {entry.time}", "signal-export-html %Y-%m-%d %H:%M:%S"
    else:
        return None, None
    try:
        wall = datetime.fromisoformat(raw)
    except ValueError:
        raise ParseError(f"{where}: {raw[:40]!r} is not a valid date and time", code="bad_date") from None
    if wall.tzinfo is not None:
        return wall, TimeReading(raw, layout, None, "format", _offset_name(wall))
    return _local_time(wall, raw, layout, hints)


def _html_records(context: _Context, entry: signal_html.HtmlEntry, folder: str, conversation: str, sender: str,
                  at: datetime | None, reading: TimeReading | None, extra: dict[str, str]) -> list[Record]:
    media = _Media()
    for path in entry.files:
        name = posixpath.basename(path).replace("%20", " ")
        media.linked(context, folder, name, path)
    for label in entry.missing:
        media.omitted(label or "attachment", "media_omitted", f"{label or 'a file'} (the page names no file)")
    deleted = "deleted" in entry.classes
    if entry.quote:
        extra["quote"] = entry.quote
    if entry.reactions:
        extra["reactions"] = ", ".join(entry.reactions)
    flags = ["deleted"] if deleted else list(media.flags)
    if at is None:
        flags.append("undated")
    message = ParsedMessage(
        platform="signal",
        conversation=conversation,
        sender=sender,
        created_at=at,
        time=reading,
        body=_DELETED if deleted else entry.body,
        attachments=tuple(media.attachments),
        flags=tuple(flags),
        extra=extra,
    )
    return _finish(message, media, deleted)


# --- sigtop json ----------------------------------------------------------------------------------

#: Where Signal Desktop keeps a message's original time, most trusted first (ms since the epoch,
#: UTC). ``received_at`` became a sequence number in later versions: it is read only when it is
#: plainly a time (after 2001-09-09, i.e. at least 10^12 ms).
_SIGTOP_TIMES = ("sent_at", "timestamp", "received_at_ms", "received_at")
_EPOCH_MS_FLOOR = 10**12


def _parse_sigtop_json(context: _Context, member: str, conversation: str) -> Iterator[Record]:
    for lineno, line in _lines(context.source, member):
        text = line.strip()
        if text in ("[", "]", ""):
            continue
        where = f"{member}: line {lineno}"
        try:
            entry = json.loads(text.removesuffix(","))
        except (json.JSONDecodeError, RecursionError) as error:
            raise ParseError(f"{where}: not a JSON object ({error.__class__.__name__})", code="bad_json") from None
        if not isinstance(entry, dict):
            raise ParseError(f"{where}: not a JSON object", code="bad_json")
        yield from _sigtop_json_records(entry, conversation, where, context.hints)


def _sigtop_json_time(entry: dict[str, Any]) -> tuple[datetime | None, TimeReading | None]:
    for key in _SIGTOP_TIMES:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            continue
        if key == "received_at" and value < _EPOCH_MS_FLOOR:
            continue
        try:
            at = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            continue
        return at, TimeReading(str(value), f"unix-milliseconds ({key})", None, "format", "UTC")
    return None, None


#: What signal-export writes as the sender of the exporting account's own messages (chat.md, data.json).
_SIGNAL_EXPORT_SELF = "Me"


def _export_sender(hints: ParseHints, shown: str, extra: dict[str, str]) -> str:
    """signal-export's sender: "Me" is the custodian (filed as sent, "Me" kept beside); others as shown."""
    return _outgoing_sender(hints, shown, extra) if shown == _SIGNAL_EXPORT_SELF else shown


def _outgoing_sender(hints: ParseHints, shown: str, extra: dict[str, str]) -> str:
    """An outgoing message's sender: the custodian (their first phone-like own identity), so ingest files
    it as sent; the name the export showed ("You", "Me") is kept beside it in ``extra["shown_sender"]``."""
    own = common.own_identity(hints.self_names)
    if not own:
        return shown
    extra["shown_sender"] = shown
    return own


def _sigtop_json_records(entry: dict[str, Any], conversation: str, where: str, hints: ParseHints) -> list[Record]:
    at, reading = _sigtop_json_time(entry)
    kind = entry.get("type") if isinstance(entry.get("type"), str) else "unknown"
    sender = "You" if kind == "outgoing" else _first_string(entry, "source", "sourceServiceId", "sourceUuid")
    body = _first_string(entry, "body")
    if kind not in _MESSAGE_TYPES:
        return [_sigtop_event(str(kind), sender, "", conversation, at)]
    media = _Media()
    for item in _objects(entry, "attachments", where):
        name = _first_string(item, "fileName", "contentType") or "attachment"
        media.omitted(name, "media_omitted", f"attachment {name} is listed; sigtop JSON has no files",
                      _first_string(item, "contentType"))
    extra: dict[str, str] = {"type": str(kind)}
    if kind == "outgoing":
        sender = _outgoing_sender(hints, sender, extra)
    sticker = entry.get("sticker")
    if isinstance(sticker, dict):
        extra["sticker"] = _first_string(sticker, "emoji") or "sticker"
        media.omitted("sticker", "media_omitted", "a sticker is listed; sigtop JSON has no files")
    flags: list[str] = []
    if entry.get("isViewOnce") is True:
        flags.append("view_once")
        if not entry.get("attachments"):
            media.omitted("view-once media", "media_omitted", "view-once media is not in the export")
    quote = entry.get("quote")
    if isinstance(quote, dict) and isinstance(quote.get("text"), str) and quote["text"]:
        extra["quote"] = quote["text"]
    reactions = [f"{r.get('emoji', '')} from {_first_string(r, 'fromId')}" for r in _objects(entry, "reactions", where)]
    if reactions:
        extra["reactions"] = "; ".join(reactions)
    edits = _objects(entry, "editHistory", where)
    if edits:
        extra["edit_history"] = "\n\n".join(
            f"Version sent {e.get('timestamp', '?')} (ms):\n{_first_string(e, 'body')}"
            for e in edits)
    deleted = entry.get("deletedForEveryone") is True
    message = ParsedMessage(
        platform="signal",
        conversation=conversation,
        sender=sender,
        created_at=at,
        time=reading,
        body=_DELETED if deleted else body,
        attachments=tuple(media.attachments),
        edited=bool(edits) or isinstance(entry.get("editMessageTimestamp"), int),
        flags=(*(["deleted"] if deleted else [*flags, *media.flags]), *(() if at else ("undated",))),
        extra=extra,
    )
    return _finish(message, media, deleted)


def _first_string(obj: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


# --- sigtop text-short -----------------------------------------------------------------------------

_SHORT_LAYOUT = "sigtop text-short %Y-%m-%d %H:%M"


def _parse_sigtop_short(context: _Context, member: str, conversation: str) -> Iterator[Record]:
    """One message a header line; a multi-line body runs on until the next header line."""
    owner = common.own_identity(context.hints.self_names) or "You"
    for block in _header_blocks(context, member, _SHORT_HEADER, "'YYYY-MM-DD HH:MM Name:' (sigtop text-short)"):
        yield from _short_records(block, conversation, owner, context.hints)


def _short_records(block: _Block, conversation: str, owner: str, hints: ParseHints) -> list[Record]:
    header = block.header
    at, reading = _short_time(header["time"], hints)
    shown = header["sender"]
    rest = "\n".join(block.lines).rstrip("\n")
    event = _SHORT_EVENT.fullmatch(rest)
    if event is not None:
        # What sigtop writes for a message that is not incoming/outgoing (a body of exactly
        # "[word message]" reads the same way: the format has no other marker).
        kind = event["type"] or "unknown"
        return [_sigtop_event(kind, "" if shown == "Unknown" else shown, "", conversation, at)]
    media = _Media()
    extra: dict[str, str] = {}
    edited = False
    details = _SHORT_DETAILS.match(rest)
    body = rest
    if details is not None:
        items = _SHORT_ITEMS.fullmatch(details["items"])
        if items is not None:
            body = details["body"] or ""
            edited = items["edited"] is not None
            if items["quoted"]:
                extra["quote_author"], extra["quote_time"] = items["quoted"], items["quoted_at"]
            count = int(items["count"] or 0)
            for number in range(1, count + 1):
                name = f"attachment {number} of {count}"
                media.omitted(name, "media_omitted", f"{name} is listed; sigtop text-short names no file",
                              "application/octet-stream")
    outgoing = shown == "You"
    if outgoing:
        extra["shown_sender"] = shown
    flags = [*media.flags, *(() if at else ("undated",))]
    message = ParsedMessage(
        platform="signal",
        conversation=conversation,
        sender=owner if outgoing else shown,
        created_at=at,
        time=reading,
        body=body,
        attachments=tuple(media.attachments),
        edited=edited,
        flags=tuple(flags),
        extra=extra,
    )
    return _finish(message, media, deleted=False)


def _short_time(raw: str, hints: ParseHints) -> tuple[datetime | None, TimeReading]:
    """sigtop formats the sent time in the exporting machine's zone and names no zone; "unknown" has none."""
    try:
        wall = datetime.strptime(raw, "%Y-%m-%d %H:%M")
    except ValueError:
        return None, TimeReading(raw, _SHORT_LAYOUT, None, "custodian_zone", hints.zone_name)
    return _local_time(wall, raw, _SHORT_LAYOUT, hints)


# --- sigtop text ----------------------------------------------------------------------------------


def _parse_sigtop(context: _Context, member: str) -> Iterator[Record]:
    lines = _lines(context.source, member)
    first = next(lines, (1, ""))[1]
    if not first.startswith("Conversation: "):
        raise ParseError(f"{member}: line 1: expected 'Conversation: …' (sigtop text export)", code="bad_layout")
    conversation = _without_detail(first.removeprefix("Conversation: "))
    for block in _sigtop_blocks(lines, member, context.source.limits.message_chars):
        yield from _sigtop_records(block, conversation, context.hints, member)


def _sigtop_blocks(lines: Iterator[tuple[int, str]], member: str, most: int) -> Iterator[list[tuple[int, str]]]:
    """Each message's lines: a block starts at ``From:``+``Type:`` or ``Type:`` after a blank line."""
    block: list[tuple[int, str]] | None = None
    held: tuple[int, str] | None = None  # a "From:" line, until the next line says whether it starts a message
    after_blank = True
    size = 0
    for lineno, line in lines:
        if held is not None:
            if _SIGTOP_TYPE.match(line):
                if block:
                    yield block
                block, held, after_blank, size = [held, (lineno, line)], None, False, 0
                continue
            block = _append(block, held, member)
            held, after_blank = None, False
        if after_blank and line.startswith("From: "):
            held = (lineno, line)
            continue
        if after_blank and _SIGTOP_TYPE.match(line):
            if block:
                yield block
            block, after_blank, size = [(lineno, line)], False, 0
            continue
        if block is None and not line.strip():
            continue
        block = _append(block, (lineno, line), member)
        after_blank = not line.strip()
        size += len(line) + 1
        if size > most:
            raise ParseError(f"{member}: message at line {block[0][0]} is longer than {most} characters",
                             code="line_too_long")
    if held is not None:
        block = _append(block, held, member)
    if block:
        yield block


def _append(block: list[tuple[int, str]] | None, line: tuple[int, str], member: str) -> list[tuple[int, str]]:
    if block is None:
        raise ParseError(f"{member}: line {line[0]}: expected a message's 'From:' or 'Type:' line", code="bad_layout")
    block.append(line)
    return block


@dataclass
class _Section:
    """A sigtop message (or one edit version): its fields, quote and body."""

    fields: list[tuple[str, str]]
    quote: list[str]
    body: list[str]

    def get(self, key: str) -> str | None:
        return next((value for name, value in self.fields if name == key), None)

    def all(self, key: str) -> list[str]:
        return [value for name, value in self.fields if name == key]


def _section(lines: list[str]) -> _Section:
    """Fields until the first blank line; then ``>`` quote lines; then, after a blank, the body."""
    fields: list[tuple[str, str]] = []
    index = 0
    while index < len(lines) and lines[index]:
        match = _SIGTOP_FIELD.match(lines[index])
        if match is None:
            break  # not a field: the format has changed, keep the line as body text
        fields.append((match["key"], match["value"]))
        index += 1
    rest = lines[index:]
    if rest and not rest[0]:
        rest = rest[1:]
    quote: list[str] = []
    while rest and rest[0].startswith(">"):
        quote.append(rest.pop(0)[2:] if rest[0].startswith("> ") else rest.pop(0)[1:])
    if quote and rest and not rest[0]:
        rest = rest[1:]
    while rest and not rest[-1]:
        rest.pop()
    return _Section(fields, quote, rest)


def _sigtop_records(block: list[tuple[int, str]], conversation: str, hints: ParseHints, member: str) -> list[Record]:
    where = f"{member}: line {block[0][0]}"
    main = _section([line for _, line in block])
    at, reading = _sigtop_time(main, where)
    kind = main.get("Type") or "unknown"
    sender = main.get("From") or ""
    extra: dict[str, str] = {}
    if kind == "outgoing":
        sender = _outgoing_sender(hints, sender or "You", extra)
    body = "\n".join(main.body)
    edited = main.get("Edited") is not None
    if edited:
        body, extra["edit_history"] = _newest_version(main.body)
    if kind not in _MESSAGE_TYPES:
        return [_sigtop_event(kind, sender, body, conversation, at)]
    media = _Media()
    for value in main.all("Attachment"):
        match = _SIGTOP_ATTACHMENT.match(value)
        name, mime = (match["name"], match["mime"]) if match else (value, "")
        media.omitted(name, "media_omitted", f"attachment {value} is listed; sigtop text has no files", mime)
    if main.quote:
        extra["quote"] = "\n".join(main.quote)
    if reactions := main.all("Reaction"):
        extra["reactions"] = "; ".join(reactions)
    if received := main.get("Received"):
        extra["received"] = received
    message = ParsedMessage(
        platform="signal",
        conversation=conversation,
        sender=sender,
        created_at=at,
        time=reading,
        body=body,
        attachments=tuple(media.attachments),
        edited=edited,
        flags=tuple(media.flags),
        extra=extra,
    )
    return _finish(message, media, deleted=False)


def _sigtop_time(section: _Section, where: str) -> tuple[datetime | None, TimeReading | None]:
    """``Sent:`` (the sender's clock, with its offset), else ``Received:``; "unknown" is undated."""
    for key, layout in (("Sent", "rfc2822"), ("Received", "rfc2822 (sigtop Received)")):
        raw = section.get(key)
        if raw is None or raw == "unknown":
            continue
        if not _RFC2822.match(raw):
            raise ParseError(f"{where}: {key}: {raw[:60]!r} is not an RFC 2822 date", code="bad_date")
        try:
            at = email.utils.parsedate_to_datetime(raw)
        except (ValueError, TypeError):
            raise ParseError(f"{where}: {key}: {raw!r} is not a valid date", code="bad_date") from None
        return at, TimeReading(raw, layout, None, "format", _offset_name(at))
    return None, None


def _newest_version(lines: list[str]) -> tuple[str, str]:
    """The newest version's body (sigtop lists versions newest first) and the whole history."""
    inner = [line[2:] if line.startswith("| ") else line[1:] for line in lines if line.startswith("|")]
    versions: list[list[str]] = []
    for line in inner:
        if line.startswith("Version: ") or not versions:
            versions.append([])
        versions[-1].append(line)
    sections = [_section(version) for version in versions]
    history = "\n\n".join(
        f"Version {s.get('Version') or '?'} (sent {s.get('Sent') or 'unknown'}):\n" + "\n".join(s.body)
        for s in sections
    )
    return ("\n".join(sections[0].body) if sections else ""), history


def _sigtop_event(kind: str, sender: str, body: str, conversation: str, at: datetime | None) -> ParsedEvent:
    event: EventKind = "disappearing_messages" if kind == "timer-notification" else "system"
    detail = f"{kind} from {sender}" if sender else kind
    return ParsedEvent(event, conversation, at, f"{detail}: {body}" if body else detail)


def _without_detail(value: str) -> str:
    """``Alice (+31 6 1234)`` → ``Alice``; sigtop appends a phone, username or ``group``."""
    match = _DETAIL.match(value)
    return match["name"] if match and match["name"] else value
