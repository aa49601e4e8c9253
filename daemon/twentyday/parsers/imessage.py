"""iMessage/SMS from an iPhone or Mac as imessage-exporter writes it (``-f txt`` and ``-f html``).

iOS has no export of its own; the open-source ``imessage-exporter`` (ReagentX, GPL-3.0: only
its output is read here, docs/FORMATS.md §9) writes one file per conversation, named after
the chat (``+15555550123.txt``, ``Alice Example.html``, a group's name), ``orphaned.txt``
for messages without a chat, and with ``-c clone|basic|full`` an ``attachments/`` folder.
The conversation is the file's name without its extension.

**Times** are written with chrono's ``%b %d, %Y %l:%M:%S %p`` (``May 17, 2022  5:29:42 PM``:
English month, space-padded hour) in the exporting Mac's local time with no zone: they are
read in the custodian's zone (``decided_by="custodian_zone"``; a wall time that occurs twice
at the autumn change is read with the earlier offset, one in the spring gap with the offset
before it, as zoneinfo does). A read receipt ``(Read by you after 1 hour, 49 seconds)`` may
follow the time. A time that is no calendar time, and the Apple epoch itself (the database
held no date: ``Dec 31, 2000  4:00:00 PM`` on a Pacific Mac), give an ``undated`` record.

**Text** (``txt.rs``, ``TXT::format_message``): a message is its time line, its sender line
(``Me``, a handle or a contact name) and its body lines, then a blank line. A new message
starts only at a time line after a blank line (a body's edit history starts with a time
too). The body may hold: ``This message was deleted from the conversation!``; ``… unsent this
message part …!`` (a retracted part: ``deleted_message``); an edit history (``<time> text`` /
``Edited 30 seconds later: text``: flag ``edited``); attachment paths (``attachments/…``
when copied; an absolute path on the Mac when not: ``incomplete_copy``), ``Attachment
missing!``, ``Sticker from …: path``; ``Tapbacks:`` (older: ``Reactions:``) lines, which are
not messages and go to ``extra``; replies to a part, indented four spaces, which the tool
also writes at their own place with ``This message responded to an earlier message.`` (flag
``reply``), so the indented copy stays in the parent and is not a second record.
Announcements are one line, ``<time> <who> <action>``: group renames, participants added,
removed or leaving, photo and background changes become ``system`` events; ``<who> unsent a
message!`` (a whole message retracted) is a record with ``deleted_message``.

**HTML** (``html.rs``, ``HTML::format_message``): the same facts in ``div.message`` >
``div.sent <service>`` | ``div.received``, with ``span.timestamp`` (its link carries the
message GUID: the record's key), ``span.sender``, ``span.bubble``, ``div.edited``,
``span.unsent``, ``span.deleted``, ``div.attachment`` (``img``/``video``/``audio``/``a``
sources), ``span.attachment_error``, ``div.tapbacks``, ``div.replies`` (kept in the parent)
and ``div.announcement``. It is read with the standard library's streaming ``html.parser``:
markup in a message is text, nothing is fetched or run.

Direction: ``Me`` (``You`` in an announcement) is the custodian: the sender becomes their
first phone-like own identity (``hints.self_names``), so the pipeline files it as sent.
Attachments found in the source are read up to ``Limits.media_bytes``; missing or larger
ones are kept by name with ``data=None``, a flag and an ``incomplete_copy`` event.
Not read: ``-f pdf``/``json``/``xml`` output.
"""

from __future__ import annotations

import html.parser
import io
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from twentyday.errors import ParseError
from twentyday.parsers import common
from twentyday.parsers.base import ExportSource, detect_by_heads, read_head
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "parse"]

NAME = "imessage"
PLATFORM = "imessage"
LAYOUT = "imessage-exporter %b %d, %Y %l:%M:%S %p"

_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
#: The shape of a time as chrono writes it; whether it is a calendar time is decided when read.
_TIME = (r"(?P<mon>[A-Z][a-z]{2}) (?P<day>\d\d), (?P<year>\d{4}) "
         r"(?P<hour>[ \d]\d):(?P<min>\d\d):(?P<sec>\d\d) (?P<ap>[AP]M)")
