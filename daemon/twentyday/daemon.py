"""``twentyday serve``: the composition root.

It checks that the config names public keys only, opens the archive, and
starts what exists: the spool, the pipeline worker (a process of its own,
restarted if it dies), the alert deliverer (a thread of its own, notify/deliver.py),
the integrity check (``verify`` on a timer, store/integrity.py, a thread of its own),
the watched export folder, and (when enabled) the SMTP forwarding address. It runs until
SIGTERM or SIGINT, then stops within :data:`STOP_SECONDS`: the sources first (no new
connection, idle sessions closed with 421, a message being received finishes -- 250 once
durable -- or after :data:`DRAIN_SECONDS` is answered 451; the watcher ends the file it is
taking), while the worker finishes the item it holds (killed after :data:`WORKER_STOP_SECONDS`:
its transaction rolls back and the spool gives the item to the next start). SIGHUP reloads
the config (:func:`reload_config`) without dropping a connection. It logs the ledger's signed head at start and every
``HEAD_LOG_SECONDS`` (the pipeline logs it after every batch it commits), so a
copy of the chain head lives outside the archive (journald) and ``verify --head``
finds a rewrite, a truncation or a rollback. It refuses to sign with a ledger key
other than the one pinned in the config (``keys.ledger_key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from twentyday import config as config_module
from twentyday.config import Config
from twentyday.crypto import keys
from twentyday.errors import ConfigError, IntegrityError, NotFoundError, TwentydayError
from twentyday.hardening import forbid_core_dumps
from twentyday.intake.smtp import SmtpIntake, open_smtp
from twentyday.intake.watcher import InboxWatcher
from twentyday.notify.deliver import POLL_SECONDS, Deliverer
from twentyday.pipeline.heartbeat import HeartbeatPipe
from twentyday.pipeline.worker import PipeWake, worker_process
from twentyday.service import ServiceReporter, Systemd
from twentyday.service import cancel as cancel_reporting
from twentyday.spool import ROLL_SECONDS, Spool
from twentyday.status import hold_serve_lock
from twentyday.store import db
from twentyday.store.archive import Archive
from twentyday.store.integrity import FIRST_DELAY_SECONDS, IntegrityCheck
from twentyday.store.ledger import SignedHead, ledger_key_text, signed_head
from twentyday.store.nodes import check_node

log = logging.getLogger(__name__)
HEAD_LOG_SECONDS = 3600.0
#: SIGTERM: how long a message still arriving over SMTP may take to finish (then 451).
DRAIN_SECONDS = 10.0
#: SIGTERM: how long the worker may take to finish its item (counted from the signal, beside the drain).
WORKER_STOP_SECONDS = 30.0
#: SIGTERM: the most serve takes to exit -- the worker's time, 5 s to reap it if killed, and 5 s each for
#: the delivery and integrity threads. systemd/twentyday.service's TimeoutStopSec must stay above it.
STOP_SECONDS = WORKER_STOP_SECONDS + 15.0
#: A pipeline process that died is started again no sooner than this after its last start.
RESTART_AFTER_SECONDS = 2.0


class PipelineProcess:
    """The worker in a process of its own, restarted if it dies.

    Woken through a pipe (:class:`PipeWake`) and stopped with SIGTERM: nothing the daemon
    does to reach it can block on a lock the worker might have died holding.
    """

    def __init__(self, config: Config, beat_seconds: float | None = None) -> None:
        self._context = multiprocessing.get_context("spawn")
        self.wake = PipeWake.create()
        # Its proof of progress for systemd's watchdog (service.py), when serve runs under systemd.
        self.heartbeat = HeartbeatPipe() if beat_seconds is not None else None
        self._beat_seconds = beat_seconds or 5.0
        self._config = config
        self._process: BaseProcess | None = None
        self._stopping = False
        self._restarting = False
        self._stop_deadline = 0.0
        self._started = 0.0

    def start(self) -> None:
        # A Connection is how multiprocessing hands a descriptor to a spawned child; it wraps a
        # duplicate, so closing it here (once the child has its own) leaves our reader open.
        channel = Connection(os.dup(self.wake.reader), writable=False)
        beats = self.heartbeat.for_child() if self.heartbeat is not None else None
        self._process = self._context.Process(
            target=worker_process, name="twentyday-pipeline",
            args=(self._config, channel, self._config.log_level, os.getpid(), beats, self._beat_seconds))
        self._process.start()
        self._started = time.monotonic()
        channel.close()
        if beats is not None:
            beats.close()

    def watch(self) -> None:
        if self._process is not None and not self._process.is_alive() and not self._stopping:
            # One that could not even open the archive (its database down, say) is not started again at
            # once: every round would spawn a process and log its error.
            if not self._restarting and time.monotonic() - self._started < RESTART_AFTER_SECONDS:
                return
            if self._restarting:
                log.info("pipeline process restarted with the reloaded configuration")
            else:
                log.error("pipeline process exited (code %s); restarting it", self._process.exitcode)
            self._restarting = False
            self.start()

    def reload(self, config: Config) -> None:
        """Run the worker with ``config`` from its next item: asked to stop after the item under way
        (SIGTERM), it is started again by :meth:`watch` once it has, without blocking the caller."""
        self._config = config
        if self._process is not None and self._process.is_alive():
            self._restarting = True
            self._process.terminate()
            self.wake.set()

    def ask_to_stop(self, timeout: float) -> None:
        """The start of a stop: the worker begins finishing its item now, while the sources drain;
        :meth:`stop` waits for it until ``timeout`` seconds from now."""
        self._stopping = True
        self._stop_deadline = time.monotonic() + timeout
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self.wake.set()

    def stop(self, timeout: float = WORKER_STOP_SECONDS) -> None:
        """Ask it to finish the item under way (SIGTERM), then insist (SIGKILL)."""
        if not self._stopping:
            self.ask_to_stop(timeout)
        if self._process is not None and self._process.is_alive():
            self._process.join(max(0.0, self._stop_deadline - time.monotonic()))
            if self._process.is_alive():
                log.error("pipeline process did not finish its item in %.0f s; killing it (the item stays "
                          "in the spool for the next start)", timeout)
                self._process.kill()
                self._process.join(5)
        self.wake.close()
        if self.heartbeat is not None:
            self.heartbeat.close()


def publish_head(archive: Archive, head: SignedHead | None, published: int) -> int:
    """Beside the journal's copy: the signed head in the bucket, locked (``[store] blobs``), once per head.
    The seq published now; a failure is logged and tried again at the next round."""
    if archive.objects is None or head is None or head.seq == published:
        return published
    try:
        archive.objects.publish_head(head.seq, head.text())
    except TwentydayError as error:
        log.error("%s", error)
        return published
    return head.seq


async def run(config: Config, stop: asyncio.Event, *, head_log_seconds: float = HEAD_LOG_SECONDS,
              settle_seconds: float = 2.0, deliver_seconds: float = POLL_SECONDS,
              reload: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set; each time ``reload`` is set, reload the config (SIGHUP)."""
    recipients = tuple(keys.load_recipient(path) for path in config.recipients)
    archive = Archive(config, recipients=recipients)
    own_key = ledger_key_text(archive.secrets.verify_key)
    if config.ledger_key and config.ledger_key != own_key:
        archive.close()
        raise IntegrityError(f"{config.data_dir}/secrets: the ledger signing key ({own_key}) is not the one "
                             f"pinned in keys.ledger_key; refusing to sign with it")
    if config.index is not None:
        # Several nodes may serve this archive, each with a copy of its secrets: this one's must be its own.
        try:
            check_node(archive.conn, archive.secrets, f"{config.data_dir}/secrets")
        except BaseException:
            archive.close()
            raise
    if not config.ledger_key:
        log.warning("keys.ledger_key is not set: nothing outside the archive pins its ledger key, and verify "
                    "refuses to run; run 'twentyday keys pin-ledger'")
    # Alert delivery: a thread with its own connection, so a slow sink never holds up intake.
    # Its sinks are built here, so an unreadable relay password or webhook secret stops serve at start.
    delivery_archive = Archive(config, recipients=recipients)
    deliverer = Deliverer(delivery_archive)
    delivery_stop = threading.Event()
    delivery = threading.Thread(target=deliverer.run, args=(delivery_stop, deliver_seconds),
                                name="twentyday-delivery", daemon=True)
    # serve's own verify (store/integrity.py): a thread of its own, reading the index read-only each run
    # and writing through its own connection only to raise integrity_failure. verify needs the pinned key.
    integrity_stop = threading.Event()
    integrity: threading.Thread | None = None
    integrity_archive: Archive | None = None
    if config.verify_every_hours > 0 and config.ledger_key:
        integrity_archive = Archive(config, recipients=recipients)
        check = IntegrityCheck(config, integrity_archive, keys.signers(recipients))
        interval = config.verify_every_hours * 3600.0
        integrity = threading.Thread(target=check.run, args=(integrity_stop, interval,
                                                             min(FIRST_DELAY_SECONDS, interval)),
                                     name="twentyday-integrity", daemon=True)
    elif config.verify_every_hours > 0:
        log.warning("serve's integrity check does not run without keys.ledger_key")
    spool = Spool.open(config)
    recovered = spool.recover()
    systemd = Systemd.from_environment()
    pipeline = PipelineProcess(config, beat_seconds=systemd.beat_seconds)
    reporter = ServiceReporter(systemd, config, archive, pipeline.heartbeat)
    reporting: asyncio.Task[None] | None = None
    watcher = InboxWatcher(config.folder_path, spool, pipeline.wake.set, settle_seconds=settle_seconds)
    smtp: SmtpIntake | None = None
    serving = False  # a start-up error is one line (the CLI's), not followed by "stopped"
    try:
        if config.smtp.enabled:  # first: a port in use stops serve before anything else has started
            smtp = await open_smtp(config, spool, pipeline.wake.set)
        log.info("twentyday serving %s; sealing to %s", config.data_dir,
                 ", ".join(r.fingerprint for r in recipients))
        serving = True
        if recovered:
            log.warning("recovered %d item(s) moved into the spool before a crash", recovered)
        pipeline.start()
        delivery.start()
        if integrity is not None:
            integrity.start()
        watcher.start()
        log.info("watching %s", config.folder_path)
        reporting = asyncio.create_task(reporter.run())  # READY=1 once the pipeline beats; then the watchdog
        next_head = 0.0
        published = -1
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if loop.time() >= next_head:
                try:
                    head = signed_head(archive.conn)
                except db.ERRORS as error:  # an index in PostgreSQL out of reach: intake goes on, spooled
                    log.error("cannot read the ledger head to log it: %s", type(error).__name__)
                else:
                    log.info("ledger head %s", head.text() if head is not None else "(none yet)")
                    # A PUT: off the event loop, so SMTP does not wait on the bucket.
                    published = await asyncio.to_thread(publish_head, archive, head, published)
                next_head = loop.time() + head_log_seconds
            if reload is not None and reload.is_set():
                reload.clear()
                config = reload_config(config, pipeline, smtp, deliverer)
            pipeline.watch()
            if spool.retire_idle():  # its items may all be done: the worker destroys it on its next round
                pipeline.wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=ROLL_SECONDS)
    finally:
        reporter.stopping()
        await cancel_reporting(reporting)
        pipeline.ask_to_stop(WORKER_STOP_SECONDS)  # it finishes its item while the sources drain
        if smtp is not None:  # sources first: nothing new arrives while the worker finishes
            await smtp.close(DRAIN_SECONDS)
        watcher.stop()
        pipeline.stop(WORKER_STOP_SECONDS)
        delivery_stop.set()  # a send under way ends by its own timeout; its delivery is retried on restart
        if delivery.is_alive():
            delivery.join(timeout=5.0)
        if not delivery.is_alive():
            delivery_archive.close()
        integrity_stop.set()  # a run under way is read-only: left to end with the process
        if integrity is not None and integrity.is_alive():
            integrity.join(timeout=5.0)
        if integrity_archive is not None and (integrity is None or not integrity.is_alive()):
            integrity_archive.close()
        spool.close()
        archive.close()
        systemd.close()
        if serving:
            log.info("twentyday stopped")


