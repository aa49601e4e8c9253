"""mbox mailboxes (Thunderbird, Gmail Takeout, mutt, Apple Mail export): streamed, message by message.

The file is read line by line; only the current message is held, and never
more than ``Limits.mail_message_bytes`` of it. Each message is read by
:func:`twentyday.parsers.mail.message.read_message`, exactly as a lone ``.eml``.

A message starts at a ``From_`` line: at the start of a line, ``From ``, the
envelope sender, then a ``ctime``-style date with a weekday and a time::

    From jane@example.org Thu May 28 15:08:30 2020
    From 1667239394591637845@xxx Thu May 28 15:08:30 +0000 2020
    From - Sat Jan 03 01:05:34 1996

A body line that only begins with ``From `` (an unescaped "From the desk of…")
does not split a message. Escaped body lines are unescaped the mboxrd way: one
``>`` is removed from any line matching ``>+From `` (for mboxo files this
undoes the writer's ``>From `` escaping too; a quoted ``>From `` that was in an
mboxo original cannot be told apart and loses its ``>``). The blank line a writer
puts before each ``From_`` line is mbox framing and is removed.

One message that is too large or unreadable becomes a ``system`` event naming
its number and the reason, and reading goes on: one bad message does not lose
the rest. A file that does not start with a ``From_`` line raises ParseError.
The ``From_`` line itself is kept in ``extra["mbox_from"]``; its date is when
the message was stored, not sent, and is not used as the message's time.

Not supported: ``Content-Length``-framed mboxcl/mboxcl2 files whose bodies hold
unescaped ``From_`` lines (they split at those lines); MMDF (``^A^A^A^A``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from twentyday.errors import ParseError
from twentyday.parsers.base import DEFAULT_LIMITS, ExportSource, Limits, detect_by_heads
from twentyday.parsers.mail.message import read_message
from twentyday.records import ParsedEvent, ParseHints, Record

__all__ = ["NAME", "detect", "is_separator", "parse", "read_mbox"]

NAME = "mbox"

#: Lines are read in pieces of at most this size, so a file with no newlines stays bounded.
_READ_BYTES = 1024 * 1024

_WEEKDAY_FROM = re.compile(rb"From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b")
_CLOCK = re.compile(rb"\b\d{1,2}:\d{2}\b")
_ESCAPED_FROM = re.compile(rb">+From ")
_BOM = b"\xef\xbb\xbf"


# --- detection ------------------------------------------------------------------------


def is_separator(line: bytes) -> bool:
    """Is this line (at the start of a line) an mbox ``From_`` line?"""
    return line.startswith(b"From ") and _WEEKDAY_FROM.match(line) is not None and _CLOCK.search(line) is not None


def detect(source: ExportSource, head: bytes) -> bool:
    """Does this start like an mbox (a ``From_`` line, then a header), or hold ``.mbox`` files? Never raises."""
    return detect_by_heads(source, head, _head_matches,
                           lambda: [m for m in source.members() if m.lower().endswith(".mbox")])


def _head_matches(head: bytes) -> bool:
    lines = head.removeprefix(_BOM).lstrip(b"\r\n").split(b"\n", 2)
    if len(lines) < 2 or not is_separator(lines[0]):
        return False
    name, colon, _ = lines[1].partition(b":")
    return bool(colon) and name.replace(b"-", b"").isalnum()


# --- parsing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """One message's bytes as the mbox framed them; ``raw`` is None when it was too large."""

    number: int
    from_line: bytes
    raw: bytes | None


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message of the mbox (or of every ``.mbox`` in a zip), in file order."""
    members = source.members()
    if len(members) != 1:
        members = sorted(m for m in members if m.lower().endswith(".mbox"))
        if not members:
            raise ParseError(f"{source.name}: no .mbox file in the export", code="not_this_format")
    for member in members:
        with source.open(member) as stream:
            yield from read_mbox(stream, member, source.limits)


def read_mbox(stream: BinaryIO, name: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[Record]:
    """The messages of one mbox stream; ``name`` labels events about unreadable messages.

    A message larger than ``limits.mail_message_bytes`` (the limit for one e-mail) is
    reported, not read.
    """
    for chunk in _chunks(stream, name, limits.mail_message_bytes):
        if chunk.raw is None:
            yield _unreadable(name, chunk.number, f"larger than {limits.mail_message_bytes} bytes")
            continue
        try:
            message = read_message(chunk.raw, limits)
        except ParseError as error:
            yield _unreadable(name, chunk.number, str(error))
            continue
        envelope = chunk.from_line.rstrip(b"\r\n").decode("utf-8", "replace")
        yield dataclasses.replace(message, extra={**message.extra, "mbox_from": envelope})


def _unreadable(name: str, number: int, reason: str) -> ParsedEvent:
    return ParsedEvent(
        kind="system", conversation=name, at=None, detail=f"message {number} could not be read: {reason}"
    )


def _chunks(stream: BinaryIO, name: str, most: int) -> Iterator[_Chunk]:
    line = _first_line(stream, name)
    number = 0
    while line:
        number += 1
        from_line = line
        body, oversized, line = _read_body(stream, most)
        yield _Chunk(number, from_line, None if oversized else _strip_framing(body))


def _first_line(stream: BinaryIO, name: str) -> bytes:
    """The first ``From_`` line, after any BOM and blank lines; b"" for an empty file."""
    line = stream.readline(_READ_BYTES).removeprefix(_BOM)
    while line in (b"\n", b"\r\n"):
        line = stream.readline(_READ_BYTES)
    if line and not is_separator(line):
        raise ParseError(f"{name}: not an mbox file: the first line is not a 'From ' line with a date",
                         code="not_this_format")
    return line


def _read_body(stream: BinaryIO, most: int) -> tuple[bytearray, bool, bytes]:
    """One message's lines up to the next ``From_`` line: (bytes, more than ``most``?, that line or b"")."""
    body = bytearray()
    oversized = False
    starts_line = True  # False while reading the rest of a line longer than _READ_BYTES
    line = stream.readline(_READ_BYTES)
    while line:
        if starts_line and line.startswith(b"From ") and is_separator(line):
            break
        if starts_line and line.startswith(b">") and _ESCAPED_FROM.match(line):
            line = line[1:]
        starts_line = line.endswith(b"\n")
        if not oversized:
            body += line
            if len(body) > most:
                oversized = True
                body = bytearray()  # keep scanning for the next message, holding nothing
        line = stream.readline(_READ_BYTES)
    return body, oversized, line


def _strip_framing(body: bytearray) -> bytes:
    """The message without the blank line the mbox writer put before the next ``From_`` line."""
    if body.endswith(b"\r\n\r\n"):
        del body[-2:]
    elif body.endswith(b"\n\n"):
        del body[-1:]
    return bytes(body)
