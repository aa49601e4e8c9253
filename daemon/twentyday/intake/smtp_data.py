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

Large messages: once a message passes ``spill_at`` bytes, what was kept and everything after
it goes to a :class:`Spill` as it arrives (the spool seals it into a file), dot-stuffing undone
block by block; the message then holds in memory only what the spill has not sealed yet, and
that is all it charges to the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from twentyday.errors import IntakeError

_CRLF = b"\r\n"
_DOT_LINE = b".\r\n"


class DataRefusal(enum.Enum):
    TOO_LONG = "too long"
    TOO_MUCH = "too much"
    BUSY = "busy"  # the bytes in flight, all connections together, would pass their budget
    UNAVAILABLE = "unavailable"  # the spill (the spool) could not take the message


class Spill(Protocol):
    """Where a large message's bytes go as they arrive (the spool's :class:`IncomingFile`)."""

    @property
    def buffered(self) -> int:
        """Bytes written to it and still held in memory."""
        ...

    def write(self, data: bytes) -> None:
        """Take the next bytes of the message; raises IntakeError if it cannot."""
        ...


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

    def hold(self, size: int) -> bool:
        """Hold exactly ``size`` bytes (fewer: the rest is given back), unless that would pass the budget."""
        if size > self.held:
            return self.take(size - self.held)
        self._in_flight.held -= self.held - size
        self.held = size
        return True

    def give_back(self) -> None:
        self._in_flight.held -= self.held
        self.held = 0


@dataclass(frozen=True)
class DataSection:
    """The message as the client meant it (dot-stuffing undone), or why it was refused."""

    content: bytes
    refusal: DataRefusal | None = None
    #: The message went to the spill as it arrived (``content`` is then empty).
    spilled: bool = False


class _Unstuffer:
    """Undoes dot-stuffing of a section given in pieces: one leading dot comes off every line.

    A piece's trailing CR or CRLF is held back until the next one, so a CRLF-dot that
    straddles two pieces is seen whole (the pattern cannot overlap itself, so pieces give
    what one ``replace`` over the whole section gives).
    """

    def __init__(self) -> None:
        self._held = b""
        self._first = True

    def feed(self, raw: bytes) -> bytes:
        data = self._held + raw
        if self._first and data:
            self._first = False
            if data[:1] == b".":
                data = data[1:]
        keep = 2 if data.endswith(_CRLF) else 1 if data.endswith(b"\r") else 0
        self._held = data[len(data) - keep:]
        return data[:len(data) - keep].replace(b"\r\n.", _CRLF)

    def end(self) -> bytes:
        held, self._held = self._held, b""
        return held


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
                    reservation: Reservation, *, spill_at: int | None = None,
                    open_spill: Callable[[], Spill] | None = None) -> DataSection:
    """Read one DATA section from ``reader`` (after the 354), up to and including its end line.

    ``reader``'s own limit bounds each read (aiosmtpd makes it ``line_limit``). The bytes kept
    are charged to ``reservation``; the caller gives them back once the message is stored or
    dropped. Raises ``asyncio.IncompleteReadError`` if the connection ends first.

    A message past ``spill_at`` bytes goes to the spill ``open_spill`` gives (once) as it
    arrives, unstuffed, and the section says ``spilled``. Whatever happens to it after that
    (refused, cut off, or taken), the spill is the caller's to commit or discard.
    """
    kept = bytearray()
    size = 0  # bytes sent before the end line, as aiosmtpd counts them
    lines = _Lines(line_limit)
    tail = b""  # the last two bytes read, to see whether a dot starts a line
    refusal: DataRefusal | None = None
    spill: Spill | None = None
    unstuffer = _Unstuffer()
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
            elif spill is None and open_spill is not None and spill_at is not None and len(kept) + len(body) > spill_at:
                try:
                    spill = open_spill()
                    spill.write(unstuffer.feed(bytes(kept)))
                    kept.clear()
                    spill.write(unstuffer.feed(body))
                except IntakeError:
                    refusal = DataRefusal.UNAVAILABLE
            elif spill is not None:
                try:
                    spill.write(unstuffer.feed(body))
                except IntakeError:
                    refusal = DataRefusal.UNAVAILABLE
            elif not reservation.take(len(body)):
                refusal = DataRefusal.BUSY
            if refusal is None and spill is not None and not reservation.hold(spill.buffered):
                refusal = DataRefusal.BUSY
            if refusal is None and spill is None:
                kept += body
            elif refusal is not None:
                kept.clear()  # the rest is read only to find the end, and dropped
                reservation.give_back()
        if ended:
            break
        tail = (tail + block)[-2:]
    if refusal is not None:
        return DataSection(b"", refusal)
    if spill is not None:
        try:
            spill.write(unstuffer.end())
        except IntakeError:
            return DataSection(b"", DataRefusal.UNAVAILABLE)
        return DataSection(b"", spilled=True)
    # Undone in steps that each hold at most two copies of the message (the limit allows for two).
    if kept.startswith(b"."):
        del kept[0]
    unstuffed = kept.replace(b"\r\n.", _CRLF)
    del kept
    return DataSection(bytes(unstuffed))
