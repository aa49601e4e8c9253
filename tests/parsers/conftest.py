"""Helpers every parser test uses: sorting records, building sources from fixtures, asking a detector.

Imported by name (``from tests.parsers.conftest import messages``); the parsers' own test
files keep only what is particular to their format.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from twentyday.parsers.base import FileSource, ParserModule, read_head
from twentyday.records import ParsedEvent, ParsedMessage, Record


def messages(records: Iterable[Record], conversation: str | None = None) -> list[ParsedMessage]:
    """The messages among ``records`` (of one conversation, when named), in order."""
    return [r for r in records if isinstance(r, ParsedMessage) and conversation in (None, r.conversation)]


def events(records: Iterable[Record], kind: str | None = None) -> list[ParsedEvent]:
    """The events among ``records`` (of one kind, when named), in order."""
    return [r for r in records if isinstance(r, ParsedEvent) and kind in (None, r.kind)]


def utc(*fields: int) -> datetime:
    """``datetime(year, month, day, ...)`` in UTC."""
    return datetime(*fields, tzinfo=UTC)


def detect_file(parser: ParserModule, path: Path) -> bool:
    """Does ``parser`` recognise the file at ``path``, dropped on its own?"""
    source = FileSource(path)
    return parser.detect(source, read_head(source, source.name))


def zip_dir(root: Path, out: Path, prefix: str = "") -> Path:
    """Every file under ``root`` zipped into ``out`` (names relative to ``root``, after ``prefix``)."""
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(root).as_posix())
    return out
