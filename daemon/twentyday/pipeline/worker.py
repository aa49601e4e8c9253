"""The pipeline worker: takes items out of the spool, through the pipeline, into the store.

An item leaves the spool only after the store committed it durably (or sealed
it in quarantine). Items are ingested in batches: the items of a batch (at most
:class:`BatchLimits`) share one transaction, one fsync of the index and one spool
update; a power loss replays
the batch from the spool. Each item is still all or nothing: a savepoint, or, for
items parsed ahead, a rollback of the whole batch that is then stored again with
a savepoint per item (see :meth:`Worker._run_batch`). If the archive itself fails
(disk full, index locked), the failing item stays, the items before it are
committed, and the worker tries again later; a crash at any point replays what
was not committed, and ingest being idempotent, the replay adds nothing twice.

In the daemon the worker is a process of its own (:func:`worker_process`), so
parsing and sealing use the second core instead of competing with SMTP intake
for the interpreter lock; it dies with the daemon. On a machine with more than
one core it also starts a helper (:mod:`twentyday.pipeline.read_ahead`) that
parses the next spooled mails while the worker stores the ones before them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Protocol

from twentyday.config import Config
from twentyday.config import load as load_config
from twentyday.errors import BatchRolledBack, IntakeError, SpoolItemDamaged, TwentydayError
from twentyday.hardening import forbid_core_dumps
from twentyday.logs import configure as configure_logs
from twentyday.pipeline import process as pipeline
from twentyday.pipeline.heartbeat import Heartbeat
from twentyday.pipeline.read_ahead import PIPELINE_NICENESS, Pending, ReadAhead, die_with_parent
from twentyday.spool import Spool, SpoolItem
from twentyday.store import db
from twentyday.store.alerts import Scope
from twentyday.store.archive import Archive
from twentyday.store.ledger import signed_head
from twentyday.store.writer import IngestResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchLimits:
    """At most this many items, or this much work, share one transaction and one fsync."""

    items: int = 256
    seconds: float = 1.0


#: After a failed full evaluation of the alerts, try again this soon (seconds).
RETRY_EVALUATION_SECONDS = 60.0

# Functions, not tuples made at import: ``db``'s error tuples are read when an error is caught, so
# psycopg is imported only by an archive that has an index in PostgreSQL (or once an error is caught).
def _item_not_taken() -> tuple[type[Exception], ...]:
    """An item the archive cannot take now (bucket unreachable, index locked or full, disk): it stays in the spool."""
    return (IntakeError, *db.OPERATIONAL_ERRORS, OSError)


def _batch_not_taken() -> tuple[type[Exception], ...]:
    """A batch the archive could not store (any error of the index's database): its items stay in the spool."""
    return (IntakeError, *db.ERRORS, OSError)


class EventLike(Protocol):
    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Worker:
    def __init__(self, archive: Archive, spool: Spool, *, stop: EventLike | None = None,
                 wake: EventLike | None = None, read_ahead: ReadAhead | None = None,
                 limits: BatchLimits = BatchLimits(), evaluate_every: float | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 heartbeat: Callable[[], None] = lambda: None) -> None:
        """``evaluate_every``: the alert scheduler (``serve``'s): the conversations each committed batch
        touched are re-evaluated with it, and every alert every ``evaluate_every`` seconds.
        ``heartbeat``: called per item, per 1,024 messages parsed, while waiting on the read-ahead
        helper and per round of :meth:`loop` (``serve``'s watchdog, pipeline/heartbeat.py)."""
        self.archive = archive
        self.spool = spool
        self.limits = limits
        self._read_ahead = read_ahead
        self._wake: EventLike = wake if wake is not None else threading.Event()
        self._stop: EventLike = stop if stop is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self._evaluate_every = evaluate_every
        self._clock = clock
        self._next_evaluation = 0.0  # monotonic: the first pass evaluates every alert
        self._beat = heartbeat

    def notify(self) -> None:
        """A source put something in the spool."""
        self._wake.set()

    def run_once(self, keep_going: Callable[[], bool] = lambda: True) -> list[pipeline.Outcome]:
        """Process every pending item, in batches; stop at the first failure of the archive itself."""
        outcomes: list[pipeline.Outcome] = []
        pending = self._with_items(self.spool.pending())
        while True:
            done, more = self._run_batch(pending, keep_going)
            outcomes += done
            if not more:
                break
        self.spool.collect()
        return outcomes

    def _with_items(self, pending: Iterator[SpoolItem]) -> Iterator[Pending]:
        """The spooled items in order, each with its parse when the helper read it ahead."""
        if self._read_ahead is None:
            return (Pending(spooled) for spooled in pending)
        return self._read_ahead.ahead(pending, self._readable, waiting=self._beat)

    def _readable(self, spooled: SpoolItem) -> pipeline.Item | None:
        """The item to read ahead, or None: files and refused items are the worker's alone."""
        if spooled.file is not None or spooled.meta.refused:
            return None
        try:
            return self._item(spooled)
        except Exception:  # reading it fails: the worker's own pass meets the error where it is handled
            return None

    def _run_batch(self, pending: Iterator[Pending], keep_going: Callable[[], bool], guarded: int = 0
                   ) -> tuple[list[pipeline.Outcome], bool]:
        """Up to ``limits.items`` items (or ``limits.seconds`` of work) in one transaction.

        Each item is all-or-nothing inside it; one commit, one fsync and one spool update
        cover the batch, so small items (mail) do not each pay for writing the index's
        pages. Items read ahead are parsed already and are stored without a savepoint
        of their own (it would copy every page they change); if one fails anyway, the
        store rolls the whole batch back and its ``guarded`` first items are stored again,
        each in a savepoint, where a failing one is rolled back alone. All of them, before
        the batch may end: one left for the next batch would be stored after the items
        behind it, and the first capture of a message is the one its clock counts.
        Returns what was committed, and whether to go on.
        """
        first = next(pending, None)
        if first is None:
            return [], False
        committed: list[tuple[SpoolItem, pipeline.Outcome]] = []
        attempted: list[Pending] = []
        more = True
        began = time.monotonic()
        try:
            with self.archive.batch():
                for pending_item in itertools.chain([first], pending):
                    spooled = pending_item.spooled
                    if self._stop.is_set() or not keep_going():
                        more = False
                        break
                    attempted.append(pending_item)
                    self._beat()
                    try:
                        outcome = self._process(pending_item, guarded=len(attempted) <= guarded)
                    except BatchRolledBack:
                        raise  # out of the batch, which has nothing left to commit
                    except SpoolItemDamaged as error:  # the item, not the archive: keep it and go on
                        log.error("%s; kept as it is, for review", error)
                        kept = self._quarantine(spooled, str(error))
                        if kept is None:
                            more = False
                            break
                        outcome = kept
                    except _item_not_taken() as error:
                        log.error("archive unavailable, item %s stays in the spool: %s", spooled.id, error)
                        more = False
                        break
                    except Exception as error:  # the last boundary before an item is stuck
                        log.error("internal error on item %s: %s", spooled.id, type(error).__name__,
                                  exc_info=True)
                        kept = self._quarantine(spooled, f"internal error ({type(error).__name__}); kept for review")
                        if kept is None:
                            more = False
                            break
                        outcome = kept
                    committed.append((spooled, outcome))
                    if len(attempted) >= guarded and (
                            len(committed) >= self.limits.items
                            or time.monotonic() - began >= self.limits.seconds):
                        break
                else:
                    more = False
                self._evaluate_touched([outcome.result for _, outcome in committed])
        except BatchRolledBack as error:
            log.warning("%s; storing its %d item(s) again, each in a savepoint", error, len(attempted))
            return self._run_batch(itertools.chain(attempted, pending), keep_going, guarded=len(attempted))
        except _batch_not_taken() as error:
            log.error("archive unavailable, %d item(s) stay in the spool: %s", len(committed), error)
            return [], False
        if committed:
            try:
                self.archive.sync()
                self.spool.mark_done(*(spooled for spooled, _ in committed))
            except OSError as error:  # disk full, I/O error: replaying them later finds them archived
                log.error("%d item(s) committed, but the commit could not be made durable or noted in the "
                          "spool, so they stay in it: %s", len(committed), error)
                more = False
            else:
                self.processed += len(committed)
                self._publish_head()
        for spooled, outcome in committed:
            log.info("%s %s (%s): %s", outcome.state, outcome.capture_id, spooled.meta.channel,
                     outcome.detail, extra={"event": outcome.state, "capture_id": outcome.capture_id,
                                            "channel": spooled.meta.channel,
                                            "custodian": outcome.result.custodian if outcome.result else None})
        return [outcome for _, outcome in committed], more

    def _evaluate_touched(self, results: list[IngestResult | None]) -> None:
        """Re-evaluate the alerts of what the batch touched, committed with it (a savepoint: a failure
        undoes only the evaluation, is logged, and the timer's full evaluation comes sooner)."""
        if self._evaluate_every is None:
            return
        scope = Scope.touched(results)
        if not scope.custodians:
            return
        try:
            changes = self.archive.evaluate_alerts(self._clock(), scope)
        except Exception as error:  # never the intake's problem: the full evaluation retries it
            log.error("alert evaluation after a batch failed (%s); retrying with the next full evaluation",
                      type(error).__name__, exc_info=not isinstance(error, (TwentydayError, *db.ERRORS)))
            self._next_evaluation = 0.0
            return
        if changes.any:
            log.info("alerts: %s", changes.summary())

    def evaluate_due(self) -> None:
        """The scheduler's timer: every alert re-evaluated when ``evaluate_every`` has passed, so a
        reminder opens on its day with no new input. A failure is logged and tried again next pass."""
        if self._evaluate_every is None or time.monotonic() < self._next_evaluation:
            return
        try:
            changes = self.archive.evaluate_alerts(self._clock())
        except Exception as error:
            log.error("alert evaluation failed (%s); trying again in %.0f s", type(error).__name__,
                      RETRY_EVALUATION_SECONDS, exc_info=not isinstance(error, (TwentydayError, *db.ERRORS)))
            self._next_evaluation = time.monotonic() + RETRY_EVALUATION_SECONDS
            return
        self._next_evaluation = time.monotonic() + self._evaluate_every
        if changes.any:
            log.info("alerts: %s", changes.summary())
            self._publish_head()  # its own commit: a new signed head to publish

    def _publish_head(self) -> None:
        """Log the signed head of the batch just made durable: a copy outside the archive (the journal)
        that ``verify --head`` holds the archive to, so entries removed later, or an older copy put
        back, are found."""
        try:
            head = signed_head(self.archive.conn)
        except db.ERRORS as error:  # after the commit: the batch is stored; the next batch logs its head
            log.error("cannot read the ledger head to log it: %s", type(error).__name__)
            return
        if head is not None:
            log.info("ledger head %s", head.text(), extra={"event": "ledger_head"})

    def _quarantine(self, spooled: SpoolItem, reason: str) -> pipeline.Outcome | None:
        """A bug or a damaged item must neither lose the item nor wedge the spool behind it:
        seal it for review (a damaged one as the sealed bytes it is)."""
        try:
            try:
                item = self._item(spooled)
            except SpoolItemDamaged:
                item = self._damaged(spooled)
            return pipeline.refuse(self.archive, item, reason)
        except Exception:  # the archive itself fails: keep the item in the spool
            log.error("item %s stays in the spool: it cannot be quarantined either", spooled.id)
            return None

    def _damaged(self, spooled: SpoolItem) -> pipeline.Item:
        """A damaged item, as the sealed bytes it is. Its header failed authentication with it,
        so nothing in it is trusted: no custodian (never re-routed), received when found (never
        re-dated to a time the disk's owner chose)."""
        taken = spooled.file if spooled.file is not None and spooled.file.is_file() else None
        return pipeline.Item(
            name=f"damaged spool item {spooled.id}",
            channel=spooled.meta.channel if spooled.meta.channel in ("smtp", "folder") else "folder",
            received_at=datetime.now(UTC),
            path=taken,
            data=None if taken is not None else self.spool.read_sealed(spooled),
        )
    def _process(self, pending: Pending, guarded: bool) -> pipeline.Outcome:
        if pending.prepared is not None:
            return pipeline.store(self.archive, pending.prepared, savepoint=guarded)
        spooled = pending.spooled
        item = self._item(spooled)
        if spooled.meta.refused:
            # A refusal's bytes are the source's words about what it refused (names): sealed as its detail.
            words = (item.data or b"").decode("utf-8", "replace")
            return pipeline.refuse(self.archive, item, spooled.meta.refused, words)
        return pipeline.process(self.archive, item, progress=lambda _messages: self._beat())

    def _item(self, spooled: SpoolItem) -> pipeline.Item:
        """The item as the pipeline reads it; raises SpoolItemDamaged if its bytes or its header
        (custodian, times, refusal) fail authentication."""
        meta = spooled.meta
        data: bytes | None = self.spool.read(spooled)
        sealed = None
        if spooled.file is not None:
            sealed, data = self.spool.sealed_file(spooled), None
        return pipeline.Item(
            name=meta.name,
            channel=meta.channel,
            received_at=meta.received_at,
            data=data,
            sealed=sealed,
            custodian_id=meta.custodian,
            envelope=meta.envelope,
        )

    def loop(self, poll_seconds: float = 5.0, keep_going: Callable[[], bool] = lambda: True) -> None:
        while not self._stop.is_set() and keep_going():
            self._beat()
            try:
                self.run_once(keep_going)
            except (TwentydayError, OSError) as error:  # e.g. the spool unreadable: try again later
                log.error("pipeline: %s", error)
            self.evaluate_due()
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


def worker_process(config_source: Config | str, channel: Connection, log_level: str, parent: int,
                   heartbeat: Connection | None = None, beat_seconds: float = 5.0) -> None:
    """Entry point of the pipeline process started by ``serve`` (``parent``: the daemon's pid).

    ``config_source``: the daemon's config as it runs (after a reload, with its restart-only settings
    kept), or a config file's path. ``channel`` carries the read end of the daemon's wake-up pipe;
    SIGTERM asks the worker to stop after the item under way. ``heartbeat``, if given, the write end of
    the daemon's heartbeat pipe: the worker beats on it at most every ``beat_seconds`` and wakes at least
    that often when idle, so the daemon sees progress while it waits."""
    die_with_parent()
    forbid_core_dumps()  # exec reset the daemon's dumpable flag; this process holds the secrets too
    # The daemon may have died before the line above ran (it is set only now): then we are
    # already an orphan, and no signal will ever come. Never run without the daemon.
    if os.getppid() != parent:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the daemon, which stops us cleanly
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload is the daemon's: it restarts us between items
    # Intake latency is what senders see; the pipeline catches up when the CPU is free.
    try:
        os.nice(PIPELINE_NICENESS)
    except OSError:  # a sandbox that forbids setpriority: run at normal priority
        log.warning("could not lower the pipeline's priority")
    stop = threading.Event()
    wake = PipeWake(channel.fileno(), -1)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    configure_logs(log_level)
    config = load_config(config_source) if isinstance(config_source, str) else config_source
    archive = Archive(config, durable=False)
    spool = Spool.open(config, writer=False)
    # With a second core, mail is parsed in a helper while the items before it are stored.
    read_ahead = ReadAhead(config, log_level) if (os.cpu_count() or 1) > 1 else None
    beats = Heartbeat(heartbeat.fileno() if heartbeat is not None else None, beat_seconds / 2)

    def index_lost() -> bool:
        """An index in PostgreSQL whose connection broke (the server restarted, a failover): this
        process ends, and the daemon starts another, with a new connection; the items stay spooled."""
        lost = bool(getattr(archive.conn, "closed", False))  # SQLite's connection: never lost
        if lost:
            log.error("the connection to the index was lost; the pipeline process exits and serve starts "
                      "it again (the spooled items wait for it)")
        return lost

    try:
        Worker(archive, spool, stop=stop, wake=wake, read_ahead=read_ahead,
               evaluate_every=config.evaluate_every_minutes * 60.0, heartbeat=beats.beat).loop(
            poll_seconds=min(5.0, beat_seconds), keep_going=lambda: os.getppid() == parent and not index_lost())
    finally:
        if read_ahead is not None:
            read_ahead.close()
        spool.close()
        archive.close()
