"""``twentyday serve``: the composition root.

It checks that the config names public keys only, opens the archive, starts
the sources that exist, and runs until SIGTERM or SIGINT. Every
``HEAD_LOG_SECONDS`` it logs the ledger's signed head, so a copy of the chain
head lives outside the archive (journald) and a rewrite of history shows.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from . import keys
from .config import Config
from .store import Archive

log = logging.getLogger(__name__)
HEAD_LOG_SECONDS = 3600.0


def ledger_head(archive: Archive) -> tuple[int, str]:
    row = archive.conn.execute("SELECT seq, head FROM checkpoint ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, "")


async def run(config: Config, stop: asyncio.Event, *, head_log_seconds: float = HEAD_LOG_SECONDS) -> None:
    recipients = tuple(keys.load_recipient(path) for path in config.recipients)
    archive = Archive(config, recipients=recipients)
    try:
        log.info("twentyday serving %s; sealing to %s", config.data_dir,
                 ", ".join(r.fingerprint for r in recipients))
        log.info("sources: none enabled in this build (SMTP and folder intake land separately)")
        while not stop.is_set():
            seq, head = ledger_head(archive)
            log.info("ledger head %d %s", seq, head)
            try:
                await asyncio.wait_for(stop.wait(), timeout=head_log_seconds)
            except TimeoutError:
                continue
    finally:
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
