"""The read-ahead helper: parses the next spooled mails while the worker stores the ones before.

On a machine with more than one core the worker (:mod:`twentyday.pipeline.worker`)
hands decrypted items to a helper process in chunks and stores what comes back
already parsed (:class:`pipeline.Prepared`): the parse moves out of the store's
way, and the store itself stays in the worker's process. The helper holds no
secret (it gets the worker's config, not its file), opens no file and writes
nothing, so every guarantee of the spool and the index stays with the worker.
If the helper dies or stops answering, it is killed, the items it held are
parsed by the worker itself, and a new helper starts after a rest.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import itertools
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from twentyday.config import Config
from twentyday.hardening import forbid_core_dumps
from twentyday.logs import configure as configure_logs
from twentyday.pipeline import process as pipeline
from twentyday.spool import SpoolItem

log = logging.getLogger(__name__)
#: The pipeline's processes run below intake's priority: senders wait on intake, not on them.
PIPELINE_NICENESS = 10


@dataclass(frozen=True)
class ReadAheadLimits:
    """How far ahead the helper reads, and how long it is waited for."""

    #: Items are handed over in chunks of this many, at most ``chunks`` (and ``bytes``) ahead.
    items_per_chunk: int = 16
    chunks: int = 4
    bytes: int = 32 * 1024 * 1024
    #: A chunk the helper has not returned in this long counts as a failure: the helper is killed.
    answer_seconds: float = 120.0
    #: After the helper fails, the worker parses everything itself this long before trying a new one.
    rest_seconds: float = 60.0


@dataclass(frozen=True)
class Pending:
    """A spooled item on its way to the store, with its parse if the helper read it ahead."""

    spooled: SpoolItem
    prepared: pipeline.Prepared | None = None


class ReadAhead:
    """The helper process, started when first needed and again after a rest once it failed."""

    def __init__(self, config: Config, log_level: str = "INFO", clock: Callable[[], float] = time.monotonic,
                 limits: ReadAheadLimits = ReadAheadLimits()) -> None:
        self._config = config  # the worker's own: the helper decides with exactly what the worker would
        self._log_level = log_level
        self._pool: ProcessPoolExecutor | None = None
        self._clock = clock
        self.limits = limits
        self._resting_until = 0.0

    def submit(self, items: list[pipeline.Item | None]) -> Future[list[pipeline.Prepared | None]] | None:
        """Hand items to the helper (starting it if need be); None while it rests after failing."""
        if self._pool is None:
            if self._clock() < self._resting_until:
                return None
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_helper,
                initargs=(self._config, self._log_level, os.getpid()))
        return self._pool.submit(_prepare_items, items)

    def lost(self) -> None:
        """The helper failed: do without one for a while, so a helper that cannot start costs nothing.

        Its process is killed, in case it is not dead but stuck (stopped, or in a parse that
        does not end): the executor's own shutdown would wait for it.
        """
        self._resting_until = self._clock() + self.limits.rest_seconds
        pool, self._pool = self._pool, None
        if pool is not None:
            # ProcessPoolExecutor has no public way to kill its workers before Python 3.14.
            for process in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(OSError, AttributeError):
                    process.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def ahead(self, pending: Iterator[SpoolItem], readable: Callable[[SpoolItem], pipeline.Item | None],
              waiting: Callable[[], None] = lambda: None) -> Iterator[Pending]:
        """The spooled items in order, each with its parse when the helper read it ahead.

        Chunks go to the helper up to the limits ahead of the item being stored;
        ``readable`` gives the item to parse, or None for one the helper must not read.
        An item the helper did not prepare (a file, a refused item, one it failed on, all
        of them if it died) comes without a parse, for the worker to process as before.
        ``waiting`` is called about once a second while the worker waits for the helper (its heartbeat:
        the wait is bounded by ``answer_seconds``, so waiting is progress).
        """
        limits = self.limits
        in_flight: collections.deque[tuple[list[SpoolItem], Future[list[pipeline.Prepared | None]] | None]]
        in_flight = collections.deque()
        chunks = _chunked(pending, limits.items_per_chunk)
        while True:
            while (len(in_flight) < limits.chunks and _bytes_in(in_flight) < limits.bytes
                   and (chunk := next(chunks, None)) is not None):
                items = [readable(spooled) for spooled in chunk]
                try:
                    future = self.submit(items) if any(items) else None
                except Exception as error:  # cannot start a process (no memory, no pids): do without
                    log.error("cannot start the read-ahead helper (%s)", error)
                    self.lost()
                    future = None
                in_flight.append((chunk, future))
            if not in_flight:
                return
            chunk, future = in_flight.popleft()
            prepared: list[pipeline.Prepared | None] = [None] * len(chunk)
            if future is not None:
                try:
                    prepared = _result(future, limits.answer_seconds, waiting)
                except Exception as error:  # the helper died (OOM killer, a crash) or is stuck: parse here
                    log.error("read-ahead helper failed (%s); the worker parses these items itself",
                              type(error).__name__)
                    self.lost()
                    # The chunks still in flight were lost with it: they are parsed here too.
                    in_flight = collections.deque((waiting, None) for waiting, _ in in_flight)
            yield from (Pending(spooled, ready) for spooled, ready in zip(chunk, prepared, strict=True))


#: The helper's config (set once per helper process by _start_helper).
_helper_config: Config | None = None


def _start_helper(config: Config, log_level: str, parent: int) -> None:
    global _helper_config
    die_with_parent()
    forbid_core_dumps()  # it holds no secret, but the mail it parses is in clear in its memory
    if os.getppid() != parent:  # the worker died before the line above took effect
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(PIPELINE_NICENESS)
    configure_logs(log_level)
    _helper_config = config


def _prepare_items(items: list[pipeline.Item | None]) -> list[pipeline.Prepared | None]:
    """In the helper: each item prepared, or None (the worker then does it all itself)."""
    assert _helper_config is not None
    prepared: list[pipeline.Prepared | None] = []
    for item in items:
        if item is None:
            prepared.append(None)
            continue
        try:
            prepared.append(pipeline.prepare(_helper_config, item))
        except Exception:  # a bug: the worker's own pass quarantines the item with its reason
            log.warning("read-ahead of an item failed; the worker parses it itself", exc_info=True)
            prepared.append(None)
    return prepared


def _result(future: Future[list[pipeline.Prepared | None]], timeout: float, waiting: Callable[[], None]
            ) -> list[pipeline.Prepared | None]:
    """``future.result(timeout)``, calling ``waiting`` about once a second until it comes."""
    deadline = time.monotonic() + timeout
    while True:
        waiting()
        try:
            return future.result(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise


def _bytes_in(in_flight: Iterable[tuple[list[SpoolItem], object]]) -> int:
    """The sealed size of the spooled bytes held for the chunks in flight (files are read later)."""
    return sum(spooled.payload_length for chunk, _ in in_flight for spooled in chunk if spooled.file is None)


def _chunked(items: Iterator[SpoolItem], size: int) -> Iterator[list[SpoolItem]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass  # elsewhere the parent-pid check in keep_going does the same, a little later
