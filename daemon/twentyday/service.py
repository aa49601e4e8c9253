"""``serve`` under systemd (``Type=notify``): readiness, status, stopping and the watchdog.

The protocol is a few lines, written here rather than taken from a library: one datagram
of ``KEY=value`` lines to the socket named in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for
an abstract socket), and the watchdog period in ``$WATCHDOG_USEC`` (for us only when
``$WATCHDOG_PID`` is unset or our pid). PyPI's ``sdnotify`` (last release 2017) reads
neither watchdog variable, and ``systemd-python`` needs libsystemd's headers to build.

What is sent, and when (:class:`ServiceReporter`, a task on the daemon's event loop):

- ``READY=1`` once intake is durable: the spool recovered, the pipeline process beating,
  the watched folder watched and the SMTP port listening (``run`` starts the reporter
  after all of them);
- ``STATUS=`` every :data:`STATUS_SECONDS`: items in the spool, open alerts, the last
  capture, and the pipeline's progress when it has stalled (``systemctl status`` shows it);
- ``WATCHDOG=1`` every half period, and only when the pipeline process beat since the
  last one (pipeline/heartbeat.py): a hung event loop sends nothing, a wedged worker
  makes the loop withhold the ping, and either way systemd restarts the service;
- ``STOPPING=1`` when ``serve`` begins to stop.

Without ``$NOTIFY_SOCKET`` (a terminal, a test) nothing is sent and no heartbeat is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from twentyday.config import Config
from twentyday.pipeline.heartbeat import HeartbeatPipe
from twentyday.spool import backlog
from twentyday.store import db
from twentyday.store.archive import Archive

log = logging.getLogger(__name__)

#: STATUS= is refreshed this often (seconds): its queries are cheap, but not free.
STATUS_SECONDS = 5.0
#: Without a watchdog, the pipeline beats this often (it is read for STATUS= only).
BEAT_SECONDS_WITHOUT_WATCHDOG = 5.0


class Systemd:
    """The notification socket, or nothing. Sending never blocks and never raises."""

    def __init__(self, address: str | None, watchdog_seconds: float | None) -> None:
        self.address = address
        self.watchdog_seconds = watchdog_seconds if address is not None else None
        self._socket: socket.socket | None = None
        self._failed = False
        if address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # A slow systemd must never stall the event loop: a datagram that does not fit is dropped.
            self._socket.setblocking(False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, pid: int | None = None) -> Systemd:
        """From ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID``, as sd_notify(3) and
        sd_watchdog_enabled(3) read them. A malformed value is ignored (logged): no watchdog."""
        raw = environ.get("NOTIFY_SOCKET", "")
        if not raw:
            return cls(None, None)
        if raw.startswith("@"):
            address = "\0" + raw[1:]  # abstract namespace
        elif raw.startswith("/"):
            address = raw
        else:  # vsock: and the like: not for a local service
            log.warning("NOTIFY_SOCKET is not a unix socket; not notifying systemd")
            return cls(None, None)
        watchdog: float | None = None
        usec, for_pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        if usec:
            try:
                ours = not for_pid or int(for_pid) == (pid if pid is not None else os.getpid())
                value = int(usec)
            except ValueError:
                log.warning("WATCHDOG_USEC or WATCHDOG_PID is not a number; no watchdog pings")
            else:
                if ours and value > 0:
                    watchdog = value / 1_000_000
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    @property
    def beat_seconds(self) -> float | None:
        """How often the pipeline must beat: four beats a watchdog period, two per ping."""
        if not self.enabled:
            return None
        return self.watchdog_seconds / 4 if self.watchdog_seconds else BEAT_SECONDS_WITHOUT_WATCHDOG

    def send(self, *lines: str) -> bool:
        if self._socket is None or self.address is None:
            return False
        try:
            self._socket.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
        except OSError as error:  # gone, full, refused: systemd then sees what it sees (no ping)
            if not self._failed:
                log.warning("cannot notify systemd: %s", error.strerror or error)
                self._failed = True
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


@dataclass(frozen=True)
class Status:
    spooled: int
    open_alerts: int
    last_capture: str | None
    #: Seconds since the pipeline last beat, when that is longer than it should be; else None.
    stalled_seconds: float | None = None

    def line(self) -> str:
        items = str(self.spooled) if self.spooled >= 0 else "?"
        alerts = str(self.open_alerts) if self.open_alerts >= 0 else "?"
        text = (f"{items} item(s) in the spool, {alerts} open alert(s), "
                f"last capture {self.last_capture or 'none yet'}")
        if self.stalled_seconds is not None:
            text += f"; pipeline: no progress for {self.stalled_seconds:.0f} s"
        return text


def open_alerts(archive: Archive) -> int:
    """The partial index of open alerts answers this without reading the table."""
    return int(archive.conn.execute("SELECT count(*) FROM alert WHERE resolved_at IS NULL").fetchone()[0])


def last_capture(archive: Archive) -> str | None:
    """When the newest capture arrived: the last row written (rowid), not a scan for the maximum."""
    row = archive.conn.execute("SELECT received_at FROM capture ORDER BY rowid DESC LIMIT 1").fetchone()
    return str(row[0]) if row is not None else None


class ServiceReporter:
    """The daemon's side of ``Type=notify``: a task on its event loop (see the module's text)."""

    def __init__(self, systemd: Systemd, config: Config, archive: Archive, heartbeat: HeartbeatPipe | None,
                 *, clock: Callable[[], float] = time.monotonic, status_seconds: float = STATUS_SECONDS) -> None:
        self._systemd = systemd
        self._config = config
        self._archive = archive
        self._heartbeat = heartbeat
        self._clock = clock
        self._status_seconds = status_seconds
        self._last_beat = clock()
        self._withholding = False

    async def run(self) -> None:
        """READY=1 once the pipeline has beaten, then pings and status until cancelled."""
        if not self._systemd.enabled:
            return
        await self._ready()
        period = self._systemd.watchdog_seconds
        tick = period / 2 if period else self._status_seconds
        next_status = self._clock() + self._status_seconds
        while True:
            await asyncio.sleep(tick)
            progressed = self._progressed()
            if period:
                self._ping(progressed, period)
            if self._clock() >= next_status:
                self._systemd.send(f"STATUS={(await self._status()).line()}")
                next_status = self._clock() + self._status_seconds

    async def _ready(self) -> None:
        """Wait for the pipeline's first beat (its process is up, its archive and spool open), then READY."""
        if self._heartbeat is not None:
            warn_at = self._clock() + 30.0
            while not self._heartbeat.arrived():  # systemd's TimeoutStartSec ends a start that never comes
                await asyncio.sleep(0.05)
                if self._clock() >= warn_at:
                    log.warning("the pipeline process has not started in 30 s; not ready yet")
                    warn_at = float("inf")
            self._last_beat = self._clock()
        status = await self._status()
        self._systemd.send("READY=1", f"STATUS={status.line()}", f"MAINPID={os.getpid()}")
        log.info("told systemd we are ready (%s)", status.line())

    def _progressed(self) -> bool:
        if self._heartbeat is None:
            return True
        if self._heartbeat.arrived():
            self._last_beat = self._clock()
            return True
        return False

    def _ping(self, progressed: bool, period: float) -> None:
        if progressed:
            if self._withholding:
                log.warning("the pipeline is making progress again; watchdog pings resume")
                self._withholding = False
            self._systemd.send("WATCHDOG=1")
        elif not self._withholding:
            self._withholding = True
            log.error("the pipeline made no progress for %.1f s; withholding the watchdog ping (systemd "
                      "restarts the service %.0f s after the last one)", self._clock() - self._last_beat, period)
            self._systemd.send(f"STATUS=pipeline: no progress for {self._clock() - self._last_beat:.0f} s")

    async def _status(self) -> Status:
        spooled = -1
        try:
            # The spool's frames, counted as 'twentyday status' counts them (no key, nothing opened for
            # writing), in a thread: a long backlog is a long read, and the loop serves SMTP and the watchdog.
            spooled = (await asyncio.to_thread(backlog, self._config.data_dir / "spool")).items
        except Exception as error:  # the count is a report, never a reason to stop
            log.warning("could not count the spool for systemd's status: %s", type(error).__name__)
        alerts, last = -1, None
        try:
            alerts, last = open_alerts(self._archive), last_capture(self._archive)
        except db.ERRORS as error:
            log.warning("could not read the index for systemd's status: %s", error)
        stalled = self._clock() - self._last_beat
        limit = (self._systemd.watchdog_seconds or 0.0) / 2
        return Status(spooled, alerts, last,
                      stalled if self._heartbeat is not None and limit and stalled > limit else None)

    def stopping(self) -> None:
        self._systemd.send("STOPPING=1", "STATUS=stopping: finishing the item under way")


async def cancel(task: asyncio.Task[None] | None) -> None:
    """End the reporter task (its spool reader closes with it)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
