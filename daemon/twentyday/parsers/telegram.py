"""Telegram Desktop JSON export (``result.json``): bytes in, messages and events out.

Pure and streaming. The authority for the shape is tdesktop's
``export_output_json.cpp`` (docs/FORMATS.md §2):

- single-chat export: ``{"name", "type", "id", "messages": [...]}``;
- full export: ``{"about", "personal_information", ..., "chats": {"list": [chat]},
  "left_chats": {"list": [chat]}}``, each chat shaped like a single-chat export.

The file is never loaded whole: :class:`_JsonReader` walks the object structure
with a small hand-written tokenizer over a sliding text buffer, and hands each
element of a ``messages`` array (and each scalar it needs) to the stdlib's
``json.JSONDecoder.raw_decode``. Memory is bounded by the largest single
message (``Limits.message_chars``) plus one read chunk; everything the parser does
not need (contacts, sessions, profile pictures, ``other_data``) is skipped
element by element without being built.

Times: ``date_unixtime`` (a string of UTC seconds) when present, read as UTC
(``decided_by="format"``); otherwise ``date``, which tdesktop writes in the
exporting machine's local time without an offset, read in the custodian's zone
(``decided_by="custodian_zone"``). A message with neither is undated.

Media: ``photo``, ``file`` and ``contact_vcard`` hold either a path relative to
``result.json`` or a placeholder such as ``(File not included. Change data
exporting settings to download.)``. A path found in the source is read (up to
``Limits.media_bytes``); a placeholder, a path the source lacks, or a file
over the cap gives an attachment with ``data=None``, a flag and an
``incomplete_copy`` event. ``thumbnail`` is not kept.

Service messages become events: ``set_messages_ttl`` (auto-delete timer) →
``disappearing_messages`` (``system`` when the timer is turned off),
``clear_history`` → ``deleted_message``, everything else → ``system`` with the
action, the actor and the action's fields. ``unsupported`` messages (tdesktop
could not export them) → ``incomplete_copy``.

tdesktop writes control characters other than TAB/CR/LF as ``\\xNN``, which is
not JSON; those escapes are read as the characters they name.

The HTML export (``messages.html``) is read by :mod:`telegram_html`. Not supported: chat fields written after
the chat's ``messages`` array (tdesktop writes them first), which are then not
used for the conversation name.
"""

from __future__ import annotations

import codecs
import json
import posixpath
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from twentyday.errors import ParseError
from twentyday.parsers import common
from twentyday.parsers.base import ExportSource, Limits, detect_by_heads
from twentyday.records import EventKind, ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "parse", "plain_text"]

NAME = "telegram"

#: Deeper nesting than any tdesktop export has; refusing it bounds the skipper's stack.
MAX_DEPTH = 64

#: A decode error this close to the end of the buffer may just mean "read more".
_TAIL_SLACK = 16
_SMALL_VALUE_CHARS = 1024 * 1024
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_HEX_ESCAPE = re.compile(r"\\x[0-9A-Fa-f]{2}")
#: ``\xNN`` preceded by an even run of backslashes (so the backslash before x is an escape).
_HEX_ESCAPES = re.compile(r"(?<!\\)((?:\\\\)*)\\x([0-9A-Fa-f]{2})")
#: What reading a damaged member can raise (a zip entry's CRC, a truncated deflate stream).

_MEDIA_FIELDS = ("photo", "file", "contact_vcard")
#: Skip reasons tdesktop writes instead of a path (the wording has changed over versions).
_PLACEHOLDER = re.compile(r"^\((?:File|Photo)\b[^()]*\)$")
_TYPE_NAMES = {"saved_messages": "Saved Messages", "replies": "Replies"}
#: Service fields that are bookkeeping, not part of what the action says.
_SERVICE_SKIP = frozenset({"id", "type", "date", "date_unixtime", "actor", "actor_id", "action", "text_entities"})
_EXTRA_FIELDS = frozenset(
    (
        "author",
        "forwarded_from",
        "saved_from",
        "via_bot",
        "media_type",
        "mime_type",
        "sticker_emoji",
        "duration_seconds",
        "place_name",
        "address",
        "game_title",
        "game_description",
        "performer",
        "title",
    )
)
_SUMMARY_FIELDS = ("poll", "location_information", "contact_information", "invoice_information")

