"""What each capture holds of each conversation, read from the index for the coverage timeline
(:mod:`twentyday.compliance.coverage` turns these into spans, holes and export-by dates).

A capture holds a conversation from its first to its last dated message: every capture a
record arrived in counts (its earliest, ``record.capture_id``, and every later one,
``record_capture``), so a later export that repeats older messages spans them too. Undated
records hold no span. Mail is forwarded message by message, not exported: its threads have no
coverage to keep (thread gaps are found by reference instead), so ``chat_only`` leaves them out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

from twentyday.canonical import iso, parse_iso
from twentyday.compliance.coverage import CaptureSpan

#: Platforms whose records arrive one forwarded message at a time, not as exports of a conversation.
FORWARDED_PLATFORMS = ("email",)


def capture_spans(conn: sqlite3.Connection, *, custodian: str | None = None, as_of: datetime | None = None,
                  chat_only: bool = True) -> Iterator[CaptureSpan]:
    """Each (capture, conversation) with its first and last dated message; ``as_of``: only captures
    received by then (the archive as it stood at that time)."""
    where = ["r.created_utc IS NOT NULL"]
    params: list[str] = []
    if custodian is not None:
        where.append("r.custodian = ?")
        params.append(custodian)
    if as_of is not None:
        where.append("held.captured_at <= ?")  # ISO in UTC, as the writer keeps it: sorts as text
        params.append(iso(as_of.astimezone(UTC)))
    if chat_only:
        where.append(f"r.platform NOT IN ({', '.join('?' for _ in FORWARDED_PLATFORMS)})")
        params.extend(FORWARDED_PLATFORMS)
    # One custodian's records are found by index before the union (the later captures' links are few).
    own = " WHERE custodian = ?" if custodian is not None else ""
    rows = conn.execute(
        "WITH held (record_id, capture_id, captured_at) AS ("
        f" SELECT id, capture_id, captured_at FROM record{own}"
        " UNION ALL SELECT record_id, capture_id, captured_at FROM record_capture) "
        "SELECT r.custodian, r.conversation, max(r.platform), held.capture_id, min(r.created_utc), "
        "max(r.created_utc), c.received_at, count(*), "
        "EXISTS (SELECT 1 FROM event e WHERE e.capture_id = held.capture_id AND e.kind = 'truncated_export') "
        "FROM held JOIN record r ON r.id = held.record_id JOIN capture c ON c.id = held.capture_id "
        f"WHERE {' AND '.join(where)} GROUP BY r.custodian, r.conversation, held.capture_id",
        ([custodian] if custodian is not None else []) + params,
    )
    for custodian_id, conversation, platform, capture_id, first, last, received, count, truncated in rows:
        yield CaptureSpan(custodian_id, conversation, platform, capture_id, parse_iso(first), parse_iso(last),
                          parse_iso(received), count, bool(truncated))
