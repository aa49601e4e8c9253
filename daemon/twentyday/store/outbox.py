"""The alert outbox: what must be told to whom, kept so that no alert is lost or sent twice.

Two tables (schema migration 5):

- ``alert_event``: one row per change of an alert that people must hear of (``opened``,
  ``escalated``, ``resolved``, ``reminder``), written by :func:`note_alert_event` in the
  *same transaction* as the change itself (``store/alerts.py``), so a crash keeps both or
  neither. The store does not know the sinks; :mod:`twentyday.notify` reads the waiting
  events and fans each out into deliveries.
- ``delivery``: one row per (event, sink, recipient), or per officer's daily digest, with
  its state (``pending | delivered | failed | disabled``), attempts and last error code.
  A sender delivers first and marks second, so a crash in between sends again on restart
  (at least once); the row's ``message_id`` is the same on every attempt (the webhook's
  ``webhook-id``, the mail's Message-ID), so the receiver can tell a repeat.

Both are evidence, like alerts: each change of a row is a ledger entry (kinds
``alert_event`` and ``delivery``, payload the row's ledgered columns) and ``verify``
compares the index with them. ``next_attempt_at`` and ``fanned_out_at`` are scheduling,
not evidence, and are not ledgered: a sender claims a due delivery by moving its
``next_attempt_at`` without a ledger entry.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import parse_iso, utc_key
from twentyday.store import db
from twentyday.store.ledger import Ledger

#: What people hear of an alert (``digest`` is a delivery of its own, about no one alert).
ALERT_EVENTS = ("opened", "escalated", "resolved", "reminder")
DELIVERY_STATES = ("pending", "delivered", "failed", "disabled")
#: An alert event's ledgered columns, in the order its payload lists them.
ALERT_EVENT_COLUMNS = ("id", "alert_id", "event", "at")
#: A delivery's ledgered columns (all but ``next_attempt_at``).
DELIVERY_COLUMNS = ("id", "key", "alert_event", "alert_id", "event", "sink", "recipient", "message_id",
                    "created_at", "state", "attempts", "last_attempt_at", "last_error", "settled_at")


def alert_event_payload(row: dict[str, Any]) -> dict[str, Any]:
    return {"alert_event": {c: row[c] for c in ALERT_EVENT_COLUMNS}}


def delivery_payload(row: dict[str, Any]) -> dict[str, Any]:
    return {"delivery": {c: row[c] for c in DELIVERY_COLUMNS}}


def note_alert_event(conn: db.Connection, ledger: Ledger, alert_id: int, event: str, at: str) -> int:
    """Queue ``event`` of alert ``alert_id`` for delivery, in the caller's transaction (ledgered)."""
    if event not in ALERT_EVENTS:
        raise ValueError(f"unknown alert event {event!r}")
    row = conn.execute("INSERT INTO alert_event (alert_id, event, at) VALUES (?,?,?) RETURNING id",
                       (alert_id, event, at)).fetchone()
    event_id = int(row[0])
    ledger.append(at, "alert_event", str(event_id),
                  alert_event_payload({"id": event_id, "alert_id": alert_id, "event": event, "at": at}))
    return event_id


@contextlib.contextmanager
def change(conn: db.Connection, signing_key: ed25519.Ed25519PrivateKey, at: str) -> Iterator[Ledger]:
    """One short transaction on the outbox: its ledger entries, then a signed checkpoint.

    Never held across a network call: senders claim, send, then come back here to settle.
    """
    db.begin_write(conn)
    try:
        ledger = Ledger(conn)
        ledger.begin()
        start = ledger.head.seq
        yield ledger
        ledger.flush()
        # Read the head again: a function called inside (raise_alert) may append through a Ledger of its own.
        final = Ledger(conn)
        final.begin()
        if final.head.seq != start:
            final.checkpoint(at, signing_key)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _dicts(cursor: db.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor]


def waiting_events(conn: db.Connection, limit: int = 500) -> list[dict[str, Any]]:
    """Alert events not fanned out yet, oldest first."""
    return _dicts(conn.execute(
        "SELECT id, alert_id, event, at FROM alert_event WHERE fanned_out_at IS NULL ORDER BY id LIMIT ?",
        (limit,)))


def mark_fanned_out(conn: db.Connection, event_id: int, at: str) -> None:
    conn.execute("UPDATE alert_event SET fanned_out_at = ? WHERE id = ?", (at, event_id))


def alert_row(conn: db.Connection, alert_id: int) -> dict[str, Any] | None:
    rows = _dicts(conn.execute("SELECT * FROM alert WHERE id = ?", (alert_id,)))
    return rows[0] if rows else None


def open_alert_rows(conn: db.Connection) -> list[dict[str, Any]]:
    return _dicts(conn.execute("SELECT * FROM alert WHERE resolved_at IS NULL ORDER BY opened_at, id"))


def was_escalated(conn: db.Connection, alert_id: int) -> bool:
    return conn.execute("SELECT 1 FROM alert_event WHERE alert_id = ? AND event = 'escalated'",
                        (alert_id,)).fetchone() is not None


def conversation_end(conn: db.Connection, custodian: str, conversation: str) -> tuple[str, str | None]:
    """The platform of a conversation and the original time (with its offset) of its newest dated record."""
    row = conn.execute(
        "SELECT platform, created_at FROM record WHERE custodian = ? AND conversation = ? "
        "ORDER BY created_utc IS NULL, created_utc DESC LIMIT 1", (custodian, conversation)).fetchone()
    return (str(row[0]), row[1]) if row else ("", None)


