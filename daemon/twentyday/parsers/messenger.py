"""Facebook Messenger and Instagram ``message_N.json`` exports: bytes in, records out.

Both come from Meta's "Download your information" in the same shape (docs/FORMATS.md §6)::

    {"participants": [{"name": ...}], "title": ..., "messages": [
        {"sender_name": ..., "timestamp_ms": 1579294140000, "content": ...,
         "photos"|"videos"|"audio_files"|"files"|"gifs": [{"uri": ...}], "sticker": {"uri": ...},
         "share": {"link", "share_text"}, "reactions": [{"reaction", "actor"}],
         "is_unsent": true, "call_duration": 42}, ...]}

A thread is split over ``messages/<folder>/<thread>/message_1.json`` … ``message_N.json``;
every ``message_N.json`` in the export is read (``inbox``, ``archived_threads``,
``message_requests`` …), thread by thread, files in numeric order, messages in file
order (newest first, as exported). A lone ``.json`` file is read as one thread file.

Meta writes every non-ASCII string as its UTF-8 bytes escaped one by one
(``’`` arrives as ``\\u00e2\\u0080\\u0099``): :func:`repair` undoes that on every
name, text, reaction, title and media path, and leaves any string it cannot
repair exactly as it was.

Times are ``timestamp_ms`` (milliseconds since the epoch, UTC): exact, nothing to
decide. Media files are read from the export when they are there (a zip); when
they are not (a single ``.json``, a trimmed export) the attachment is kept by
name, the message is flagged ``media_omitted`` and an ``incomplete_copy`` event
says what is missing.

Not supported: the end-to-end-encrypted Messenger download (camelCase
``senderName``/``timestamp`` fields, no ``timestamp_ms``) and the pre-2020
Instagram ``messages.json`` with ISO ``created_at`` times; :func:`detect` says
False for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from twentyday.errors import ParseError
from twentyday.parsers.base import ExportSource, detect_by_heads
from twentyday.parsers.common import content_type as _content_type
from twentyday.parsers.common import json_objects as _objects
from twentyday.parsers.common import json_string as _string
from twentyday.parsers.common import load_json_object, read_member
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "parse", "repair", "thread_members"]

NAME = "messenger"

#: Usually ``messages/<folder>/<thread>/message_N.json``; a zip of one thread folder is read too.
_THREAD_FILE = re.compile(r"(?:^|/)message_(?P<n>\d+)\.json$")
_MEDIA_FIELDS = ("photos", "videos", "audio_files", "files", "gifs")
#: Old exports' ``type`` values that are notices about the thread, not messages.
_SYSTEM_TYPES = frozenset({"Subscribe", "Unsubscribe"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Heads must show these keys; "participants" is missing from some trimmed exports.
_HEAD_KEYS = (b'"messages"', b'"timestamp_ms"')
_HEAD_ANY = (b'"participants"', b'"sender_name"')


# --- detection ----------------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Is this a Messenger/Instagram thread file, or a zip holding some? Never raises."""
    return detect_by_heads(source, head, _head_matches, lambda: thread_members(source))