_TIME_AT = re.compile(_TIME)
_RECEIPT = r"\(Read by .+ after .+\)"
#: A message's first line: its time, and maybe a read receipt.
_MESSAGE_LINE = re.compile(rf"{_TIME}(?: (?P<receipt>{_RECEIPT}))?$")
#: An announcement: ``<time> <who> <action>``, the actions imessage-exporter writes.
_ANNOUNCEMENT = re.compile(
    rf"{_TIME} (?P<text>(?P<who>.+?) (?:"
    r"(?P<unsent>unsent a message[!.])"
    r"|(?:added|removed) .+ (?:to|from) the conversation\."
    r"|(?:renamed the conversation to|named the conversation) .*"
    r"|left the conversation\."
    r"|(?:changed|removed) the (?:group photo|chat background)\."
    r"|changed their phone number\."
    r"|kept an audio message\."
    r"|performed unknown action \d+"
    r"))$"
)
_UNKNOWN_ANNOUNCEMENT = "Unable to format announcement!"
_DELETED = "This message was deleted from the conversation!"
_REPLY_NOTE = "This message responded to an earlier message."
_UNSENT_PART = re.compile(r".+ unsent this message part(?: .+ after sending)?!$")
_EDITED = re.compile(r"Edited .+ later: ")
_TAPBACK_HEADINGS = frozenset({"Tapbacks:", "Reactions:"})
_ATTACHMENT_MISSING = frozenset({"Attachment missing!", "Attachment does not exist!"})
_APP_ERROR = re.compile(r"Unable to format .*(?:app )?message: ")
_STICKER = re.compile(r"(?:.+ )?Sticker from .+?: (?P<path>\S.*?)(?: \((?:App|Genmoji prompt): .*\))?$")
#: A line that is an attachment's path: copied into the export (``attachments/…``), or left where
#: the exporter found it: a Mac's ``~/Library/Messages/Attachments/…`` or an iOS backup's hashed file.
_PATH = re.compile(r"attachments/\S.*|(?:~|/\S*)/Library/(?:Messages|SMS)/\S.*|/\S.*/[0-9a-f]{2}/[0-9a-f]{40}")
_REPLY_INDENT = "    "
#: The Apple epoch (2001-01-01T00:00:00Z): a message dated there had no date in the database.
_APPLE_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)
_FILE_SUFFIXES = (".txt", ".html")
_DETECT_CANDIDATES = 4
#: An HTML export's head is its stylesheet; this much of it is searched for the first message.
_HTML_SNIFF_BYTES = 256 * 1024
_HTML_HEADER = (b'<html>\n<head>\n<meta charset="UTF-8">\n'
                b'<meta name="viewport" content="width=device-width, initial-scale=1">')
_HTML_MARKERS = (b'<span class="timestamp"><a title="Reveal in Messages app" href="sms://open?message-guid=',
                 b'<div class ="announcement"><p>')


# --- detection ------------------------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Is this an imessage-exporter txt or html file, or a folder/zip of them? Never raises."""
    return detect_by_heads(source, head, _looks_like_text, lambda: _candidates(source.members()),
                           count=_DETECT_CANDIDATES) or _detect_html(source)


def _looks_like_text(head: bytes) -> bool:
    lines = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 2)
    if len(lines) < 2:
        return False
    first = lines[0].decode("utf-8", "replace").rstrip("\r")
    if _ANNOUNCEMENT.match(first):
        return True
    return _MESSAGE_LINE.match(first) is not None and bool(lines[1].strip())


def _detect_html(source: ExportSource) -> bool:
    try:
        for member in [m for m in source.members() if m.lower().endswith(".html")][:_DETECT_CANDIDATES]:
            with source.open(member) as stream:
                start = stream.read(len(_HTML_HEADER) + 3).removeprefix(b"\xef\xbb\xbf")
                if not _HTML_HEADER.startswith(start[: len(_HTML_HEADER)]) or len(start) < len(_HTML_HEADER):
                    continue
                sniff = start + stream.read(_HTML_SNIFF_BYTES)
            if any(marker in sniff for marker in _HTML_MARKERS):
                return True
    except Exception:
        return False
    return False


def _candidates(members: list[str]) -> list[str]:
    return [m for m in members if m.lower().endswith(".txt") and "attachments/" not in m]


