"""Small pieces every parser needs: typed access to untrusted JSON, content types."""

from __future__ import annotations

import json
import mimetypes
import zipfile
import zlib
from typing import Any

from ..errors import ParseError
from .base import ExportSource

# Built-in table only (no /etc/mime.types): the same answer on every host.
_MIME = mimetypes.MimeTypes(filenames=())


def content_type(name: str) -> str:
    guessed, _ = _MIME.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def json_string(obj: dict[str, Any], key: str, where: str) -> str:
    """``obj[key]`` as text, "" when absent; any other type is a broken file."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{where}: {key} is {type(value).__name__}, not text")
    return value


def json_objects(obj: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """``obj[key]`` as a list of objects, [] when absent."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ParseError(f"{where}: {key} is not a list of JSON objects")
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
        raise ParseError(f"{member}: cannot be read ({error})") from None
    return None if len(data) > limit else data


def load_json_object(source: ExportSource, member: str, limit: int, what: str) -> dict[str, Any]:
    """A whole JSON member that must be an object; ``what`` names the format in errors."""
    if source.size(member) > limit:
        raise ParseError(f"{member}: larger than {limit} bytes; not a {what}")
    with source.open(member) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ParseError(f"{member}: larger than {limit} bytes; not a {what}")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ParseError(f"{member}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise ParseError(f"{member}: top level is not a JSON object; not a {what}")
    return document