def insert_delivery(conn: db.Connection, ledger: Ledger, *, key: str, alert_event: int | None,
                    alert_id: int | None, event: str, sink: str, recipient: str, state: str, at: str) -> bool:
    """A new delivery (ledgered), due at once; False when one with ``key`` exists already."""
    if state not in DELIVERY_STATES:
        raise ValueError(f"unknown delivery state {state!r}")
    settled = at if state != "pending" else None
    row = conn.execute(
        "INSERT INTO delivery (key, alert_event, alert_id, event, sink, recipient, message_id, "
        "created_at, state, attempts, last_attempt_at, last_error, settled_at, next_attempt_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,0,NULL,?,?,?) ON CONFLICT (key) DO NOTHING RETURNING " + ", ".join(DELIVERY_COLUMNS),
        (key, alert_event, alert_id, event, sink, recipient, f"msg_{uuid.uuid4().hex}", at, state,
         "endpoint_disabled" if state == "disabled" else "", settled,
         utc_key(parse_iso(at)) if state == "pending" else None),
    ).fetchone()
    if row is None:
        return False
    payload = dict(zip(DELIVERY_COLUMNS, row, strict=True))
    ledger.append(at, "delivery", str(payload["id"]), delivery_payload(payload))
    return True


def claim_due(conn: db.Connection, now: datetime, lease_until: datetime, limit: int) -> list[dict[str, Any]]:
    """Pending deliveries due at ``now``, each claimed until ``lease_until`` (a second sender skips them).

    ``next_attempt_at`` is :func:`~twentyday.canonical.utc_key` (fixed width), so text order is time order.
    """
    due = _dicts(conn.execute(
        "SELECT " + ", ".join(DELIVERY_COLUMNS) + ", next_attempt_at FROM delivery "
        "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        (utc_key(now), limit)))
    claimed = []
    for row in due:
        moved = conn.execute("UPDATE delivery SET next_attempt_at = ? WHERE id = ? AND state = 'pending' "
                             "AND next_attempt_at = ?", (utc_key(lease_until), row["id"],
                                                         row["next_attempt_at"])).rowcount
        if moved:
            claimed.append(row)
    return claimed


def settle(conn: db.Connection, ledger: Ledger, delivery_id: int, *, state: str, attempts: int,
           last_error: str, at: str, next_attempt_at: datetime | None) -> dict[str, Any]:
    """Record one attempt's outcome (ledgered): delivered, failed for good, disabled, or due again."""
    if state not in DELIVERY_STATES:
        raise ValueError(f"unknown delivery state {state!r}")
    row = conn.execute(
        "UPDATE delivery SET state = ?, attempts = ?, last_attempt_at = ?, last_error = ?, settled_at = ?, "
        "next_attempt_at = ? WHERE id = ? RETURNING " + ", ".join(DELIVERY_COLUMNS),
        (state, attempts, at, last_error, at if state != "pending" else None,
         utc_key(next_attempt_at) if state == "pending" and next_attempt_at is not None else None,
         delivery_id)).fetchone()
    payload = dict(zip(DELIVERY_COLUMNS, row, strict=True))
    ledger.append(at, "delivery", str(delivery_id), delivery_payload(payload))
    return payload


def disable_pending(conn: db.Connection, ledger: Ledger, sink: str, recipient: str, at: str) -> int:
    """An endpoint said it is gone (HTTP 410): its other pending deliveries are disabled too (ledgered)."""
    ids = [r[0] for r in conn.execute("SELECT id FROM delivery WHERE sink = ? AND recipient = ? AND state = 'pending'",
                                      (sink, recipient))]
    for delivery_id in ids:
        attempts = conn.execute("SELECT attempts FROM delivery WHERE id = ?", (delivery_id,)).fetchone()[0]
        settle(conn, ledger, delivery_id, state="disabled", attempts=attempts, last_error="endpoint_disabled",
               at=at, next_attempt_at=None)
    return len(ids)


def disabled_endpoints(conn: db.Connection) -> list[tuple[str, str, str]]:
    """(sink, recipient, since) of every endpoint that answered it is gone (HTTP 410)."""
    return [(str(s), str(r), str(a)) for s, r, a in conn.execute(
        "SELECT sink, recipient, min(settled_at) FROM delivery WHERE state = 'disabled' AND last_error = 'http_410' "
        "GROUP BY sink, recipient ORDER BY 3")]


def endpoint_disabled(conn: db.Connection, sink: str, recipient: str) -> bool:
    return conn.execute("SELECT 1 FROM delivery WHERE sink = ? AND recipient = ? AND state = 'disabled' "
                        "AND last_error = 'http_410' LIMIT 1", (sink, recipient)).fetchone() is not None


def has_delivery(conn: db.Connection, key: str) -> bool:
    return conn.execute("SELECT 1 FROM delivery WHERE key = ?", (key,)).fetchone() is not None


def deliveries(conn: db.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """The outbox, newest first: what was sent where, when, after how many attempts, or why not."""
    return _dicts(conn.execute(
        "SELECT " + ", ".join(DELIVERY_COLUMNS) + ", next_attempt_at FROM delivery ORDER BY id DESC LIMIT ?",
        (limit,)))