_HEAD_FULL = re.compile(r'^\{\s*"about"\s*:')
_HEAD_FULL_KEYS = re.compile(r'"(?:personal_information|profile_pictures|contacts|chats|left_chats)"\s*:')
_HEAD_MESSAGES = re.compile(r'"messages"\s*:\s*\[')
_HEAD_MESSAGE_FIELD = re.compile(
    r'"date_unixtime"\s*:|"date"\s*:\s*"\d{4}-\d\d-\d\dT|"type"\s*:\s*"(?:message|service|unsupported)"'
)


# --- public API -------------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Is this a Telegram Desktop JSON export, or a zip holding one? Never raises."""
    return detect_by_heads(source, head, _head_matches, lambda: _result_members(source))


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message and event of every chat in every ``result.json``, in file order.

    Raises :class:`ParseError` (while iterating) for anything that is not a
    readable Telegram export, naming the member and the character offset.
    """
    members = _result_members(source)
    if not members:
        raise ParseError(f"{source.name}: no result.json (Telegram Desktop JSON export) in the source",
                         code="not_this_format")
    index = frozenset(source.members())
    for member in members:
        yield from _parse_member(source, member, index, hints)


def plain_text(value: object, where: str) -> str:
    """A ``text`` field as plain text: a string, or an array of strings and entity objects."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise ParseError(f"{where}: text is {type(value).__name__}, not a string or an array", code="bad_field")
    parts: list[str] = []
    for part in value:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text", ""), str):
            parts.append(part.get("text", ""))
        else:
            raise ParseError(f"{where}: text array holds {type(part).__name__}, not a string or an entity",
                             code="bad_field")
    return "".join(parts)


# --- which members ------------------------------------------------------------------


def _result_members(source: ExportSource) -> list[str]:
    """Every ``result.json`` in the source; a single-file source is one, whatever its name."""
    members = source.members()
    found = [m for m in members if m.lower().endswith("result.json")]
    if not found and len(members) == 1:
        return members
    return found


