"""Which parser reads an item: chosen by content, in a fixed order (no import-time registration)."""

from __future__ import annotations

import io
from pathlib import Path

from twentyday.errors import ParseError
from twentyday.parsers.base import (
    DEFAULT_LIMITS,
    HEAD_BYTES,
    ZIP_MAGIC,
    BytesSource,
    ExportSource,
    FileSource,
    Limits,
    ParserModule,
    ZipSource,
    read_head,
)
from twentyday.parsers.formats import CHAT_FORMATS
from twentyday.parsers.mail import email, mbox

#: The chat formats (most specific first), then mail, whose text signature is the loosest.
PARSERS: tuple[ParserModule, ...] = (*CHAT_FORMATS, mbox, email)


def open_source(path: Path | None, data: bytes | None, name: str, limits: Limits = DEFAULT_LIMITS) -> ExportSource:
    """The item as an export: a zip's members, or the single file/bytes itself."""
    if path is not None:
        with path.open("rb") as handle:
            magic = handle.read(4)
        if not magic:
            # Say so, rather than "no parser recognised it": an empty file is usually a failed copy.
            raise ParseError(f"{name}: empty file (0 bytes)", code="empty")
        return ZipSource(path, name, limits) if magic == ZIP_MAGIC else FileSource(path, name, limits)
    if not data:
        raise ParseError(f"{name}: empty item", code="empty")
    if data[:4] == ZIP_MAGIC:
        # A zip mailed as an attachment: read from memory, never written out in clear.
        return ZipSource(io.BytesIO(data), name, limits)
    return BytesSource(name, data, limits)


def close_source(source: ExportSource) -> None:
    if isinstance(source, ZipSource):
        source.close()


def choose(source: ExportSource, expected: ParserModule | None = None) -> ParserModule | None:
    """The parser for ``source``, or None. Raises ParseError when reading a head already fails
    (a zip entry with a bad CRC, corrupt data or encryption): the pipeline quarantines it.

    ``expected`` is asked first (SMTP DATA is mail), then every parser in order."""
    members = source.members()
    head = read_head(source, members[0], HEAD_BYTES) if len(members) == 1 else b""
    if expected is not None and expected.detect(source, head):
        return expected
    for parser in PARSERS:
        if parser.detect(source, head):
            return parser
    return None
