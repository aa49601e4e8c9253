"""Progress of a long read, for a person watching a terminal: messages read and the rate.

The pipeline calls a progress callback with the count of messages read so far, once every
:data:`EVERY` messages (:func:`twentyday.pipeline.process.process`, the dry run), so an
ingest that nobody watches pays one comparison per message. :class:`TerminalProgress` is
such a callback: it shows nothing for a read that ends within :data:`DELAY` seconds, then
rewrites one line of the terminal at most every :data:`INTERVAL` seconds, and clears it
when the read ends. The CLI uses it only when stderr is a terminal, so scripts and logs
see the same output as before. It names the file it was given and counts; never content.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

#: Messages between two calls of the callback: a clock read per this many messages.
EVERY = 1024
#: A read shorter than this shows no progress at all.
DELAY = 1.0
#: At most this often (seconds) the line is rewritten.
INTERVAL = 0.25

#: Called with the number of messages read so far.
ProgressCallback = Callable[[int], None]


class TerminalProgress:
    """One self-rewriting line on a terminal: ``name: 120,832 messages read, 19,410/s``."""

    def __init__(self, stream: TextIO, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        # A file name is the user's own text: shown as printable characters only, on one line.
        self._name = "".join(ch if ch.isprintable() else "?" for ch in name)
        self._clock = clock
        self._started = clock()
        self._shown_at: float | None = None

    def __call__(self, messages: int) -> None:
        now = self._clock()
        elapsed = now - self._started
        if elapsed < DELAY or (self._shown_at is not None and now - self._shown_at < INTERVAL):
            return
        rate = messages / elapsed if elapsed > 0 else 0.0
        # \r back to the line's start, \x1b[K erases what a longer earlier line left.
        self._stream.write(f"\r\x1b[K{self._name}: {messages:,} messages read, {rate:,.0f}/s")
        self._stream.flush()
        self._shown_at = now

    def finish(self) -> None:
        """Clear the line, if one was shown, so the report that follows starts on a clean line."""
        if self._shown_at is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown_at = None
