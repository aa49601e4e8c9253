"""Google Chat from Google Takeout: ``Google Chat/Groups/{DM|Space} <id>/`` folders.

Each folder holds (docs/FORMATS.md §7)::

    group_info.json   {"name"?: ..., "members": [{"name", "email", "user_type"}]}
    messages.json     {"messages": [{"creator": {"name", "email", "user_type"},
                        "created_date": "Sunday, November 18, 2018 at 6:02:21 PM UTC",
                        "text"?: ..., "attached_files"?: [{"original_name", "export_name"}],
                        "topic_id": ..., "message_id": "SPACE/TOPIC/MSG"}]}
    File-<name>       the attached files, when the export has them

``created_date`` is English prose and is read strictly: weekday, month name,
day, year, ``at``, a 12-hour (``AM``/``PM``, after a space, NBSP or U+202F) or
24-hour time, and a zone that is ``UTC``/``GMT`` or a numeric offset
(``+05:30``, ``GMT-7``). The weekday must agree with the date. Anything else —
another language, a zone name such as ``PST`` that does not say its offset —
leaves the message undated with the text kept, rather than guessed.

Messages removed by their author (``"message_state": "DELETED"``, with a
``deleted_date`` and no text) become ``deleted_message`` events. Attachments
are read from ``File-<name>`` beside the JSON (Takeout writes ``?`` in a name as
``_`` on disk); missing ones are kept by name, flagged ``media_omitted``, and
reported as ``incomplete_copy``. ``File-`` members no message names are
reported in one ``system`` event per folder, so they are not silently passed over.

Not supported: the older Hangouts ``Hangouts.json``. Google Voice HTML is :mod:`google_voice`'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

from twentyday.errors import ParseError
from twentyday.parsers.base import ExportSource, read_head
from twentyday.parsers.common import content_type as _content_type
from twentyday.parsers.common import json_objects as _objects
from twentyday.parsers.common import json_string as _string
from twentyday.parsers.common import load_json_object, members_matching, offset_name, read_member
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "group_members", "parse", "read_created_date"]

NAME = "google_chat"

_MESSAGES_FILE = re.compile(r"(?:^|/)Groups/(?:DM|Space) [^/]+/messages\.json$")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_CREATED = re.compile(
    r"(?P<wd>[A-Za-z]+), (?P<mon>[A-Za-z]+) (?P<d>\d{1,2}), (?P<y>\d{4}) at "
    r"(?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:[ \u00a0\u202f](?P<ap>AM|PM))? (?P<zone>\S+)"
)
_OFFSET = re.compile(r"(?:UTC|GMT)?(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?")
_LAYOUT_12H = "google-chat %A, %B %-d, %Y at %-I:%M:%S %p %Z"
_LAYOUT_24H = "google-chat %A, %B %-d, %Y at %H:%M:%S %Z"
_LAYOUT_UNREAD = "google-chat unrecognised"
_DETECT_CANDIDATES = 3


# --- detection ------------------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Is this a Google Chat ``messages.json``, or a Takeout holding some? Never raises."""
    try:
        if _head_matches(head):
            return True
        members = set(source.members())
        for member in group_members(source)[:_DETECT_CANDIDATES]:
            sibling_info = member[: -len("messages.json")] + "group_info.json"
            if sibling_info in members or _head_matches(read_head(source, member)):
                return True
        return False
    except Exception:  # detection of a hostile or broken file must answer, not fail
        return False


def _head_matches(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return start.startswith(b"{") and b'"messages"' in head and b'"created_date"' in head and b'"creator"' in head


def group_members(source: ExportSource) -> list[str]:
    """The ``messages.json`` of every group folder, in path order (a lone file is its own)."""
    return members_matching(source, _MESSAGES_FILE, ".json")


# --- dates --------------------------------------------------------------------------------


def read_created_date(raw: str) -> tuple[datetime | None, TimeReading]:
    """An aware datetime for Takeout's prose date, or None (with the text kept) if it cannot be read."""
    match = _CREATED.fullmatch(raw.strip())
    if match is None:
        return None, TimeReading(raw=raw, layout=_LAYOUT_UNREAD, day_first=None, decided_by="format", zone="")
    layout = _LAYOUT_12H if match["ap"] else _LAYOUT_24H
    zone_text = match["zone"]
    offset = _offset(zone_text)
    zone_name = offset_name(offset) if offset is not None else zone_text
    reading = TimeReading(raw=raw, layout=layout, day_first=None, decided_by="format", zone=zone_name)
    if offset is None:
        return None, reading  # a zone named but not given: its offset would be a guess
    wall = _wall_time(match)
    if wall is None:
        return None, reading
    # Kept in the offset the export wrote, as evidence; comparisons are offset-aware anyway.
    return wall.replace(tzinfo=UTC if not offset else timezone(offset)), reading


def _offset(zone: str) -> timedelta | None:
    if zone in ("UTC", "GMT"):
        return timedelta(0)
    match = _OFFSET.fullmatch(zone)
    if match is None:
        return None
    hours, minutes = int(match["h"]), int(match["m"] or 0)
    if hours > 14 or minutes > 59:
        return None
    sign = -1 if match["sign"] == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes)


