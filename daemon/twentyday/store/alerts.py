"""The alert table: one open alert per (kind, custodian, conversation); repeats raise its count.

Kinds and their severities are :mod:`twentyday.compliance.alerts`. Alert details are written by
twentyday itself from metadata (counts, names, times): never message content.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twentyday.canonical import iso
from twentyday.compliance.alerts import SEVERITY


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
    updated = conn.execute(
        "UPDATE alert SET count = count + 1, updated_at = ?, detail = ? "
        "WHERE kind = ? AND custodian = ? AND conversation = ? AND resolved_at IS NULL",
        (stamp, detail, kind, custodian, conversation),
    ).rowcount
    if not updated:
        conn.execute(
            "INSERT INTO alert (kind, severity, custodian, conversation, opened_at, updated_at, count, detail) "
            "VALUES (?,?,?,?,?,?,1,?)",
            (kind, SEVERITY[kind], custodian, conversation, stamp, stamp, detail),
        )


def open_alerts(conn: sqlite3.Connection, custodian: str | None = None) -> list[Alert]:
    sql = ("SELECT id, kind, severity, custodian, conversation, opened_at, detail, count FROM alert "
           "WHERE resolved_at IS NULL")
    params: tuple[str, ...] = ()
    if custodian:
        sql += " AND custodian = ?"
        params = (custodian,)
    return [Alert(*row) for row in conn.execute(sql + " ORDER BY opened_at, id", params)]
