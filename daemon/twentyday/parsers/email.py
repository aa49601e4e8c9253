"""A single e-mail message (``.eml``) as an export: one message, read by :mod:`mailfile`."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import ParseError
from ..records import ParsedEvent, ParsedMessage, ParseHints
from .base import ExportSource
from .mailfile import looks_like_email, read_message

NAME = "email"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def detect(source: ExportSource, head: bytes) -> bool:
    return len(source.members()) == 1 and looks_like_email(head)


def parse(source: ExportSource, hints: ParseHints) -> Iterator[ParsedMessage | ParsedEvent]:
    [member] = source.members()
    if source.size(member) > MAX_MESSAGE_BYTES:
        raise ParseError(f"{source.name}: larger than {MAX_MESSAGE_BYTES} bytes for one e-mail message")
    with source.open(member) as stream:
        raw = stream.read(MAX_MESSAGE_BYTES + 1)
    yield read_message(raw)
