"""The pipeline process's proof of progress: a byte on a pipe, read by the daemon.

The worker beats (:meth:`Heartbeat.beat`) per item it stores, per 1,024 messages it
parses, while it waits on its read-ahead helper, and on every idle round; the daemon
reads the pipe (:meth:`HeartbeatPipe.arrived`) before each watchdog ping it sends
systemd (daemon/twentyday/service.py) and withholds the ping when nothing came. So a
worker that is wedged (stopped, deadlocked, in a loop that never ends) stops the pings
as surely as a hung event loop does, and systemd restarts the service.

A pipe rather than shared memory or a file: a non-blocking write cannot block the
worker, a full pipe already says "progress since you last looked", nothing depends
on the wall clock (a clock step cannot fake or hide progress), and it is the same
mechanism as the wake-up pipe the other way (:class:`~twentyday.pipeline.worker.PipeWake`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection


class HeartbeatPipe:
    """The daemon's end: it keeps the write end to hand a copy to each pipeline process it starts."""

    def __init__(self) -> None:
        self._reader, self._writer = os.pipe()
        os.set_blocking(self._reader, False)
        os.set_blocking(self._writer, False)

    def for_child(self) -> Connection:
        """A copy of the write end, in the form multiprocessing hands to a spawned process."""
        return Connection(os.dup(self._writer), readable=False)

    def arrived(self) -> bool:
        """Whether the worker beat since the last call (it empties the pipe)."""
        any_beat = False
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(self._reader, 4096):
                any_beat = True
                if len(chunk) < 4096:
                    break
        return any_beat

    def close(self) -> None:
        for fd in (self._reader, self._writer):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._reader = self._writer = -1


class Heartbeat:
    """The worker's end: :meth:`beat` writes at most once every ``every`` seconds (a clock read
    otherwise), so beating per item costs nothing on a fast ingest."""

    def __init__(self, fd: int | None, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._fd = fd
        self._every = every
        self._clock = clock
        self._last = float("-inf")

    def beat(self) -> None:
        if self._fd is None:
            return
        now = self._clock()
        if now - self._last < self._every:
            return
        self._last = now
        # Full: the daemon has not read since our last beats, which already say it. Closed: no daemon.
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(self._fd, b".")