def _wall_time(match: re.Match[str]) -> datetime | None:
    """The naive date and time the text names, or None if it names an impossible one."""
    if match["wd"] not in _WEEKDAYS or match["mon"] not in _MONTHS:
        return None
    hour = int(match["h"])
    if match["ap"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match["ap"] == "PM" else 0)
    try:
        wall = datetime(
            int(match["y"]), _MONTHS.index(match["mon"]) + 1, int(match["d"]), hour, int(match["mi"]), int(match["s"])
        )
    except ValueError:
        return None
    # A weekday that disagrees with the date means the text is not what it seems.
    return wall if _WEEKDAYS[wall.weekday()] == match["wd"] else None


# --- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    name: str
    email: str

    @property
    def identity(self) -> str:
        """Addresses route records to custodians; a name is used only when there is none."""
        return self.email or self.name


@dataclass(frozen=True)
class _Group:
    folder: str
    prefix: str
    conversation: str
    members: tuple[_Person, ...]


@dataclass(frozen=True)
class _Export:
    """The source, its member names, and the ``File-`` members of each folder (indexed once)."""

    source: ExportSource
    index: frozenset[str]
    files: dict[str, frozenset[str]]

    @classmethod
    def of(cls, source: ExportSource) -> _Export:
        index = frozenset(source.members())
        files: dict[str, set[str]] = {}
        for member in index:
            folder, _, name = member.rpartition("/")
            if name.startswith("File-"):
                files.setdefault(folder + "/" if folder else "", set()).add(member)
        return cls(source, index, {folder: frozenset(names) for folder, names in files.items()})


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message of every group folder, each followed by the events it raises."""
    members = group_members(source)
    if not members:
        raise ParseError(f"{source.name}: no Google Chat Groups/…/messages.json file", code="not_this_format")
    export = _Export.of(source)
    for member in members:
        yield from _parse_group(export, member)


def _parse_group(export: _Export, member: str) -> Iterator[Record]:
    source = export.source
    group = _group(source, member, export.index)
    messages = load_json_object(source, member, source.limits.json_bytes, "Google Chat file").get("messages")
    if not isinstance(messages, list):
        raise ParseError(f'{member}: no "messages" list; not a Google Chat messages.json', code="not_this_format")
    referenced: set[str] = set()
    for position, entry in enumerate(messages, start=1):
        where = f"{member}: message {position}"
        if not isinstance(entry, dict):
            raise ParseError(f"{where} is not a JSON object", code="bad_field")
        yield from _records(export, group, entry, where, referenced)
    unreferenced = sorted(m[len(group.prefix) :] for m in export.files.get(group.prefix, ()) if m not in referenced)
    if unreferenced:
        yield ParsedEvent(
            kind="system",
            conversation=group.conversation,
            at=None,
            detail="files in the export that no message names: " + ", ".join(unreferenced),
        )


def _group(source: ExportSource, member: str, index: frozenset[str]) -> _Group:
    prefix = member[: -len("messages.json")] if member.endswith("messages.json") else ""
    folder = PurePosixPath(member).parent.name or source.name
    info_member = prefix + "group_info.json"
    if info_member not in index or info_member == member:
        return _Group(folder, prefix, folder, ())
    info = load_json_object(source, info_member, source.limits.json_bytes, "Google Chat file")
    people = tuple(_person(p, info_member) for p in _objects(info, "members", info_member))
    name = _string(info, "name", info_member)
    conversation = name or ", ".join(p.name or p.email for p in people) or folder
    return _Group(folder, prefix, conversation, people)


def _records(
    export: _Export, group: _Group, entry: dict[str, Any], where: str, referenced: set[str]
) -> Iterator[Record]:
    creator = entry.get("creator")
    if creator is not None and not isinstance(creator, dict):
        raise ParseError(f"{where}: creator is not a JSON object", code="bad_field")
    sender = _person(creator or {}, where)
    message_id = _string(entry, "message_id", where)
    if _string(entry, "message_state", where) == "DELETED":
        yield _deleted_event(group, entry, sender, message_id, where)
        return
    raw_date = _string(entry, "created_date", where)
    created_at, reading = read_created_date(raw_date) if raw_date else (None, None)
    attachments, missing = _attachments(export, group, entry, where, referenced)
    yield ParsedMessage(
        platform="google_chat",
        conversation=group.conversation,
        sender=sender.identity,
        created_at=created_at,
        time=reading,
        body=_string(entry, "text", where),
        recipients=tuple(p.identity for p in group.members if p.identity and p.identity != sender.identity),
        message_key=message_id,
        attachments=attachments,
        reply_to=_thread_root(message_id),
        flags=("media_omitted",) if missing else (),
        extra=_extra(group, entry, sender, where),
    )
    if missing:
        who = sender.name or sender.email or "(no name)"
        yield ParsedEvent(
            kind="incomplete_copy",
            conversation=group.conversation,
            at=created_at,
            detail=f"attachment of a message from {who} not in the export: " + "; ".join(missing),
        )


def _deleted_event(group: _Group, entry: dict[str, Any], sender: _Person, message_id: str, where: str) -> ParsedEvent:
    at, _ = read_created_date(_string(entry, "deleted_date", where))
    who = sender.name or sender.email or "(unknown)"
    detail = f"message {message_id or '(no id)'} from {who} was deleted"
    metadata = entry.get("deletion_metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("deletion_type"), str):
        detail += f" (deletion type {metadata['deletion_type']})"
    return ParsedEvent(kind="deleted_message", conversation=group.conversation, at=at, detail=detail)


def _thread_root(message_id: str) -> str:
    """For a reply in a thread (``SPACE/TOPIC/MSG`` with MSG ≠ TOPIC), the topic's first message id."""
    parts = message_id.split("/")
    if len(parts) != 3 or parts[1] == parts[2]:
        return ""
    return f"{parts[0]}/{parts[1]}/{parts[1]}"