def reload_config(running: Config, pipeline: PipelineProcess, smtp: SmtpIntake | None,
                  deliverer: Deliverer) -> Config:
    """SIGHUP: read and check the config file again and run with it; returns the config now in force.

    A config that does not load (or whose SMTP auth file does not) is refused with one error line and
    the running one stays. Settings bound at start (:data:`config.RESTART_ONLY`: the data directory,
    ports, keys, ...) are named in a warning and kept. No connection is dropped: the SMTP handler judges
    each session's next command by the new config; the pipeline process is restarted between items.
    """
    try:
        loaded = config_module.load(running.path)
        applied, kept = config_module.reloaded(running, loaded)
        if smtp is not None:
            smtp.reload(applied)  # reads the auth file first: changes nothing if it cannot
    except ConfigError as error:
        log.error("reload refused, the running configuration stays: %s", error)
        return running
    if kept:
        log.warning("reload: %s cannot change while serve runs; kept as they were (restart serve to apply)",
                    "; ".join(kept))
    deliverer.config = applied  # who hears of an alert (custodians' addresses): read per pass
    pipeline.reload(applied)
    before, after = {c.id for c in running.custodians}, {c.id for c in applied.custodians}
    log.info("configuration reloaded from %s: %d custodian(s)%s%s", running.path, len(after),
             f", added {', '.join(sorted(after - before))}" if after - before else "",
             f", removed {', '.join(sorted(before - after))}" if before - after else "")
    return applied


def serve(config: Config) -> None:
    # The daemon's secrets and each capture's data key and plaintext are in this process:
    # no core file, no /proc/<pid>/mem for the same user (hardening; the unit sets LimitCORE=0 too).
    forbid_core_dumps()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        reload = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        await run(config, stop, reload=reload)

    if config.index is not None and not config.data_dir.is_dir():  # no index there to name as missing
        raise NotFoundError(f"{config.data_dir}: no such folder: a node of an archive in PostgreSQL keeps its spool "
                            "and a copy of the archive's secrets there (README, 'Beyond one machine')")
    # One serve per data_dir (per node); the held lock is also how 'twentyday status' tells that one runs.
    with hold_serve_lock(config.data_dir):
        asyncio.run(main())
