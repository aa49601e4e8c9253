"""Which parser reads an item: chosen by content, in a fixed order (no import-time registration)."""

from __future__ import annotations

import io
from pathlib import Path

from twentyday.errors import ParseError
from twentyday.parsers import google_chat, messenger, signal, slack, sms_backup, telegram, whatsapp
from twentyday.parsers.base import HEAD_BYTES, BytesSource, ExportSource, FileSource, ParserModule, ZipSource, read_head
from twentyday.parsers.mail import email, mbox

#: Most specific first: formats with strong signatures before the looser text ones.
PARSERS: tuple[ParserModule, ...] = (
    whatsapp, telegram, signal, slack, sms_backup, messenger, google_chat, mbox, email,
)
ZIP_MAGIC = b"PK\x03\x04"


def open_source(path: Path | None, data: bytes | None, name: str) -> ExportSource:
    """The item as an export: a zip's members, or the single file/bytes itself."""
    if path is not None:
        with path.open("rb") as handle:
            magic = handle.read(4)
        if not magic:
            # Say so, rather than "no parser recognised it": an empty file is usually a failed copy.
            raise ParseError(f"{name}: empty file (0 bytes)")
        return ZipSource(path, name) if magic == ZIP_MAGIC else FileSource(path, name)
    if not data:
        raise ParseError(f"{name}: empty item")
    if data[:4] == ZIP_MAGIC:
        # A zip mailed as an attachment: read from memory, never written out in clear.
        return ZipSource(io.BytesIO(data), name)
    return BytesSource(name, data)


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
