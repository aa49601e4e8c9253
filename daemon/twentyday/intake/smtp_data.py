"""Reading an SMTP DATA section in blocks, with aiosmtpd's rules.

aiosmtpd reads DATA one line at a time: an ``await readuntil(b"\\r\\n")``, a
debug log call and a few list operations per line, about 150 of them for a
10 KB message. That loop is most of what its server spends per message.
:func:`read_data` reads the same section with one ``readuntil(b".\\r\\n")``
per line that ends in a dot, and gives the same result:

- DATA ends only at ``<CRLF>.<CRLF>``, a line holding one dot after a line that
  ended in CRLF (or as the first line). A bare ``\\n.\\n`` or ``\\n.\\r\\n`` is
  content, so it cannot smuggle a second message. Whatever follows the end
  (pipelined commands) stays in the reader.
- A line longer than ``line_limit`` bytes (CRLF included) refuses the message
  with "too long" (500); more than ``size_limit`` bytes in all refuse it with
  "too much" (552). Either way the rest of the section is read and dropped,
  never held: at most ``size_limit`` bytes are kept.
- Dot-stuffing is undone (RFC 5321 4.5.2): one leading dot comes off every line.

When one message breaks both limits, which refusal is reported may differ from
aiosmtpd's (its order is line by line, ours block by block); both refuse it.

Memory: every connection's DATA charges the bytes it keeps to one :class:`InFlight`
budget as they arrive. A message that would take the budget past its size is refused
"busy" (the server answers 451 4.3.1, so its sender retries later) and the rest of its
section is drained, never held: a crowd of clients that send large messages and never
finish cannot hold more than the budget between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass

_CRLF = b"\r\n"
_DOT_LINE = b".\r\n"


class DataRefusal(enum.Enum):
    TOO_LONG = "too long"
    TOO_MUCH = "too much"
    BUSY = "busy"  # the bytes in flight, all connections together, would pass their budget


class InFlight:
    """Message bytes held by every connection's DATA together, against one budget.

    The server runs on one event loop, so plain counters are enough: no lock.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0

    def full(self) -> bool:
        return self.held >= self.budget

    @contextlib.contextmanager
    def reserve(self) -> Iterator[Reservation]:
        """One message's share: whatever it took is given back when the block ends, however."""
        reservation = Reservation(self)
        try:
            yield reservation
        finally:
            reservation.give_back()


class Reservation:
    """The bytes one message holds out of an :class:`InFlight` budget."""

    def __init__(self, in_flight: InFlight) -> None:
        self._in_flight = in_flight
        self.held = 0

    def take(self, size: int) -> bool:
        """Hold ``size`` more bytes, unless that would pass the budget."""
        if self._in_flight.held + size > self._in_flight.budget:
            return False
        self._in_flight.held += size
        self.held += size
        return True

    def give_back(self) -> None:
        self._in_flight.held -= self.held
        self.held = 0


@dataclass(frozen=True)
class DataSection:
    """The message as the client meant it (dot-stuffing undone), or why it was refused."""

    content: bytes
    refusal: DataRefusal | None = None


class _Lines:
    """Tracks line lengths across blocks: the longest line seen so far, within a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.run = 0  # bytes of the line under way (its CR included, if it has one yet)
        self.previous_cr = False  # whether the bytes so far end in a CR (a CRLF may straddle)

    def exceeded_by(self, block: bytes) -> bool:
        """Take ``block``; whether a line in it, or ending in it, is longer than the limit."""
        if not block:
            return False
        exceeded = False
        if self.run + len(block) > self.limit:  # else no line here can be over the limit
            start = 0
            if self.previous_cr and block[0] == 0x0A:  # the CRLF of the line under way
                exceeded = self.run + 1 > self.limit
                self.run, start = 0, 1
            while not exceeded:
                end = block.find(_CRLF, start)
                if end == -1:
                    break
                exceeded = self.run + end + 2 - start > self.limit
                self.run, start = 0, end + 2
            self.run += len(block) - start
            # A line under way this long is over the limit whatever ends it: say so now.
            exceeded = exceeded or self.run >= self.limit
        else:
            last = block.rfind(_CRLF)
            if last != -1:
                self.run = len(block) - last - 2
            elif self.previous_cr and block[0] == 0x0A:
                self.run = len(block) - 1
            else:
                self.run += len(block)
        self.previous_cr = block[-1] == 0x0D
        return exceeded


async def read_data(reader: asyncio.StreamReader, size_limit: int | None, line_limit: int,
                    reservation: Reservation) -> DataSection:
    """Read one DATA section from ``reader`` (after the 354), up to and including its end line.

    ``reader``'s own limit bounds each read (aiosmtpd makes it ``line_limit``). The bytes kept
    are charged to ``reservation``; the caller gives them back once the message is stored or
    dropped. Raises ``asyncio.IncompleteReadError`` if the connection ends first.
    """
    kept = bytearray()
    size = 0  # bytes sent before the end line, as aiosmtpd counts them
    lines = _Lines(line_limit)
    tail = b""  # the last two bytes read, to see whether a dot starts a line
    refusal: DataRefusal | None = None
    while True:
        try:
            block = await reader.readuntil(_DOT_LINE)
        except asyncio.LimitOverrunError as error:  # no dot line in the buffered bytes: take them
            block = await reader.readexactly(error.consumed)
            ended = False
        else:
            before_dot = (tail + block[:-3])[-2:]
            ended = before_dot == _CRLF or (size == 0 and len(block) == 3)
        body = block[:-3] if ended else block
        size += len(body)
        if refusal is None:
            if lines.exceeded_by(body):
                refusal = DataRefusal.TOO_LONG
            elif size_limit and size > size_limit:
                refusal = DataRefusal.TOO_MUCH
            elif not reservation.take(len(body)):
                refusal = DataRefusal.BUSY
            if refusal is None:
                kept += body
            else:
                kept.clear()  # the rest is read only to find the end, and dropped
                reservation.give_back()
        if ended:
            break
        tail = (tail + block)[-2:]
    if refusal is not None:
        return DataSection(b"", refusal)
    # Undone in steps that each hold at most two copies of the message (the limit allows for two).
    if kept.startswith(b"."):
        del kept[0]
    unstuffed = kept.replace(b"\r\n.", _CRLF)
    del kept
    return DataSection(bytes(unstuffed))
