"""Small pieces every parser needs: typed access to untrusted JSON, content types."""

from __future__ import annotations

import json
import mimetypes
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, BinaryIO

from twentyday.errors import ParseError
from twentyday.parsers.base import ExportSource
from twentyday.records import ParsedAttachment

# Built-in table only (no /etc/mime.types): the same answer on every host.
_MIME = mimetypes.MimeTypes(filenames=())


def content_type(name: str) -> str:
    guessed, _ = _MIME.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def own_identity(self_names: frozenset[str]) -> str:
    """The custodian as an export's "Me"/"You": their first phone-like own identity, else any (sorted:
    stable), else ""."""
    ordered = sorted(self_names)
    phones = [n for n in ordered if re.fullmatch(r"\+?[\d ()-]{5,}", n.strip())]
    return (phones or ordered or [""])[0]


def members_matching(source: ExportSource, pattern: re.Pattern[str], lone_suffix: str) -> list[str]:
    """The members whose path ``pattern`` finds, in path order; a lone ``lone_suffix`` file is its own."""
    members = source.members()
    if len(members) == 1 and members[0].lower().endswith(lone_suffix):
        return members
    return sorted(m for m in members if pattern.search(m))


def offset_name(offset: timedelta) -> str:
    """A UTC offset as a zone's name: ``UTC``, ``+05:30``, ``-08:00``."""
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def json_string(obj: dict[str, Any], key: str, where: str) -> str:
    """``obj[key]`` as text, "" when absent; any other type is a broken file."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{where}: {key} is {type(value).__name__}, not text", code="bad_field")
    return value


def json_objects(obj: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """``obj[key]`` as a list of objects, [] when absent."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ParseError(f"{where}: {key} is not a list of JSON objects", code="bad_field")
    return value


#: What reading a member can raise when the member itself is damaged.
READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


def read_member(source: ExportSource, member: str, limit: int) -> bytes | None:
    """The member's bytes, or None when it is over ``limit`` (never read whole)."""
    if source.size(member) > limit:
        return None
    try:
        with source.open(member) as stream:
            data = stream.read(limit + 1)
    except READ_ERRORS as error:
        raise ParseError(f"{member}: cannot be read ({error})", code="entry_unreadable") from None
    return None if len(data) > limit else data


def exported_file(source: ExportSource, index: frozenset[str], folder: str, path: str, name: str,
                  content_type: str) -> tuple[ParsedAttachment, str, str]:
    """A file an export names by ``path`` (relative to ``folder``), as an attachment with the flag
    and the reason when its data is missing: not in this copy, or over ``Limits.media_bytes``."""
    member = posixpath.normpath(posixpath.join(folder, path))
    if member not in index:
        attachment = ParsedAttachment(name=name, content_type=content_type)
        return attachment, "media_omitted", f"{path} is named by the export but is not in this copy"
    cap = source.limits.media_bytes
    data = read_member(source, member, cap)
    if data is None:
        attachment = ParsedAttachment(name=name, content_type=content_type)
        return attachment, "attachment_too_large", f"{path} is larger than {cap} bytes; not kept"
    return ParsedAttachment(name=name, content_type=content_type, data=data), "", ""


def load_json(source: ExportSource, member: str, limit: int, what: str) -> Any:
    """A whole JSON member of at most ``limit`` bytes; ``what`` names the format in errors."""
    data = read_member(source, member, limit)
    if data is None:
        raise ParseError(f"{member}: larger than {limit} bytes; not a {what}", code="too_large")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ParseError(f"{member}: not valid JSON ({error})", code="bad_json") from None


def load_json_object(source: ExportSource, member: str, limit: int, what: str) -> dict[str, Any]:
    """A whole JSON member that must be an object; ``what`` names the format in errors."""
    document = load_json(source, member, limit, what)
    if not isinstance(document, dict):
        raise ParseError(f"{member}: top level is not a JSON object; not a {what}", code="bad_json")
    return document


def text_lines(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, str]]:
    """UTF-8 lines without their line ending (and leading BOMs), numbered from 1.

    A line is read at most ``max_bytes`` (plus its CRLF) at a time, so a file with no
    line breaks cannot be read into memory: a longer line is a ParseError naming it,
    as is a line that is not UTF-8.
    """
    readline = stream.readline
    limit = max_bytes + 2  # room for CRLF after a maximal line
    lineno = 0
    while raw := readline(limit):
        lineno += 1
        if raw.endswith(b"\n"):
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if len(raw) > max_bytes:
            raise ParseError(f"line {lineno}: longer than {max_bytes} bytes; not a chat line", code="line_too_long")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError(
                f"line {lineno}: not valid UTF-8 (byte 0x{raw[error.start]:02x}"
                f" at byte {error.start + 1} of the line)", code="not_utf8"
            ) from None
        if text.startswith("\ufeff"):
            text = text.lstrip("\ufeff")
        yield lineno, text