def _head_matches(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return start.startswith(b"{") and all(key in head for key in _HEAD_KEYS) and any(key in head for key in _HEAD_ANY)


def thread_members(source: ExportSource) -> list[str]:
    """The thread files of an export, thread by thread, ``message_N`` in numeric order.

    A single-file source is its own thread file, whatever it is called.
    """
    members = source.members()
    if len(members) == 1 and members[0].lower().endswith(".json"):
        return members
    numbered = [(m, _THREAD_FILE.search(m)) for m in members]
    keyed = [((m.rpartition("/")[0], int(match["n"])), m) for m, match in numbered if match is not None]
    return [m for _, m in sorted(keyed)]


# --- parsing ------------------------------------------------------------------------


def repair(text: str) -> str:
    """Undo Meta's per-byte escaping of UTF-8; a string that is not mojibake is kept as is."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message of every thread file in the export, each followed by the events it raises."""
    members = thread_members(source)
    if not members:
        raise ParseError(f"{source.name}: no Messenger or Instagram messages/…/message_N.json file",
                         code="not_this_format")
    index = frozenset(source.members())
    for member in members:
        yield from _parse_thread(source, member, index, hints)


@dataclass(frozen=True)
class _Thread:
    member: str
    platform: str
    conversation: str
    participants: tuple[str, ...]


def _parse_thread(source: ExportSource, member: str, index: frozenset[str], hints: ParseHints) -> Iterator[Record]:
    document = load_json_object(source, member, source.limits.json_bytes, "Messenger thread file")
    thread = _thread(document, source, member, hints)
    messages = document.get("messages")
    if not isinstance(messages, list):
        raise ParseError(f'{member}: no "messages" list; not a Messenger or Instagram thread file',
                         code="not_this_format")
    media = _Media(source, index, member)
    for position, entry in enumerate(messages, start=1):
        where = f"{member}: message {position}"
        if not isinstance(entry, dict):
            raise ParseError(f"{where} is not a JSON object", code="bad_field")
        yield from _records(entry, thread, media, where)



def _thread(document: dict[str, Any], source: ExportSource, member: str, hints: ParseHints) -> _Thread:
    participants = tuple(
        repair(_string(p, "name", f"{member}: participant")) for p in _objects(document, "participants", member)
    )
    title = repair(_string(document, "title", member))
    folder = PurePosixPath(member).parent.name
    conversation = title or ", ".join(p for p in participants if p) or folder or source.name
    # Both services export the same shape; only where the file sits tells them apart.
    where = f"{member} {source.name} {hints.source_name}".lower()
    platform = "instagram" if "instagram" in where else "messenger"
    return _Thread(member, platform, conversation, participants)


def _records(entry: dict[str, Any], thread: _Thread, media: _Media, where: str) -> Iterator[Record]:
    sender = repair(_string(entry, "sender_name", where))
    at, reading = _time(entry, where)
    content = repair(_string(entry, "content", where))
    if "call_duration" in entry:
        yield _call_event(entry, thread, sender, at, content, where)
        return
    if _string(entry, "type", where) in _SYSTEM_TYPES:
        yield ParsedEvent(kind="system", conversation=thread.conversation, at=at, detail=content or sender)
        return
    attachments, missing = media.collect(entry, where)
    unsent = entry.get("is_unsent") is True
    flags = (("media_omitted",) if missing else ()) + (("deleted",) if unsent else ())
    yield ParsedMessage(
        platform=thread.platform,
        conversation=thread.conversation,
        sender=sender,
        created_at=at,
        time=reading,
        body=content,
        recipients=tuple(p for p in thread.participants if p and p != sender),
        attachments=attachments,
        flags=flags,
        extra=_extra(entry, where),
    )
    who = sender or "(no name)"
    if unsent:
        yield ParsedEvent(
            kind="deleted_message", conversation=thread.conversation, at=at, detail=f"message from {who} was unsent"
        )
    if missing:
        yield ParsedEvent(
            kind="incomplete_copy",
            conversation=thread.conversation,
            at=at,
            detail=f"media of a message from {who} not in the export: " + "; ".join(missing),
        )


def _time(entry: dict[str, Any], where: str) -> tuple[datetime | None, TimeReading]:
    raw = entry.get("timestamp_ms")
    # Meta stamps every message; a file without them is some other JSON.
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ParseError(f"{where}: timestamp_ms is {raw!r}, not a whole number of milliseconds", code="bad_date")
    reading = TimeReading(raw=str(raw), layout="epoch-ms", day_first=None, decided_by="format", zone="UTC")
    try:
        # Integer arithmetic: a float of milliseconds would round some of them.
        return _EPOCH + timedelta(milliseconds=raw), reading
    except OverflowError:
        return None, reading  # outside the calendar: kept undated with its raw value


def _call_event(
    entry: dict[str, Any], thread: _Thread, sender: str, at: datetime | None, content: str, where: str
) -> ParsedEvent:
    duration = entry.get("call_duration")
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise ParseError(f"{where}: call_duration is {duration!r}, not a number of seconds", code="bad_field")
    detail = f"call from {sender or '(no name)'}, {duration} seconds"
    if entry.get("missed") is True:
        detail += ", missed"
    if content:
        detail += f": {content}"
    return ParsedEvent(kind="system", conversation=thread.conversation, at=at, detail=detail)


def _extra(entry: dict[str, Any], where: str) -> dict[str, str]:
    extra: dict[str, str] = {}
    share = entry.get("share")
    if share is not None:
        if not isinstance(share, dict):
            raise ParseError(f"{where}: share is not a JSON object", code="bad_field")
        for key in ("link", "share_text"):
            value = repair(_string(share, key, where))
            if value:
                extra[f"share_{key}" if key == "link" else key] = value
    reactions = [
        f"{repair(_string(r, 'reaction', where))} {repair(_string(r, 'actor', where))}".strip()
        for r in _objects(entry, "reactions", where)
    ]
    if reactions:
        extra["reactions"] = "; ".join(reactions)
    kind = _string(entry, "type", where)
    if kind and kind != "Generic":
        extra["type"] = kind
    return extra


# --- media ----------------------------------------------------------------------------


class _Media:
    """Finds and reads the files a thread's media ``uri`` fields name, inside the export.

    A ``uri`` is relative to the export's root, which may sit below a folder the
    zip adds; it is looked up under each folder above the thread file, and only
    among the export's own members (so ``..`` in a uri can never reach outside).
    """

    def __init__(self, source: ExportSource, index: frozenset[str], member: str) -> None:
        self._source = source
        self._index = index
        parts = PurePosixPath(member).parent.parts
        self._prefixes = [""] + ["/".join(parts[: n + 1]) + "/" for n in range(len(parts))]

    def collect(self, entry: dict[str, Any], where: str) -> tuple[tuple[ParsedAttachment, ...], list[str]]:
        """The message's attachments, and a reason for each one the export lacks."""
        attachments: list[ParsedAttachment] = []
        missing: list[str] = []
        for uri in self._uris(entry, where):
            name = PurePosixPath(uri).name or uri
            data, reason = self._read(uri)
            attachments.append(ParsedAttachment(name=name, content_type=_content_type(name), data=data))
            if reason:
                missing.append(f"{name} ({reason})")
        return tuple(attachments), missing

    @staticmethod
    def _uris(entry: dict[str, Any], where: str) -> list[str]:
        uris = [
            repair(_string(item, "uri", where)) for field in _MEDIA_FIELDS for item in _objects(entry, field, where)
        ]
        sticker = entry.get("sticker")
        if sticker is not None:
            if not isinstance(sticker, dict):
                raise ParseError(f"{where}: sticker is not a JSON object", code="bad_field")
            uris.append(repair(_string(sticker, "uri", where)))
        return [u for u in uris if u]

    def _read(self, uri: str) -> tuple[bytes | None, str]:
        member = self._find(uri)
        if member is None:
            return None, "not in the export"
        cap = self._source.limits.media_bytes
        data = read_member(self._source, member, cap)
        if data is None:
            return None, f"larger than {cap} bytes"
        return data, ""

    def _find(self, uri: str) -> str | None:
        relative = uri.lstrip("/")
        for prefix in self._prefixes:
            if prefix + relative in self._index:
                return prefix + relative
        return None




# --- typed access to JSON -------------------------------------------------------------