# --- parse ----------------------------------------------------------------------------------


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message and announcement of every conversation file, file by file."""
    members = source.members()
    index = frozenset(members)
    files = [m for m in members if m.lower().endswith(_FILE_SUFFIXES) and not _in_attachments(m)]
    if not files and len(members) == 1:
        files = members  # a lone file under another name: its content was detected
    if not files:
        raise ParseError(f"{source.name}: no imessage-exporter .txt or .html conversation file", code="not_this_format")
    context = _Context(source, index, hints, common.own_identity(hints.self_names))
    for member in files:
        conversation = _conversation(member, source, hints)
        if _is_html(source, member):
            yield from _parse_html(context, member, conversation)
        else:
            yield from _parse_text(context, member, conversation)


def _in_attachments(member: str) -> bool:
    return "attachments" in member.lower().split("/")[:-1]


def _is_html(source: ExportSource, member: str) -> bool:
    if member.lower().endswith(".html"):
        return True
    return read_head(source, member, 64).lstrip(b"\xef\xbb\xbf").startswith(b"<html>")


def _conversation(member: str, source: ExportSource, hints: ParseHints) -> str:
    name = posixpath.basename(member) or posixpath.basename((hints.source_name or source.name).replace("\\", "/"))
    stem, suffix = posixpath.splitext(name)
    return stem if suffix.lower() in _FILE_SUFFIXES else name


# --- shared: context, times, attachments ------------------------------------------------------


@dataclass
class _Context:
    source: ExportSource
    index: frozenset[str]
    hints: ParseHints
    owner: str

    def person(self, name: str, me: str) -> str:
        """The sender as the export names them, the custodian's identity for ``Me``/``You``."""
        return (self.owner or name) if name == me else name


def _read_time(match: re.Match[str], hints: ParseHints) -> tuple[datetime | None, TimeReading, str]:
    """The time of a matched line, or None with the reason it is not one."""
    raw = match.group(0)[: match.end("ap") - match.start()]
    month = _MONTHS.get(match["mon"])
    hour = int(match["hour"])
    why = ""
    at: datetime | None = None
    if month is None:
        why = "not an English month abbreviation"
    elif not 1 <= hour <= 12:
        why = "hour outside 1-12 on a 12-hour clock"
    else:
        hour = hour % 12 + (12 if match["ap"] == "PM" else 0)
        try:
            at = datetime(int(match["year"]), month, int(match["day"]), hour, int(match["min"]), int(match["sec"]),
                          tzinfo=hints.timezone)
        except ValueError:
            why = "not a calendar date and time"
    if at is not None and _at_apple_epoch(at):
        at, why = None, "the Apple epoch: the database held no date"
    layout = f"{LAYOUT} (not read: {why})" if why else LAYOUT
    return at, TimeReading(raw, layout, None, "custodian_zone", hints.zone_name), why


def _at_apple_epoch(at: datetime) -> bool:
    """Within a day of 2001-01-01 UTC on a whole quarter hour: a zero date read in some Mac's zone."""
    wall = at.replace(tzinfo=None)
    return (abs(wall - _APPLE_EPOCH.replace(tzinfo=None)) <= timedelta(hours=14)
            and wall.minute % 15 == 0 and wall.second == 0)


@dataclass
class _Message:
    """One message being collected; the same for both layouts."""

    lineno: int
    at: datetime | None
    time: TimeReading
    sender: str = ""
    body: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    key: str = ""
    deleted: bool = False
    size: int = 0

    def flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)

    def add_body(self, text: str, most: int, where: str) -> None:
        self.size += len(text) + 1
        if self.size > most:
            raise ParseError(f"{where}: message at line {self.lineno} is longer than {most} chars",
                             code="line_too_long")
        self.body.append(text)

    def attachment(self, context: _Context, folder: str, path: str) -> None:
        name = posixpath.basename(path) or path
        member = None if path.startswith(("/", "~")) else _resolve(context.index, folder, path)
        if member is None:
            where = ("left on the Mac (not copied)" if path.startswith(("/", "~"))
                     else "named by the export but not in this copy")
            self.omitted(name, "media_omitted", f"{name} is {where}")
            return
        cap = context.source.limits.media_bytes
        data = common.read_member(context.source, member, cap)
        if data is None:
            self.omitted(name, "attachment_too_large", f"{name} is larger than {cap} bytes; not kept")
            return
        self.attachments.append(ParsedAttachment(name=name, content_type=common.content_type(name), data=data))

    def omitted(self, name: str, flag: str, reason: str) -> None:
        self.attachments.append(ParsedAttachment(name=name, content_type=common.content_type(name)))
        self.flag(flag)
        self.missing.append(reason)


