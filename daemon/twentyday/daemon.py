"""``twentyday serve``: the composition root.

It checks that the config names public keys only, opens the archive, and
starts what exists: the spool and its pipeline worker, the watched export
folder, and (when configured) the SMTP forwarding address. It runs until
SIGTERM or SIGINT, then stops the sources first and lets the worker finish
the item it holds. Every ``HEAD_LOG_SECONDS`` it logs the ledger's signed
head, so a copy of the chain head lives outside the archive (journald) and a
rewrite of history shows.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from . import keys, secrets
from .config import Config
from .smtp import start_server
from .spool import Spool
from .store import Archive
from .watcher import InboxWatcher
from .worker import Worker

log = logging.getLogger(__name__)
HEAD_LOG_SECONDS = 3600.0


def ledger_head(archive: Archive) -> tuple[int, str]:
    row = archive.conn.execute("SELECT seq, head FROM checkpoint ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, "")


def open_spool(config: Config) -> Spool:
    return Spool(spool_dir(config), secrets.load(config.data_dir).derived("spool"))


def spool_dir(config: Config) -> Path:
    return config.data_dir / "spool"


async def run(config: Config, stop: asyncio.Event, *, head_log_seconds: float = HEAD_LOG_SECONDS,
              settle_seconds: float = 2.0) -> None:
    recipients = tuple(keys.load_recipient(path) for path in config.recipients)
    archive = Archive(config, recipients=recipients)
    worker_archive = Archive(config, recipients=recipients)
    spool = open_spool(config)
    recovered = spool.recover()
    worker = Worker(worker_archive, spool)
    watcher = InboxWatcher(config.folder_path, spool, worker.notify, settle_seconds=settle_seconds)
    server: asyncio.Server | None = None
    try:
        log.info("twentyday serving %s; sealing to %s", config.data_dir,
                 ", ".join(r.fingerprint for r in recipients))
        if recovered:
            log.warning("recovered %d item(s) moved into the spool before a crash", recovered)
        worker.start()
        watcher.start()
        log.info("watching %s", config.folder_path)
        if config.smtp.enabled:
            server = await start_server(config, spool, worker.notify)
        while not stop.is_set():
            seq, head = ledger_head(archive)
            log.info("ledger head %d %s", seq, head)
            try:
                await asyncio.wait_for(stop.wait(), timeout=head_log_seconds)
            except TimeoutError:
                continue
    finally:
        if server is not None:  # sources first: nothing new arrives while the worker finishes
            server.close()
            await server.wait_closed()
        watcher.stop()
        worker.stop()
        spool.close()
        worker_archive.close()
        archive.close()
        log.info("twentyday stopped")


def serve(config: Config) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(config, stop)

    asyncio.run(main())
