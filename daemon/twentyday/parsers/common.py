"""Small pieces every parser needs: typed access to untrusted JSON, content types."""

from __future__ import annotations

import mimetypes
from typing import Any

from ..errors import ParseError

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