def _resolve(index: frozenset[str], folder: str, path: str) -> str | None:
    """The member a path written in a conversation file names (the exporter writes it verbatim)."""
    member = posixpath.normpath(posixpath.join(folder, path))
    return member if member in index and not member.startswith("../") else None


def _records(context: _Context, message: _Message, conversation: str) -> list[Record]:
    """The message, then the events it raises (deletion, each missing file)."""
    flags = list(message.flags)
    if message.at is None:
        flags.append("undated")
    if message.deleted and "deleted" not in flags:
        flags.append("deleted")
    sender = message.sender
    owner = context.owner
    recipients: tuple[str, ...] = ()
    if owner and sender != owner:
        recipients = (owner,)
    elif sender == owner and conversation not in (owner, "orphaned"):
        recipients = (conversation,)
    record = ParsedMessage(
        platform=PLATFORM,
        conversation=conversation,
        sender=sender,
        created_at=message.at,
        time=message.time,
        body="\n".join(message.body).strip("\n"),
        recipients=recipients,
        message_key=message.key,
        attachments=tuple(message.attachments),
        edited="edited" in flags,
        flags=tuple(flags),
        extra=message.extra,
    )
    records: list[Record] = [record]
    who = sender or "(no name)"
    if message.deleted:
        records.append(ParsedEvent("deleted_message", conversation, message.at,
                                   f"message from {who} shows as deleted or unsent"))
    records += [ParsedEvent("incomplete_copy", conversation, message.at, f"{who}: {reason}")
                for reason in message.missing]
    return records


def _announcement(context: _Context, match: re.Match[str], conversation: str, lineno: int) -> list[Record]:
    """A group change is a ``system`` event; a whole message unsent is a record of it."""
    at, reading, _ = _read_time(match, context.hints)
    if match["unsent"]:
        message = _Message(lineno, at, reading, sender=context.person(match["who"], "You"), deleted=True)
        message.flag("unsent")
        message.body.append(match["text"])
        return _records(context, message, conversation)
    return [ParsedEvent("system", conversation, at, match["text"])]


# --- text -----------------------------------------------------------------------------------


def _lines(source: ExportSource, member: str) -> Iterator[tuple[int, str]]:
    """The member's lines, each bounded; a damaged member or an overlong line names the member."""
    try:
        with source.open(member) as stream:
            yield from common.text_lines(stream, source.limits.signal_line_bytes)
    except ParseError as error:
        raise ParseError(f"{member}: {error}", code=error.code) from None
    except common.READ_ERRORS as error:
        raise ParseError(f"{member}: cannot be read ({error})", code="entry_unreadable") from None


def _parse_text(context: _Context, member: str, conversation: str) -> Iterator[Record]:
    folder = posixpath.dirname(member)
    block: list[tuple[int, str]] = []
    size = 0
    most = context.source.limits.message_chars
    previous_blank = True
    for lineno, line in _lines(context.source, member):
        starts = previous_blank and (_MESSAGE_LINE.match(line) or _ANNOUNCEMENT.match(line)
                                     or line == _UNKNOWN_ANNOUNCEMENT)
        if starts:
            if block:
                yield from _text_block(context, block, folder, conversation, member)
            block, size = [(lineno, line)], 0
        elif block:
            block.append((lineno, line))
            size += len(line) + 1
            if size > most:
                raise ParseError(f"{member}: message at line {block[0][0]} is longer than {most} chars",
                                 code="line_too_long")
        elif line.strip():
            raise ParseError(f"{member}: line {lineno}: text before the first message time "
                             f"('Mon DD, YYYY HH:MM:SS AM'); not an imessage-exporter text file", code="bad_layout")
        previous_blank = not line.strip()
    if block:
        yield from _text_block(context, block, folder, conversation, member)


