"""Which parser reads an item: chosen by content, in a fixed order (no import-time registration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import ParseError
from ..records import ParseHints
from . import email, google_chat, mbox, messenger, signal, slack, sms_backup, telegram, whatsapp
from .base import HEAD_BYTES, BytesSource, ExportSource, FileSource, ParserModule, Record, ZipSource, read_head

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
        raise ParseError(f"{name}: a zip must be ingested from a file")
    return BytesSource(name, data)


def close_source(source: ExportSource) -> None:
    if isinstance(source, ZipSource):
        source.close()


class _Unreadable:
    """Stands in for a parser when reading the item to detect its format already failed.

    Detection reads member heads (a zip entry with a bad CRC, corrupt deflate data or an
    encrypted flag fails right there), and ``pipeline.process`` quarantines a ParseError
    from ``parse`` but not one from ``choose``. Deferring the error to ``parse`` keeps the
    item, sealed in quarantine with this reason, instead of losing it to an exception.
    """

    NAME = "none"

    def __init__(self, error: ParseError) -> None:
        self._error = error

    def detect(self, source: ExportSource, head: bytes) -> bool:
        return True

    def parse(self, source: ExportSource, hints: ParseHints) -> Iterator[Record]:
        raise self._error


def choose(source: ExportSource) -> ParserModule | None:
    """The parser for ``source``, or None; never raises ParseError (see :class:`_Unreadable`)."""
    members = source.members()
    try:
        head = read_head(source, members[0], HEAD_BYTES) if len(members) == 1 else b""
        for parser in PARSERS:
            if parser.detect(source, head):
                return parser
    except ParseError as error:
        return _Unreadable(error)
    return None
