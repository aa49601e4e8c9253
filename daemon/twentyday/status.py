"""``twentyday status``: what the daemon is doing now, as an onlooker can tell.

Everything here is read, never written, and needs neither the officer's key nor the daemon's
secrets, so an administrator's health check runs it as a user who may only read the archive
(SQLite itself may create the index's empty ``-wal`` and ``-shm`` beside it when no daemon has
them open, as it does for ``verify``):

- **the daemon**: whether a ``serve`` holds :data:`SERVE_LOCK` (``<data_dir>/serve.pid``; it takes
  an exclusive ``flock`` on it for its whole life, :func:`hold_serve_lock`, and writes its pid into
  it), and its pid;
- **the spool**: how many items wait for the store, and since when (:func:`spool.backlog`: frame
  ids and ``done.log``, no key);
- **the index** (opened read-only, as ``verify`` opens it): each custodian's newest capture (time
  and channel), the open alerts counted by kind, and the ledger's head: its last entry and its
  last signed checkpoint;
- **the last verify**: ``serve``'s own integrity check keeps its last run in
  ``<data_dir>/integrity.json`` (:mod:`twentyday.store.integrity`). ``twentyday verify`` itself is
  read-only by design and keeps nothing.

Facts only: status says what it read and decides nothing about health; ``twentyday status``
exits 0 whenever it could read them (see the README's health checks).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from twentyday.canonical import iso, parse_iso
from twentyday.config import Config
from twentyday.errors import IntakeError, NotFoundError
from twentyday.spool import Backlog, backlog
from twentyday.store import db
from twentyday.store.integrity import IntegrityRun, last_run
from twentyday.store.ledger import signed_head
from twentyday.store.verify import open_index_read_only

#: The file ``serve`` holds locked while it runs, with its pid in it.
SERVE_LOCK = "serve.pid"
#: How status names the captures no configured custodian took (kept sealed, alerted).
NO_CUSTODIAN = ""


# -- the daemon's lock ---------------------------------------------------------------------

@contextlib.contextmanager
def hold_serve_lock(data_dir: Path) -> Iterator[None]:
    """Held by ``serve`` for its whole life: an exclusive ``flock`` on :data:`SERVE_LOCK`, with the
    pid written in it. A second ``serve`` on the same archive is refused (``IntakeError``): two
    would take the same spool and race each other's pipeline. The file is left in place when
    the lock is let go (removing it would race a ``serve`` starting meanwhile); the lock, not the
    file, says whether one runs."""
    path = data_dir / SERVE_LOCK
    # 0644: a pid is no secret, and a status reader need not be the daemon's user.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:  # no data directory: the same line the archive gives for a missing index
        raise NotFoundError(f"{data_dir / 'index.db'}: no archive here (run 'twentyday init' first)") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            raise IntakeError(f"{data_dir}: another twentyday serve is running on this archive"
                              + (f" (pid {holder})" if holder else "") + "; stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # lets go of the lock


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class DaemonState:
    """``running``: a ``serve`` holds the lock (None: the lock file could not be read by this user)."""

    running: bool | None
    pid: int | None


def daemon_state(data_dir: Path) -> DaemonState:
    """Whether a ``serve`` holds :data:`SERVE_LOCK`: a shared lock is tried on a read-only
    descriptor (taken and let go at once when free; nothing is written)."""
    try:
        fd = os.open(data_dir / SERVE_LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return DaemonState(False, None)
    except OSError:
        return DaemonState(None, None)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return DaemonState(True, _read_pid(fd))
        return DaemonState(False, None)
    finally:
        os.close(fd)


# -- the summary ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CustodianCapture:
    """A custodian's newest capture (``custodian`` is :data:`NO_CUSTODIAN` for unrouted items)."""

    custodian: str
    last_capture_at: datetime | None
    channel: str | None


@dataclass(frozen=True)
class AlertCount:
    kind: str
    open: int
    escalated: int


@dataclass(frozen=True)
class LedgerState:
    """The last entry (``seq``, ``hash``) and the last signed checkpoint (None before the first)."""

    seq: int
    hash: str
    signed_seq: int | None
    signed_hash: str | None
    signed_at: str | None