def _text_block(context: _Context, block: list[tuple[int, str]], folder: str, conversation: str,
                member: str) -> list[Record]:
    lineno, first = block[0]
    if first == _UNKNOWN_ANNOUNCEMENT:
        return [ParsedEvent("system", conversation, None, "an announcement the exporter could not format")]
    header = _MESSAGE_LINE.match(first)
    if header is None:
        announcement = _ANNOUNCEMENT.match(first)
        if announcement is None:  # cannot happen: a block starts at one of the two
            raise ParseError(f"{member}: line {lineno}: not a message or announcement line", code="bad_layout")
        records = _announcement(context, announcement, conversation, lineno)
        rest = [line for _, line in block[1:] if line.strip()]
        if rest:  # text after an announcement: kept as a record, never dropped
            records.append(_unrecognised(context, announcement, rest, conversation, lineno))
        return records
    at, reading, _ = _read_time(header, context.hints)
    message = _Message(lineno, at, reading)
    if header["receipt"]:
        message.extra["read_receipt"] = header["receipt"]
    lines = [line for _, line in block[1:]]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        message.flag("unrecognised")
    else:
        message.sender = context.person(lines[0], "Me")
        _text_body(context, message, lines[1:], folder, f"{member}")
    return _records(context, message, conversation)


def _unrecognised(context: _Context, match: re.Match[str], rest: list[str], conversation: str,
                  lineno: int) -> ParsedMessage:
    at, reading, _ = _read_time(match, context.hints)
    return ParsedMessage(PLATFORM, conversation, "", at, reading, "\n".join(rest),
                         flags=("unrecognised",) if at else ("unrecognised", "undated"))


def _text_body(context: _Context, message: _Message, lines: list[str], folder: str, where: str) -> None:
    most = context.source.limits.message_chars
    tapbacks: list[str] = []
    replies = 0
    in_tapbacks = in_reply = False
    for line in lines:
        if in_reply:
            in_reply = bool(line.strip())
            continue
        if line.startswith(_REPLY_INDENT) and _MESSAGE_LINE.match(line[len(_REPLY_INDENT):]):
            replies += 1  # a reply shown in its thread; its own record is where the tool wrote it
            in_reply, in_tapbacks = True, False
            continue
        if in_tapbacks:
            if line.strip() and (" by " in line or "Sticker from" in line):
                tapbacks.append(line.strip())
                continue
            in_tapbacks = False
            if not line.strip():
                continue
        if line in _TAPBACK_HEADINGS:
            in_tapbacks = True
        elif line == _DELETED:
            message.deleted = True
        elif line == _REPLY_NOTE:
            message.flag("reply")
        elif _UNSENT_PART.fullmatch(line):
            message.deleted = True
            message.flag("unsent")
            message.add_body(line, most, where)
        elif line in _ATTACHMENT_MISSING:
            message.omitted("(attachment)", "media_omitted", "an attachment the exporter found no file for")
        elif (sticker := _STICKER.fullmatch(line)) and _PATH.fullmatch(sticker["path"]):
            message.attachment(context, folder, sticker["path"])
        elif _PATH.fullmatch(line):
            message.attachment(context, folder, line)
        else:
            if _EDITED.match(line):
                message.flag("edited")
            elif _APP_ERROR.match(line):
                message.flag("app_unreadable")
            message.add_body(line, most, where)
    if tapbacks:
        message.extra["tapbacks"] = "\n".join(tapbacks)
    if replies:
        message.extra["replies_shown"] = str(replies)


# --- html -----------------------------------------------------------------------------------


_HTML_CHUNK = 64 * 1024


def _parse_html(context: _Context, member: str, conversation: str) -> Iterator[Record]:
    reader = _HtmlReader(context, posixpath.dirname(member), conversation, member)
    try:
        with context.source.open(member) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
            while chunk := text.read(_HTML_CHUNK):
                reader.feed(chunk)
                # html.parser keeps an unfinished tag, comment or declaration and re-scans it on every
                # feed; past one message's worth it is no tag but a damaged (or hostile) page.
                if len(reader.rawdata) > context.source.limits.message_chars:
                    raise ParseError(f"{member}: an unterminated tag or comment; the page is damaged",
                                     code="bad_html")
                yield from reader.take()
            reader.close()
    except UnicodeDecodeError as error:
        raise ParseError(f"{member}: not valid UTF-8 ({error.reason})", code="not_utf8") from None
    except common.READ_ERRORS as error:
        raise ParseError(f"{member}: cannot be read ({error})", code="entry_unreadable") from None
    yield from reader.take()
    if not reader.seen:
        raise ParseError(f"{member}: no imessage-exporter message or announcement in this HTML file",
                         code="bad_layout")


