"""What each capture holds of each conversation, read from the index for the coverage timeline
(:mod:`twentyday.compliance.coverage` turns these into spans, holes and export-by dates).

A capture holds a conversation from its first to its last dated message: every capture a
record arrived in counts (its earliest, ``record.capture_id``, and every later one,
``record_capture``), so a later export that repeats older messages spans them too. Undated
records hold no span. Mail is forwarded message by message, not exported: its threads have no
coverage to keep (thread gaps are found by reference instead), so ``chat_only`` leaves them out.

The spans are read from ``capture_span``, which the writer keeps as each capture is written
(store/writer.py): one row per capture and conversation, instead of grouping every record.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime

from twentyday.canonical import iso, parse_iso
from twentyday.compliance.coverage import CaptureSpan
from twentyday.store import db

#: Platforms whose records arrive one forwarded message at a time, not as exports of a conversation.
FORWARDED_PLATFORMS = ("email",)

#: ``capture_span`` recomputed from the records and their links: what the writer keeps as each capture
#: is written (the table is derived data, see migration 9 in store/schema.py).
SPANS_FROM_RECORDS = (
    "SELECT capture_id, custodian, conversation, platform, min(created_utc), max(created_utc), count(*) FROM ("
    "SELECT r.capture_id, r.custodian, r.conversation, r.platform, r.created_utc FROM record r "
    "WHERE r.created_utc IS NOT NULL UNION ALL "
    "SELECT l.capture_id, r.custodian, r.conversation, r.platform, r.created_utc "
    "FROM record_capture l JOIN record r ON r.id = l.record_id WHERE r.created_utc IS NOT NULL"
    ") AS dated GROUP BY capture_id, custodian, conversation, platform")
SPAN_COLUMNS = "capture_id, custodian, conversation, platform, first_utc, last_utc, messages"


def rebuild_capture_spans(conn: db.Connection) -> None:
    """Recompute ``capture_span`` from the index (for rows written with SQL, not through the writer)."""
    conn.execute("DELETE FROM capture_span")
    conn.execute(f"INSERT INTO capture_span ({SPAN_COLUMNS}) {SPANS_FROM_RECORDS}")


def span_differences(conn: db.Connection) -> list[str]:
    """The captures whose ``capture_span`` rows differ from their recomputation (rows on either side)."""
    # The recomputation groups every record: done once (materialised), compared both ways.
    return [capture_id for (capture_id,) in conn.execute(
        f"WITH computed AS MATERIALIZED ({SPANS_FROM_RECORDS}), stored AS (SELECT {SPAN_COLUMNS} FROM capture_span) "
        "SELECT capture_id FROM (SELECT * FROM computed EXCEPT SELECT * FROM stored) AS missing UNION "
        "SELECT capture_id FROM (SELECT * FROM stored EXCEPT SELECT * FROM computed) AS extra ORDER BY 1")]



def capture_spans(conn: db.Connection, *, custodian: str | None = None, as_of: datetime | None = None,
                  chat_only: bool = True, conversations: Collection[tuple[str, str]] | None = None
                  ) -> Iterator[CaptureSpan]:
    """Each (capture, conversation) with its first and last dated message; ``as_of``: only captures
    received by then (the archive as it stood at that time); ``conversations``: only these
    (custodian, conversation) pairs."""
    where: list[str] = []
    params: list[str] = []
    if custodian is not None:
        where.append("s.custodian = ?")
        params.append(custodian)
    if conversations is not None:
        if not conversations:
            return
        where.append(f"(s.custodian, s.conversation) IN (VALUES {', '.join('(?, ?)' for _ in conversations)})")
        params.extend(value for pair in sorted(conversations) for value in pair)
    if chat_only:
        where.append(f"s.platform NOT IN ({', '.join('?' for _ in FORWARDED_PLATFORMS)})")
        params.extend(FORWARDED_PLATFORMS)
    if as_of is not None:
        # A span row holds what its capture brought (its new records and its links), so the archive
        # as it stood then is the rows of the captures received by then.
        where.append("c.received_at <= ?")
        params.append(iso(as_of.astimezone(UTC)))  # ISO in UTC as the writer keeps it: sorts as text
    # One row per (capture, conversation, platform) in the derived table (see migration 9); a
    # conversation seen on two platforms in one capture is one span, as the grouped read made it.
    # Every row of a group is of one capture, so max() is its one time (an ungrouped column is SQLite's own).
    rows = conn.execute(
        "SELECT s.custodian, s.conversation, max(s.platform), s.capture_id, min(s.first_utc), max(s.last_utc), "
        "sum(s.messages), max(c.received_at), EXISTS (SELECT 1 FROM event e WHERE e.capture_id = s.capture_id "
        "AND e.kind = 'truncated_export') FROM capture_span s JOIN capture c ON c.id = s.capture_id"
        f"{' WHERE ' + ' AND '.join(where) if where else ''} "
        "GROUP BY s.custodian, s.conversation, s.capture_id ORDER BY s.custodian, s.conversation, s.capture_id",
        params)
    for custodian_id, conversation, platform, capture_id, first, last, count, received, truncated in rows:
        yield CaptureSpan(custodian_id, conversation, platform, capture_id, parse_iso(first), parse_iso(last),
                          parse_iso(received), int(count), bool(truncated))
