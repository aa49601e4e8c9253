"""A Google Takeout holding both Google Chat and Google Voice: both are read, into one capture.

The registry gives each item one parser. A Takeout zip with Chat *and* Voice would otherwise go
to whichever of the two is tried first, and the other's messages would be left unread. This
module is tried before both (parsers/formats.py) and claims only a Takeout that each of them
recognises; it yields everything :mod:`google_chat` reads, then everything :mod:`google_voice`
reads. A Takeout with only one of them is left to that parser.
"""

from __future__ import annotations

from collections.abc import Iterator

from twentyday.parsers import google_chat, google_voice
from twentyday.parsers.base import ExportSource
from twentyday.records import ParseHints, Record

__all__ = ["NAME", "detect", "parse"]

NAME = "google_takeout"


def detect(source: ExportSource, head: bytes) -> bool:
    """Does the item hold both Google Chat groups and Google Voice files? Never raises."""
    return len(source.members()) > 1 and google_voice.detect(source, head) and google_chat.detect(source, head)


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    yield from google_chat.parse(source, hints)
    yield from google_voice.parse(source, hints)