#: Where text inside a message goes, by the class of the element it is in.
_SLOTS = {"timestamp": "time", "sender": "sender", "bubble": "body", "edited": "body", "app": "body",
          "unsent": "unsent", "deleted": "deleted", "attachment_error": "missing", "tapbacks": "tapbacks",
          "replies": "replies", "reply_context": "reply", "expressive": "expressive", "subject": "body",
          "app_error": "app_error", "transcription": "body", "shareplay": "body", "shared_location": "body"}
#: ``MediaType::Other``: the path is only written as text.
_NOT_EMBEDDED = re.compile(r"Unable to embed .+ attachments: (?P<path>\S.*?)\s*$")
_VOID = frozenset({"br", "hr", "img", "meta", "link", "source", "input", "wbr", "area", "base", "col", "embed",
                   "param", "track"})


class _HtmlReader(html.parser.HTMLParser):
    """Streams ``div.message`` and ``div.announcement`` elements into records.

    Only the tags inside a top-level message are tracked, each with the slot its text goes to;
    a message ends when its ``div`` closes. ``html.parser`` never fetches or runs anything, and a
    ``<script>`` in a message is taken as text like any other."""

    def __init__(self, context: _Context, folder: str, conversation: str, member: str) -> None:
        super().__init__(convert_charrefs=True)
        self.context, self.folder, self.conversation, self.member = context, folder, conversation, member
        self.out: list[Record] = []
        self.seen = False
        self.stack: list[tuple[str, str]] = []  # (tag, slot) inside the current message
        self.kind = ""  # "message" | "announcement" | ""
        self.parts: dict[str, list[str]] = {}
        self.message: _Message | None = None
        self.direction = ""
        self.size = 0

    def take(self) -> list[Record]:
        out, self.out = self.out, []
        return out

    def _slot(self) -> str:
        return self.stack[-1][1] if self.stack else ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        if not self.kind:
            if tag == "div" and "message" in classes:
                self._begin("message", tag)
            elif tag == "div" and "announcement" in classes:
                self._begin("announcement", tag)
            return
        slot = self._slot()
        if slot in ("replies", "tapbacks"):
            pass  # inside a thread or the tapbacks: kept as they are
        elif tag == "div" and classes[:1] in (["sent"], ["received"]) and not self.direction:
            self.direction = classes[0]
            if classes[0] == "sent" and len(classes) > 1:
                self.parts.setdefault("service", []).append(classes[1])
        else:
            if slot != "body":  # an edit history's own timestamp spans stay in the body
                slot = next((_SLOTS[c] for c in classes if c in _SLOTS), slot)
            if tag == "a" and self._slot() == "time" and "message-guid=" in attributes.get("href", ""):
                self.parts["key"] = [attributes["href"].split("message-guid=", 1)[1]]
                slot = "date"
            elif tag in ("img", "source", "audio") and attributes.get("src") and self._slot() != "app":
                self.parts.setdefault("files", []).append(attributes["src"])
            elif tag == "a" and self._slot() == "attachment" and attributes.get("href"):
                self.parts.setdefault("files", []).append(attributes["href"])
            if "attachment" in classes:
                slot = "attachment"
            if "edited" in classes:
                self.parts["edited_seen"] = ["1"]
        if tag in ("br", "hr") and slot == "body":
            self._text("body", "\n")
        if tag not in _VOID:
            self.stack.append((tag, slot))

    def handle_endtag(self, tag: str) -> None:
        if not self.kind:
            return
        # Close the nearest open element of this name (html.parser does not repair bad nesting).
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                break
        if not self.stack:
            self._end()
        elif tag in ("p", "div", "tr") and self._slot() == "body":
            self._text("body", "\n")
        elif tag == "td" and self._slot() == "body":
            self._text("body", " ")

    def handle_data(self, data: str) -> None:
        if self.kind:
            self._text(self._slot(), data)

    def _text(self, slot: str, data: str) -> None:
        self.size += len(data)
        most = self.context.source.limits.message_chars
        if self.size > most:
            raise ParseError(f"{self.member}: message at line {self.getpos()[0]} is longer than {most} chars",
                             code="line_too_long")
        self.parts.setdefault(slot, []).append(data)

    def _begin(self, kind: str, tag: str) -> None:
        self.kind, self.seen, self.size, self.direction = kind, True, 0, ""
        self.parts = {"line": [str(self.getpos()[0])]}
        self.stack = [(tag, "")]

    def _end(self) -> None:
        kind, parts = self.kind, self.parts
        self.kind, self.parts, self.stack = "", {}, []
        lineno = int(parts["line"][0])
        if kind == "announcement":
            self.out += self._announcement(parts, lineno)
        else:
            self.out += self._message(parts, lineno)

    def _announcement(self, parts: dict[str, list[str]], lineno: int) -> list[Record]:
        text = " ".join(("".join(parts.get("time", [])) + " " + "".join(parts.get("", []))).split())
        spaced = "".join(parts.get("time", [])).strip() + " " + " ".join("".join(parts.get("", [])).split())
        match = _ANNOUNCEMENT.match(spaced)
        if match is not None:
            return _announcement(self.context, match, self.conversation, lineno)
        time = _TIME_AT.match("".join(parts.get("time", [])).strip())
        at = _read_time(time, self.context.hints)[0] if time else None
        detail = text or "an announcement the exporter could not format"
        return [ParsedEvent("system", self.conversation, at, detail)]

    def _message(self, parts: dict[str, list[str]], lineno: int) -> list[Record]:
        date = "".join(parts.get("date", [])).strip()
        header = _MESSAGE_LINE.match(date)
        if header is None:
            reading = TimeReading(date, f"{LAYOUT} (not read: not an imessage-exporter time)", None,
                                  "custodian_zone", self.context.hints.zone_name)
            message = _Message(lineno, None, reading)
        else:
            at, reading, _ = _read_time(header, self.context.hints)
            message = _Message(lineno, at, reading)
        receipt = " ".join("".join(parts.get("time", [])).split())
        if receipt:
            message.extra["read_receipt"] = receipt
        message.key = "".join(parts.get("key", []))
        sender = " ".join("".join(parts.get("sender", [])).split())
        if self.direction == "sent":  # "Me", or the --custom-name the exporter was given
            message.sender = self.context.owner or sender
            if sender != "Me":
                message.extra["exported_sender"] = sender
        else:
            message.sender = sender
        if not sender:
            message.flag("unrecognised")
        if parts.get("service"):
            message.extra["service"] = parts["service"][0]
        body = "".join(parts.get("body", []))
        for line in body.split("\n"):
            if line.strip():
                message.body.append(line.strip())
                if _EDITED.match(line.strip()) or line.strip().startswith("Edited "):
                    message.flag("edited")
        if parts.get("edited_seen"):
            message.flag("edited")
        if "".join(parts.get("deleted", [])).strip():
            message.deleted = True
        unsent = " ".join("".join(parts.get("unsent", [])).split())
        if unsent:
            message.deleted = True
            message.flag("unsent")
            message.body.append(unsent)
        if "".join(parts.get("reply", [])).strip():
            message.flag("reply")
        if "".join(parts.get("app_error", [])).strip():
            message.flag("app_unreadable")
        for error in "".join(parts.get("missing", [])).split("\n"):
            name = error.strip().removeprefix("Unable to locate attachment:").strip()
            if name:
                label = "(attachment)" if name in _ATTACHMENT_MISSING else name
                message.omitted(label, "media_omitted", f"{label}: the exporter found no file for it")
        embedded = _NOT_EMBEDDED.search("".join(parts.get("attachment", [])))
        files = [*parts.get("files", []), *([embedded["path"]] if embedded else [])]
        for path in dict.fromkeys(files):
            message.attachment(self.context, self.folder, path)
        tapbacks = [" ".join(t.split()) for t in "".join(parts.get("tapbacks", [])).split("\n")]
        tapbacks = [t for t in tapbacks if t and t != "Tapbacks:"]
        if tapbacks:
            message.extra["tapbacks"] = "\n".join(tapbacks)
        expressive = " ".join("".join(parts.get("expressive", [])).split())
        if expressive:
            message.extra["expressive"] = expressive
        return _records(self.context, message, self.conversation)
