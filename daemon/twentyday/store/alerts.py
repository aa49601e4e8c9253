"""The alert table: one open alert per (kind, custodian, conversation); repeats raise its count.

Kinds and their severities are :mod:`twentyday.compliance.alerts`. Alert details are written by
twentyday itself from metadata (counts, capture ids, reason codes): never message content, nor a
name that came with an item (a file's, a zip member's: sealed with its capture).

An alert is evidence (a late capture, a deleted message): each change of its row is a ledger
entry (kind ``alert``, subject its id, payload the whole row), written in the caller's
transaction before its checkpoint, so ``verify`` names an alert deleted, edited or added by
hand, and the entries are its history. Opening one also queues its notice in the outbox
(:func:`twentyday.store.outbox.note_alert_event`, same transaction); whoever escalates,
resolves or reminds calls that function too, with the same ledger.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twentyday.canonical import iso
from twentyday.compliance.alerts import SEVERITY
from twentyday.store.ledger import Ledger
from twentyday.store.outbox import note_alert_event

#: An alert row's columns, in the order its ledger payload lists them.
ALERT_COLUMNS = ("id", "kind", "severity", "custodian", "conversation", "opened_at", "updated_at",
                 "resolved_at", "count", "detail")


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    severity: str
    custodian: str
    conversation: str
    opened_at: str
    detail: str
    count: int

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def raise_alert(conn: sqlite3.Connection, kind: str, custodian: str, conversation: str, detail: str,
                at: datetime) -> None:
    """Open the alert, or bump the one already open for the same kind, custodian and conversation."""
    stamp = iso(at)
    returning = f" RETURNING {', '.join(ALERT_COLUMNS)}"
    row = conn.execute(
        "UPDATE alert SET count = count + 1, updated_at = ?, detail = ? "
        "WHERE kind = ? AND custodian = ? AND conversation = ? AND resolved_at IS NULL" + returning,
        (stamp, detail, kind, custodian, conversation),
    ).fetchone()
    opened = row is None
    if row is None:
        row = conn.execute(
            "INSERT INTO alert (kind, severity, custodian, conversation, opened_at, updated_at, count, detail) "
            "VALUES (?,?,?,?,?,?,1,?)" + returning,
            (kind, SEVERITY[kind], custodian, conversation, stamp, stamp, detail),
        ).fetchone()
    ledger = Ledger(conn)
    ledger.begin()
    ledger.append(stamp, "alert", str(row[0]), alert_payload(dict(zip(ALERT_COLUMNS, row, strict=True))))
    if opened:  # people hear of a new alert, not of each repeat (its count says how often)
        note_alert_event(conn, ledger, int(row[0]), "opened", stamp)
    ledger.flush()


def alert_payload(row: dict[str, Any]) -> dict[str, Any]:
    """What an alert's ledger entry commits to: the whole row (verify recomputes it from the index)."""
    return {"alert": {c: row[c] for c in ALERT_COLUMNS}}


def open_alerts(conn: sqlite3.Connection, custodian: str | None = None) -> list[Alert]:
    sql = ("SELECT id, kind, severity, custodian, conversation, opened_at, detail, count FROM alert "
           "WHERE resolved_at IS NULL")
    params: tuple[str, ...] = ()
    if custodian:
        sql += " AND custodian = ?"
        params = (custodian,)
    return [Alert(*row) for row in conn.execute(sql + " ORDER BY opened_at, id", params)]