def _extra(group: _Group, entry: dict[str, Any], sender: _Person, where: str) -> dict[str, str]:
    extra = {"group": group.folder}
    if sender.name:
        extra["sender_name"] = sender.name
    topic = _string(entry, "topic_id", where)
    if topic:
        extra["topic_id"] = topic
    for key in ("reactions", "quoted_message_metadata"):
        if entry.get(key):  # kept as the export wrote it: their shape varies between exports
            extra[key] = json.dumps(entry[key], ensure_ascii=False, sort_keys=True)
    return extra


def _attachments(
    export: _Export, group: _Group, entry: dict[str, Any], where: str, referenced: set[str]
) -> tuple[tuple[ParsedAttachment, ...], list[str]]:
    """The message's attachments, and a reason for each one the export lacks; marks what it found."""
    attachments: list[ParsedAttachment] = []
    missing: list[str] = []
    for item in _objects(entry, "attached_files", where):
        export_name = _string(item, "export_name", where)
        name = _string(item, "original_name", where) or export_name or "attachment"
        member = _find_file(export.index, group.prefix, export_name)
        data, reason = _read_file(export.source, member)
        if member is not None:
            referenced.add(member)
        attachments.append(ParsedAttachment(name=name, content_type=_content_type(name), data=data))
        if reason:
            missing.append(f"{name} ({reason})")
    return tuple(attachments), missing


def _find_file(index: frozenset[str], prefix: str, export_name: str) -> str | None:
    if not export_name or "/" in export_name:
        return None
    # Takeout writes a "?" in an export name as "_" on disk.
    for candidate in dict.fromkeys((export_name, export_name.replace("?", "_"))):
        if prefix + candidate in index:
            return prefix + candidate
    return None


def _read_file(source: ExportSource, member: str | None) -> tuple[bytes | None, str]:
    if member is None:
        return None, "not in the export"
    cap = source.limits.media_bytes
    data = read_member(source, member, cap)
    if data is None:
        return None, f"larger than {cap} bytes"
    return data, ""




# --- typed access to JSON ------------------------------------------------------------------



def _person(obj: dict[str, Any], where: str) -> _Person:
    return _Person(name=_string(obj, "name", where), email=_string(obj, "email", where))