@dataclass(frozen=True)
class Status:
    as_of: datetime
    data_dir: Path
    daemon: DaemonState
    spool: Backlog
    custodians: tuple[CustodianCapture, ...]
    alerts: tuple[AlertCount, ...]
    ledger: LedgerState
    last_verify: IntegrityRun | None
    #: ``alerts.verify_every_hours`` (0: serve runs no integrity check), and whether the ledger key
    #: it needs is pinned: together they say whether a missing last verify is expected.
    verify_every_hours: float
    ledger_key_pinned: bool
    #: Where the sealed blobs are: "index" (the embedded store) or "s3://BUCKET[ at ENDPOINT]" (``[store] blobs``).
    blobs: str = "index"

    @property
    def spool_oldest_age_seconds(self) -> float | None:
        oldest = self.spool.oldest_at
        return None if oldest is None else max(0.0, (self.as_of - oldest).total_seconds())

    def as_json(self) -> dict[str, Any]:
        verify = self.last_verify
        return {
            "as_of": iso(self.as_of),
            "data_dir": str(self.data_dir),
            "daemon": {"running": self.daemon.running, "pid": self.daemon.pid},
            "spool": {"items": self.spool.items,
                      "oldest_at": iso(self.spool.oldest_at) if self.spool.oldest_at else None,
                      "oldest_age_seconds": _rounded(self.spool_oldest_age_seconds)},
            "custodians": [{"custodian": c.custodian,
                            "last_capture_at": iso(c.last_capture_at) if c.last_capture_at else None,
                            "channel": c.channel} for c in self.custodians],
            "open_alerts": {a.kind: {"open": a.open, "escalated": a.escalated} for a in self.alerts},
            "ledger": {"seq": self.ledger.seq, "hash": self.ledger.hash, "signed_seq": self.ledger.signed_seq,
                       "signed_hash": self.ledger.signed_hash, "signed_at": self.ledger.signed_at},
            "last_verify": verify.as_json() if verify is not None else None,
            "verify_every_hours": self.verify_every_hours,
            "ledger_key_pinned": self.ledger_key_pinned,
            "blobs": self.blobs,
        }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def read_status(config: Config, now: datetime) -> Status:
    """The status of ``config``'s archive at ``now`` (the clock is the caller's). Raises
    NotFoundError when there is no archive."""
    data_dir = config.data_dir
    daemon = daemon_state(data_dir)
    waiting = backlog(data_dir / "spool")
    conn = open_index_read_only(config)
    try:
        db.begin_read(conn)  # one snapshot for every figure below
        custodians = _custodian_captures(conn, [c.id for c in config.custodians])
        alerts = _open_alerts(conn)
        ledger = _ledger(conn)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    blobs = config.blobs
    where = "index" if blobs is None else f"s3://{blobs.bucket}" + (f" at {blobs.endpoint}" if blobs.endpoint else "")
    return Status(now, data_dir, daemon, waiting, custodians, alerts, ledger, last_run(data_dir),
                  config.verify_every_hours, bool(config.ledger_key), where)


def _custodian_captures(conn: db.Connection, configured: list[str]) -> tuple[CustodianCapture, ...]:
    """Every configured custodian (with or without a capture), then any other the index names, then the
    unrouted; each one's newest capture is one lookup on ``capture_custodian`` (custodian, received_at)."""
    known = [str(row[0]) for row in conn.execute("SELECT id FROM custodian ORDER BY id")]
    ids = list(dict.fromkeys([*configured, *known]))
    found = []
    for custodian in [*ids, None]:
        # '= ?' or 'IS NULL', not 'IS ?' (SQLite's own) nor 'IS NOT DISTINCT FROM ?' (PostgreSQL reads
        # no index for it): either way, one lookup on capture_custodian.
        row = conn.execute("SELECT received_at, channel FROM capture WHERE "
                           + ("custodian = ?" if custodian is not None else "custodian IS NULL")
                           + " ORDER BY received_at DESC LIMIT 1", (custodian,) if custodian is not None else ()
                           ).fetchone()
        if custodian is None and row is None:
            continue  # nothing unrouted: no line for it
        found.append(CustodianCapture(custodian if custodian is not None else NO_CUSTODIAN,
                                      parse_iso(str(row[0])) if row else None, str(row[1]) if row else None))
    return tuple(found)


def _open_alerts(conn: db.Connection) -> tuple[AlertCount, ...]:
    rows = conn.execute("SELECT kind, count(*), count(escalated_at) FROM alert WHERE resolved_at IS NULL "
                        "GROUP BY kind ORDER BY kind")
    return tuple(AlertCount(str(kind), int(count), int(escalated)) for kind, count, escalated in rows)


def _ledger(conn: db.Connection) -> LedgerState:
    last = conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    signed = signed_head(conn)
    return LedgerState(int(last[0]) if last else 0, str(last[1]) if last else "",
                       signed.seq if signed else None, signed.hash if signed else None,
                       signed.at if signed else None)
