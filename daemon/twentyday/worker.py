"""The pipeline worker: takes items out of the spool, through the pipeline, into the store.

An item leaves the spool only after the store committed it durably (or sealed
it in quarantine). Items are ingested in batches: up to ``DONE_BATCH`` items share
one transaction (each item a savepoint in it, so each is still all or nothing),
one fsync of the index and one spool update; a power loss replays the batch from
the spool. If the archive itself fails (disk full, index locked), the failing item
stays, the items before it are committed, and the worker tries again later; a
crash at any point replays what was not committed, and ingest being idempotent,
the replay adds nothing twice.

In the daemon the worker is a process of its own (:func:`worker_process`), so
parsing and sealing use the second core instead of competing with SMTP intake
for the interpreter lock; it dies with the daemon.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import select
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, Protocol

from . import pipeline
from .canonical import parse_iso
from .errors import IntakeError, TwentydayError
from .spool import Spool, SpoolItem
from .store import Archive

log = logging.getLogger(__name__)
#: At most this many items, or this much work, share one transaction and one fsync.
DONE_BATCH = 64
BATCH_SECONDS = 1.0
PIPELINE_NICENESS = 10


class EventLike(Protocol):
    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def spool_meta(name: str, channel: str, received_at: datetime, custodian_id: str | None,
               envelope: dict[str, str] | None = None, refused: str = "") -> dict[str, Any]:
    """What a source records with an item (names and times only; never content)."""
    return {"name": name, "channel": channel, "received_at": received_at.isoformat(), "custodian": custodian_id,
            "envelope": envelope, "refused": refused}


class Worker:
    def __init__(self, archive: Archive, spool: Spool, *, stop: EventLike | None = None,
                 wake: EventLike | None = None) -> None:
        self.archive = archive
        self.spool = spool
        self._wake: EventLike = wake if wake is not None else threading.Event()
        self._stop: EventLike = stop if stop is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0

    def notify(self) -> None:
        """A source put something in the spool."""
        self._wake.set()

    def run_once(self, keep_going: Callable[[], bool] = lambda: True) -> list[pipeline.Outcome]:
        """Process every pending item, in batches; stop at the first failure of the archive itself."""
        outcomes: list[pipeline.Outcome] = []
        pending = self.spool.pending()
        while True:
            done, more = self._run_batch(pending, keep_going)
            outcomes += done
            if not more:
                break
        self.spool.collect()
        return outcomes

    def _run_batch(self, pending: Iterator[SpoolItem], keep_going: Callable[[], bool]
                   ) -> tuple[list[pipeline.Outcome], bool]:
        """Up to ``DONE_BATCH`` items (or ``BATCH_SECONDS`` of work) in one transaction.

        Each item is all-or-nothing inside it (the store's savepoint); one commit, one
        fsync and one spool update cover the batch, so small items (mail) do not each pay
        for writing the index's pages. Returns what was committed, and whether to go on.
        """
        first = next(pending, None)
        if first is None:
            return [], False
        committed: list[tuple[SpoolItem, pipeline.Outcome]] = []
        more = True
        began = time.monotonic()
        try:
            with self.archive.batch():
                for spooled in itertools.chain([first], pending):
                    if self._stop.is_set() or not keep_going():
                        more = False
                        break
                    try:
                        outcome = self._process(spooled)
                    except (IntakeError, sqlite3.OperationalError, OSError) as error:
                        log.error("archive unavailable, item %s stays in the spool: %s", spooled.id, error)
                        more = False
                        break
                    except Exception as error:  # the last boundary before an item is stuck
                        kept = self._quarantine_after_bug(spooled, error)
                        if kept is None:
                            more = False
                            break
                        outcome = kept
                    committed.append((spooled, outcome))
                    if len(committed) >= DONE_BATCH or time.monotonic() - began >= BATCH_SECONDS:
                        break
                else:
                    more = False
        except (IntakeError, sqlite3.Error, OSError) as error:
            log.error("archive unavailable, %d item(s) stay in the spool: %s", len(committed), error)
            return [], False
        if committed:
            self.archive.sync()
            self.spool.mark_done(*(spooled for spooled, _ in committed))
            self.processed += len(committed)
        for spooled, outcome in committed:
            log.info("%s %s (%s): %s", outcome.state, outcome.capture_id, spooled.meta.get("channel"),
                     outcome.detail)
        return [outcome for _, outcome in committed], more

    def _quarantine_after_bug(self, spooled: SpoolItem, error: Exception) -> pipeline.Outcome | None:
        """A bug must neither lose the item nor wedge the spool behind it: seal it for review."""
        log.error("internal error on item %s: %s", spooled.id, type(error).__name__, exc_info=True)
        try:
            item = self._item(spooled)
            return pipeline.refuse(self.archive, item, f"internal error ({type(error).__name__}); kept for review")
        except Exception:  # the archive itself fails: keep the item in the spool
            log.error("item %s stays in the spool: it cannot be quarantined either", spooled.id)
            return None

    def _process(self, spooled: SpoolItem) -> pipeline.Outcome:
        item = self._item(spooled)
        if spooled.meta.get("refused"):
            return pipeline.refuse(self.archive, item, str(spooled.meta["refused"]))
        return pipeline.process(self.archive, item)

    def _item(self, spooled: SpoolItem) -> pipeline.Item:
        meta = spooled.meta
        return pipeline.Item(
            name=str(meta["name"]),
            channel=str(meta["channel"]),
            received_at=parse_iso(str(meta["received_at"])),
            path=spooled.file,
            data=None if spooled.file is not None else self.spool.read(spooled),
            custodian_id=meta.get("custodian"),
            envelope=meta.get("envelope"),
        )

    def loop(self, poll_seconds: float = 5.0, keep_going: Callable[[], bool] = lambda: True) -> None:
        while not self._stop.is_set() and keep_going():
            try:
                self.run_once(keep_going)
            except TwentydayError as error:
                log.error("pipeline: %s", error)
            self._wake.wait(poll_seconds)
            self._wake.clear()

    # -- as a thread (tests, and `ingest` stays in-process)

    def start(self, poll_seconds: float = 5.0) -> None:
        self._thread = threading.Thread(target=self.loop, args=(poll_seconds,), name="twentyday-pipeline",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the daemon dies (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass  # elsewhere the parent-pid check in keep_going does the same, a little later


class PipeWake:
    """Wake-ups between processes over a pipe, never a shared lock.

    multiprocessing.Event is a condition variable in shared memory: if the pipeline
    process dies while it waits (OOM killer, a crash), the daemon's next ``set()`` waits
    forever for it to acknowledge — and ``set()`` runs on the SMTP loop. A byte written
    to a non-blocking pipe cannot block: a full pipe already means "wake up", and a
    closed one means nobody is listening.
    """

    def __init__(self, reader: int, writer: int) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    def create(cls) -> PipeWake:
        reader, writer = os.pipe()
        os.set_blocking(writer, False)
        return cls(reader, writer)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(self._writer, b"w")

    def wait(self, timeout: float | None = None) -> bool:
        ready, _, _ = select.select([self._reader], [], [], timeout)
        if ready:
            os.set_blocking(self._reader, False)
            with contextlib.suppress(BlockingIOError):
                while os.read(self._reader, 65536):
                    pass
        return bool(ready)

    def clear(self) -> None:
        """Reading in :meth:`wait` already cleared it."""

    def is_set(self) -> bool:
        return False

    @property
    def reader(self) -> int:
        return self._reader

    def close(self) -> None:
        for fd in (self._reader, self._writer):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def worker_process(config_path: str, channel: Connection, log_level: str, parent: int) -> None:
    """Entry point of the pipeline process started by ``serve`` (``parent``: the daemon's pid).

    ``channel`` carries the read end of the daemon's wake-up pipe; SIGTERM asks the worker
    to stop after the item under way."""
    from .config import load
    from .daemon import open_spool

    _die_with_parent()
    # The daemon may have died before the line above ran (it is set only now): then we are
    # already an orphan, and no signal will ever come. Never run without the daemon.
    if os.getppid() != parent:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the daemon, which stops us cleanly
    # Intake latency is what senders see; the pipeline catches up when the CPU is free.
    try:
        os.nice(PIPELINE_NICENESS)
    except OSError:  # a sandbox that forbids setpriority: run at normal priority
        log.warning("could not lower the pipeline's priority")
    stop = threading.Event()
    wake = PipeWake(channel.fileno(), -1)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from .logs import configure

    configure(log_level)
    config = load(config_path)
    archive = Archive(config, durable=False)
    spool = open_spool(config, writer=False)
    try:
        Worker(archive, spool, stop=stop, wake=wake).loop(keep_going=lambda: os.getppid() == parent)
    finally:
        spool.close()
        archive.close()