def _head_matches(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text.startswith("{"):
        return False
    if _HEAD_FULL.match(text) and _HEAD_FULL_KEYS.search(text):
        return True
    return _HEAD_MESSAGES.search(text) is not None and _HEAD_MESSAGE_FIELD.search(text) is not None


# --- the streaming JSON reader ---------------------------------------------------------


class _JsonReader:
    """Walks JSON structure incrementally; decodes leaves and messages with ``raw_decode``.

    The buffer always starts at or before the value being decoded, so a value
    that spans chunks is retried with more text until it is complete (or past
    its size limit). Offsets in errors count characters from the file's start.
    """

    def __init__(self, stream: BinaryIO, label: str, limits: Limits) -> None:
        self._stream = stream
        self._label = label
        self._chunk_bytes = limits.telegram_chunk_bytes
        #: One message (or any scalar) larger than this is not a Telegram message.
        self.message_chars = limits.message_chars
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._json = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._base = 0
        self._eof = False
        self._started = False

    # - buffer -

    def _fill(self) -> bool:
        """Append the next chunk, dropping what has been consumed; False at end of input."""
        if self._eof:
            return False
        try:
            raw = self._stream.read(self._chunk_bytes)
        except common.READ_ERRORS as error:
            raise ParseError(f"{self._label}: cannot be read ({error})", code="entry_unreadable") from None
        try:
            text = self._decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as error:
            raise ParseError(f"{self._label}: not valid UTF-8 near byte {error.start} of a chunk",
                             code="not_utf8") from None
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._eof = not raw
        self._base += self._pos
        self._buf = self._buf[self._pos :] + text
        self._pos = 0
        return bool(raw) or bool(text)

    def offset(self) -> int:
        return self._base + self._pos

    def peek(self) -> str:
        """The next non-whitespace character ("" at the end of input), not consumed."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def _error(self, what: str, at: int | None = None) -> ParseError:
        where = self.offset() if at is None else at
        return ParseError(f"{self._label}: {what} at character {where}; not a readable Telegram export",
                          code="bad_json")

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self._error(f"expected {char!r}, found {found or 'end of file'!r}")
        self._pos += 1

    # - values -

    def value(self, limit: int) -> Any:
        """Decode the next complete JSON value of at most ``limit`` characters."""
        if not self.peek():
            raise self._error("unexpected end of file")
        while True:
            try:
                obj, end = self._json.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as error:
                if self._patch_hex_escapes(error):
                    continue
                if not self._eof and self._maybe_incomplete(error):
                    self._grow(limit)
                    continue
                raise self._error(f"invalid JSON ({error.msg})", self._base + error.pos) from None
            except RecursionError:
                raise self._error("JSON nested too deeply") from None
            if not self._eof and (end >= len(self._buf) or self._buf[end] in _NUMBER_CHARS):
                self._grow(limit)  # a number cut by the buffer's end ("0." of "0.5") continues
                continue
            self._pos = end
            return obj

    def _grow(self, limit: int) -> None:
        if len(self._buf) - self._pos > limit:
            raise self._error(f"a value longer than {limit} characters")
        self._fill()

    def _maybe_incomplete(self, error: json.JSONDecodeError) -> bool:
        return error.msg.startswith("Unterminated string") or error.pos >= len(self._buf) - _TAIL_SLACK

    def _patch_hex_escapes(self, error: json.JSONDecodeError) -> bool:
        """Rewrite tdesktop's non-JSON ``\\xNN`` escapes as ``\\u00NN``; False if the error is another.

        Every such escape in the buffered rest of the value is rewritten at once,
        so a value full of them costs one pass per chunk, not one per escape.
        """
        if not error.msg.startswith("Invalid \\escape") or not _HEX_ESCAPE.match(self._buf, error.pos):
            return False
        rest = _HEX_ESCAPES.sub(r"\1\\u00\2", self._buf[self._pos :])
        self._buf = self._buf[: self._pos] + rest
        return True

    # - structure -

    def object_keys(self) -> Iterator[str]:
        """Each key of the object at the cursor; the caller consumes each key's value."""
        self.expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            key = self.value(_SMALL_VALUE_CHARS)
            if not isinstance(key, str):
                raise self._error("an object key that is not a string")
            self.expect(":")
            yield key
            found = self.peek()
            self._pos += 1
            if found == "}":
                return
            if found != ",":
                raise self._error(f"expected ',' or '}}' after a value, found {found or 'end of file'!r}")

    def array_items(self) -> Iterator[None]:
        """Once per element of the array at the cursor; the caller consumes each element."""
        self.expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield None
            found = self.peek()
            self._pos += 1
            if found == "]":
                return
            if found != ",":
                raise self._error(f"expected ',' or ']' after an element, found {found or 'end of file'!r}")

    def skip(self, depth: int = 0) -> None:
        """Consume the next value without building it (containers element by element)."""
        if depth > MAX_DEPTH:
            raise self._error(f"JSON nested deeper than {MAX_DEPTH} levels")
        found = self.peek()
        if found == "{":
            for _ in self.object_keys():
                self.skip(depth + 1)
        elif found == "[":
            for _ in self.array_items():
                self.skip(depth + 1)
        else:
            self.value(self.message_chars)


# --- walking the export ------------------------------------------------------------------


@dataclass
class _Chat:
    """What is known of the chat whose messages are being read."""

    name: str | None = None
    kind: str = ""
    chat_id: str = ""

    def conversation(self) -> str:
        if self.name:
            return self.name
        if self.kind in _TYPE_NAMES:
            return _TYPE_NAMES[self.kind]
        label = self.kind or "chat"
        return f"Telegram {label} {self.chat_id}".rstrip()


@dataclass
class _Context:
    source: ExportSource
    member: str
    folder: str
    index: frozenset[str]
    hints: ParseHints


def _parse_member(source: ExportSource, member: str, index: frozenset[str], hints: ParseHints) -> Iterator[Record]:
    context = _Context(source, member, posixpath.dirname(member), index, hints)
    with source.open(member) as stream:
        reader = _JsonReader(stream, member, source.limits)
        if reader.peek() != "{":
            raise ParseError(f"{member}: not a JSON object; not a Telegram Desktop export", code="not_this_format")
        found = yield from _walk_chat(reader, context, top_level=True)
        if reader.peek():
            raise ParseError(f"{member}: text after the end of the JSON object at character {reader.offset()}",
                             code="bad_json")
    if not found:
        raise ParseError(f"{member}: no 'messages', 'chats' or 'left_chats'; not a Telegram chat export",
                         code="not_this_format")


def _walk_chat(reader: _JsonReader, context: _Context, *, top_level: bool) -> Generator[Record, None, bool]:
    """Read one chat object (or the top-level object); returns whether it had messages."""
    chat = _Chat()
    found = False
    for key in reader.object_keys():
        if key == "messages":
            found = True
            yield from _walk_messages(reader, chat, context)
        elif key in ("name", "type", "id"):
            _set_chat_field(chat, key, reader.value(_SMALL_VALUE_CHARS), context.member)
        elif top_level and key in ("chats", "left_chats"):
            found = True
            yield from _walk_chat_list(reader, context, key)
        else:
            reader.skip()
    return found


def _set_chat_field(chat: _Chat, key: str, value: object, member: str) -> None:
    if key == "name":
        if isinstance(value, str) or value is None:
            chat.name = value
        else:
            raise ParseError(f"{member}: chat name is {type(value).__name__}, not a string", code="bad_field")
    elif key == "type":
        chat.kind = value if isinstance(value, str) else ""
    elif isinstance(value, int | str) and not isinstance(value, bool):
        chat.chat_id = str(value)
    else:
        raise ParseError(f"{member}: chat id is {type(value).__name__}, not a number", code="bad_field")


def _walk_chat_list(reader: _JsonReader, context: _Context, key: str) -> Iterator[Record]:
    if reader.peek() != "{":
        raise ParseError(f"{context.member}: '{key}' is not a JSON object", code="bad_field")
    for inner in reader.object_keys():
        if inner != "list":
            reader.skip()
            continue
        if reader.peek() != "[":
            raise ParseError(f"{context.member}: '{key}.list' is not an array", code="bad_field")
        for _ in reader.array_items():
            if reader.peek() != "{":
                raise ParseError(f"{context.member}: an element of '{key}.list' is not a chat object", code="bad_field")
            yield from _walk_chat(reader, context, top_level=False)


def _walk_messages(reader: _JsonReader, chat: _Chat, context: _Context) -> Iterator[Record]:
    if reader.peek() != "[":
        raise ParseError(f"{context.member}: 'messages' is not an array", code="bad_field")
    for _ in reader.array_items():
        at = reader.offset()
        message = reader.value(reader.message_chars)
        if not isinstance(message, dict):
            raise ParseError(f"{context.member}: the message at character {at} is not a JSON object", code="bad_field")
        yield from _records(message, chat, context, f"{context.member}: message {message.get('id', f'@{at}')}")


# --- one message ------------------------------------------------------------------------


def _records(message: dict[str, Any], chat: _Chat, context: _Context, where: str) -> list[Record]:
    created_at, reading = _time(message, context.hints, where)
    conversation = chat.conversation()
    kind = message.get("type", "message")
    if kind == "service":
        return [_service_event(message, conversation, created_at, where)]
    if kind == "unsupported":
        detail = f"message {message.get('id', '?')} could not be exported by Telegram Desktop (unsupported)"
        return [ParsedEvent("incomplete_copy", conversation, created_at, detail)]
    attachments, flags, missing = _media(message, context, where)
    if "forwarded_from" in message:
        flags.append("forwarded")
    extra = _extra(message, where)
    body = _body(message, extra, where)
    parsed = ParsedMessage(
        platform="telegram",
        conversation=conversation,
        sender=_sender(message, "from", where),
        created_at=created_at,
        time=reading,
        body=body,
        message_key=_key(chat.chat_id, message.get("id")),
        attachments=tuple(attachments),
        edited="edited" in message or "edited_unixtime" in message,
        reply_to=_reply_to(message, chat.chat_id),
        flags=tuple(flags),
        extra=extra,
    )
    events = [ParsedEvent("incomplete_copy", conversation, created_at, f"{parsed.sender}: {m}") for m in missing]
    if "self_destruct_period_seconds" in message:
        detail = f"{parsed.sender}: self-destructing media ({message['self_destruct_period_seconds']} s)"
        events.append(ParsedEvent("disappearing_messages", conversation, created_at, detail))
    return [parsed, *events]


def _time(message: dict[str, Any], hints: ParseHints, where: str) -> tuple[datetime | None, TimeReading | None]:
    unix = message.get("date_unixtime")
    if unix is not None:
        return _unix_time(unix, where)
    local = message.get("date")
    if local is None:
        return None, None
    if not isinstance(local, str) or len(local) > 64:
        raise ParseError(f"{where}: date is not an ISO date string", code="bad_date")
    try:
        wall = datetime.fromisoformat(local)
    except ValueError:
        raise ParseError(f"{where}: date {local!r} is not an ISO date", code="bad_date") from None
    if wall.tzinfo is not None:
        zone = wall.strftime("%z")
        return wall, TimeReading(local, "telegram-local", None, "format", f"{zone[:3]}:{zone[3:]}")
    # tdesktop wrote the exporting machine's wall time: the custodian's zone is the best evidence.
    at = wall.replace(tzinfo=hints.timezone)
    return at, TimeReading(local, "telegram-local", None, "custodian_zone", hints.zone_name)


def _unix_time(unix: object, where: str) -> tuple[datetime, TimeReading]:
    raw = str(unix)
    if isinstance(unix, bool) or not (isinstance(unix, int) or (isinstance(unix, str) and raw.isdigit())):
        raise ParseError(f"{where}: date_unixtime {raw[:40]!r} is not a number of seconds", code="bad_date")
    if len(raw) > 12:
        raise ParseError(f"{where}: date_unixtime {raw[:40]!r} is out of range", code="bad_date")
    try:
        at = datetime.fromtimestamp(int(raw), UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{where}: date_unixtime {raw!r} is out of range", code="bad_date") from None
    return at, TimeReading(raw, "telegram-unixtime", None, "format", "UTC")


def _sender(message: dict[str, Any], key: str, where: str) -> str:
    """``from`` (or ``actor``) as shown; its id when the name is null (deleted accounts)."""
    name = message.get(key)
    if isinstance(name, str) and name:
        return name
    if name is not None and not isinstance(name, str):
        raise ParseError(f"{where}: {key} is {type(name).__name__}, not a string", code="bad_field")
    ident = message.get(f"{key}_id")
    return str(ident) if ident is not None else ""


def _key(chat_id: str, message_id: object) -> str:
    if not chat_id or message_id is None or isinstance(message_id, bool | dict | list):
        return ""
    return f"{chat_id}:{message_id}"


def _reply_to(message: dict[str, Any], chat_id: str) -> str:
    target = message.get("reply_to_message_id")
    if target is None or isinstance(target, bool | dict | list):
        return ""
    peer = message.get("reply_to_peer_id")
    # A reply into another chat names it as "channel123"/"chat123"/"user123"; chat ids are bare.
    chat = re.sub(r"^[a-z]+", "", peer) if isinstance(peer, str) else chat_id
    return f"{chat}:{target}" if chat else ""


def _body(message: dict[str, Any], extra: dict[str, str], where: str) -> str:
    text = message["text"] if "text" in message else message.get("text_entities")
    body = plain_text(text, where)
    if body:
        return body
    # A poll, location or contact with no text would otherwise be an empty record.
    return "\n".join(extra[name] for name in _SUMMARY_FIELDS if name in extra)


def _extra(message: dict[str, Any], where: str) -> dict[str, str]:
    extra: dict[str, str] = {}
    for name, value in message.items():  # a message has fewer keys than there are fields to look for
        if value is None:
            continue
        if name in _EXTRA_FIELDS:
            if not isinstance(value, dict | list):
                extra[name] = str(value)
        elif name in _SUMMARY_FIELDS:
            extra[name] = _summary(name, value, where)
    edited = message.get("edited_unixtime", message.get("edited"))
    if edited is not None:
        extra["edited_at"] = str(edited)
    return extra


def _summary(name: str, value: object, where: str) -> str:
    if not isinstance(value, dict):
        return f"{name}: {value}"
    if name == "poll":
        answers = value.get("answers")
        lines = [f"Poll: {value.get('question', '')}"]
        if isinstance(answers, list):
            lines += [f"- {a.get('text', '')} ({a.get('voters', 0)} votes)" for a in answers if isinstance(a, dict)]
        return "\n".join(lines)
    fields = ", ".join(f"{k}: {v}" for k, v in value.items() if not isinstance(v, dict | list))
    return f"{name.removesuffix('_information').replace('_', ' ').capitalize()}: {fields}"


# --- media ---------------------------------------------------------------------------------


def _media(
    message: dict[str, Any], context: _Context, where: str
) -> tuple[list[ParsedAttachment], list[str], list[str]]:
    """The message's attachments, its flags, and one sentence per file the copy lacks."""
    attachments: list[ParsedAttachment] = []
    flags: list[str] = []
    missing: list[str] = []
    for name in _MEDIA_FIELDS:
        value = message.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ParseError(f"{where}: {name} is {type(value).__name__}, not a path", code="bad_field")
        attachment, flag, reason = _attachment(name, value, message, context)
        attachments.append(attachment)
        if flag and flag not in flags:
            flags.append(flag)
        if reason:
            missing.append(reason)
    return attachments, flags, missing


def _attachment(kind: str, value: str, message: dict[str, Any], context: _Context) -> tuple[ParsedAttachment, str, str]:
    """One media field as an attachment, with the flag and the reason if its data is missing."""
    file_name = message.get("file_name")
    if _PLACEHOLDER.match(value):
        name = file_name if isinstance(file_name, str) and file_name else str(message.get("media_type") or kind)
        attachment = ParsedAttachment(name=name, content_type=_content_type(kind, name, message))
        return attachment, "media_omitted", f"{name} not in the export: {value}"
    name = file_name if isinstance(file_name, str) and file_name else posixpath.basename(value) or value
    content_type = _content_type(kind, name, message)
    return common.exported_file(context.source, context.index, context.folder, value, name, content_type)



def _content_type(kind: str, name: str, message: dict[str, Any]) -> str:
    mime = message.get("mime_type")
    if kind == "file" and isinstance(mime, str) and "/" in mime:
        return mime
    if kind == "photo":
        return "image/jpeg"  # tdesktop saves photos as .jpg
    if kind == "contact_vcard":
        return "text/vcard"
    return common.content_type(name)


# --- service messages ------------------------------------------------------------------------


def _service_event(message: dict[str, Any], conversation: str, at: datetime | None, where: str) -> ParsedEvent:
    action = message.get("action")
    actor = _sender(message, "actor", where)
    kind: EventKind = "system"
    if action == "clear_history":
        kind = "deleted_message"
    elif action == "set_messages_ttl":
        kind = "disappearing_messages" if _positive(message.get("period")) else "system"
    name = action if isinstance(action, str) and action else "service message"
    detail = f"{name} by {actor}" if actor else name
    fields = _service_fields(message, where)
    return ParsedEvent(kind=kind, conversation=conversation, at=at, detail=f"{detail}: {fields}" if fields else detail)


def _service_fields(message: dict[str, Any], where: str) -> str:
    parts: list[str] = []
    for key, value in message.items():
        if key in _SERVICE_SKIP or value in (None, "", []):
            continue
        if key == "text":
            value = plain_text(value, where)
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return "; ".join(parts)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
