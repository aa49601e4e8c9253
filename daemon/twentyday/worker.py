"""The pipeline worker: takes items out of the spool, through the pipeline, into the store.

An item leaves the spool only after the store committed it (or sealed it in
quarantine). If the archive itself fails (disk full, index locked), the item
stays and the worker tries again later; a crash at any point replays the item,
and ingest being idempotent, the replay adds nothing twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime
from typing import Any

from . import pipeline
from .canonical import parse_iso
from .errors import IntakeError, TwentydayError
from .spool import Spool, SpoolItem
from .store import Archive

log = logging.getLogger(__name__)


def spool_meta(name: str, channel: str, received_at: datetime, custodian_id: str | None,
               envelope: dict[str, str] | None = None, refused: str = "") -> dict[str, Any]:
    """What a source records with an item (names and times only; never content)."""
    return {"name": name, "channel": channel, "received_at": received_at.isoformat(), "custodian": custodian_id,
            "envelope": envelope, "refused": refused}


class Worker:
    def __init__(self, archive: Archive, spool: Spool) -> None:
        self.archive = archive
        self.spool = spool
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0

    def notify(self) -> None:
        """A source put something in the spool."""
        self._wake.set()

    def run_once(self) -> list[pipeline.Outcome]:
        """Process every pending item; stop at the first failure of the archive itself."""
        outcomes = []
        for spooled in self.spool.pending():
            if self._stop.is_set():
                break
            try:
                outcome = self._process(spooled)
            except (IntakeError, sqlite3.OperationalError, OSError) as error:
                log.error("archive unavailable, item %s stays in the spool: %s", spooled.id, error)
                break
            self.spool.mark_done(spooled)
            self.processed += 1
            log.info("%s %s (%s): %s", outcome.state, outcome.capture_id, spooled.meta.get("channel"), outcome.detail)
            outcomes.append(outcome)
        self.spool.collect()
        return outcomes

    def _process(self, spooled: SpoolItem) -> pipeline.Outcome:
        meta = spooled.meta
        item = pipeline.Item(
            name=str(meta["name"]),
            channel=str(meta["channel"]),
            received_at=parse_iso(str(meta["received_at"])),
            path=spooled.file,
            data=None if spooled.file is not None else self.spool.read(spooled),
            custodian_id=meta.get("custodian"),
            envelope=meta.get("envelope"),
        )
        if meta.get("refused"):
            return pipeline.refuse(self.archive, item, str(meta["refused"]))
        return pipeline.process(self.archive, item)

    # -- as a thread of the daemon

    def start(self, poll_seconds: float = 5.0) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except TwentydayError as error:
                    log.error("pipeline: %s", error)
                self._wake.wait(poll_seconds)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="twentyday-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

